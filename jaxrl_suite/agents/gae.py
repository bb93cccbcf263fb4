"""Generalized Advantage Estimation that handles terminations and time-limit truncations apart.

Schulman et al. 2016 (arXiv 1506.02438); truncations bootstrap from the final observation
(Pardo et al. 2018, "Time Limits in Reinforcement Learning").
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp


def compute_gae(
    rewards: jax.Array,
    values: jax.Array,
    next_values: jax.Array,
    terminated: jax.Array,
    done: jax.Array,
    gamma: float,
    gae_lambda: float,
) -> tuple[jax.Array, jax.Array]:
    """Advantages and value targets over a rollout, time-major.

    rewards:     [T, ...] reward of step t.
    values:      [T, ...] V(s_t), the state acted on at step t.
    next_values: [T, ...] V(s'_t), the state step t led to: the final observation's value when
                 the episode ended at t (info["final_obs"]), else V(s_{t+1}). At t = T-1 this
                 is the bootstrap value of the rollout's last state.
    terminated:  [T, ...] bool, step t reached a terminal state: V(s'_t) is not used.
    done:        [T, ...] bool, terminated | truncated at step t: the advantage recursion does
                 not cross into the next episode.

    delta_t = r_t + gamma * (1 - terminated_t) * V(s'_t) - V(s_t)
    A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1},   A_T = 0
    Returns (advantages [T, ...], returns = advantages + values [T, ...]).
    """
    chex.assert_equal_shape([rewards, values, next_values, terminated, done])
    not_terminated = 1.0 - terminated.astype(jnp.float32)
    continues = 1.0 - done.astype(jnp.float32)
    deltas = rewards + gamma * not_terminated * next_values - values

    def accumulate(next_advantage: jax.Array, step: tuple[jax.Array, jax.Array]):
        delta, episode_continues = step
        advantage = delta + gamma * gae_lambda * episode_continues * next_advantage
        return advantage, advantage

    _, advantages = jax.lax.scan(
        accumulate, jnp.zeros_like(deltas[0]), (deltas, continues), reverse=True
    )
    return advantages, advantages + values
