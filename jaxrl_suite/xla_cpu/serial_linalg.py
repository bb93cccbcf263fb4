"""Linear algebra (QR, singular values, symmetric eigenvalues) that never runs batched on CPU.

Seeds, sweep members and critic ensembles are vmapped, so a network's init, a ReDo/ReGraMa
re-draw (orthogonal init: QR) and the rank diagnostics (SVD, eigvalsh) run batched LAPACK calls.
XLA:CPU's batched LAPACK kernels fan their batch out over the intra-op thread pool from a thread
of that same pool, and on a 2-core machine that has deadlocked (every pool thread waiting in
jax::ParallelBatchMap: the QR of vmapped resets, the SVD of vmapped feature ranks). Each function
here is the plain jnp one for a single matrix; under vmap on CPU it runs the batch one matrix
after another (lax.map), elsewhere it stays one batched call. Values equal the jnp ones.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.custom_batching import custom_vmap


def one_at_a_time_on_cpu(fn: Callable[[jax.Array], object]) -> Callable[[jax.Array], object]:
    """`fn` of one array, whose vmap runs as a lax.map on CPU and as vmap(fn) on other platforms."""

    @custom_vmap
    def wrapped(matrix: jax.Array):
        return fn(matrix)

    @wrapped.def_vmap
    def _batched(axis_size: int, in_batched: list[bool], matrix: jax.Array):
        (batched,) = in_batched
        if not batched:
            out = wrapped(matrix)
            return out, jax.tree.map(lambda _: False, out)
        out = jax.lax.platform_dependent(matrix, cpu=lambda m: jax.lax.map(wrapped, m), default=jax.vmap(fn))
        return out, jax.tree.map(lambda _: True, out)

    wrapped.__doc__ = fn.__doc__
    return wrapped


@one_at_a_time_on_cpu
def qr(matrix: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Reduced QR of one [m, n] matrix: (q [m, k], r [k, n]), k = min(m, n)."""
    q, r = jnp.linalg.qr(matrix)
    return q, r


@one_at_a_time_on_cpu
def singular_values(matrix: jax.Array) -> jax.Array:
    """Singular values of one [m, n] matrix, descending: [min(m, n)]."""
    return jnp.linalg.svd(matrix, compute_uv=False)


@one_at_a_time_on_cpu
def symmetric_eigenvalues(matrix: jax.Array) -> jax.Array:
    """Eigenvalues of one symmetric [n, n] matrix, ascending: [n]."""
    return jnp.linalg.eigvalsh(matrix)
