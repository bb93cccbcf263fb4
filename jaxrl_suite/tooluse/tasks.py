"""Seeded generation of requests with gold programs, single-turn tasks and multi-turn episodes, by split.

Splits: train (TRAIN_KEYS, no reserved composition), test_keys (HELD_OUT_KEYS), test_compositions (one each).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping
from types import MappingProxyType

from jaxrl_suite.tooluse.grammar import Call
from jaxrl_suite.tooluse.templates import (
    RESERVED_COMPOSITIONS,
    TEMPLATE_NAMES,
    TEMPLATES,
    Clause,
    clause_call,
    compositions,
    render_request,
)
from jaxrl_suite.tooluse.world import (
    ALL_TOOLS,
    HELD_OUT_KEYS,
    READ_TOOLS,
    TRAIN_KEYS,
    VALUE_MODULUS,
    State,
    World,
    format_state,
    is_error,
)
from jaxrl_suite.validation import require

UNANSWERABLE_FRACTION = 0.175  # exactly round(0.175 * count) of a split's tasks (or an episode set's turns)
UNANSWERABLE_REASONS: tuple[str, ...] = ("missing_key", "removed_tool", "missing_value")
TASK_SLOT_RANGE = (2, 3)  # slots in a single-turn task's initial state, inclusive
EPISODE_SLOT_RANGE = (3, 4)  # slots in an episode's first state; no tool adds a slot, so states only shrink
MAX_SLOTS = max(TASK_SLOT_RANGE + EPISODE_SLOT_RANGE)
CLAUSE_COUNT_WEIGHTS: Mapping[int, int] = MappingProxyType({1: 3, 2: 4, 3: 3})  # outside test_compositions
UNUSED_TOOL_REMOVAL_PROBABILITY = 0.25  # an answerable request's world lacks one tool it does not need
MAX_ATTEMPTS = 1000


@dataclasses.dataclass(frozen=True)
class SplitSpec:
    """Which keys a split's states use and whether each request holds a reserved composition."""

    keys: tuple[str, ...]
    reserved_compositions: bool


SPLITS: Mapping[str, SplitSpec] = MappingProxyType(
    {
        "train": SplitSpec(TRAIN_KEYS, reserved_compositions=False),
        "test_keys": SplitSpec(HELD_OUT_KEYS, reserved_compositions=False),
        "test_compositions": SplitSpec(TRAIN_KEYS, reserved_compositions=True),
    }
)


@dataclasses.dataclass(frozen=True)
class Task:
    """One request on one state. An unanswerable request (`unanswerable_reason` set) has the refusal as its
    gold answer: no calls, no reads, gold_state == initial_state. `gold_reads`: the `get` results asked."""

    request: str
    initial_state: State
    available_tools: frozenset[str]
    clauses: tuple[Clause, ...]
    gold_calls: tuple[Call, ...]
    gold_state: State
    gold_reads: tuple[str, ...]
    unanswerable_reason: str | None = None

    @property
    def answerable(self) -> bool:
        return self.unanswerable_reason is None

    @property
    def template_names(self) -> tuple[str, ...]:
        return tuple(clause.template for clause in self.clauses)

    @property
    def world(self) -> World:
        return World(self.available_tools)


@dataclasses.dataclass(frozen=True)
class Episode:
    """Turns on one carried-over state: each turn starts from the previous turn's gold_state."""

    turns: tuple[Task, ...]

    def __post_init__(self) -> None:
        for index, (previous, turn) in enumerate(zip(self.turns, self.turns[1:], strict=False), start=1):
            expected = f"the previous turn's gold state {format_state(previous.gold_state)!r}"
            require(
                turn.initial_state == previous.gold_state,
                "Episode",
                f"turns[{index}].initial_state",
                format_state(turn.initial_state),
                expected,
            )


def _sample_template_names(rng: random.Random, spec: SplitSpec) -> tuple[str, ...] | None:
    """Template names of one request, or None when they break the split's composition rule."""
    if spec.reserved_compositions:
        pair = rng.choice(sorted(RESERVED_COMPOSITIONS))
        if rng.random() < 0.5:
            return pair
        extra = rng.choice(TEMPLATE_NAMES)
        return (extra, *pair) if rng.random() < 0.5 else (*pair, extra)
    count = rng.choices(tuple(CLAUSE_COUNT_WEIGHTS), weights=tuple(CLAUSE_COUNT_WEIGHTS.values()))[0]
    names = tuple(rng.choice(TEMPLATE_NAMES) for _ in range(count))
    return None if compositions(names) & RESERVED_COMPOSITIONS else names


def _fill_clauses(
    rng: random.Random, names: tuple[str, ...], state: State
) -> tuple[tuple[Clause, ...], tuple[frozenset[str], ...]] | None:
    """Clauses on keys present when each runs, and the key set before each; None if a clause lacks slots."""
    world = World()
    clauses, keys_before = [], []
    for name in names:
        template = TEMPLATES[name]
        if len(state.keys) < template.min_slots:
            return None
        keys = tuple(rng.sample(state.keys, template.num_keys))
        clause = Clause(name, keys, rng.choice(template.values) if template.takes_value else None)
        clauses.append(clause)
        keys_before.append(frozenset(state.keys))
        state, _ = world.execute(state, clause_call(clause))
    return tuple(clauses), tuple(keys_before)


def _make_unanswerable(
    rng: random.Random,
    reason: str,
    clauses: tuple[Clause, ...],
    keys_before: tuple[frozenset[str], ...],
    split_keys: tuple[str, ...],
) -> tuple[tuple[Clause, ...], frozenset[str]] | None:
    """(clauses, available tools) changed so one clause cannot be done for `reason`, or None."""
    changed, available = list(clauses), ALL_TOOLS
    if reason == "missing_value":
        positions = [index for index, clause in enumerate(clauses) if TEMPLATES[clause.template].takes_value]
        if not positions:
            return None
        index = rng.choice(positions)
        changed[index] = dataclasses.replace(clauses[index], value=None)
    elif reason == "missing_key":
        positions = [index for index in range(len(clauses)) if set(split_keys) - keys_before[index]]
        if not positions:
            return None
        index = rng.choice(positions)
        absent_key = rng.choice(sorted(set(split_keys) - keys_before[index]))
        keys = list(clauses[index].keys)
        keys[rng.randrange(len(keys))] = absent_key
        changed[index] = dataclasses.replace(clauses[index], keys=tuple(keys))
    else:
        available = ALL_TOOLS - {TEMPLATES[rng.choice(clauses).template].tool}
    return tuple(changed), available


def _build_task(
    clauses: tuple[Clause, ...], state: State, available: frozenset[str], reason: str | None
) -> Task:
    request = render_request(clauses)
    if reason is not None:
        return Task(request, state, available, clauses, (), state, (), reason)
    calls = tuple(clause_call(clause) for clause in clauses)
    gold_state, observations = World(available).execute_all(state, calls)
    if any(is_error(observation) for observation in observations):
        raise RuntimeError(f"gold program of {request!r} on {format_state(state)!r} failed: {observations}")
    reads = tuple(
        observation for call, observation in zip(calls, observations, strict=True) if call.tool in READ_TOOLS
    )
    return Task(request, state, available, clauses, calls, gold_state, reads)


def _generate_turn(rng: random.Random, spec: SplitSpec, state: State, unanswerable: bool) -> Task:
    for _ in range(MAX_ATTEMPTS):
        names = _sample_template_names(rng, spec)
        filled = None if names is None else _fill_clauses(rng, names, state)
        if filled is None:
            continue
        clauses, keys_before = filled
        if not unanswerable:
            unused = sorted(ALL_TOOLS - {TEMPLATES[name].tool for name in names})
            available = ALL_TOOLS
            if unused and rng.random() < UNUSED_TOOL_REMOVAL_PROBABILITY:
                available = ALL_TOOLS - {rng.choice(unused)}
            return _build_task(clauses, state, available, None)
        for reason in rng.sample(UNANSWERABLE_REASONS, len(UNANSWERABLE_REASONS)):
            changed = _make_unanswerable(rng, reason, clauses, keys_before, spec.keys)
            if changed is not None:
                return _build_task(changed[0], state, changed[1], reason)
    raise RuntimeError(f"no feasible request on state {format_state(state)!r} after {MAX_ATTEMPTS} attempts")


def _initial_state(rng: random.Random, keys: tuple[str, ...], slot_range: tuple[int, int]) -> State:
    keys_used = rng.sample(keys, min(rng.randint(*slot_range), len(keys)))
    return State.from_mapping({key: rng.randrange(VALUE_MODULUS) for key in keys_used})


def _unanswerable_flags(rng: random.Random, count: int) -> list[bool]:
    """Exactly round(UNANSWERABLE_FRACTION * count) True flags, in a seeded order."""
    unanswerable = round(UNANSWERABLE_FRACTION * count)
    flags = [True] * unanswerable + [False] * (count - unanswerable)
    rng.shuffle(flags)
    return flags


def _split_rng(name: str, count: int, count_field: str, seed: int) -> tuple[SplitSpec, random.Random]:
    require(name in SPLITS, "split", "name", name, f"one of {', '.join(SPLITS)}")
    require(type(count) is int and count >= 1, "split", count_field, count, "an integer >= 1")
    require(type(seed) is int, "split", "seed", seed, "an integer")
    return SPLITS[name], random.Random(f"tooluse/{name}/{seed}")


def make_split(name: str, num_tasks: int, seed: int) -> tuple[Task, ...]:
    """`num_tasks` single-turn tasks of split `name` (a SPLITS key); equal arguments give equal tasks."""
    spec, rng = _split_rng(name, num_tasks, "num_tasks", seed)
    return tuple(
        _generate_turn(rng, spec, _initial_state(rng, spec.keys, TASK_SLOT_RANGE), unanswerable)
        for unanswerable in _unanswerable_flags(rng, num_tasks)
    )


def make_episodes(name: str, num_episodes: int, num_turns: int, seed: int) -> tuple[Episode, ...]:
    """`num_episodes` episodes of `num_turns` turns each, on split `name`'s keys and composition rule."""
    spec, rng = _split_rng(name, num_episodes, "num_episodes", seed)
    require(type(num_turns) is int and num_turns >= 1, "split", "num_turns", num_turns, "an integer >= 1")
    flags = iter(_unanswerable_flags(rng, num_episodes * num_turns))
    episodes = []
    for _ in range(num_episodes):
        state, turns = _initial_state(rng, spec.keys, EPISODE_SLOT_RANGE), []
        for _ in range(num_turns):
            turns.append(_generate_turn(rng, spec, state, next(flags)))
            state = turns[-1].gold_state
        episodes.append(Episode(tuple(turns)))
    return tuple(episodes)
