"""What every value-based learner (DQN, SAC, TD3) builds its update from: the bootstrapped TD
target, the critic regression loss, Polyak averaging of target networks, and one optimizer step.
"""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
import optax


def bootstrap_target(reward: jax.Array, terminated: jax.Array, next_value: jax.Array, gamma: float) -> jax.Array:
    """r + gamma * (1 - terminated) * V(s'), gradient stopped; all [B]. Truncated transitions
    bootstrap (their next_obs is the pre-reset final observation)."""
    chex.assert_equal_shape([reward, terminated, next_value])
    return jax.lax.stop_gradient(reward + gamma * (1.0 - terminated.astype(jnp.float32)) * next_value)


def critic_regression_loss(q: jax.Array, target: jax.Array) -> jax.Array:
    """0.5 * mean over critics and batch of (Q - target)^2; q [num_critics, B], target [B] -> []."""
    chex.assert_rank([q, target], [2, 1])
    chex.assert_equal(q.shape[1], target.shape[0])
    return 0.5 * jnp.mean(jnp.square(q - target[None]))


def polyak_update(target: Any, online: Any, tau: float) -> Any:
    """target <- (1 - tau) * target + tau * online, leafwise."""
    return jax.tree.map(lambda t, o: (1.0 - tau) * t + tau * o, target, online)


def make_optimizer(learning_rate: float, max_grad_norm: float | None) -> optax.GradientTransformation:
    """Adam, after global-norm clipping when max_grad_norm is set."""
    adam = optax.adam(learning_rate)
    return adam if max_grad_norm is None else optax.chain(optax.clip_by_global_norm(max_grad_norm), adam)


def apply_gradients(optimizer: optax.GradientTransformation, params: Any, opt_state: Any,
                    grads: Any) -> tuple[Any, Any]:
    """One optimizer step: (new params, new optimizer state)."""
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state
