"""Adapter from Brax environments (`brax/ant`, `brax/inverted_pendulum`, ...) to `Env`.

`backend` picks brax's physics pipeline; by default "spring", the fastest on CPU (see
docs/envs.md), or "generalized" (brax's own default) for envs that support only that.
"""

from __future__ import annotations

from typing import Any

from jaxrl_suite.envs.physics_env import PhysicsEnv

FAMILY = "brax"
BACKENDS = ("generalized", "positional", "spring", "mjx")
FASTEST_CPU_BACKEND = "spring"
GENERALIZED_ONLY = ("swimmer",)  # brax raises "Unsupported backend" for anything else
MAX_EPISODE_STEPS = 1000
TEST_STUBS = ("fast",)


def env_names() -> list[str]:
    from brax import envs

    # brax has no public listing of its registry; "fast" is its test stub, not a task
    return sorted(name for name in envs._envs if name not in TEST_STUBS)


def default_backend(name: str) -> str:
    return "generalized" if name in GENERALIZED_ONLY else FASTEST_CPU_BACKEND


def make_adapter(name: str, backend: str | None = None, **env_kwargs: Any) -> PhysicsEnv:
    """`backend` is one of BACKENDS (None: `default_backend(name)`); `env_kwargs` go to
    brax's env constructor. Brax retunes time step and gears per backend, so returns are
    comparable only within one backend."""
    from brax import envs

    backend = default_backend(name) if backend is None else backend
    if backend not in BACKENDS:
        raise ValueError(f"brax backend must be one of {BACKENDS}, got {backend!r}")
    if name in GENERALIZED_ONLY and backend != "generalized":
        raise ValueError(f"brax/{name} supports only backend='generalized', got {backend!r}")
    backend_env = envs.get_environment(name, backend=backend, **env_kwargs)
    return PhysicsEnv(f"{FAMILY}/{name}", backend_env, backend_env.action_size, MAX_EPISODE_STEPS)
