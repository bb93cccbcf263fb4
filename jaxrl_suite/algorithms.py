"""Name -> algorithm table used by the CLI, sweeps and resume: config class, defaults, learner factory.

Imports are lazy so `jaxrl --help` and `jaxrl envs` stay fast.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import types
import typing
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
    them in one compiled program (see jaxrl_suite.sweep)."""

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
    """Rebuilds a frozen config from config.json (lists back to tuples where the field is a tuple)."""
    config_class = get_algorithm(name).load("config_class")
    hints = typing.get_type_hints(config_class)
    known = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"config.json has fields {unknown} that {config_class.__name__} does not know")
    converted = {}
    for key, value in values.items():
        origin = typing.get_origin(hints[key])
        is_tuple = origin is tuple or (
            origin in (typing.Union, types.UnionType) and any(typing.get_origin(a) is tuple for a in typing.get_args(hints[key]))
        )
        converted[key] = tuple(value) if is_tuple and isinstance(value, list) else value
    return config_class(**converted)


def make_learner(name: str, config: Any, env_id: str, mesh: Any = None) -> Any:
    """Validates `config`, makes the environment and returns the algorithm's Learner."""
    from jaxrl_suite.envs import make

    validate: Callable[[], Any] | None = getattr(config, "validate", None)
    if validate is not None:
        validate()
    return get_algorithm(name).load("make_learner")(config, make(env_id), mesh=mesh)
