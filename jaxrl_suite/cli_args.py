"""Flat command-line flags for a learner config plus RunConfig (`--num-envs`, `--total-steps`, ...).

Builds one tyro dataclass from both, keeping each field's docstring as its help text; refuses
flags that nothing would read and, with `--resume`, flags that contradict the stored run.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import pathlib
import re
import textwrap
import typing
from collections.abc import Iterator
from typing import Annotated, Any

import tyro

from jaxrl_suite.runner import RunConfig
from jaxrl_suite.validation import require_defaults

# Flags of `jaxrl train` that belong to neither config.
COMMAND_FIELDS: tuple[tuple[str, type, Any, str], ...] = (
    ("env", str, "gymnax/CartPole-v1", "Environment id, e.g. gymnax/CartPole-v1, dmc/CartpoleBalance, brax/ant."),
    ("out", str, "", "Run directory (default runs/ALGO-ENV-sSEED)."),
    ("overwrite", bool, False, "Replace an existing run directory."),
    ("resume", str, "", "Continue the run in this directory from its newest intact checkpoint. Other flags must "
     "equal its config.json, except a larger --total-steps, which extends the run; learner fields keep their "
     "stored values (PPO's annealing horizon is not re-stretched, so with anneal_lr an extension is refused)."),
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


def flag_names(config_class: type, prefix: tuple[str, ...] = ()) -> dict[str, str]:
    """Dotted field path -> the flag that sets it: "learning_rate" -> "--learning-rate",
    "least.start_steps" -> "--least.start-steps", "plasticity.method" -> "--plasticity" (renamed)."""
    names: dict[str, str] = {}
    hints = typing.get_type_hints(config_class, include_extras=True)
    for field in dataclasses.fields(config_class):
        hint, path = hints[field.name], (*prefix, field.name)
        inner = typing.get_args(hint)[0] if typing.get_origin(hint) is Annotated else hint
        renamed = [m.name for m in getattr(hint, "__metadata__", ()) if getattr(m, "name", None)]
        if dataclasses.is_dataclass(inner):
            names.update(flag_names(inner, path))
        else:
            names[".".join(path)] = "--" + (renamed[0] if renamed else ".".join(p.replace("_", "-") for p in path))
    return names


# `ppo.plasticity.period=` in a config error: the owner (an algorithm or "run") and a dotted field path.
FIELD_IN_ERROR = re.compile(r"\b([a-z0-9]+)\.([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*)=")


def name_flags(message: str) -> str:
    """A config error with the flags of the fields it names: "invalid ppo.plasticity.period=10: expected
    ..." -> "invalid ppo.plasticity.period=10: expected ...; set by --reset-period", so that configs name
    their fields only and the flag names live in this module. Errors about config.json stay as they are
    (they name the file's fields, not flags)."""
    from jaxrl_suite import algorithms

    if "config.json" in message:
        return message

    flags: list[str] = []
    for owner, path in FIELD_IN_ERROR.findall(message):
        if owner == "run":
            names = flag_names(RunConfig)
        elif owner in algorithms.ALGORITHMS:
            names = flag_names(algorithms.get_algorithm(owner).load("config_class"))
        else:
            continue
        if path in names and names[path] not in flags:
            flags.append(names[path])
    if not flags:
        return message
    return f"{message}; set by {', '.join(flags)}"


def _leaves(config: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            yield from _leaves(value, f"{prefix}{field.name}.")
        else:
            yield f"{prefix}{field.name}", value


def changed_fields(config: Any, reference: Any) -> list[tuple[str, Any, Any]]:
    """(dotted path, value, reference value) of every leaf field where two configs differ."""
    old = dict(_leaves(reference))
    return [(path, value, old[path]) for path, value in _leaves(config) if value != old[path]]


def refuse_unread_flags(config: Any, defaults: Any) -> None:
    """Refuses flags the learner would not read, judged against the algorithm's defaults for the
    env: LEAST's fields without early_stop="least" (the config's own validate() refuses the rest)."""
    if hasattr(config, "least") and config.early_stop != "least":
        require_defaults(config.least, [f.name for f in dataclasses.fields(config.least)],
                         f"{getattr(config, 'owner', 'learner')}.least",
                         "unless early_stop='least' (LEAST's settings act only with LEAST)",
                         defaults=defaults.least)


def resume_run_config(argv: list[str], stored: Any, run_dir: str, prog: str) -> RunConfig:
    """The RunConfig to continue `stored` (algorithms.StoredRun) with under `argv`. Flags equal to
    config.json are accepted; a larger --total-steps extends the run (learner fields such as PPO's
    annealing horizon keep their stored values); any other flag is refused, each one named."""
    flags = parse_train_flags(argv, stored.learner, stored.run, stored.env, prog)
    command, run = flags["command"], flags["run"]
    names = flag_names(RunConfig) | flag_names(type(stored.learner))
    shared = {f.name for f in dataclasses.fields(RunConfig)}
    conflicts = []
    if command["overwrite"]:
        conflicts.append("--overwrite (it would delete the run being resumed)")
    if command["devices"] != 1:
        conflicts.append(f"--devices {command['devices']} (a resumed run restores onto one device)")
    if command["out"] and pathlib.Path(command["out"]).resolve() != pathlib.Path(run_dir).resolve():
        conflicts.append(f"--out {command['out']} (the run stays in {run_dir})")
    if command["env"] != stored.env:
        conflicts.append(f"--env {command['env']} (stored {stored.env})")
    if run.total_steps < stored.run.total_steps:
        conflicts.append(f"--total-steps {run.total_steps} (smaller than the stored {stored.run.total_steps}: "
                         "a run cannot be shortened)")
    changes = changed_fields(dataclasses.replace(run, total_steps=stored.run.total_steps), stored.run)
    changes += [change for change in changed_fields(flags["config"], stored.learner) if change[0] not in shared]
    conflicts += [f"{names[path]} {value!r} (stored {old!r})" for path, value, old in changes]
    if conflicts:
        raise ValueError(f"cannot resume {run_dir} with {'; '.join(conflicts)}: a resumed run keeps the "
                         "settings in its config.json (valid: flags equal to them, or a larger --total-steps)")
    if run.total_steps > stored.run.total_steps and getattr(stored.learner, "anneal_lr", False):
        raise ValueError(
            f"cannot extend {run_dir} to --total-steps {run.total_steps}: its learning rate anneals to 0 at the "
            f"stored learner.total_steps={stored.learner.total_steps} (anneal_lr=True), so the extra steps "
            "would not learn; valid: extending a run trained with --no-anneal-lr, or a new run (--out)"
        )
    return run
