"""Blockwise Forgetting Attention in plain JAX (FoX, arXiv 2503.02130), with ACP tile skipping.

Flash-style online softmax over key tiles and a custom VJP whose backward recomputes tiles, so
memory stays linear in length; the default implementation off GPU.
"""

from __future__ import annotations

import dataclasses

import chex
import jax.numpy as jnp
from jax import lax

from jaxrl_suite.ops import acp, fa_tiling

_F32 = jnp.float32


@dataclasses.dataclass(frozen=True)
class _Static:
    grid: fa_tiling.TileGrid
    scale: float
    acp_eps: float | None


def forgetting_attention_xla(
    q: chex.Array,
    k: chex.Array,
    v: chex.Array,
    lam: chex.Array,
    start_offset: chex.Array,
    *,
    scale: float,
    block_q: int,
    block_k: int,
    acp_eps: float | None = None,
    segment_ids: chex.Array | None = None,
) -> chex.Array:
    """Blockwise forgetting attention; same contract as `forgetting_attention_reference`.

    q: [batch, seq, heads, head_dim]; k, v: [batch, seq, kv_heads, head_dim];
    lam: [batch, heads, seq] float32; start_offset: [batch] int32; segment_ids: None or
    [batch, seq] int32 (then every visited tile is masked elementwise).
    """
    batch, seq_len, heads, _ = q.shape
    chex.assert_shape(lam, (batch, heads, seq_len))
    chex.assert_shape(start_offset, (batch,))
    grid = fa_tiling.make_grid(seq_len, block_q, block_k)
    if segment_ids is not None:
        chex.assert_shape(segment_ids, (batch, seq_len))
    return _attend(q, k, v, lam, start_offset, segment_ids, _Static(grid, float(scale), acp_eps))


def _heads_first(x: chex.Array, padded_len: int) -> chex.Array:
    """[batch, seq, heads, d] -> [batch * heads, padded_len, d]."""
    batch, seq_len, heads, dim = x.shape
    x = x.transpose(0, 2, 1, 3).reshape(batch * heads, seq_len, dim)
    return fa_tiling.pad_axis(x, padded_len, axis=1)


def _heads_last(x: chex.Array, batch: int, seq_len: int) -> chex.Array:
    """[batch * heads, padded_len, d] -> [batch, seq, heads, d]."""
    x = x[:, :seq_len]
    return x.reshape(batch, -1, seq_len, x.shape[-1]).transpose(0, 2, 1, 3)


def _flatten_heads(q, k, lam, start_offset, segment_ids, static: _Static):
    """Per-(batch, head) inputs on a leading axis of batch * heads.

    Returns q [BH, Tp, d], lam [BH, Tp] float32, offset [BH], kv_row [BH] (the row of the
    flattened k/v a head reads), k_start [BH, num_q_blocks], q_end [BH, num_k_blocks] and the
    segment ids [BH, Tp] (None without segments).
    """
    grid = static.grid
    batch, _, heads, _ = q.shape
    kv_heads = k.shape[2]
    lam_padded = fa_tiling.pad_axis(lam, grid.padded_len, axis=2, edge=True)
    k_start, q_end = acp.tile_ranges(q, k, lam_padded, start_offset, grid, static.scale, static.acp_eps)
    batch_index = jnp.repeat(jnp.arange(batch, dtype=jnp.int32), heads)
    head_index = jnp.tile(jnp.arange(heads, dtype=jnp.int32), batch)
    if segment_ids is not None:
        segment_ids = fa_tiling.pad_axis(segment_ids, grid.padded_len, axis=1, edge=True)[batch_index]
    return (
        _heads_first(q, grid.padded_len),
        lam_padded.reshape(batch * heads, grid.padded_len),
        start_offset[batch_index],
        batch_index * kv_heads + head_index // (heads // kv_heads),
        k_start.reshape(batch * heads, -1),
        q_end.reshape(batch * heads, -1),
        segment_ids,
    )


def _tile_logits(q_tile, k_tile, lam_q, lam_k, scale):
    """[block_q, block_k] float32 logits q.k * scale + Lambda_i - Lambda_j."""
    qk = jnp.dot(q_tile, k_tile.T, preferred_element_type=_F32)
    return qk * scale + lam_q[:, None] - lam_k[None, :]


def _segment_slice(segments, start, size):
    """segments[start:start + size], or None without segments."""
    return None if segments is None else lax.dynamic_slice_in_dim(segments, start, size)


def _forward(q, k, v, lam, start_offset, segment_ids, static: _Static):
    """Returns out [batch, seq, heads, d] and residual lse [batch * heads, padded_len]."""
    grid = static.grid
    batch, seq_len, _, _ = q.shape
    q_heads, lam_heads, offsets, kv_index, k_start, _, segments = _flatten_heads(
        q, k, lam, start_offset, segment_ids, static
    )
    k_all = _heads_first(k, grid.padded_len)
    v_all = _heads_first(v, grid.padded_len)
    bq, bk = grid.block_q, grid.block_k

    def one_head(args):
        q_h, lam_h, offset, kv_row, k_start_h, segments_h = args
        k_h, v_h = k_all[kv_row], v_all[kv_row]

        def one_q_block(i):
            q_tile = lax.dynamic_slice_in_dim(q_h, i * bq, bq)
            lam_q = lax.dynamic_slice_in_dim(lam_h, i * bq, bq)
            rows = i * bq + jnp.arange(bq)
            segments_q = _segment_slice(segments_h, i * bq, bq)

            def visit(j, carry, masked):
                acc, row_max, row_sum = carry
                k_tile = lax.dynamic_slice_in_dim(k_h, j * bk, bk)
                v_tile = lax.dynamic_slice_in_dim(v_h, j * bk, bk)
                lam_k = lax.dynamic_slice_in_dim(lam_h, j * bk, bk)
                logits = _tile_logits(q_tile, k_tile, lam_q, lam_k, static.scale)
                if masked:
                    mask = fa_tiling.tile_mask(
                        rows, j * bk + jnp.arange(bk), offset, segments_q, _segment_slice(segments_h, j * bk, bk)
                    )
                    logits = jnp.where(mask, logits, fa_tiling.MASK_VALUE)
                new_max = jnp.maximum(row_max, logits.max(axis=1))
                probs = jnp.exp(logits - new_max[:, None])
                if masked:
                    probs = jnp.where(mask, probs, 0.0)
                rescale = jnp.exp(row_max - new_max)
                acc = acc * rescale[:, None] + jnp.dot(
                    probs.astype(v_tile.dtype), v_tile, preferred_element_type=_F32
                )
                return acc, new_max, row_sum * rescale + probs.sum(axis=1)

            init = (
                jnp.zeros((bq, q_h.shape[-1]), _F32),
                jnp.full((bq,), fa_tiling.MASK_VALUE, _F32),
                jnp.zeros((bq,), _F32),
            )
            k_lo, k_hi = k_start_h[i], fa_tiling.causal_k_end(i, grid)
            unmasked = fa_tiling.unmasked_k_span(i, k_lo, k_hi, offset, grid)
            if segments is not None:  # any tile may cross a segment boundary
                unmasked = (k_lo, k_lo)
            acc, row_max, row_sum = fa_tiling.visit_spans(visit, init, k_lo, k_hi, *unmasked)
            # Rows before the offset see no key: output 0, and lse unused (their probs are masked).
            seen = row_sum > 0
            safe_sum = jnp.where(seen, row_sum, 1.0)
            out = (acc / safe_sum[:, None]).astype(q_h.dtype)
            return out, jnp.where(seen, row_max + jnp.log(safe_sum), 0.0)

        out, lse = lax.map(one_q_block, jnp.arange(grid.num_q_blocks))
        return out.reshape(grid.padded_len, -1), lse.reshape(grid.padded_len)

    out, lse = lax.map(one_head, (q_heads, lam_heads, offsets, kv_index, k_start, segments))
    return _heads_last(out, batch, seq_len), lse


def _backward(q, k, v, lam, start_offset, segment_ids, out, lse, d_out, static: _Static):
    """Cotangents (dq, dk, dv, dlam) from one recomputing pass per key block."""
    grid = static.grid
    batch, seq_len, heads, dim = q.shape
    kv_heads = k.shape[2]
    q_heads, lam_heads, offsets, kv_index, _, q_end, segments = _flatten_heads(
        q, k, lam, start_offset, segment_ids, static
    )
    k_all = _heads_first(k, grid.padded_len)
    v_all = _heads_first(v, grid.padded_len)
    do_heads = _heads_first(d_out, grid.padded_len)
    # delta_i = sum_d o_id * do_id, so that dS = P * (dP - delta).
    delta = _heads_first(
        jnp.sum(out.astype(_F32) * d_out.astype(_F32), axis=-1, keepdims=True), grid.padded_len
    )[..., 0]
    bq, bk = grid.block_q, grid.block_k
    scale = static.scale

    def one_head(args):
        q_h, lam_h, do_h, lse_h, delta_h, offset, kv_row, q_end_h, segments_h = args
        k_h, v_h = k_all[kv_row], v_all[kv_row]

        def one_k_block(carry, j):
            k_tile = lax.dynamic_slice_in_dim(k_h, j * bk, bk)
            v_tile = lax.dynamic_slice_in_dim(v_h, j * bk, bk)
            lam_k = lax.dynamic_slice_in_dim(lam_h, j * bk, bk)
            cols = j * bk + jnp.arange(bk)
            segments_k = _segment_slice(segments_h, j * bk, bk)

            def visit(i, inner, masked):
                dk, dv, dlam_k, dq_all, dlam_q_all = inner
                rows_at = i * bq
                q_tile = lax.dynamic_slice_in_dim(q_h, rows_at, bq)
                do_tile = lax.dynamic_slice_in_dim(do_h, rows_at, bq)
                lam_q = lax.dynamic_slice_in_dim(lam_h, rows_at, bq)
                lse_q = lax.dynamic_slice_in_dim(lse_h, rows_at, bq)
                delta_q = lax.dynamic_slice_in_dim(delta_h, rows_at, bq)
                logits = _tile_logits(q_tile, k_tile, lam_q, lam_k, scale)
                probs = jnp.exp(logits - lse_q[:, None])
                if masked:
                    mask = fa_tiling.tile_mask(
                        rows_at + jnp.arange(bq), cols, offset, _segment_slice(segments_h, rows_at, bq), segments_k
                    )
                    probs = jnp.where(mask, probs, 0.0)
                dv = dv + jnp.dot(probs.astype(do_tile.dtype).T, do_tile, preferred_element_type=_F32)
                d_probs = jnp.dot(do_tile, v_tile.T, preferred_element_type=_F32)
                d_logits = probs * (d_probs - delta_q[:, None])
                dk = dk + jnp.dot(d_logits.astype(q_tile.dtype).T, q_tile, preferred_element_type=_F32)
                dq_tile = jnp.dot(d_logits.astype(k_tile.dtype), k_tile, preferred_element_type=_F32)
                dq_all = lax.dynamic_update_slice_in_dim(
                    dq_all, lax.dynamic_slice_in_dim(dq_all, rows_at, bq) + dq_tile, rows_at, axis=0
                )
                # The bias enters as +Lambda_i (query) and -Lambda_j (key), without the scale.
                dlam_q_all = lax.dynamic_update_slice_in_dim(
                    dlam_q_all,
                    lax.dynamic_slice_in_dim(dlam_q_all, rows_at, bq) + d_logits.sum(axis=1),
                    rows_at,
                    axis=0,
                )
                return dk, dv, dlam_k - d_logits.sum(axis=0), dq_all, dlam_q_all

            zeros_kv = jnp.zeros((bk, dim), _F32)
            q_lo, q_hi = fa_tiling.causal_q_start(j, grid), q_end_h[j]
            split = fa_tiling.unmasked_q_start(j, q_lo, q_hi, offset, grid)
            if segments is not None:  # any tile may cross a segment boundary
                split = q_hi
            init = (zeros_kv, zeros_kv, jnp.zeros((bk,), _F32), *carry)
            dk, dv, dlam_k, dq_all, dlam_q_all = fa_tiling.visit_spans(visit, init, q_lo, q_hi, split, q_hi)
            return (dq_all, dlam_q_all), (dk * scale, dv, dlam_k)

        init = (jnp.zeros((grid.padded_len, dim), _F32), jnp.zeros((grid.padded_len,), _F32))
        (dq_h, dlam_q), (dk_h, dv_h, dlam_k) = lax.scan(one_k_block, init, jnp.arange(grid.num_k_blocks))
        padded = grid.padded_len
        return (
            dq_h * scale,
            dk_h.reshape(padded, dim),
            dv_h.reshape(padded, dim),
            dlam_q + dlam_k.reshape(padded),
        )

    dq, dk, dv, dlam = lax.map(
        one_head, (q_heads, lam_heads, do_heads, lse, delta, offsets, kv_index, q_end, segments)
    )
    group = heads // kv_heads

    def sum_groups(x):  # [batch * heads, Tp, d] -> [batch, seq, kv_heads, d]
        x = x[:, :seq_len].reshape(batch, kv_heads, group, seq_len, dim).sum(axis=2)
        return x.transpose(0, 2, 1, 3)

    return (
        _heads_last(dq, batch, seq_len).astype(q.dtype),
        sum_groups(dk).astype(k.dtype),
        sum_groups(dv).astype(v.dtype),
        dlam[:, :seq_len].reshape(batch, heads, seq_len),
    )


_attend = fa_tiling.blockwise_vjp(_forward, _backward)
