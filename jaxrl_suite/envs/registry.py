"""Env ids of the form "family/name" mapped to adapters: `make` (fully wrapped), `make_raw`,
`list_env_ids` and `env_spec`. Backends are imported only when their family is used.
"""

from __future__ import annotations

import difflib
import functools
import importlib
from typing import Any

from jaxrl_suite.envs.core import Env, observation_spec
from jaxrl_suite.envs.spaces import Box, Discrete
from jaxrl_suite.envs.wrappers import ResetMode, ResetStrategy, wrap

# family -> module exposing `env_names() -> list[str]` and `make_adapter(name, **options)`.
FAMILY_MODULES = {
    "gymnax": "jaxrl_suite.envs.gymnax_env",
    "brax": "jaxrl_suite.envs.brax_env",
    "dmc": "jaxrl_suite.envs.playground_env",
}


def _family_module(family: str):
    if family not in FAMILY_MODULES:
        raise ValueError(f"unknown env family {family!r}; valid families: {sorted(FAMILY_MODULES)}")
    return importlib.import_module(FAMILY_MODULES[family])


@functools.cache
def _family_ids(family: str) -> tuple[str, ...]:
    return tuple(f"{family}/{name}" for name in _family_module(family).env_names())


def list_env_ids(family: str | None = None) -> list[str]:
    """All env ids, or those of one family ("gymnax", "brax" or "dmc")."""
    families = sorted(FAMILY_MODULES) if family is None else [family]
    return [env_id for name in families for env_id in _family_ids(name)]


def _unknown_id_error(env_id: str, candidates: list[str]) -> ValueError:
    by_lower = {candidate.lower(): candidate for candidate in candidates}
    close = difflib.get_close_matches(env_id.lower(), list(by_lower), n=5, cutoff=0.5)
    if not close:  # the name alone may match a different family's id
        names = {candidate.split("/", 1)[1].lower(): candidate for candidate in candidates}
        close_names = difflib.get_close_matches(env_id.split("/")[-1].lower(), list(names), n=5, cutoff=0.5)
        close = [names[name].lower() for name in close_names]
    hint = ", ".join(by_lower[name] for name in close) if close else "none close"
    return ValueError(
        f"unknown env id {env_id!r}; closest valid ids: {hint}. "
        f"Ids are 'family/name' with family in {sorted(FAMILY_MODULES)}; see list_env_ids()."
    )


def _split_env_id(env_id: str) -> tuple[str, str]:
    if not isinstance(env_id, str):
        raise ValueError(f"env id must be a string like 'gymnax/CartPole-v1', got {env_id!r}")
    family, _, name = env_id.partition("/")
    if family in FAMILY_MODULES and name:
        ids = _family_ids(family)
        if env_id in ids:
            return family, name
        raise _unknown_id_error(env_id, list(ids))
    raise _unknown_id_error(env_id, list_env_ids())


def make_raw(env_id: str, **options: Any) -> Env:
    """The adapter alone: no time limit, auto-reset, action rescaling or statistics.
    `options` go to the family's adapter (e.g. backend="generalized" for brax)."""
    family, name = _split_env_id(env_id)
    return _family_module(family).make_adapter(name, **options)


def make(
    env_id: str,
    *,
    max_episode_steps: int | None = None,
    reset_mode: ResetMode = "fresh",
    rescale_actions: bool = True,
    reset_strategy: ResetStrategy = "auto",
    **options: Any,
) -> Env:
    """A ready-to-train single env: EpisodeStats(AutoReset(TimeLimit(ActionRescale(adapter)))).

    max_episode_steps: time limit; None uses the family default (gymnax: the env's own,
                       brax and dmc: 1000).
    reset_mode:        "fresh" (new random start every episode) or "cached" (restart from
                       the first state; cheaper for physics backends).
    rescale_actions:   act in [-1, 1] on Box action spaces.
    reset_strategy:    how "fresh" resets are computed (same results): "branch" resets only
                       done envs, "select" resets all and keeps the done ones, "auto" picks
                       "select" for cheap resets (gymnax) on GPU/TPU, else "branch".
    options:           adapter options, e.g. backend= for brax, impl= for dmc.
    """
    return wrap(make_raw(env_id, **options), max_episode_steps, reset_mode, rescale_actions, reset_strategy)


def _describe_space(space: Discrete | Box) -> dict[str, Any]:
    if isinstance(space, Discrete):
        return {"type": "Discrete", "n": space.n, "shape": (), "dtype": space.dtype}
    return {
        "type": "Box",
        "shape": space.shape,
        "dtype": space.dtype,
        "low": space.low,
        "high": space.high,
        "description": space.describe(),
    }


def env_spec(env_id: str, **options: Any) -> dict[str, Any]:
    """Shapes and limits of `make(env_id, **options)` without running the env:
    {"env_id", "obs_shape", "obs_dtype", "action_space": {...}, "max_episode_steps",
    "observation" and "action" (one-line descriptions such as "Box(4,)" and "Discrete(2)")}."""
    env = make(env_id, **options)
    obs = observation_spec(env)
    return {
        "env_id": env.env_id,
        "obs_shape": tuple(obs.shape),
        "obs_dtype": str(obs.dtype),
        "action_space": _describe_space(env.action_space),
        "max_episode_steps": env.max_episode_steps,
        "observation": f"Box{tuple(obs.shape)} {obs.dtype}",
        "action": env.action_space.describe(),
    }
