"""Hyperparameter grids as few compiled programs: one per distinct shape, vmapped over the rest.

Settings that differ only in traced float fields (learning rate, gamma, ...) and their seeds run
as ONE vmapped program; each distinct value of a shape field (num_envs, epochs, ...) compiles once.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import itertools
import json
import pathlib
import re
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl_suite import algorithms
from jaxrl_suite.runner import RunConfig, read_metrics, train
from jaxrl_suite.runner.chunks import init_one_by_one
from jaxrl_suite.runner.metrics_log import METRICS_FILE
from jaxrl_suite.runner.run_dir import CONFIG_FILE, write_config


@struct.dataclass
class MemberState:
    """One vmapped member of a sweep program: its traced hyperparameters and its TrainState."""

    hyperparameters: dict[str, jax.Array]
    inner: Any


class TracedHyperparameterLearner:
    """Wraps a learner so that some float config fields come from the state (vmapped) instead
    of the config; everything else is the base learner's."""

    def __init__(self, base_learner: Any, traced_fields: Sequence[str]):
        self.base = base_learner
        self.config = base_learner.config
        self.traced_fields = tuple(traced_fields)
        self.env_steps_per_update = base_learner.env_steps_per_update

    def _learner_for(self, hyperparameters: dict[str, jax.Array]) -> Any:
        learner = copy.copy(self.base)
        learner.config = dataclasses.replace(self.base.config, **hyperparameters)
        return learner

    def init_members(self, hyperparameters: dict[str, jax.Array], keys: jax.Array) -> MemberState:
        """hyperparameters: {field: [M]}, keys: [M, 2] -> stacked MemberState, members initialised
        one after another (runner.chunks.init_one_by_one)."""

        def one(member):
            values, key = member
            return MemberState(values, self._learner_for(values).init(key))

        return init_one_by_one(one, (hyperparameters, keys))

    def init(self, key: jax.Array) -> MemberState:
        values = {name: jnp.asarray(getattr(self.config, name), jnp.float32) for name in self.traced_fields}
        return MemberState(values, self.base.init(key))

    def update(self, state: MemberState) -> tuple[MemberState, dict[str, jax.Array]]:
        inner, metrics = self._learner_for(state.hyperparameters).update(state.inner)
        return MemberState(state.hyperparameters, inner), metrics

    def evaluate(self, state: MemberState, key: jax.Array) -> dict[str, jax.Array]:
        return self._learner_for(state.hyperparameters).evaluate(state.inner, key)


def parse_grid(entries: Sequence[str], config: Any) -> dict[str, list[Any]]:
    """["num_envs=8,64", "learning_rate=1e-3,3e-4"] -> {field: [typed values]}; clear errors.
    Tuple fields take JSON lists, whose commas do not split values: "hidden_sizes=[64,64],[256,256]"."""
    fields = {f.name: f for f in dataclasses.fields(config)}
    grid: dict[str, list[Any]] = {}
    for entry in entries:
        name, separator, values = entry.partition("=")
        name = name.strip().replace("-", "_")
        if not separator or not values:
            raise ValueError(f"grid entry {entry!r} must look like FIELD=V1,V2,...")
        if name not in fields:
            raise ValueError(f"grid field {name!r} is not a field of {type(config).__name__}; valid: "
                             f"{', '.join(sorted(fields))}")
        kind = type(getattr(config, name))
        try:
            grid[name] = [parse_field_value(raw.strip(), kind) for raw in re.split(r",(?![^\[]*\])", values)]
        except ValueError as error:
            raise ValueError(f"grid field {name}: cannot read {values!r} as {kind.__name__} ({error})") from None
    return grid


def parse_field_value(raw: str, kind: type) -> Any:
    """A command-line string as a value of a config field of type `kind`: true/false for bools,
    int/float/str as such, JSON otherwise; ValueError when it cannot be read."""
    if kind is bool:
        if raw.lower() not in ("true", "false"):
            raise ValueError("expected true or false")
        return raw.lower() == "true"
    if kind in (int, float, str):
        return kind(raw)
    value = json.loads(raw)
    return tuple(value) if kind is tuple and isinstance(value, list) else value


@dataclasses.dataclass(frozen=True)
class Program:
    """One compiled program of a sweep: shared shape fields, the settings vmapped inside it."""

    static_values: dict[str, Any]
    settings: list[dict[str, Any]]

    @property
    def name(self) -> str:
        return "program-" + ("-".join(f"{k}{v}" for k, v in self.static_values.items()) or "all")


def plan(grid: dict[str, list[Any]], traced_fields: Sequence[str]) -> list[Program]:
    """Cartesian product of the grid, grouped by the values of non-traced fields."""
    names = list(grid)
    static_names = [n for n in names if n not in traced_fields]
    programs: dict[tuple, Program] = {}
    for values in itertools.product(*(grid[n] for n in names)):
        setting = dict(zip(names, values, strict=True))
        key = tuple(setting[n] for n in static_names)
        if key not in programs:
            programs[key] = Program({n: setting[n] for n in static_names}, [])
        programs[key].settings.append(setting)
    return list(programs.values())


def setting_name(setting: dict[str, Any]) -> str:
    return "-".join(f"{k}={v}" for k, v in setting.items()) or "base"


def run_sweep(algo: str, env_id: str, base_config: Any, grid: dict[str, list[Any]], run: RunConfig,
              out_dir: str | pathlib.Path, *, overwrite: bool = False) -> list[dict[str, Any]]:
    """Trains every (setting, seed) of the grid; writes DIR/<program>/ (the compiled run, with
    checkpoints) and DIR/<setting>/ (config.json + that setting's metrics) and DIR/summary.md."""
    algorithm = algorithms.get_algorithm(algo)
    traced = [n for n in grid if n in algorithm.traced_fields]
    programs = plan(grid, traced)
    for program in programs:  # every setting is validated before anything compiles
        for setting in program.settings:
            config = dataclasses.replace(base_config, **setting)
            if hasattr(config, "total_steps"):
                config = dataclasses.replace(config, total_steps=run.total_steps)
            config.validate()
    out_dir = pathlib.Path(out_dir)
    rows = []
    for program in programs:
        config = dataclasses.replace(base_config, **program.static_values)
        if hasattr(config, "total_steps"):
            config = dataclasses.replace(config, total_steps=run.total_steps)
        learner = TracedHyperparameterLearner(algorithms.make_learner(algo, config, env_id), traced)
        seeds = [run.seed + i for i in range(run.num_seeds)] * len(program.settings)
        hyperparameters = {
            name: jnp.asarray(np.repeat([s[name] for s in program.settings], run.num_seeds), jnp.float32)
            for name in traced
        }
        program_run = dataclasses.replace(run, num_seeds=len(seeds))
        result = train(learner, program_run, out_dir / program.name, algo=algo, env_id=env_id,
                       overwrite=overwrite, member_seeds=seeds,
                       init_members=functools.partial(learner.init_members, hyperparameters))
        for index, setting in enumerate(program.settings):
            members = slice(index * run.num_seeds, (index + 1) * run.num_seeds)
            setting_config = dataclasses.replace(config, **setting)
            rows.append(_write_setting(out_dir, setting, members, result.run_dir, algo, env_id, run,
                                       setting_config, overwrite))
    _write_summary(out_dir, rows)
    return rows


def _write_setting(out_dir, setting, members, program_dir, algo, env_id, run, config, overwrite):
    """A per-setting directory: its config and metrics.jsonl with only its members' returns."""
    setting_dir = out_dir / setting_name(setting)
    if setting_dir.exists() and not overwrite and (setting_dir / CONFIG_FILE).exists():
        raise FileExistsError(f"{setting_dir} exists; pass --overwrite to replace it")
    setting_dir.mkdir(parents=True, exist_ok=True)
    write_config(setting_dir, algo, env_id, run, config)
    records = []
    for record in read_metrics(program_dir):
        sliced = {k: v for k, v in record.items() if not k.endswith("_per_seed")}
        for key, values in record.items():
            if key.endswith("_per_seed"):
                mine = values[members]
                sliced[key] = mine
                finite = [v for v in mine if v is not None]
                sliced[key[: -len("_per_seed")]] = float(np.mean(finite)) if finite else None
        records.append(sliced)
    (setting_dir / METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in records))
    last = records[-1]
    return {"setting": setting, "dir": setting_dir.name, "episode_return": last.get("episode_return"),
            "episode_return_per_seed": last.get("episode_return_per_seed"),
            "eval_return": last.get("eval_return"), "sps": last.get("sps")}


def _write_summary(out_dir: pathlib.Path, rows: list[dict[str, Any]]) -> None:
    names = list(rows[0]["setting"]) if rows else []
    lines = ["| " + " | ".join(names + ["final episode_return (mean)", "min..max over seeds", "eval_return"]) + " |",
             "|" + "---|" * (len(names) + 3)]
    for row in rows:
        seeds = [v for v in (row["episode_return_per_seed"] or []) if v is not None]
        spread = f"{min(seeds):.1f}..{max(seeds):.1f}" if seeds else "n/a"
        cells = [str(row["setting"][n]) for n in names] + [_fmt(row["episode_return"]), spread, _fmt(row["eval_return"])]
        lines.append("| " + " | ".join(cells) + " |")
    (out_dir / "summary.md").write_text("\n".join(lines) + "\n")
    (out_dir / "summary.json").write_text(json.dumps(rows, indent=2) + "\n")
    print("\n".join(lines))


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.1f}"
