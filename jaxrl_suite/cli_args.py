"""Flat command-line flags for a learner config plus RunConfig (`--num-envs`, `--total-steps`, ...).

Builds one tyro dataclass from both, keeping each field's docstring as its help text.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
import typing
from typing import Annotated, Any

import tyro

from jaxrl_suite.runner import RunConfig

# Flags of `jaxrl train` that belong to neither config.
COMMAND_FIELDS: tuple[tuple[str, type, Any, str], ...] = (
    ("env", str, "gymnax/CartPole-v1", "Environment id, e.g. gymnax/CartPole-v1, dmc/CartpoleBalance, brax/ant."),
    ("out", str, "", "Run directory (default runs/ALGO-ENV-sSEED)."),
    ("overwrite", bool, False, "Replace an existing run directory."),
    ("resume", str, "", "Continue the run in this directory from its last checkpoint."),
    ("devices", int, 1, "Shard the env batch over this many devices (1: no mesh)."),
)


def field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings (a string right after `name: type = default`) of a dataclass."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, following in zip(body, body[1:], strict=False):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
                    and isinstance(following.value.value, str)):
                docs[node.target.id] = " ".join(following.value.value.split())
    return docs


def _flag(field_type: Any, default: Any, help_text: str) -> tuple[Any, dataclasses.Field]:
    return Annotated[field_type, tyro.conf.arg(help=help_text)], dataclasses.field(default=default)


def parse_train_flags(argv: list[str], config: Any, run: RunConfig, env: str, prog: str) -> dict[str, Any]:
    """Parses `argv` into {"command": {...}, "run": RunConfig, "config": learner config}.

    Learner fields that RunConfig also has (total_steps) are set from the run's value.
    """
    config_class = type(config)
    run_names = {f.name for f in dataclasses.fields(RunConfig)}
    command_names = {name for name, *_ in COMMAND_FIELDS}
    fields: list[tuple[str, Any, dataclasses.Field]] = []
    for name, field_type, default, help_text in COMMAND_FIELDS:
        fields.append((name, *_flag(field_type, env if name == "env" else default, help_text)))
    for source, owner, skip in ((run, RunConfig, command_names), (config, config_class, run_names | command_names)):
        docs, hints = field_docs(owner), typing.get_type_hints(owner)
        for field in dataclasses.fields(owner):
            if field.name not in skip:
                fields.append((field.name, *_flag(hints[field.name], getattr(source, field.name),
                                                   docs.get(field.name, ""))))
    args_class = dataclasses.make_dataclass("TrainFlags", fields, frozen=True)
    parsed = tyro.cli(args_class, args=argv, prog=prog)
    values = {field.name: getattr(parsed, field.name) for field in dataclasses.fields(parsed)}
    new_run = RunConfig(**{name: values[name] for name in run_names})
    config_values = {f.name: values[f.name] for f in dataclasses.fields(config_class) if f.name in values}
    for shared in run_names & {f.name for f in dataclasses.fields(config_class)}:
        config_values[shared] = getattr(new_run, shared)
    return {
        "command": {name: values[name] for name in command_names},
        "run": new_run,
        "config": dataclasses.replace(config, **config_values),
    }
