"""Adaptive Computation Pruning for Forgetting Attention (ACP, arXiv 2504.06949).

Marks the (query block, key block) tiles whose decay bias D_ij = Lambda_i - Lambda_j is so
negative that their attention mass is provably below eps, and reports what skipping them saves.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from jaxrl_suite.ops import fa_tiling


class ACPStats(NamedTuple):
    """What ACP skips for one input (all entries are jax scalars or arrays).

    tiles_causal:          causal tiles a blockwise kernel visits without ACP (all batch, heads).
    tiles_skipped:         of those, the tiles ACP skips.
    tile_fraction_skipped: tiles_skipped / tiles_causal.
    flop_fraction_skipped: fraction of the causal query-key pairs (attention FLOPs) skipped.
    mass_bound:            upper bound on the attention mass any query row loses (<= eps).
    threshold:             [batch, heads] delta; a tile is skipped when its largest D is below.
    logit_bound:           [batch, heads] U >= |q_i . k_j| * scale.
    """

    tiles_causal: jax.Array
    tiles_skipped: jax.Array
    tile_fraction_skipped: jax.Array
    flop_fraction_skipped: jax.Array
    mass_bound: jax.Array
    threshold: jax.Array
    logit_bound: jax.Array


def logit_bound(q: chex.Array, k: chex.Array, scale: float) -> chex.Array:
    """U [batch, heads] = max ||q|| * max ||k|| * scale, an upper bound of |q_i . k_j| * scale.

    q: [batch, seq, heads, head_dim]; k: [batch, seq, kv_heads, head_dim].
    """
    q_norm = jnp.sqrt(jnp.max(jnp.sum(jnp.square(q.astype(jnp.float32)), axis=-1), axis=1))
    k_norm = jnp.sqrt(jnp.max(jnp.sum(jnp.square(k.astype(jnp.float32)), axis=-1), axis=1))
    group = q.shape[2] // k.shape[2]
    bound = q_norm * jnp.repeat(k_norm, group, axis=1) * scale
    # Rounding in the norms must not make the bound too small.
    return jax.lax.stop_gradient(bound * (1.0 + 1e-5))


def prune_threshold(bound: chex.Array, key_len: int, eps: float) -> chex.Array:
    """delta = -(2U + log N) + log eps: pairs with D below it carry mass < eps / N each."""
    return -(2.0 * bound + math.log(key_len)) + math.log(eps)


def tile_corners(lam: chex.Array, grid: fa_tiling.TileGrid) -> chex.Array:
    """Largest D in each tile, [batch, heads, num_q_blocks, num_k_blocks].

    lam: [batch, heads, padded_len] float32 Lambda, edge-padded. For non-increasing Lambda the
    block max/min are the first query row and last key column; using them keeps the bound
    valid even if Lambda is not monotone.
    """
    batch, heads, padded_len = lam.shape
    chex.assert_equal(padded_len, grid.padded_len)
    lam_q_max = lam.reshape(batch, heads, grid.num_q_blocks, grid.block_q).max(axis=-1)
    lam_k_min = lam.reshape(batch, heads, grid.num_k_blocks, grid.block_k).min(axis=-1)
    return lam_q_max[..., :, None] - lam_k_min[..., None, :]


def pruned_tiles(
    q: chex.Array, k: chex.Array, lam: chex.Array, grid: fa_tiling.TileGrid, scale: float, eps: float
) -> chex.Array:
    """[batch, heads, num_q_blocks, num_k_blocks] bool: tiles whose largest D is below delta."""
    delta = prune_threshold(logit_bound(q, k, scale), grid.seq_len, eps)
    return jax.lax.stop_gradient(tile_corners(lam, grid) < delta[..., None, None])


def tile_ranges(
    q: chex.Array,
    k: chex.Array,
    lam: chex.Array,
    start_offset: chex.Array,
    grid: fa_tiling.TileGrid,
    scale: float,
    eps: float | None,
) -> tuple[chex.Array, chex.Array]:
    """`fa_tiling.block_ranges` for these inputs, pruned by ACP when eps is given.

    lam: [batch, heads, padded_len] float32 Lambda, edge-padded. Returns (k_start, q_end).
    """
    pruned = None if eps is None else pruned_tiles(q, k, lam, grid, scale, eps)
    return fa_tiling.block_ranges(start_offset, grid, q.shape[2], pruned)


def _causal_pairs(rows_lo, rows_hi, cols_lo, cols_hi):
    """Number of (r, c) with rows_lo <= r < rows_hi, cols_lo <= c < cols_hi and c <= r."""
    width = jnp.maximum(cols_hi - cols_lo, 0).astype(jnp.float32)

    def prefix(x):  # sum over t < x of clip(t, 0, width)
        x = x.astype(jnp.float32)
        ramp = jnp.clip(x, 0.0, width + 1.0)
        return ramp * (ramp - 1.0) / 2.0 + jnp.maximum(x - width - 1.0, 0.0) * width

    rows_hi = jnp.maximum(rows_hi, rows_lo)
    return prefix(rows_hi - cols_lo + 1) - prefix(rows_lo - cols_lo + 1)


def acp_stats(
    q: chex.Array,
    k: chex.Array,
    log_fgate: chex.Array,
    *,
    acp_eps: float,
    block_q: int = 128,
    block_k: int = 128,
    scale: float | None = None,
    start_offset: chex.Array | None = None,
) -> ACPStats:
    """How much ACP skips for these inputs at this tiling (pure JAX, jittable).

    q: [batch, seq, heads, head_dim]; k: [batch, seq, kv_heads, head_dim];
    log_fgate: [batch, seq, heads]; start_offset: optional [batch] int.
    """
    if not 0.0 < acp_eps < 1.0:
        raise ValueError(f"acp_stats: acp_eps must be in (0, 1), got {acp_eps!r}")
    batch, seq_len, heads, head_dim = q.shape
    scale = 1.0 / math.sqrt(head_dim) if scale is None else scale
    grid = fa_tiling.make_grid(seq_len, block_q, block_k)
    lam = jnp.cumsum(log_fgate.astype(jnp.float32), axis=1).transpose(0, 2, 1)
    lam = fa_tiling.pad_axis(lam, grid.padded_len, axis=2, edge=True)
    if start_offset is None:
        start_offset = jnp.zeros((batch,), jnp.int32)
    start_offset = jnp.asarray(start_offset, jnp.int32)

    bound = logit_bound(q, k, scale)
    delta = prune_threshold(bound, seq_len, acp_eps)
    corners = tile_corners(lam, grid)
    pruned = corners < delta[..., None, None]
    k_start_dense, _ = fa_tiling.block_ranges(start_offset, grid, heads)
    k_start, _ = fa_tiling.block_ranges(start_offset, grid, heads, pruned)

    q_blocks = jnp.arange(grid.num_q_blocks)
    k_blocks = jnp.arange(grid.num_k_blocks)
    k_end = fa_tiling.causal_k_end(q_blocks, grid)  # [num_q_blocks]
    in_causal = (k_blocks[None, :] < k_end[:, None])[None, None]
    visited_dense = in_causal & (k_blocks >= k_start_dense[..., None])
    visited = in_causal & (k_blocks >= k_start[..., None])
    skipped = visited_dense & ~visited

    rows_lo = (q_blocks * grid.block_q)[:, None]
    rows_hi = jnp.minimum((q_blocks + 1) * grid.block_q, seq_len)[:, None]
    cols_lo = jnp.maximum((k_blocks * grid.block_k)[None, None, :], start_offset[:, None, None])
    cols_hi = jnp.minimum((k_blocks + 1) * grid.block_k, seq_len)[None, None, :]
    pairs = _causal_pairs(rows_lo[None], rows_hi[None], cols_lo, cols_hi)[:, None]  # [batch,1,nq,nk]
    pairs = jnp.broadcast_to(pairs, skipped.shape)

    # Each skipped entry of a row weighs at most exp(U + D) / exp(-U) (the diagonal keeps the
    # normaliser >= exp(-U)), and at most block_k entries of a row fall in one tile.
    per_entry = jnp.exp(2.0 * bound[..., None, None] + corners)
    row_mass = jnp.sum(jnp.where(skipped, per_entry * min(grid.block_k, seq_len), 0.0), axis=-1)
    tiles_causal = visited_dense.sum()
    tiles_skipped = skipped.sum()
    return ACPStats(
        tiles_causal=tiles_causal,
        tiles_skipped=tiles_skipped,
        tile_fraction_skipped=tiles_skipped / jnp.maximum(tiles_causal, 1),
        flop_fraction_skipped=jnp.sum(jnp.where(skipped, pairs, 0.0))
        / jnp.maximum(jnp.sum(jnp.where(visited_dense, pairs, 0.0)), 1.0),
        mass_bound=jnp.minimum(jnp.max(row_mass, initial=0.0), acp_eps),
        threshold=delta,
        logit_bound=bound,
    )
