"""Pallas GPU kernels for Forgetting Attention (FoX, arXiv 2503.02130) with ACP tile skipping.

Forward, dK/dV and dQ kernels never hold a [seq, seq] buffer: each tile adds Lambda_i - Lambda_j
to q.k inside an online softmax; `interpret=True` runs the same kernels on CPU.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import chex
import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl

from jaxrl_suite.ops import acp, fa_tiling

_F32 = jnp.float32
# The kernels work in base 2 (exp2 is the native instruction); lse is stored in base 2 too.
_LOG2E = math.log2(math.e)
# Triton pipeline depth. On an H100 (bf16, d=128) 3 forward stages won at T=8192 but lost
# ~20% at T=4096 and 16384, and the backward kernels were fastest with 2.
_FWD_STAGES, _BWD_STAGES = 2, 2


@dataclasses.dataclass(frozen=True)
class _Static:
    fwd: fa_tiling.TileGrid
    bwd: fa_tiling.TileGrid
    scale: float
    acp_eps: float | None
    interpret: bool
    num_warps: int | None
    num_stages: int | None


def forgetting_attention_pallas(
    q: chex.Array,
    k: chex.Array,
    v: chex.Array,
    lam: chex.Array,
    start_offset: chex.Array,
    *,
    scale: float,
    block_q: int,
    block_k: int,
    block_q_bwd: int,
    block_k_bwd: int,
    acp_eps: float | None = None,
    interpret: bool = False,
    num_warps: int | None = None,
    num_stages: int | None = None,
) -> chex.Array:
    """Forgetting attention through Pallas kernels; same contract as the reference.

    q: [batch, seq, heads, head_dim]; k, v: [batch, seq, kv_heads, head_dim];
    lam: [batch, heads, seq] float32; start_offset: [batch] int32. Block sizes are powers of 2.
    """
    batch, seq_len, heads, _ = q.shape
    chex.assert_shape(lam, (batch, heads, seq_len))
    chex.assert_shape(start_offset, (batch,))
    padded_len = fa_tiling.round_up(seq_len, max(block_q, block_k, block_q_bwd, block_k_bwd))
    static = _Static(
        fwd=fa_tiling.make_grid(seq_len, block_q, block_k, padded_len=padded_len),
        bwd=fa_tiling.make_grid(seq_len, block_q_bwd, block_k_bwd, padded_len=padded_len),
        scale=float(scale),
        acp_eps=acp_eps,
        interpret=interpret,
        num_warps=num_warps,
        num_stages=num_stages,
    )
    return _attend(q, k, v, lam, start_offset, None, static)


def _dot(a, b, contract_a: int, contract_b: int):
    """2-D matmul contracting the given axes, float32 accumulation."""
    return lax.dot_general(a, b, (((contract_a,), (contract_b,)), ((), ())), preferred_element_type=_F32)


def _compiler_params(static: _Static, num_warps: int, default_stages: int):
    if static.interpret:
        return None
    from jax.experimental.pallas import triton as plgpu

    stages = default_stages if static.num_stages is None else static.num_stages
    return plgpu.CompilerParams(num_warps=num_warps, num_stages=stages)


def _default_warps(static: _Static, block_a: int, block_b: int) -> int:
    if static.num_warps is not None:
        return static.num_warps
    return 4 if block_a * block_b < 128 * 128 else 8


def _prepare(q, k, v, lam, start_offset, grid: fa_tiling.TileGrid, static: _Static):
    """Pads time and head_dim (to a power of 2) and plans which tiles the kernels visit."""
    head_dim = q.shape[-1]
    dim_padded = max(16, pl.next_power_of_2(head_dim))

    def pad(x):
        x = fa_tiling.pad_axis(x, grid.padded_len, axis=1)
        return fa_tiling.pad_axis(x, dim_padded, axis=3)

    lam_padded = fa_tiling.pad_axis(lam, grid.padded_len, axis=2, edge=True)
    k_start, q_end = acp.tile_ranges(q, k, lam_padded, start_offset, grid, static.scale, static.acp_eps)
    return pad(q), pad(k), pad(v), lam_padded, k_start, q_end


def _tile_logits2(q_tile, k_tile, lam_q2, lam_k2, qk_scale2):
    """Base-2 logits (q.k * scale + Lambda_i - Lambda_j) * log2(e), [block_q, block_k]."""
    return _dot(q_tile, k_tile, 1, 1) * qk_scale2 + lam_q2[:, None] - lam_k2[None, :]


def _forward_kernel(
    q_ref, k_ref, v_ref, lam_q_ref, lam_k_ref, offset_ref, k_start_ref, out_ref, lse_ref, *, grid, scale
):
    i = pl.program_id(0)
    bq, bk = grid.block_q, grid.block_k
    q_tile = q_ref[...]
    lam_q2 = lam_q_ref[...] * _LOG2E
    offset = offset_ref[0]
    rows = i * bq + jnp.arange(bq)

    def visit(j, carry, masked):
        acc, row_max, row_sum = carry
        keys = pl.ds(j * bk, bk)
        logits = _tile_logits2(q_tile, k_ref[keys, :], lam_q2, lam_k_ref[keys] * _LOG2E, scale * _LOG2E)
        if masked:
            mask = fa_tiling.tile_mask(rows, j * bk + jnp.arange(bk), offset)
            logits = jnp.where(mask, logits, fa_tiling.MASK_VALUE)
        new_max = jnp.maximum(row_max, jnp.max(logits, axis=1))
        probs = jnp.exp2(logits - new_max[:, None])
        if masked:
            probs = jnp.where(mask, probs, 0.0)
        rescale = jnp.exp2(row_max - new_max)
        v_tile = v_ref[keys, :]
        acc = acc * rescale[:, None] + _dot(probs.astype(v_tile.dtype), v_tile, 1, 0)
        return acc, new_max, row_sum * rescale + jnp.sum(probs, axis=1)

    init = (
        jnp.zeros((bq, q_tile.shape[-1]), _F32),
        jnp.full((bq,), fa_tiling.MASK_VALUE, _F32),
        jnp.zeros((bq,), _F32),
    )
    k_lo, k_hi = k_start_ref[0], fa_tiling.causal_k_end(i, grid)
    unmasked = fa_tiling.unmasked_k_span(i, k_lo, k_hi, offset, grid)
    acc, row_max, row_sum = fa_tiling.visit_spans(visit, init, k_lo, k_hi, *unmasked)
    seen = row_sum > 0
    safe_sum = jnp.where(seen, row_sum, 1.0)
    out_ref[...] = (acc / safe_sum[:, None]).astype(out_ref.dtype)
    lse_ref[...] = jnp.where(seen, row_max + jnp.log2(safe_sum), 0.0)


def _forward(q, k, v, lam, start_offset, segment_ids, static: _Static):
    """Returns out [batch, seq, heads, d] and base-2 lse [batch, heads, padded_len]."""
    del segment_ids  # always None: the entry point refuses segment_ids for impl='pallas'
    grid = static.fwd
    batch, seq_len, heads, head_dim = q.shape
    group = heads // k.shape[2]
    q_p, k_p, v_p, lam_p, k_start, _ = _prepare(q, k, v, lam, start_offset, grid, static)
    dim_padded, padded_len, bq = q_p.shape[-1], grid.padded_len, grid.block_q
    kernel = functools.partial(_forward_kernel, grid=grid, scale=static.scale)
    out, lse = pl.pallas_call(
        kernel,
        grid=(grid.num_q_blocks, batch, heads),
        in_specs=[
            pl.BlockSpec((None, bq, None, dim_padded), lambda i, b, h: (b, i, h, 0)),
            pl.BlockSpec((None, padded_len, None, dim_padded), lambda i, b, h: (b, 0, lax.div(h, group), 0)),
            pl.BlockSpec((None, padded_len, None, dim_padded), lambda i, b, h: (b, 0, lax.div(h, group), 0)),
            pl.BlockSpec((None, None, bq), lambda i, b, h: (b, h, i)),
            pl.BlockSpec((None, None, padded_len), lambda i, b, h: (b, h, 0)),
            pl.BlockSpec((1,), lambda i, b, h: (b,)),
            pl.BlockSpec((None, None, 1), lambda i, b, h: (b, h, i)),
        ],
        out_specs=[
            pl.BlockSpec((None, bq, None, dim_padded), lambda i, b, h: (b, i, h, 0)),
            pl.BlockSpec((None, None, bq), lambda i, b, h: (b, h, i)),
        ],
        out_shape=[
            jax.ShapeDtypeStruct((batch, padded_len, heads, dim_padded), q.dtype),
            jax.ShapeDtypeStruct((batch, heads, padded_len), _F32),
        ],
        compiler_params=_compiler_params(static, _default_warps(static, bq, grid.block_k), _FWD_STAGES),
        interpret=static.interpret,
        name="forgetting_attention_fwd",
    )(q_p, k_p, v_p, lam_p, lam_p, start_offset, k_start)
    return out[:, :seq_len, :, :head_dim], lse


def _dkv_kernel(
    q_ref, k_ref, v_ref, do_ref, lam_q_ref, lam_k_ref, lse_ref, delta_ref, offset_ref, q_end_ref,
    dk_ref, dv_ref, dlam_k_ref, *, grid, scale,
):  # fmt: skip
    j = pl.program_id(0)
    bq, bk = grid.block_q, grid.block_k
    k_tile, v_tile = k_ref[...], v_ref[...]
    lam_k2 = lam_k_ref[...] * _LOG2E
    offset = offset_ref[0]
    cols = j * bk + jnp.arange(bk)

    def visit(i, carry, masked):
        dk, dv, dlam_k = carry
        rows = pl.ds(i * bq, bq)
        q_tile, do_tile = q_ref[rows, :], do_ref[rows, :]
        logits = _tile_logits2(q_tile, k_tile, lam_q_ref[rows] * _LOG2E, lam_k2, scale * _LOG2E)
        probs = jnp.exp2(logits - lse_ref[rows][:, None])
        if masked:
            probs = jnp.where(fa_tiling.tile_mask(i * bq + jnp.arange(bq), cols, offset), probs, 0.0)
        dv = dv + _dot(probs.astype(do_tile.dtype), do_tile, 0, 0)
        d_logits = probs * (_dot(do_tile, v_tile, 1, 1) - delta_ref[rows][:, None])
        dk = dk + _dot(d_logits.astype(q_tile.dtype), q_tile, 0, 0)
        return dk, dv, dlam_k - jnp.sum(d_logits, axis=0)

    zeros = jnp.zeros(k_tile.shape, _F32)
    q_lo, q_hi = fa_tiling.causal_q_start(j, grid), q_end_ref[0]
    split = fa_tiling.unmasked_q_start(j, q_lo, q_hi, offset, grid)
    init = (zeros, zeros, jnp.zeros((bk,), _F32))
    dk, dv, dlam_k = fa_tiling.visit_spans(visit, init, q_lo, q_hi, split, q_hi)
    dk_ref[...] = (dk * scale).astype(dk_ref.dtype)
    dv_ref[...] = dv.astype(dv_ref.dtype)
    dlam_k_ref[...] = dlam_k


def _dq_kernel(
    q_ref, k_ref, v_ref, do_ref, lam_q_ref, lam_k_ref, lse_ref, delta_ref, offset_ref, k_start_ref,
    dq_ref, dlam_q_ref, *, grid, scale,
):  # fmt: skip
    i = pl.program_id(0)
    bq, bk = grid.block_q, grid.block_k
    q_tile, do_tile = q_ref[...], do_ref[...]
    lam_q2 = lam_q_ref[...] * _LOG2E
    lse2, delta = lse_ref[...], delta_ref[...]
    offset = offset_ref[0]
    rows = i * bq + jnp.arange(bq)

    def visit(j, carry, masked):
        dq, dlam_q = carry
        keys = pl.ds(j * bk, bk)
        k_tile, v_tile = k_ref[keys, :], v_ref[keys, :]
        logits = _tile_logits2(q_tile, k_tile, lam_q2, lam_k_ref[keys] * _LOG2E, scale * _LOG2E)
        probs = jnp.exp2(logits - lse2[:, None])
        if masked:
            probs = jnp.where(fa_tiling.tile_mask(rows, j * bk + jnp.arange(bk), offset), probs, 0.0)
        d_logits = probs * (_dot(do_tile, v_tile, 1, 1) - delta[:, None])
        dq = dq + _dot(d_logits.astype(k_tile.dtype), k_tile, 1, 0)
        return dq, dlam_q + jnp.sum(d_logits, axis=1)

    k_lo, k_hi = k_start_ref[0], fa_tiling.causal_k_end(i, grid)
    unmasked = fa_tiling.unmasked_k_span(i, k_lo, k_hi, offset, grid)
    init = (jnp.zeros(q_tile.shape, _F32), jnp.zeros((bq,), _F32))
    dq, dlam_q = fa_tiling.visit_spans(visit, init, k_lo, k_hi, *unmasked)
    dq_ref[...] = (dq * scale).astype(dq_ref.dtype)
    dlam_q_ref[...] = dlam_q


def _backward(q, k, v, lam, start_offset, segment_ids, out, lse, d_out, static: _Static):
    """Cotangents (dq, dk, dv, dlam): one kernel over key blocks, one over query blocks."""
    del segment_ids  # always None, as in _forward
    grid = static.bwd
    batch, seq_len, heads, head_dim = q.shape
    kv_heads = k.shape[2]
    group = heads // kv_heads
    q_p, k_p, v_p, lam_p, k_start, q_end = _prepare(q, k, v, lam, start_offset, grid, static)
    dim_padded, padded_len = q_p.shape[-1], grid.padded_len
    bq, bk = grid.block_q, grid.block_k
    do_p = fa_tiling.pad_axis(fa_tiling.pad_axis(d_out, padded_len, axis=1), dim_padded, axis=3)
    delta = jnp.sum(out.astype(_F32) * d_out.astype(_F32), axis=-1).transpose(0, 2, 1)
    delta = fa_tiling.pad_axis(delta, padded_len, axis=2)
    # lse comes from the forward grid; it is indexed per padded position, so grids may differ
    # in block sizes as long as they share the padded length (forgetting_attention_pallas).

    operands = (q_p, k_p, v_p, do_p, lam_p, lam_p, lse, delta, start_offset)
    whole_seq = pl.BlockSpec((None, padded_len, None, dim_padded), lambda n, b, h: (b, 0, h, 0))
    whole_kv = pl.BlockSpec(
        (None, padded_len, None, dim_padded), lambda n, b, h: (b, 0, lax.div(h, group), 0)
    )
    whole_row = pl.BlockSpec((None, None, padded_len), lambda n, b, h: (b, h, 0))
    offset_spec = pl.BlockSpec((1,), lambda n, b, h: (b,))
    per_block = pl.BlockSpec((None, None, 1), lambda n, b, h: (b, h, n))

    def seq_block(size):
        return pl.BlockSpec((None, size, None, dim_padded), lambda n, b, h: (b, n, h, 0))

    def kv_block(size):
        return pl.BlockSpec((None, size, None, dim_padded), lambda n, b, h: (b, n, lax.div(h, group), 0))

    def row_block(size):
        return pl.BlockSpec((None, None, size), lambda n, b, h: (b, h, n))

    dk_heads, dv_heads, dlam_k = pl.pallas_call(
        functools.partial(_dkv_kernel, grid=grid, scale=static.scale),
        grid=(grid.num_k_blocks, batch, heads),
        in_specs=[
            whole_seq,
            kv_block(bk),
            kv_block(bk),
            whole_seq,
            whole_row,
            row_block(bk),
            whole_row,
            whole_row,
            offset_spec,
            per_block,
        ],  # fmt: skip
        out_specs=[seq_block(bk), seq_block(bk), row_block(bk)],
        out_shape=[
            jax.ShapeDtypeStruct((batch, padded_len, heads, dim_padded), _F32 if group > 1 else k.dtype),
            jax.ShapeDtypeStruct((batch, padded_len, heads, dim_padded), _F32 if group > 1 else v.dtype),
            jax.ShapeDtypeStruct((batch, heads, padded_len), _F32),
        ],
        compiler_params=_compiler_params(static, _default_warps(static, bq, bk), _BWD_STAGES),
        interpret=static.interpret,
        name="forgetting_attention_dkv",
    )(*operands, q_end)

    dq, dlam_q = pl.pallas_call(
        functools.partial(_dq_kernel, grid=grid, scale=static.scale),
        grid=(grid.num_q_blocks, batch, heads),
        in_specs=[
            seq_block(bq),
            whole_kv,
            whole_kv,
            seq_block(bq),
            row_block(bq),
            whole_row,
            row_block(bq),
            row_block(bq),
            offset_spec,
            per_block,
        ],  # fmt: skip
        out_specs=[seq_block(bq), row_block(bq)],
        out_shape=[
            jax.ShapeDtypeStruct((batch, padded_len, heads, dim_padded), q.dtype),
            jax.ShapeDtypeStruct((batch, heads, padded_len), _F32),
        ],
        compiler_params=_compiler_params(static, _default_warps(static, bq, bk), _BWD_STAGES),
        interpret=static.interpret,
        name="forgetting_attention_dq",
    )(*operands, k_start)

    def per_kv_head(x, dtype):  # [batch, Tp, heads, Dp] -> [batch, seq, kv_heads, head_dim]
        x = x[:, :seq_len, :, :head_dim]
        if group > 1:
            x = x.reshape(batch, seq_len, kv_heads, group, head_dim).sum(axis=3)
        return x.astype(dtype)

    dlam = (dlam_q + dlam_k)[:, :, :seq_len]
    return dq[:, :seq_len, :, :head_dim], per_kv_head(dk_heads, k.dtype), per_kv_head(dv_heads, v.dtype), dlam


_attend = fa_tiling.blockwise_vjp(_forward, _backward)
