"""The act-store-learn cycle every replay-based learner (DQN, SAC, TD3) shares: a fresh env
batch, the Transition one env step stores, and gradient steps that wait for learning_starts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import jax
import jax.numpy as jnp

from jaxrl_suite.agents.replay import Transition
from jaxrl_suite.envs.core import Env, State

Carry = TypeVar("Carry")


def reset_envs(env: Env, key: jax.Array, num_envs: int) -> State:
    """num_envs fresh envs from one key, with every leaf strongly typed: some backends return
    weakly typed leaves on reset that `step` makes strong, and a state whose types change after
    the first chunk would make the runner compile it twice."""
    env_state = jax.vmap(env.reset)(jax.random.split(key, num_envs))
    return jax.tree.map(lambda leaf: jnp.asarray(leaf, leaf.dtype), env_state)


def step_transition(obs: jax.Array, action: jax.Array, next_env_state: State) -> Transition:
    """What the replay stores of one step of every env: observations as float32 (MinAtar's are
    bool), and next_obs the pre-reset observation (info["final_obs"]), so a truncated episode
    still bootstraps from where it stopped."""
    return Transition(
        obs=obs.astype(jnp.float32),
        action=action,
        reward=next_env_state.reward,
        next_obs=next_env_state.info["final_obs"].astype(jnp.float32),
        terminated=next_env_state.terminated,
        truncated=next_env_state.truncated,
    )


def learn_once_started(started: jax.Array, learn: Callable[[Carry], tuple[Carry, dict[str, jax.Array]]],
                       carry: Carry) -> tuple[Carry, dict[str, Any]]:
    """learn(carry) once `started` (env steps >= learning_starts); before that the carry is kept
    and every metric learn would report is zero (same shapes, so one compiled program serves)."""
    metric_shapes = jax.eval_shape(learn, carry)[1]

    def skip(carry: Carry):
        return carry, jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), metric_shapes)

    return jax.lax.cond(started, learn, skip, carry)
