"""The two checks every config's validate() is built from: `require` (a field's value is valid)
and `require_defaults` (a field nothing would read keeps its default); each error is one line.
"""

from __future__ import annotations

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
