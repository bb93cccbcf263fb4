"""Name -> algorithm table used by the CLI, sweeps and resume: config class, defaults, learner factory,
and a run directory's config.json read back as configs (`read_stored_run`).

Imports are lazy so `jaxrl --help` and `jaxrl envs` stay fast.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import pathlib
from collections.abc import Callable
from typing import Any


@dataclasses.dataclass(frozen=True)
class Algorithm:
    """Where an algorithm lives: `module` must define `config_class`, `default_config(env_id)`
    and `make_learner(config, env, mesh=None)` under the names given here."""

    module: str
    config_class: str
    default_config: str
    make_learner: str
    traced_fields: tuple[str, ...] = ()
    """Float config fields the learner only uses inside traced arithmetic: a sweep may vmap over
    them in one compiled program (see jaxrl_suite.runner.sweep)."""

    def load(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self.module), getattr(self, attribute))


ALGORITHMS: dict[str, Algorithm] = {
    "ppo": Algorithm(
        "jaxrl_suite.agents.ppo", "PPOConfig", "default_config", "make_ppo",
        traced_fields=("learning_rate", "gamma", "gae_lambda", "clip_eps", "entropy_coef", "value_coef",
                       "reward_scale"),
    ),
    "sac": Algorithm("jaxrl_suite.agents.sac", "SACConfig", "default_config", "make_sac"),
    "td3": Algorithm("jaxrl_suite.agents.td3", "TD3Config", "default_config", "make_td3"),
    "dqn": Algorithm("jaxrl_suite.agents.dqn", "DQNConfig", "default_config", "make_dqn"),
}


def get_algorithm(name: str) -> Algorithm:
    if name not in ALGORITHMS:
        close = difflib.get_close_matches(name, ALGORITHMS, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown algorithm {name!r}; valid: {', '.join(sorted(ALGORITHMS))}.{hint}")
    return ALGORITHMS[name]


def default_config(name: str, env_id: str) -> Any:
    return get_algorithm(name).load("default_config")(env_id)


def config_from_dict(name: str, values: dict[str, Any]) -> Any:
    """Rebuilds a frozen config from config.json's "learner" object: every field present and of
    its type (lists back to tuples), else ValueError naming it (runner.config_file)."""
    from jaxrl_suite.runner.config_file import dataclass_from_json

    return dataclass_from_json(get_algorithm(name).load("config_class"), values, "learner")


@dataclasses.dataclass(frozen=True)
class StoredRun:
    """What a run directory's config.json defines: algorithm, env id, RunConfig, learner config."""

    algo: str
    env: str
    run: Any
    learner: Any


def read_stored_run(run_dir: str | pathlib.Path) -> StoredRun:
    """config.json of `run_dir` checked field by field and validated (what `--resume` and `jaxrl
    eval` start from); ValueError / RunDirectoryError in one line otherwise."""
    from jaxrl_suite.runner import RunConfig, read_config
    from jaxrl_suite.runner.config_file import check_run_file, dataclass_from_json

    payload = check_run_file(read_config(run_dir), ALGORITHMS)
    run = dataclass_from_json(RunConfig, payload["run"], "run")
    learner = config_from_dict(payload["algo"], payload["learner"])
    for config in (run, learner):
        try:
            config.validate()
        except ValueError as error:  # "invalid run.num_seeds=0: ..." -> "invalid config.json run.num_seeds=0: ..."
            raise ValueError(str(error).replace("invalid ", "invalid config.json ", 1)) from None
    return StoredRun(payload["algo"], payload["env"], run, learner)


def make_learner(name: str, config: Any, env_id: str, mesh: Any = None) -> Any:
    """Validates `config`, makes the environment and returns the algorithm's Learner."""
    from jaxrl_suite.envs import make

    validate: Callable[[], Any] | None = getattr(config, "validate", None)
    if validate is not None:
        validate()
    return get_algorithm(name).load("make_learner")(config, make(env_id), mesh=mesh)
