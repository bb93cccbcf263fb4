"""The two checks every config's validate() is built from: `require` (a field's value is valid)
and `require_defaults` (a field nothing would read keeps its default), each error one line; and
`added_field` and `rebuild_nested_configs`, how configs grow fields and read back from config.json.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Sequence
from typing import Any


def require(ok: bool, owner: str, field: str, value: object, valid: str) -> None:
    """Shared validation helper for every config: raises ValueError naming field, value and what is valid."""
    if not ok:
        raise ValueError(f"invalid {owner}.{field}={value!r}: expected {valid}")


def require_defaults(config: Any, fields: Sequence[str], owner: str, unread: str, defaults: Any = None) -> None:
    """Refuses values that nothing would read: each of `fields` must keep its value in `defaults`
    (the class defaults unless given); `unread` says when they are unread, e.g. "unless method='regrama'"."""
    defaults = type(config)() if defaults is None else defaults
    changed = [name for name in fields if getattr(config, name) != getattr(defaults, name)]
    if changed:
        given = ", ".join(f"{owner}.{name}={getattr(config, name)!r}" for name in changed)
        expected = ", ".join(repr(getattr(defaults, name)) for name in changed)
        raise ValueError(f"invalid {given}: expected the default{'s' if len(changed) > 1 else ''} {expected} {unread}")


# Metadata key of a config field added after runs were first written (`added_field`).
ADDED_SINCE = "added_since"


def added_field(since: str, **field_kwargs: Any) -> Any:
    """A dataclass field added to a config after runs were written: an older run's config.json
    without it reads back with its default (every other field must be present). `since` is the
    date it came, for the reader."""
    return dataclasses.field(metadata={ADDED_SINCE: since}, **field_kwargs)


def rebuild_nested_configs(config: Any) -> None:
    """In a frozen config's __post_init__: fields declared as dataclasses (plasticity, churn,
    least, horizon, ...) that were read back from config.json as dicts become those dataclasses
    again (the config is frozen, hence object.__setattr__)."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value, kind = getattr(config, field.name), hints.get(field.name)
        if isinstance(value, dict) and dataclasses.is_dataclass(kind):
            object.__setattr__(config, field.name, kind(**value))
