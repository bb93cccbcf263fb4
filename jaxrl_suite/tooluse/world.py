"""A world of a few named digit slots, its canonical text form, and the tools that read and change it.

Values are integers 0-9 and `add` wraps modulo 10; a bad call gives an `error: ...` observation, no exception.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

from jaxrl_suite.tooluse.grammar import Call, is_name
from jaxrl_suite.validation import require

# Keys are three-letter words, so every slot's text `key=d;` is six characters wide.
TRAIN_KEYS: tuple[str, ...] = ("ant", "bee", "cat", "dog", "elk", "fox", "hen", "owl")
HELD_OUT_KEYS: tuple[str, ...] = ("gnu", "pig", "ram", "yak")  # only in the test_keys split
KEY_POOL: tuple[str, ...] = TRAIN_KEYS + HELD_OUT_KEYS

VALUE_MODULUS = 10  # values are 0-9; add(key, value) stores (old + value) % 10

# Each tool's parameters in call order: "key" names an existing slot, "value" is one digit 0-9.
TOOL_PARAMETERS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "set": ("key", "value"),  # the slot takes the value
        "add": ("key", "value"),  # the slot takes (its value + value) % 10
        "move": ("key", "key"),  # move(src, dst): dst takes src's value, src is removed
        "del": ("key",),  # the slot is removed
        "swap": ("key", "key"),  # the two slots exchange values
        "get": ("key",),  # reads the slot: the observation is its value as text
    }
)
READ_TOOLS: frozenset[str] = frozenset({"get"})
WRITE_TOOLS: frozenset[str] = frozenset(TOOL_PARAMETERS) - READ_TOOLS
ALL_TOOLS: frozenset[str] = frozenset(TOOL_PARAMETERS)

OK_OBSERVATION = "ok"
ERROR_PREFIX = "error: "
SLOT_SEPARATOR = ";"
DIGITS = "0123456789"


def is_error(observation: str) -> bool:
    """Whether an observation reports a call that failed (and changed nothing)."""
    return observation.startswith(ERROR_PREFIX)


@dataclasses.dataclass(frozen=True)
class State:
    """An immutable world state: (key, value) pairs sorted by key, keys unique, values 0-9."""

    slots: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        is_pairs = isinstance(self.slots, tuple) and all(
            isinstance(slot, tuple) and len(slot) == 2 for slot in self.slots
        )
        require(is_pairs, "State", "slots", self.slots, "a tuple of (key, value) pairs")
        for key, value in self.slots:
            require(is_name(key), "State", "key", key, "lowercase letters a-z")
            require(
                type(value) is int and 0 <= value < VALUE_MODULUS,
                "State",
                f"slots[{key!r}]",
                value,
                f"an integer in [0, {VALUE_MODULUS - 1}]",
            )
        keys = self.keys
        require(
            all(a < b for a, b in zip(keys, keys[1:], strict=False)),
            "State",
            "keys",
            keys,
            "unique keys in sorted order",
        )

    @classmethod
    def from_mapping(cls, values: Mapping[str, int]) -> State:
        return cls(tuple(sorted(values.items())))

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(key for key, _ in self.slots)

    def value(self, key: str) -> int | None:
        """The slot's value, or None when the state has no such key."""
        return dict(self.slots).get(key)

    def with_value(self, key: str, value: int) -> State:
        """This state with `key` holding `value` (the slot is added when absent)."""
        return State.from_mapping({**dict(self.slots), key: value})

    def without(self, key: str) -> State:
        return State(tuple(slot for slot in self.slots if slot[0] != key))


def format_state(state: State) -> str:
    """Canonical text: `key=digit;` per slot in sorted key order, e.g. `ant=3;bee=0;`; no slots is ''."""
    return "".join(f"{key}={value}{SLOT_SEPARATOR}" for key, value in state.slots)


def _state_text_error(text: str, position: int, expected: str) -> ValueError:
    found = repr(text[position]) if position < len(text) else "end of text"
    return ValueError(
        f"invalid state text {text!r} at position {position}: expected {expected}, found {found}"
    )


def parse_state(text: str) -> State:
    """The inverse of format_state; other text (spaces, unsorted or repeated keys, 12) raises ValueError."""
    if not isinstance(text, str):
        raise ValueError(f"invalid state text={text!r}: expected a string")
    slots: list[tuple[str, int]] = []
    position = 0
    while position < len(text):
        key_end = position
        while key_end < len(text) and "a" <= text[key_end] <= "z":
            key_end += 1
        if key_end == position:
            raise _state_text_error(text, position, "a key (a-z)")
        if text[key_end : key_end + 1] != "=":
            raise _state_text_error(text, key_end, "a letter or '='")
        digit = text[key_end + 1 : key_end + 2]
        if digit == "" or digit not in DIGITS:
            raise _state_text_error(text, key_end + 1, "a digit 0-9")
        if text[key_end + 2 : key_end + 3] != SLOT_SEPARATOR:
            raise _state_text_error(text, key_end + 2, f"'{SLOT_SEPARATOR}'")
        slots.append((text[position:key_end], int(digit)))
        position = key_end + 3
    keys = [key for key, _ in slots]
    if keys != sorted(set(keys)):
        raise ValueError(f"invalid state text {text!r}: expected unique keys in sorted order, got {keys}")
    return State(tuple(slots))


def format_tools(tools: Iterable[str]) -> str:
    """Canonical text of a tool set: sorted names joined by ',', e.g. `add,del,get`."""
    return ",".join(sorted(tools))


@dataclasses.dataclass(frozen=True)
class CallCheck:
    """Why a call cannot run: `kind` is unknown_tool, arity, unknown_key, value or same_key; `observation`
    is the error text."""

    kind: str
    observation: str


@dataclasses.dataclass(frozen=True)
class World:
    """The tools a world offers (all six unless some are removed); `execute` runs one call on a state.

    Overflow rule: add(key, value) stores (old + value) % VALUE_MODULUS, so add(ant,5) on ant=7 gives ant=2.
    """

    available_tools: frozenset[str] = ALL_TOOLS

    def __post_init__(self) -> None:
        require(
            isinstance(self.available_tools, frozenset) and self.available_tools <= ALL_TOOLS,
            "World",
            "available_tools",
            self.available_tools,
            f"a frozenset of tools from {format_tools(ALL_TOOLS)}",
        )

    def without_tools(self, *tools: str) -> World:
        """This world with `tools` removed: calling one is then an unknown-tool error."""
        return World(self.available_tools - frozenset(tools))

    def check(self, state: State, call: Call) -> CallCheck | None:
        """None when `call` can run on `state`; else the first problem, in the order of CallCheck.kind."""
        if call.tool not in self.available_tools:
            return CallCheck("unknown_tool", f"{ERROR_PREFIX}unknown tool '{call.tool}'")
        parameters = TOOL_PARAMETERS[call.tool]
        if len(call.args) != len(parameters):
            plural = "s" if len(parameters) > 1 else ""
            return CallCheck(
                "arity",
                f"{ERROR_PREFIX}{call.tool} takes {len(parameters)} argument{plural} "
                f"({', '.join(parameters)}), got {len(call.args)}",
            )
        for parameter, arg in zip(parameters, call.args, strict=True):
            if parameter == "key" and state.value(arg) is None:
                return CallCheck("unknown_key", f"{ERROR_PREFIX}unknown key '{arg}'")
        for parameter, arg in zip(parameters, call.args, strict=True):
            if parameter == "value" and not (len(arg) == 1 and arg in DIGITS):
                return CallCheck(
                    "value", f"{ERROR_PREFIX}invalid value '{arg}' for {call.tool}: expected a digit 0-9"
                )
        if parameters == ("key", "key") and call.args[0] == call.args[1]:
            return CallCheck(
                "same_key", f"{ERROR_PREFIX}{call.tool} needs two different keys, got '{call.args[0]}' twice"
            )
        return None

    def names_unknown(self, state: State, call: Call) -> bool:
        """Whether `call` names a tool this world lacks or a key `state` lacks (a hallucinated name)."""
        problem = self.check(state, call)
        return problem is not None and problem.kind in ("unknown_tool", "unknown_key")

    def execute(self, state: State, call: Call) -> tuple[State, str]:
        """(next state, observation): `ok` for a write, the value for `get`, or an error (state unchanged)."""
        problem = self.check(state, call)
        if problem is not None:
            return state, problem.observation
        key = call.args[0]
        value = state.value(key)
        if call.tool == "get":
            return state, str(value)
        if call.tool == "set":
            return state.with_value(key, int(call.args[1])), OK_OBSERVATION
        if call.tool == "add":
            return state.with_value(key, (value + int(call.args[1])) % VALUE_MODULUS), OK_OBSERVATION
        if call.tool == "del":
            return state.without(key), OK_OBSERVATION
        other = call.args[1]
        if call.tool == "move":
            return state.without(key).with_value(other, value), OK_OBSERVATION
        return state.with_value(key, state.value(other)).with_value(other, value), OK_OBSERVATION  # swap

    def execute_all(self, state: State, calls: Sequence[Call]) -> tuple[State, tuple[str, ...]]:
        """Runs `calls` in order (a failed one changes nothing, the rest still run): state, observations."""
        observations = []
        for call in calls:
            state, observation = self.execute(state, call)
            observations.append(observation)
        return state, tuple(observations)
