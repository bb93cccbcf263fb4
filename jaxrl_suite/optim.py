"""Optimizer pieces shared by the learners: a global norm computed as ONE reduction, and the
global-norm clip built on it (an optax GradientTransformation, drop-in for optax's).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax


def global_norm(tree: Any) -> jax.Array:
    """[] L2 norm of every element of `tree` together, as ONE reduction.

    optax.global_norm reduces each leaf on its own (a kernel per leaf); flattening the leaves
    into one vector first leaves a single fused reduction (PPO's gradient clip relies on it).
    """
    flat = jnp.concatenate([jnp.ravel(leaf).astype(jnp.float32) for leaf in jax.tree.leaves(tree)])
    return jnp.sqrt(jnp.sum(jnp.square(flat)))


def clip_by_global_norm(max_norm: float) -> optax.GradientTransformation:
    """optax.clip_by_global_norm with the norm from `global_norm` and one scalar factor.

    Same result (up to rounding) and same state (optax.EmptyState): updates are scaled by
    max_norm / norm when norm >= max_norm. The per-leaf work is then a multiply by a scalar,
    which fuses into Adam's elementwise moment updates, instead of a divide and a select per leaf.
    """

    def update(updates, state, params=None):
        del params
        norm = global_norm(updates)
        scale = jnp.where(norm < max_norm, 1.0, max_norm / norm)
        return jax.tree.map(lambda u: u * scale.astype(u.dtype), updates), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)
