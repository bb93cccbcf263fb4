"""Adapter from Brax environments (`brax/ant`, `brax/inverted_pendulum`, ...) to `Env`.

`backend` picks brax's physics pipeline; the default "spring" was the fastest on CPU (see
docs/envs.md); "generalized" is brax's own default and the most accurate.
"""

from __future__ import annotations

from typing import Any

from jaxrl_suite.envs.physics_env import PhysicsEnv

FAMILY = "brax"
BACKENDS = ("generalized", "positional", "spring", "mjx")
DEFAULT_BACKEND = "spring"
MAX_EPISODE_STEPS = 1000


def env_names() -> list[str]:
    from brax import envs

    return sorted(envs._envs)  # brax has no public listing of its registry


def make_adapter(name: str, backend: str = DEFAULT_BACKEND, **env_kwargs: Any) -> PhysicsEnv:
    """`backend` is one of BACKENDS; `env_kwargs` go to brax's env constructor."""
    from brax import envs

    if backend not in BACKENDS:
        raise ValueError(f"brax backend must be one of {BACKENDS}, got {backend!r}")
    backend_env = envs.get_environment(name, backend=backend, **env_kwargs)
    return PhysicsEnv(f"{FAMILY}/{name}", backend_env, backend_env.action_size, MAX_EPISODE_STEPS)
