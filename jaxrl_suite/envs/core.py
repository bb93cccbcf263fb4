"""The one functional environment interface every backend is adapted to.

`reset(key) -> State`, `step(state, action, stop=None) -> State`; both pure and jittable,
written for ONE environment (vmap for batches). Wrappers compose around an `Env`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl_suite.envs.spaces import Space


def strong_types(tree: Any) -> Any:
    """`tree` with every weakly typed leaf made strong (same dtype). Backends return weak types from
    python constants (gymnax's reset, brax's jnp.where(..., 1.0, 0.0)); a state whose types change
    on its first step makes every jitted chunk that carries it compile twice."""
    return jax.tree.map(lambda leaf: jnp.asarray(leaf, jnp.result_type(leaf)), tree)


@struct.dataclass
class State:
    """One environment's state after `reset` or `step`.

    obs:        [*obs_shape] observation to act on next (after an auto-reset: the new
                episode's first observation).
    reward:     [] float32 reward of the step that produced this state (0 after reset).
    terminated: [] bool, the episode reached a terminal state (do not bootstrap).
    truncated:  [] bool, the episode was cut (time limit or `stop` mask): bootstrap from
                `info["final_obs"]`.
    backend:    the backend's own state pytree.
    info:       wrapper-owned entries, e.g. "final_obs" (last observation of the episode
                that ended at this step; equals `obs` when none ended), "step_count",
                "rng", episode statistics.
    """

    obs: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    backend: Any
    info: dict[str, Any]

    @property
    def done(self) -> jax.Array:
        return self.terminated | self.truncated


class Env:
    """Base class: a single functional environment. Subclasses set the spaces and
    implement `reset` and `step`. `stop` is an optional [] bool that ends the episode
    now as a truncation; base environments ignore it, the TimeLimit wrapper applies it."""

    env_id: str = ""
    observation_space: Space
    action_space: Space
    max_episode_steps: int | None = None
    cheap_reset: bool = False
    """True when a reset costs about as little as a step (gymnax): on an accelerator AutoReset's
    "auto" strategy then resets every env at every step and keeps the done ones, no branch."""

    def reset(self, key: jax.Array) -> State:
        raise NotImplementedError

    def step(self, state: State, action: jax.Array, stop: jax.Array | None = None) -> State:
        raise NotImplementedError

    @property
    def unwrapped(self) -> Env:
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.env_id!r})"


class Wrapper(Env):
    """Forwards everything to `env`; subclasses override what they change."""

    def __init__(self, env: Env):
        self.env = env

    def __getattr__(self, name: str) -> Any:
        if name == "env":
            raise AttributeError(name)
        return getattr(self.env, name)

    @property
    def env_id(self) -> str:  # type: ignore[override]
        return self.env.env_id

    @property
    def observation_space(self) -> Space:  # type: ignore[override]
        return self.env.observation_space

    @property
    def action_space(self) -> Space:  # type: ignore[override]
        return self.env.action_space

    @property
    def max_episode_steps(self) -> int | None:  # type: ignore[override]
        return self.env.max_episode_steps

    @property
    def cheap_reset(self) -> bool:  # type: ignore[override]
        return self.env.cheap_reset

    @property
    def unwrapped(self) -> Env:
        return self.env.unwrapped

    def reset(self, key: jax.Array) -> State:
        return self.env.reset(key)

    def step(self, state: State, action: jax.Array, stop: jax.Array | None = None) -> State:
        return self.env.step(state, action, stop)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.env!r})"


def observation_spec(env: Env) -> jax.ShapeDtypeStruct:
    """Shape and dtype of one observation of `env`, from tracing its reset (nothing runs)."""
    return jax.eval_shape(env.reset, jax.ShapeDtypeStruct((2,), jnp.uint32)).obs
