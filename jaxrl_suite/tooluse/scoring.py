"""Multi-turn scoring in the BFCL manner, hallucination counts, and tau-bench's pass^k over repeated trials.

A turn passes when the model's calls reach the gold state and cover the gold reads; a refusal needs no calls.
"""

from __future__ import annotations

import collections
import dataclasses
import math
from collections.abc import Sequence

from jaxrl_suite.tooluse.grammar import Call, MalformedCallError, parse_calls
from jaxrl_suite.tooluse.tasks import Episode, Task
from jaxrl_suite.tooluse.world import READ_TOOLS, State, is_error
from jaxrl_suite.validation import require

ModelOutput = str | Sequence[Call]  # call text (`<no_call>` for none) or the calls themselves


@dataclasses.dataclass(frozen=True)
class TurnScore:
    """One turn's checks. `model_state` is the state the model's calls reached (the next turn starts there);
    malformed text runs no calls; `hallucinated`: a call named an unknown tool or key, or any call on an
    unanswerable request."""

    state_matches: bool
    reads_covered: bool
    refusal_respected: bool
    malformed: bool
    hallucinated: bool
    model_state: State

    @property
    def passed(self) -> bool:
        return self.state_matches and self.reads_covered and self.refusal_respected and not self.malformed


@dataclasses.dataclass(frozen=True)
class EpisodeScore:
    turns: tuple[TurnScore, ...]

    @property
    def success(self) -> bool:
        """Every turn passed."""
        return all(turn.passed for turn in self.turns)

    @property
    def hallucinated(self) -> bool:
        return any(turn.hallucinated for turn in self.turns)


def _calls_of(output: ModelOutput) -> tuple[Call, ...] | None:
    """The calls of a model output; None for text the grammar rejects."""
    if isinstance(output, str):
        try:
            return parse_calls(output)
        except MalformedCallError:
            return None
    return tuple(output)


def score_turn(task: Task, output: ModelOutput, state: State | None = None) -> TurnScore:
    """Scores `output` on `task`, running its calls from `state` (default: the task's initial state) in the
    task's world; the gold reads must be a sub-multiset of the model's successful `get` results."""
    state = task.initial_state if state is None else state
    calls = _calls_of(output)
    if calls is None:
        return TurnScore(
            state_matches=state == task.gold_state,
            reads_covered=not task.gold_reads,
            refusal_respected=False,
            malformed=True,
            hallucinated=False,
            model_state=state,
        )
    world, model_state, reads, named_unknown = task.world, state, [], False
    for call in calls:
        named_unknown = named_unknown or world.names_unknown(model_state, call)
        model_state, observation = world.execute(model_state, call)
        if call.tool in READ_TOOLS and not is_error(observation):
            reads.append(observation)
    missing_reads = collections.Counter(task.gold_reads) - collections.Counter(reads)
    return TurnScore(
        state_matches=model_state == task.gold_state,
        reads_covered=not missing_reads,
        refusal_respected=bool(task.gold_calls) or not calls,
        malformed=False,
        hallucinated=named_unknown or (bool(calls) and not task.answerable),
        model_state=model_state,
    )


def score_episode(episode: Episode | Sequence[Task], outputs: Sequence[ModelOutput]) -> EpisodeScore:
    """Scores one output per turn; the model's state carries over between turns, so an early wrong call
    shows in every later state check."""
    turns = episode.turns if isinstance(episode, Episode) else tuple(episode)
    require(
        len(outputs) == len(turns),
        "score_episode",
        "outputs",
        f"<{len(outputs)} outputs>",
        f"one output per turn ({len(turns)})",
    )
    scores, state = [], turns[0].initial_state if turns else State()
    for task, output in zip(turns, outputs, strict=True):
        scores.append(score_turn(task, output, state))
        state = scores[-1].model_state
    return EpisodeScore(tuple(scores))


def success_rate(scores: Sequence[EpisodeScore]) -> float:
    require(len(scores) >= 1, "success_rate", "scores", "[]", "at least one episode score")
    return sum(score.success for score in scores) / len(scores)


def hallucination_rate(scores: Sequence[EpisodeScore]) -> float:
    """The fraction of episodes with at least one hallucinated turn."""
    require(len(scores) >= 1, "hallucination_rate", "scores", "[]", "at least one episode score")
    return sum(score.hallucinated for score in scores) / len(scores)


def pass_hat_k(successes_per_task: Sequence[int], n: int, k: int) -> float:
    """tau-bench's pass^k: the mean over tasks of C(c, k) / C(n, k), with c of n trials of a task successful;
    the chance that k trials drawn without replacement all succeed."""
    require(type(n) is int and n >= 1, "pass_hat_k", "n", n, "an integer >= 1")
    require(type(k) is int and 1 <= k <= n, "pass_hat_k", "k", k, f"an integer in [1, n={n}]")
    require(
        len(successes_per_task) >= 1,
        "pass_hat_k",
        "successes_per_task",
        list(successes_per_task),
        "at least one task",
    )
    for index, successes in enumerate(successes_per_task):
        require(
            type(successes) is int and 0 <= successes <= n,
            "pass_hat_k",
            f"successes_per_task[{index}]",
            successes,
            f"an integer in [0, n={n}]",
        )
    return sum(math.comb(c, k) for c in successes_per_task) / (math.comb(n, k) * len(successes_per_task))
