"""Adapter from gymnax environments (classic control, MinAtar, bsuite, misc) to `Env`.

Uses gymnax's `reset_env`/`step_env` (no gymnax auto-reset); the time limit is left to our
TimeLimit wrapper through `max_episode_steps` = the env's `max_steps_in_episode`.
"""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl_suite.envs.core import Env, State, strong_types
from jaxrl_suite.envs.spaces import Box, Discrete

FAMILY = "gymnax"


@struct.dataclass
class GymnaxBackend:
    """gymnax's own env state plus the key its transitions consume (None for envs whose
    `step_env` never reads its key, which saves a key split per step)."""

    env_state: Any
    rng: jax.Array | None


def env_names() -> list[str]:
    """gymnax's registered names, without the family prefix."""
    import gymnax

    return list(gymnax.registered_envs)


def _to_box(space: Any, flatten: bool) -> Box:
    shape = tuple(int(d) for d in space.shape)
    low = np.broadcast_to(np.asarray(space.low, np.float32), shape)
    high = np.broadcast_to(np.asarray(space.high, np.float32), shape)
    if flatten:
        shape = (int(np.prod(shape)),)
        low, high = low.reshape(shape), high.reshape(shape)
    if np.all(low == low.flat[0]) and np.all(high == high.flat[0]):
        return Box(shape, float(low.flat[0]), float(high.flat[0]))
    return Box(shape, low, high)


class GymnaxEnv(Env):
    """One gymnax environment. Observations are float32, flattened to [obs_dim] unless
    `flatten_obs=False` (then the native shape, e.g. [10, 10, C] for MinAtar); discrete
    actions are int32 scalars, continuous ones float32 [action_dim] in the env's bounds."""

    cheap_reset = True  # a few random draws: cheaper than any branch on an accelerator

    def __init__(self, name: str, flatten_obs: bool = True, **env_kwargs: Any):
        import gymnax
        import gymnax.environments.spaces as gymnax_spaces

        if name not in gymnax.registered_envs:
            raise ValueError(f"unknown gymnax env {name!r}; valid: {sorted(gymnax.registered_envs)}")
        self.env_id = f"{FAMILY}/{name}"
        try:
            self._env, self._params = gymnax.make(name, **env_kwargs)
        except OSError as error:  # e.g. MNISTBandit downloads its data set on construction
            raise RuntimeError(
                f"{self.env_id} could not be built: gymnax failed to fetch its data ({error})"
            ) from error
        self.max_episode_steps = int(self._params.max_steps_in_episode)

        action_space = self._env.action_space(self._params)
        if isinstance(action_space, gymnax_spaces.Discrete):
            self.action_space = Discrete(int(action_space.n))
            self._action_shape: tuple[int, ...] = ()
        elif isinstance(action_space, gymnax_spaces.Box):
            self._action_shape = tuple(int(d) for d in action_space.shape)
            self.action_space = _to_box(action_space, flatten=True)
        else:
            raise ValueError(f"{self.env_id}: action space {action_space!r} is neither Discrete nor Box")

        observation_space = self._env.observation_space(self._params)
        if not isinstance(observation_space, gymnax_spaces.Box | gymnax_spaces.Discrete):
            raise ValueError(f"{self.env_id}: observation space {observation_space!r} is not an array")
        if isinstance(observation_space, gymnax_spaces.Discrete):
            self.observation_space = Box((1,), 0.0, float(observation_space.n - 1))
        else:
            self.observation_space = _to_box(observation_space, flatten_obs)
        self._obs_shape = self.observation_space.shape
        self.stochastic_step = self._step_reads_key()

    def _step_reads_key(self) -> bool:
        """Whether `step_env` uses its key, read off the traced program."""
        key = jax.random.PRNGKey(0)
        _, env_state = jax.eval_shape(self._env.reset_env, key, self._params)
        action = jnp.zeros(
            self._action_shape, jnp.int32 if isinstance(self.action_space, Discrete) else jnp.float32
        )
        closed = jax.make_jaxpr(
            lambda step_key, env_state: self._env.step_env(step_key, env_state, action, self._params)
        )(key, env_state)
        key_var = closed.jaxpr.invars[0]
        used = any(key_var in eqn.invars for eqn in closed.jaxpr.eqns)
        return used or any(key_var is out for out in closed.jaxpr.outvars)

    def _observation(self, raw_obs: jax.Array) -> jax.Array:
        return jnp.asarray(raw_obs, jnp.float32).reshape(self._obs_shape)

    def reset(self, key: jax.Array) -> State:
        rng, reset_key = jax.random.split(key) if self.stochastic_step else (None, key)
        raw_obs, env_state = self._env.reset_env(reset_key, self._params)
        return State(
            obs=self._observation(raw_obs),
            reward=jnp.zeros((), jnp.float32),
            terminated=jnp.zeros((), jnp.bool_),
            truncated=jnp.zeros((), jnp.bool_),
            backend=GymnaxBackend(strong_types(env_state), rng),
            info={},
        )

    def step(self, state: State, action: jax.Array, stop: jax.Array | None = None) -> State:
        chex.assert_shape(action, self.action_space.shape)
        if self.stochastic_step:
            rng, step_key = jax.random.split(state.backend.rng)
        else:
            rng, step_key = None, jax.random.PRNGKey(0)  # a constant the env never reads
        if isinstance(self.action_space, Discrete):
            action = jnp.asarray(action, jnp.int32)
        else:
            action = jnp.asarray(action, jnp.float32).reshape(self._action_shape)
        # gymnax >= 1.0: step_env returns (obs, state, reward, terminated, info); the time
        # limit is not in `terminated` (gymnax's `step` adds it as truncation).
        raw_obs, env_state, reward, terminated, _ = self._env.step_env(
            step_key, state.backend.env_state, action, self._params
        )
        return state.replace(
            obs=self._observation(raw_obs),
            reward=jnp.asarray(reward, jnp.float32).reshape(()),
            terminated=jnp.asarray(terminated, jnp.bool_).reshape(()),
            truncated=jnp.zeros((), jnp.bool_),
            backend=GymnaxBackend(strong_types(env_state), rng),
        )


def make_adapter(name: str, **options: Any) -> GymnaxEnv:
    """Registry entry point: `options` are `flatten_obs` and gymnax's own env kwargs."""
    return GymnaxEnv(name, **options)
