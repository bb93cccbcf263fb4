"""Dense Forgetting Attention (FoX, arXiv 2503.02130): the ground truth the kernels are tested against.

Materialises the [seq, seq] bias D_ij = Lambda_i - Lambda_j and runs everything in float32.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from jaxrl_suite.ops.fa_tiling import MASK_VALUE


def attention_weights(
    q: chex.Array,
    k: chex.Array,
    lam: chex.Array,
    start_offset: chex.Array,
    *,
    scale: float,
    keep: chex.Array | None = None,
    segment_ids: chex.Array | None = None,
) -> chex.Array:
    """[batch, heads, seq, seq] float32 softmax_j(q_i . k_j * scale + Lambda_i - Lambda_j).

    q: [batch, seq, heads, head_dim]; k: [batch, seq, kv_heads, head_dim];
    lam: [batch, heads, seq] float32 Lambda; start_offset: [batch] int;
    keep: optional [batch, heads, seq, seq] bool, further pairs to drop (e.g. ACP's skipped tiles);
    segment_ids: optional [batch, seq] int, query i sees key j only in its own segment.
    Rows with no visible key (before the offset) are all zero.
    """
    batch, seq_len, heads, _ = q.shape
    chex.assert_shape(lam, (batch, heads, seq_len))
    chex.assert_shape(start_offset, (batch,))
    keys = jnp.repeat(k.astype(jnp.float32), heads // k.shape[2], axis=2)
    logits = jnp.einsum("bqhd,bkhd->bhqk", q.astype(jnp.float32), keys, precision=jax.lax.Precision.HIGHEST)
    logits = logits * scale + lam[..., :, None] - lam[..., None, :]
    positions = jnp.arange(seq_len)
    mask = (positions[:, None] >= positions[None, :])[None, None] & (
        positions[None, None, None, :] >= start_offset[:, None, None, None]
    )
    if segment_ids is not None:
        chex.assert_shape(segment_ids, (batch, seq_len))
        mask = mask & (segment_ids[:, None, :, None] == segment_ids[:, None, None, :])
    if keep is not None:
        mask = mask & keep
    weights = jax.nn.softmax(jnp.where(mask, logits, MASK_VALUE), axis=-1)
    # A row with no visible key would otherwise average everything.
    return jnp.where(mask, weights, 0.0)


def forgetting_attention_reference(
    q: chex.Array,
    k: chex.Array,
    v: chex.Array,
    lam: chex.Array,
    start_offset: chex.Array,
    *,
    scale: float,
    keep: chex.Array | None = None,
    segment_ids: chex.Array | None = None,
) -> chex.Array:
    """o_i = sum_{offset <= j <= i} softmax_j(q_i . k_j * scale + Lambda_i - Lambda_j) v_j.

    q: [batch, seq, heads, head_dim]; k, v: [batch, seq, kv_heads, head_dim];
    lam: [batch, heads, seq] float32 Lambda; start_offset: [batch] int; keep, segment_ids: as in
    `attention_weights` (j then also runs over i's segment only). Returns [batch, seq, heads,
    head_dim] in q's dtype; rows before the offset are zero.
    """
    weights = attention_weights(q, k, lam, start_offset, scale=scale, keep=keep, segment_ids=segment_ids)
    values = jnp.repeat(v.astype(jnp.float32), q.shape[2] // v.shape[2], axis=2)
    out = jnp.einsum("bhqk,bkhd->bqhd", weights, values, precision=jax.lax.Precision.HIGHEST)
    return out.astype(q.dtype)
