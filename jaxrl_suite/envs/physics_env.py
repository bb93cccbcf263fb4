"""Shared adapter for Brax-style physics environments (brax and MuJoCo Playground), whose
`reset(rng)`/`step(state, action)` return a state carrying obs, reward and done.

Their `done` is the task's own termination (time limits live in wrappers on their side and
in our TimeLimit here), so it maps to `terminated`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import chex
import jax
import jax.numpy as jnp

from jaxrl_suite.envs.core import Env, State, strong_types
from jaxrl_suite.envs.spaces import Box


class PhysicsEnv(Env):
    """Adapts one Brax-style env: float32 [obs_dim] observations, float32 [action_size]
    actions in [-1, 1], the backend's whole state kept as `State.backend`."""

    def __init__(self, env_id: str, backend_env: Any, action_size: int, max_episode_steps: int):
        self.env_id = env_id
        self.backend_env = backend_env
        self.max_episode_steps = max_episode_steps
        self.action_space = Box((int(action_size),), -1.0, 1.0)
        abstract_obs = jax.eval_shape(backend_env.reset, jax.random.PRNGKey(0)).obs
        if isinstance(abstract_obs, Mapping):
            raise ValueError(
                f"{env_id} returns dict observations with keys {sorted(abstract_obs)}; only flat "
                "array observations are supported (use a state-based config, e.g. vision=False)"
            )
        if len(abstract_obs.shape) != 1:
            raise ValueError(f"{env_id} observations have shape {abstract_obs.shape}; expected [obs_dim]")
        self.observation_space = Box(tuple(abstract_obs.shape))

    def _state(self, backend_state: Any) -> State:
        backend_state = strong_types(backend_state)
        return State(
            obs=jnp.asarray(backend_state.obs, jnp.float32),
            reward=jnp.asarray(backend_state.reward, jnp.float32),
            terminated=jnp.asarray(backend_state.done, jnp.bool_),
            truncated=jnp.zeros((), jnp.bool_),
            backend=backend_state,
            info={},
        )

    def reset(self, key: jax.Array) -> State:
        return self._state(self.backend_env.reset(key))

    def step(self, state: State, action: jax.Array, stop: jax.Array | None = None) -> State:
        chex.assert_shape(action, self.action_space.shape)
        stepped = self._state(self.backend_env.step(state.backend, jnp.asarray(action, jnp.float32)))
        return stepped.replace(info=state.info)
