"""Clause templates of the request language: each clause's wording and the one call it stands for.

A request is 1-3 clauses joined by ' then '; RESERVED_COMPOSITIONS pairs occur only in test_compositions.
"""

from __future__ import annotations

import dataclasses

from jaxrl_suite.tooluse.grammar import Call
from jaxrl_suite.validation import require

CLAUSE_SEPARATOR = " then "
MAX_CLAUSES = 3
MISSING_VALUE_WORD = "something"  # stands where a request leaves its value out (an unanswerable request)


@dataclasses.dataclass(frozen=True)
class ClauseTemplate:
    """A clause kind: `wording` has {key}, maybe {other} (a second key) or {value}; `tool` is its call.

    `min_slots` is how many slots the state needs before the clause (a delete keeps at least one slot);
    `values` are the digits a request draws for {value}.
    """

    name: str
    wording: str
    tool: str
    num_keys: int
    values: tuple[int, ...] = ()
    min_slots: int = 1

    @property
    def takes_value(self) -> bool:
        return bool(self.values)


TEMPLATES: dict[str, ClauseTemplate] = {
    template.name: template
    for template in (
        ClauseTemplate("put", "put {value} in {key}", "set", num_keys=1, values=tuple(range(10))),
        ClauseTemplate("add", "add {value} to {key}", "add", num_keys=1, values=tuple(range(1, 10))),
        ClauseTemplate("move", "move {key} to {other}", "move", num_keys=2, min_slots=2),
        ClauseTemplate("delete", "delete {key}", "del", num_keys=1, min_slots=2),
        ClauseTemplate("swap", "swap {key} and {other}", "swap", num_keys=2, min_slots=2),
        ClauseTemplate("read", "read {key}", "get", num_keys=1),
    )
}
TEMPLATE_NAMES: tuple[str, ...] = tuple(TEMPLATES)

# Adjacent (earlier clause, later clause) pairs that train and test_keys never contain; ("read", "add")
# needs only one slot, so a test_compositions episode can go on after its states shrink to one slot.
RESERVED_COMPOSITIONS: frozenset[tuple[str, str]] = frozenset(
    {
        ("swap", "read"),
        ("move", "add"),
        ("put", "swap"),
        ("delete", "put"),
        ("read", "add"),
    }
)


@dataclasses.dataclass(frozen=True)
class Clause:
    """One filled-in clause: its template name, its keys in wording order, and its value (None: left out)."""

    template: str
    keys: tuple[str, ...]
    value: int | None = None

    def __post_init__(self) -> None:
        require(
            self.template in TEMPLATES,
            "Clause",
            "template",
            self.template,
            f"one of {', '.join(TEMPLATE_NAMES)}",
        )
        template = TEMPLATES[self.template]
        require(
            len(self.keys) == template.num_keys,
            "Clause",
            "keys",
            self.keys,
            f"{template.num_keys} key{'s' if template.num_keys > 1 else ''} for {self.template}",
        )
        require(
            self.value is None or (template.takes_value and self.value in template.values),
            "Clause",
            "value",
            self.value,
            f"None or one of {template.values} for {self.template}",
        )

    @property
    def has_missing_value(self) -> bool:
        return TEMPLATES[self.template].takes_value and self.value is None


def render_clause(clause: Clause) -> str:
    """The clause's request text, e.g. `add 2 to bee`; a left-out value reads `something`."""
    template = TEMPLATES[clause.template]
    value = MISSING_VALUE_WORD if clause.value is None else str(clause.value)
    return template.wording.format(key=clause.keys[0], other=clause.keys[-1], value=value)


def render_request(clauses: tuple[Clause, ...]) -> str:
    return CLAUSE_SEPARATOR.join(render_clause(clause) for clause in clauses)


def clause_call(clause: Clause) -> Call:
    """The call a clause asks for; a clause with a left-out value has none, so this raises ValueError."""
    if clause.has_missing_value:
        raise ValueError(f"invalid Clause.value=None: expected a value for {clause.template} to make a call")
    value = () if clause.value is None else (str(clause.value),)
    return Call(TEMPLATES[clause.template].tool, clause.keys + value)


def compositions(template_names: tuple[str, ...]) -> frozenset[tuple[str, str]]:
    """The adjacent (earlier, later) template pairs of a request."""
    return frozenset(zip(template_names, template_names[1:], strict=False))
