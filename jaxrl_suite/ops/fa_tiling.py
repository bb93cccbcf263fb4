"""Tile bookkeeping shared by the blockwise Forgetting Attention kernels (arXiv 2503.02130).

Pads the time axis to whole blocks and turns causality, left padding and ACP pruning into
one half-open key-block range per query block (and the matching query range per key block).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import chex
import jax
import jax.numpy as jnp
from jax import lax

# Finite stand-in for -inf: keeps max/exp of fully masked rows NaN-free.
MASK_VALUE = -1e30


@dataclasses.dataclass(frozen=True)
class TileGrid:
    """Static tiling of one sequence axis (queries and keys share the length).

    seq_len:    true length T.
    padded_len: T rounded up so both block sizes divide it.
    block_q:    query rows per tile.
    block_k:    key columns per tile.
    """

    seq_len: int
    padded_len: int
    block_q: int
    block_k: int

    @property
    def num_q_blocks(self) -> int:
        return self.padded_len // self.block_q

    @property
    def num_k_blocks(self) -> int:
        return self.padded_len // self.block_k


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def make_grid(seq_len: int, block_q: int, block_k: int, *, padded_len: int | None = None) -> TileGrid:
    """Tiling with the smallest padded length both blocks divide (or `padded_len` if given)."""
    if padded_len is None:
        padded_len = round_up(seq_len, math.lcm(block_q, block_k))
    if padded_len % block_q or padded_len % block_k or padded_len < seq_len:
        raise ValueError(
            f"padded_len={padded_len} must be >= {seq_len} and divisible by {block_q} and {block_k}"
        )
    return TileGrid(seq_len=seq_len, padded_len=padded_len, block_q=block_q, block_k=block_k)


def pad_axis(x: chex.Array, padded_len: int, axis: int, *, edge: bool = False) -> chex.Array:
    """Pads `axis` to `padded_len` with zeros, or by repeating the last entry (`edge`)."""
    extra = padded_len - x.shape[axis]
    if extra == 0:
        return x
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, extra)
    return jnp.pad(x, widths, mode="edge" if edge else "constant")


def causal_k_end(q_block: chex.Array, grid: TileGrid) -> chex.Array:
    """One past the last key block query block `q_block` can see."""
    end = lax.div((q_block + 1) * grid.block_q + grid.block_k - 1, grid.block_k)
    return jnp.minimum(end, grid.num_k_blocks)


def causal_q_start(k_block: chex.Array, grid: TileGrid) -> chex.Array:
    """First query block that can see key block `k_block`."""
    return lax.div(k_block * grid.block_k, grid.block_q)


def unmasked_k_span(q_block, k_lo, k_hi, start_offset, grid: TileGrid):
    """(a, b) with k_lo <= a <= b <= k_hi: key blocks in [a, b) need no mask for `q_block`.

    They lie wholly after the left padding and wholly at or before the block's first row; the
    blocks in [k_lo, a) and [b, k_hi) need the elementwise mask. (Integer division is lax.div
    throughout: operands are non-negative and the same code runs inside Pallas kernels.)
    """
    k_hi = jnp.maximum(k_hi, k_lo)
    after_offset = lax.div(start_offset + grid.block_k - 1, grid.block_k)
    before_rows = lax.div(q_block * grid.block_q + 1, grid.block_k)
    a = jnp.clip(after_offset, k_lo, k_hi)
    return a, jnp.clip(before_rows, a, k_hi)


def unmasked_q_start(k_block, q_lo, q_hi, start_offset, grid: TileGrid):
    """c with q_lo <= c <= q_hi: query blocks in [c, q_hi) need no mask for `k_block`."""
    q_hi = jnp.maximum(q_hi, q_lo)
    after_cols = lax.div((k_block + 1) * grid.block_k - 1 + grid.block_q - 1, grid.block_q)
    c = jnp.clip(after_cols, q_lo, q_hi)
    return jnp.where(k_block * grid.block_k < start_offset, q_hi, c)


def visit_spans(visit, carry, lo, hi, unmasked_lo, unmasked_hi):
    """Runs visit(n, carry, masked) over [lo, hi), with masked=False on [unmasked_lo, unmasked_hi)."""
    carry = lax.fori_loop(lo, unmasked_lo, functools.partial(visit, masked=True), carry)
    carry = lax.fori_loop(unmasked_lo, unmasked_hi, functools.partial(visit, masked=False), carry)
    return lax.fori_loop(unmasked_hi, hi, functools.partial(visit, masked=True), carry)


def tile_mask(
    rows: chex.Array,
    cols: chex.Array,
    start_offset: chex.Array,
    row_segments: chex.Array | None = None,
    col_segments: chex.Array | None = None,
) -> chex.Array:
    """[rows, cols] bool: key is at or before the query, not in the left padding and, when
    segment ids are given ([rows] and [cols] int), in the query's segment."""
    mask = (rows[:, None] >= cols[None, :]) & (cols[None, :] >= start_offset)
    if row_segments is None:
        return mask
    return mask & (row_segments[:, None] == col_segments[None, :])


def block_ranges(
    start_offset: chex.Array, grid: TileGrid, num_heads: int, pruned: chex.Array | None = None
) -> tuple[chex.Array, chex.Array]:
    """Which tiles a kernel visits.

    start_offset: [batch] int, keys before it are masked.
    pruned:       optional [batch, heads, num_q_blocks, num_k_blocks] bool, ACP's verdict.
    Returns (k_start [batch, heads, num_q_blocks], q_end [batch, heads, num_k_blocks]), int32:
    query block i visits key blocks [k_start[i], causal_k_end(i)); key block j is visited by
    query blocks [causal_q_start(j), q_end[j]). Both describe the same set of tiles.
    """
    batch = start_offset.shape[0]
    first_valid = (start_offset.astype(jnp.int32) // grid.block_k)[:, None, None]
    k_start = jnp.broadcast_to(first_valid, (batch, num_heads, grid.num_q_blocks))
    if pruned is not None:
        chex.assert_shape(pruned, (batch, num_heads, grid.num_q_blocks, grid.num_k_blocks))
        # Only a leading run of pruned key blocks can be skipped by a loop bound.
        leading = jnp.cumprod(pruned.astype(jnp.int32), axis=-1).sum(axis=-1)
        # With Lambda non-increasing, `leading` never decreases along query blocks; the
        # reverse running minimum only acts on inputs that break that, and there it
        # computes more tiles rather than fewer, keeping q_end consistent with k_start.
        leading = jnp.flip(lax.cummin(jnp.flip(leading, -1), axis=leading.ndim - 1), -1)
        k_start = jnp.maximum(k_start, leading)
    k_start = k_start.astype(jnp.int32)
    k_blocks = jnp.arange(grid.num_k_blocks, dtype=jnp.int32)
    q_end = (k_start[..., :, None] <= k_blocks[None, None, None, :]).sum(axis=-2).astype(jnp.int32)
    return k_start, q_end


def blockwise_vjp(forward, backward):
    """A custom-VJP attention function from a blockwise forward and its recomputing backward.

    forward(q, k, v, lam, start_offset, segment_ids, static) -> (out, lse);
    backward(q, k, v, lam, start_offset, segment_ids, out, lse, d_out, static) -> (dq, dk, dv, dlam).
    `static` is hashable configuration; start_offset and segment_ids (None or [batch, seq] int)
    get no cotangent. Only (q, k, v, lam) are differentiated, so autodiff turns dlam into
    d log_fgate through the cumsum.
    """

    @functools.partial(jax.custom_vjp, nondiff_argnums=(6,))
    def attend(q, k, v, lam, start_offset, segment_ids, static):
        return forward(q, k, v, lam, start_offset, segment_ids, static)[0]

    def attend_fwd(q, k, v, lam, start_offset, segment_ids, static):
        out, lse = forward(q, k, v, lam, start_offset, segment_ids, static)
        return out, (q, k, v, lam, start_offset, segment_ids, out, lse)

    def attend_bwd(static, residuals, d_out):
        return (*backward(*residuals, d_out, static), None, None)

    attend.defvjp(attend_fwd, attend_bwd)
    return attend
