"""Self-verification sampling (SVS) over K sampled calls and its baselines: first, consistency, two oracles.

The DyMo paper does not publish its exact SVS procedure; this voting rule is this package's own definition.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from jaxrl_suite.tooluse.grammar import NO_CALL, MalformedCallError, format_calls, parse_calls
from jaxrl_suite.tooluse.scoring import score_turn
from jaxrl_suite.tooluse.tasks import Task
from jaxrl_suite.tooluse.world import State, World, format_state, is_error
from jaxrl_suite.validation import require

PredictState = Callable[[str, str, str], str]  # (request, state text, call text) -> predicted next state text


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


def _validate(method: str, candidates: Sequence[str], tau: float | None = None) -> None:
    require(len(candidates) >= 1, method, "k", len(candidates), "an integer >= 1")
    for index, candidate in enumerate(candidates):
        require(isinstance(candidate, str), method, f"candidates[{index}]", candidate, "a string")
    if tau is not None:
        is_number = isinstance(tau, int | float) and not isinstance(tau, bool)
        require(is_number and 0 < tau <= 1, method, "tau", tau, "a number in (0, 1]")


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


def svs_select(request: str, state: str, candidates: Sequence[str], predict_state: PredictState,
               tau: float) -> Selection:
    """SVS: each candidate votes for the next state that `predict_state(request, state, candidate)` gives."""
    _validate("svs", candidates, tau)
    outcomes = []
    for index, candidate in enumerate(candidates):
        predicted = predict_state(request, state, candidate)
        require(isinstance(predicted, str), "svs", f"predicted_state[{index}]", predicted, "a string")
        outcomes.append(predicted)
    return vote(candidates, outcomes, tau)


def first_select(candidates: Sequence[str]) -> Selection:
    """The first sample, whatever it is."""
    _validate("first", candidates)
    return Selection(candidates[0], 0, 1, len(candidates))


def _canonical(candidate: str) -> str | None:
    try:
        return format_calls(parse_calls(candidate))
    except MalformedCallError:
        return None


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
    call from `state`) gives no error observation; accepted ones vote with the state actually reached."""
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
