"""Adapter from MuJoCo Playground's DeepMind Control suite (`dmc/CartpoleBalance`, ...) to
`Env`, on MJX: impl "jax" on CPU (Playground's default "warp" needs a GPU).
"""

from __future__ import annotations

import importlib.util
from typing import Any

import jax

from jaxrl_suite.envs.physics_env import PhysicsEnv

FAMILY = "dmc"
IMPLS = ("jax", "warp")


def env_names() -> list[str]:
    from mujoco_playground import dm_control_suite

    return sorted(dm_control_suite.ALL_ENVS)


def default_impl() -> str:
    """MJX implementation: "warp" on a GPU with the warp-lang package installed, else "jax"."""
    has_warp = importlib.util.find_spec("warp") is not None
    return "warp" if jax.default_backend() == "gpu" and has_warp else "jax"


def make_adapter(name: str, impl: str | None = None, **config_overrides: Any) -> PhysicsEnv:
    """`impl` None picks by `jax.default_backend()`; `config_overrides` go to Playground's
    task config (e.g. action_repeat=2)."""
    from mujoco_playground import registry

    impl = default_impl() if impl is None else impl
    if impl not in IMPLS:
        raise ValueError(f"dmc impl must be one of {IMPLS}, got {impl!r}")
    backend_env = registry.load(name, config_overrides={**config_overrides, "impl": impl})
    episode_length = int(backend_env._config.episode_length)  # Playground keeps it private
    return PhysicsEnv(f"{FAMILY}/{name}", backend_env, backend_env.action_size, episode_length)
