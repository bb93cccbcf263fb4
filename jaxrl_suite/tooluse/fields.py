"""Maximum widths of the text fields a model reads and writes, and padding with spaces to those widths.

FIELD_WIDTHS bounds every generated task; check_field_widths says which width is too small for a key set.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from jaxrl_suite.tooluse.grammar import CALL_SEPARATOR, NO_CALL, format_call, format_calls
from jaxrl_suite.tooluse.tasks import MAX_SLOTS, Task
from jaxrl_suite.tooluse.templates import (
    CLAUSE_SEPARATOR,
    MAX_CLAUSES,
    TEMPLATES,
    Clause,
    clause_call,
    render_clause,
)
from jaxrl_suite.tooluse.world import ALL_TOOLS, KEY_POOL, VALUE_MODULUS, format_state, format_tools
from jaxrl_suite.validation import require

READ_SEPARATOR = ";"


@dataclasses.dataclass(frozen=True)
class FieldWidths:
    """Characters per field. With three-letter keys and at most 4 slots and 3 clauses:
    request 72 = 3 clauses of at most 20 (`put something in ant`) + 2 separators ' then ' of 6;
    state 24 = 4 slots of 6 (`ant=3;`); tools 25 = `add,del,get,move,set,swap`;
    calls 41 = 3 calls of at most 13 (`move(ant,bee)`) + 2 ';'; reads 5 = 3 digits + 2 ';' (`3;0;7`)."""

    request: int = 72
    state: int = 24
    tools: int = 25
    calls: int = 41
    reads: int = 5


FIELD_WIDTHS = FieldWidths()


def format_reads(reads: Sequence[str]) -> str:
    """Read results joined by ';', e.g. `3;0`; no reads is ''."""
    return READ_SEPARATOR.join(reads)


def _longest_clause(key: str) -> int:
    lengths = []
    for name, template in TEMPLATES.items():
        keys = (key,) * template.num_keys
        for value in (None, template.values[-1]) if template.takes_value else (None,):
            lengths.append(len(render_clause(Clause(name, keys, value))))
    return max(lengths)


def _longest_call(key: str) -> int:
    lengths = []
    for name, template in TEMPLATES.items():
        value = template.values[-1] if template.takes_value else None
        lengths.append(len(format_call(clause_call(Clause(name, (key,) * template.num_keys, value)))))
    return max(lengths)


def required_field_widths(keys: Iterable[str] = KEY_POOL, max_slots: int = MAX_SLOTS) -> FieldWidths:
    """The smallest widths that fit every request, state and gold answer on `keys` and `max_slots` slots."""
    keys = tuple(keys)
    require(
        len(keys) >= 1 and all(isinstance(key, str) for key in keys),
        "required_field_widths",
        "keys",
        keys,
        "at least one key",
    )
    require(
        type(max_slots) is int and max_slots >= 1,
        "required_field_widths",
        "max_slots",
        max_slots,
        "an integer >= 1",
    )
    longest_key = "a" * max(len(key) for key in keys)
    digit_width = len(str(VALUE_MODULUS - 1))
    return FieldWidths(
        request=MAX_CLAUSES * _longest_clause(longest_key) + (MAX_CLAUSES - 1) * len(CLAUSE_SEPARATOR),
        state=max_slots * (len(longest_key) + 2 + digit_width),
        tools=len(format_tools(ALL_TOOLS)),
        calls=max(
            len(NO_CALL), MAX_CLAUSES * _longest_call(longest_key) + (MAX_CLAUSES - 1) * len(CALL_SEPARATOR)
        ),
        reads=MAX_CLAUSES * digit_width + (MAX_CLAUSES - 1) * len(READ_SEPARATOR),
    )


def check_field_widths(
    widths: FieldWidths = FIELD_WIDTHS, keys: Iterable[str] = KEY_POOL, max_slots: int = MAX_SLOTS
) -> None:
    """Raises a one-line ValueError naming the first field of `widths` too narrow for `keys`, `max_slots`."""
    keys = tuple(keys)
    needed = required_field_widths(keys, max_slots)
    for field in dataclasses.fields(FieldWidths):
        width, minimum = getattr(widths, field.name), getattr(needed, field.name)
        require(
            type(width) is int and width >= minimum,
            "FieldWidths",
            field.name,
            width,
            f"an integer >= {minimum} for keys of up to {max(len(key) for key in keys)} letters and "
            f"{max_slots} slots",
        )


def pad_field(field: str, text: str, widths: FieldWidths = FIELD_WIDTHS) -> str:
    """`text` padded with spaces on the right to the width of `field` (a FieldWidths name); longer raises."""
    names = [item.name for item in dataclasses.fields(FieldWidths)]
    require(field in names, "pad_field", "field", field, f"one of {', '.join(names)}")
    width = getattr(widths, field)
    require(len(text) <= width, "pad_field", field, text, f"at most {width} characters (FieldWidths.{field})")
    return text.ljust(width)


def task_fields(task: Task, widths: FieldWidths = FIELD_WIDTHS) -> dict[str, str]:
    """A task's padded fields: request, state (initial), tools, calls (gold), gold_state and reads (gold)."""
    return {
        "request": pad_field("request", task.request, widths),
        "state": pad_field("state", format_state(task.initial_state), widths),
        "tools": pad_field("tools", format_tools(task.available_tools), widths),
        "calls": pad_field("calls", format_calls(task.gold_calls), widths),
        "gold_state": pad_field("state", format_state(task.gold_state), widths),
        "reads": pad_field("reads", format_reads(task.gold_reads), widths),
    }
