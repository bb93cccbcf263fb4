"""PPO's pure loss pieces: the clipped surrogate, the (optionally clipped) value loss,
advantage standardization and explained variance.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp


def clipped_surrogate_loss(ratio: jax.Array, advantage: jax.Array, clip_eps: float) -> jax.Array:
    """-E[min(r A, clip(r, 1 - eps, 1 + eps) A)] over ratio, advantage [B] -> []."""
    chex.assert_equal_shape([ratio, advantage])
    unclipped = ratio * advantage
    clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantage
    return -jnp.minimum(unclipped, clipped).mean()


def value_loss(
    value: jax.Array, old_value: jax.Array, target_return: jax.Array, clip_eps: float | None
) -> jax.Array:
    """0.5 E[(V - R)^2]; with clip_eps, 0.5 E[max((V - R)^2, (V_old + clip(V - V_old) - R)^2)].

    value, old_value, target_return: [B] -> [].
    """
    chex.assert_equal_shape([value, old_value, target_return])
    squared_error = jnp.square(value - target_return)
    if clip_eps is not None:
        clipped_value = old_value + jnp.clip(value - old_value, -clip_eps, clip_eps)
        squared_error = jnp.maximum(squared_error, jnp.square(clipped_value - target_return))
    return 0.5 * squared_error.mean()


def standardize(x: jax.Array, epsilon: float = 1e-8) -> jax.Array:
    """(x - mean) / (std + eps) over all of x."""
    return (x - x.mean()) / (x.std() + epsilon)


def explained_variance(prediction: jax.Array, target: jax.Array) -> jax.Array:
    """1 - Var[target - prediction] / Var[target] (NaN-free: 0 when the target is constant)."""
    target_variance = target.var()
    return jnp.where(target_variance > 0, 1.0 - (target - prediction).var() / target_variance, 0.0)

