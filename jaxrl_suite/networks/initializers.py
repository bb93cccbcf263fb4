"""The orthogonal initializer of every network here: flax's, with a QR that never runs batched on CPU.

Seeds are vmapped, so a network's init (at the start, and inside the jitted update when ReDo or
ReGraMa re-draws units) runs a batched QR. XLA:CPU's batched QR fans its batch out over the
intra-op thread pool from a thread of that same pool, and on a 2-core machine that has
deadlocked (every pool thread waiting in jax::ParallelBatchMap). Under vmap on CPU this QR runs
the batch one matrix after another (lax.map); elsewhere it stays one batched call. The values are
those of `flax.linen.initializers.orthogonal` (tests/test_networks.py compares them).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_batching import custom_vmap


@custom_vmap
def qr(matrix: jax.Array) -> tuple[jax.Array, jax.Array]:
    """jnp.linalg.qr (reduced) of one [m, n] matrix; batched one at a time on CPU (module docstring)."""
    q, r = jnp.linalg.qr(matrix)
    return q, r


@qr.def_vmap
def _qr_batched(axis_size: int, in_batched: list[bool], matrix: jax.Array):
    (batched,) = in_batched
    if not batched:
        return qr(matrix), (False, False)

    def one_at_a_time(matrices: jax.Array) -> tuple[jax.Array, jax.Array]:
        return jax.lax.map(qr, matrices)

    def all_at_once(matrices: jax.Array) -> tuple[jax.Array, jax.Array]:
        q, r = jnp.linalg.qr(matrices)  # batched over the leading axis
        return q, r

    return jax.lax.platform_dependent(matrix, cpu=one_at_a_time, default=all_at_once), (True, True)


def orthogonal(scale: float = 1.0, column_axis: int = -1):
    """flax's `orthogonal(scale, column_axis)` initializer (uniformly distributed orthogonal matrices,
    Mezzadri 2007) computed with `qr` above."""

    def init(key: jax.Array, shape: tuple[int, ...], dtype: jnp.dtype = jnp.float32) -> jax.Array:
        if len(shape) < 2:
            raise ValueError(f"orthogonal initializer requires at least a 2D shape, got {shape}")
        if any(dim == 0 for dim in shape):
            return jnp.zeros(shape, dtype)
        num_rows, num_cols = math.prod(shape) // shape[column_axis], shape[column_axis]
        normal = jax.random.normal(key, (max(num_rows, num_cols), min(num_rows, num_cols)), dtype)
        q, r = qr(normal)
        q = q * jnp.expand_dims(jnp.sign(jnp.diagonal(r)), -2)
        if num_rows < num_cols:
            q = q.T
        q = jnp.reshape(q, tuple(np.delete(shape, column_axis)) + (shape[column_axis],))
        return jnp.array(scale, dtype) * jnp.moveaxis(q, -1, column_axis)

    return init
