"""The orthogonal initializer of every network here: flax's, with a QR that never runs batched on CPU.

Seeds are vmapped, so a network's init (at the start, and inside the jitted update when ReDo or
ReGraMa re-draws units) runs a batched QR, which has deadlocked XLA:CPU (serial_linalg explains).
The values are those of `flax.linen.initializers.orthogonal` (tests/test_networks.py compares them).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl_suite.xla_cpu.serial_linalg import qr


def orthogonal(scale: float = 1.0, column_axis: int = -1):
    """flax's `orthogonal(scale, column_axis)` initializer (uniformly distributed orthogonal matrices,
    Mezzadri 2007) computed with serial_linalg's `qr`."""

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
