"""config.json of a run directory read back strictly: every field present and of its declared
type, so a hand-edited file gets one line naming the field, the value and what is valid.

`dataclass_from_json` rebuilds any frozen config (nested ones too); `check_run_file` checks the
top level (algo, env, run, learner, and the recorded "machine", which is accepted and ignored).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from typing import Any

from jaxrl_suite.validation import ADDED_SINCE

RUN_FILE_KEYS = ("algo", "env", "run", "learner")
IGNORED_KEYS = ("machine",)  # what ran it (jaxrl_suite.machine); no part of the run's definition


def _invalid(path: str, value: Any, valid: str) -> ValueError:
    return ValueError(f"invalid config.json {path}={value!r}: expected {valid}")


def _expected(hint: Any) -> str:
    """What a value of type `hint` looks like in JSON, for error messages."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if arg is type(None) else _expected(arg) for arg in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(arg) for arg in args)
    if origin is tuple:
        return f"a list of {_expected(args[0]).removeprefix('an ').removeprefix('a ')}s"
    if dataclasses.is_dataclass(hint):
        return f"an object with the fields of {hint.__name__}"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(hint, str(hint))


def _convert(value: Any, hint: Any, path: str) -> Any:
    """`value` as a value of type `hint` (lists -> tuples, ints -> floats, dicts -> dataclasses);
    ValueError naming `path` when it is not one."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(value, arg, path)
            except ValueError:
                continue
        raise _invalid(path, value, _expected(hint))
    if origin is typing.Literal:
        if value not in args:
            raise _invalid(path, value, _expected(hint))
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _invalid(path, value, _expected(hint))
        item_hints = [args[0]] * len(value) if len(args) == 2 and args[1] is Ellipsis else list(args)
        if len(item_hints) != len(value):
            raise _invalid(path, value, f"a list of {len(item_hints)} values")
        return tuple(_convert(item, item_hint, path) for item, item_hint in zip(value, item_hints, strict=True))
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise _invalid(path, value, _expected(hint))
        return dataclass_from_json(hint, value, path)
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif hint is str:
        ok = isinstance(value, str)
    else:  # Any and other annotations: taken as they are
        ok = True
    if not ok:
        raise _invalid(path, value, _expected(hint))
    return value


def dataclass_from_json(cls: type, values: dict[str, Any], path: str) -> Any:
    """An instance of the dataclass `cls` from its JSON object `values` (at `path` in config.json):
    every field must be present with a value of its declared type, and no other key; only a field
    added after runs were written (`validation.added_field`) may be missing, and takes its default."""
    fields = {field.name: field for field in dataclasses.fields(cls)}
    for key in values:
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f"did you mean {close[0]}?" if close else f"remove it; {cls.__name__} has no such field"
            raise ValueError(f"invalid config.json {path}.{key}={values[key]!r}: not a field of {cls.__name__} ({hint})")
    hints = typing.get_type_hints(cls)
    converted = {}
    for name in fields:
        if name not in values:
            if ADDED_SINCE in fields[name].metadata:
                continue
            raise ValueError(f"invalid config.json {path}.{name}: missing; expected {_expected(hints[name])}")
        converted[name] = _convert(values[name], hints[name], f"{path}.{name}")
    return cls(**converted)


def with_added_defaults(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """The JSON object `values` of the dataclass `cls` with each missing field that was added after
    runs were written (`validation.added_field`; nested configs too) set to its default, as JSON,
    so an older run's config.json compares equal to the same run's today."""
    hints = typing.get_type_hints(cls)
    completed = dict(values)
    for field in dataclasses.fields(cls):
        if field.name not in completed:
            if ADDED_SINCE in field.metadata:
                default = field.default_factory() if field.default is dataclasses.MISSING else field.default
                as_json = dataclasses.asdict(default) if dataclasses.is_dataclass(default) else default
                completed[field.name] = json.loads(json.dumps(as_json, default=str))
        elif dataclasses.is_dataclass(hints[field.name]) and isinstance(completed[field.name], dict):
            completed[field.name] = with_added_defaults(hints[field.name], completed[field.name])
    return completed


def check_run_file(payload: Any, algorithms: typing.Collection[str]) -> dict[str, Any]:
    """The top level of an RL run's config.json: exactly RUN_FILE_KEYS (plus IGNORED_KEYS), algo one
    of `algorithms`, env a string, run and learner objects. Returns it without IGNORED_KEYS."""
    if not isinstance(payload, dict):
        raise ValueError(f"invalid config.json: expected an object with keys {', '.join(RUN_FILE_KEYS)}")
    for key in payload:
        if key not in RUN_FILE_KEYS + IGNORED_KEYS:
            raise ValueError(f"invalid config.json key {key!r}: expected only {', '.join(RUN_FILE_KEYS + IGNORED_KEYS)}")
    for key in RUN_FILE_KEYS:
        if key not in payload:
            raise ValueError(f"invalid config.json {key}: missing; expected "
                             + ("one of " + ", ".join(sorted(algorithms)) if key == "algo" else
                                "a string" if key == "env" else "an object"))
    if not isinstance(payload["algo"], str) or payload["algo"] not in algorithms:
        raise _invalid("algo", payload["algo"], "one of " + ", ".join(sorted(algorithms)))
    if not isinstance(payload["env"], str):
        raise _invalid("env", payload["env"], "an environment id string")
    for key in ("run", "learner"):
        if not isinstance(payload[key], dict):
            raise _invalid(key, payload[key], "an object")
    return {key: payload[key] for key in RUN_FILE_KEYS}
