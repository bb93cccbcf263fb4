"""Self-verification sampling (SVS) over K sampled calls and its baselines: first, consistency, two oracles.

The DyMo paper (arXiv 2506.02918) does not publish its exact SVS procedure; this voting rule is our own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Protocol

from jaxrl_suite.tooluse.grammar import NO_CALL, MalformedCallError, format_calls, parse_calls
from jaxrl_suite.tooluse.scoring import score_turn
from jaxrl_suite.tooluse.tasks import Task
from jaxrl_suite.tooluse.world import State, World, format_state, is_error
from jaxrl_suite.validation import require

PredictState = Callable[[str, str], str]  # (prompt, call text) -> predicted next state text

# "none": the first sample; "consistency": votes over call strings (all an FC-only model can do);
# "internal": SVS, votes over the model's own predicted next states; "oracle": votes over executed states.
SELECTION_METHODS: tuple[str, ...] = ("none", "consistency", "internal", "oracle")


class ToolCallModel(Protocol):
    """What selection needs from a model: K sampled call texts for a prompt, and a predicted next state.

    sample_calls(prompt, k) -> k call texts (a program, or `<no_call>`), e.g. sampled at temperature T.
    predict_state(prompt, call) -> the canonical state text the model expects after `call`.
    """

    def sample_calls(self, prompt: str, k: int) -> Sequence[str]: ...

    def predict_state(self, prompt: str, call: str) -> str: ...


@dataclasses.dataclass(frozen=True)
class Selection:
    """What a selection rule did: `action` is the chosen candidate's text or `<no_call>`; `chosen_index` is
    None when the rule refused; `votes` counts the winning outcome (0 when no candidate voted)."""

    action: str
    chosen_index: int | None
    votes: int
    num_candidates: int

    @property
    def support(self) -> float:
        return self.votes / self.num_candidates

    @property
    def refused(self) -> bool:
        return self.action == NO_CALL


def _require_tau(owner: str, tau: float) -> None:
    is_number = isinstance(tau, int | float) and not isinstance(tau, bool)
    require(is_number and 0 < tau <= 1, owner, "tau", tau, "a number in (0, 1]")


def _validate(method: str, candidates: Sequence[str], tau: float | None = None) -> None:
    require(len(candidates) >= 1, method, "k", len(candidates), "an integer >= 1")
    for index, candidate in enumerate(candidates):
        require(isinstance(candidate, str), method, f"candidates[{index}]", candidate, "a string")
    if tau is not None:
        _require_tau(method, tau)


def vote(candidates: Sequence[str], outcomes: Sequence[str | None], tau: float) -> Selection:
    """The shared rule: the outcome with the most votes (None abstains) wins, ties going to the outcome that
    occurs first; act with its first candidate when votes / K >= tau, otherwise refuse."""
    tally: dict[str, int] = {}
    for outcome in outcomes:
        if outcome is not None:
            tally[outcome] = tally.get(outcome, 0) + 1
    if not tally:
        return Selection(NO_CALL, None, 0, len(candidates))
    winner = max(tally, key=tally.__getitem__)  # first occurrence wins ties
    votes = tally[winner]
    if votes / len(candidates) < tau:
        return Selection(NO_CALL, None, votes, len(candidates))
    index = list(outcomes).index(winner)
    return Selection(candidates[index], index, votes, len(candidates))


def _canonical(candidate: str) -> str | None:
    try:
        return format_calls(parse_calls(candidate))
    except MalformedCallError:
        return None


def svs_select(prompt: str, candidates: Sequence[str], predict_state: PredictState, tau: float) -> Selection:
    """SVS: each well-formed candidate votes for the next state `predict_state(prompt, candidate)` gives;
    malformed ones abstain (the model is not asked) but count in K."""
    _validate("svs", candidates, tau)
    outcomes: list[str | None] = []
    for index, candidate in enumerate(candidates):
        if _canonical(candidate) is None:
            outcomes.append(None)
            continue
        predicted = predict_state(prompt, candidate)
        require(isinstance(predicted, str), "svs", f"predicted_state[{index}]", predicted, "a string")
        outcomes.append(predicted)
    return vote(candidates, outcomes, tau)


def first_select(candidates: Sequence[str]) -> Selection:
    """The first sample, whatever it is."""
    _validate("first", candidates)
    return Selection(candidates[0], 0, 1, len(candidates))


def consistency_select(candidates: Sequence[str], tau: float) -> Selection:
    """Self-consistency: candidates vote with canonical call text; malformed ones abstain (but count in K)."""
    _validate("consistency", candidates, tau)
    return vote(candidates, [_canonical(candidate) for candidate in candidates], tau)


def _executed_state(world: World, state: State, candidate: str) -> State | None:
    """The state `candidate` reaches on `world`, or None when it is malformed or any of its calls errs."""
    try:
        calls = parse_calls(candidate)
    except MalformedCallError:
        return None
    next_state, observations = world.execute_all(state, calls)
    return None if any(is_error(observation) for observation in observations) else next_state


def execution_oracle_select(candidates: Sequence[str], world: World, state: State, tau: float) -> Selection:
    """SVS with a perfect world model: a candidate is accepted only if executing it (world.execute, call by
    call from `state`; states are immutable, so the world is never changed) gives no error observation;
    accepted ones vote with the state actually reached."""
    _validate("oracle", candidates, tau)
    reached = [_executed_state(world, state, candidate) for candidate in candidates]
    outcomes = [None if next_state is None else format_state(next_state) for next_state in reached]
    return vote(candidates, outcomes, tau)


def gold_oracle_select(candidates: Sequence[str], task: Task, tau: float) -> Selection:
    """An upper bound that knows the gold answer: a candidate is accepted only if it passes the task's turn
    check (scoring.score_turn); with tau <= 1/K it refuses exactly when no candidate is correct."""
    _validate("gold_oracle", candidates, tau)
    outcomes = []
    for candidate in candidates:
        score = score_turn(task, candidate)
        outcomes.append(format_state(score.model_state) if score.passed else None)
    return vote(candidates, outcomes, tau)


@dataclasses.dataclass(frozen=True)
class SelectionConfig:
    """How `select_action` picks: `method` from SELECTION_METHODS, `k` samples, support threshold `tau`
    (read by consistency, internal and oracle; "none" always acts)."""

    method: str = "internal"
    k: int = 8
    tau: float = 0.5

    def __post_init__(self) -> None:
        require(
            self.method in SELECTION_METHODS,
            "SelectionConfig",
            "method",
            self.method,
            f"one of {', '.join(SELECTION_METHODS)}",
        )
        require(type(self.k) is int and self.k >= 1, "SelectionConfig", "k", self.k, "an integer >= 1")
        _require_tau("SelectionConfig", self.tau)


def select_action(
    model: ToolCallModel,
    prompt: str,
    config: SelectionConfig,
    world: World | None = None,
    state: State | None = None,
) -> Selection:
    """Samples `config.k` calls for `prompt` and picks one (or refuses) by `config.method`; "oracle" runs the
    candidates on `world` from `state`, which it alone needs."""
    candidates = tuple(model.sample_calls(prompt, config.k))
    require(
        len(candidates) == config.k,
        "sample_calls",
        "candidates",
        f"<{len(candidates)} candidates>",
        f"exactly k={config.k} call texts",
    )
    if config.method == "none":
        return first_select(candidates)
    if config.method == "consistency":
        return consistency_select(candidates, config.tau)
    if config.method == "internal":
        return svs_select(prompt, candidates, model.predict_state, config.tau)
    require(
        world is not None and state is not None,
        "select_action",
        "world",
        world,
        "a World and a State for method='oracle'",
    )
    return execution_oracle_select(candidates, world, state, config.tau)
