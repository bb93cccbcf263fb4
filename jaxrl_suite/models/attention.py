"""Attention sublayer of every block: Forgetting Attention (FoX) or RoPE softmax attention, with the Pro options.

Forgetting Transformer (arXiv 2503.02130): per-head forget gate, output gate, output norm, QK-norm, KV-shift.
"""

from __future__ import annotations

import math

import chex
import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp

from jaxrl_suite.models.config import ModelConfig
from jaxrl_suite.models.layers import (
    compute_dtype,
    forget_gate_bias,
    normal_init,
    per_head_norm,
    rotary_embedding,
    segment_starts,
    token_shift,
)
from jaxrl_suite.ops import forgetting_attention


class AttentionState(flax.struct.PyTreeNode):
    """What later tokens need from earlier ones: the KV cache of one layer.

    keys, values: [batch, length, kv_heads, head_dim] (after shift, QK-norm and RoPE);
    log_lambda:   [batch, length, heads] float32, cumulative sum of log forget gates (zeros for softmax);
    key_shift, value_shift: [batch, kv_heads, head_dim], the unshifted key/value of the last token.
    """

    keys: jax.Array
    values: jax.Array
    log_lambda: jax.Array
    key_shift: jax.Array
    value_shift: jax.Array


def attend_to_cache(query: jax.Array, state: AttentionState, query_log_lambda: jax.Array,
                    valid_length: jax.Array) -> jax.Array:
    """One new query against the cached keys: softmax_j(q.k_j / sqrt(d) + Lambda_t - Lambda_j) over j < valid_length.

    query: [batch, 1, heads, head_dim]; query_log_lambda: [batch, heads]; returns [batch, 1, heads, head_dim].
    Query head h reads kv head h // (heads // kv_heads). Dense over the cache: decoding reads every key anyway.
    """
    batch, _, heads, head_dim = query.shape
    cache_length, kv_heads = state.keys.shape[1], state.keys.shape[2]
    group = heads // kv_heads
    grouped_query = query.reshape(batch, kv_heads, group, head_dim).astype(jnp.float32)
    scores = jnp.einsum("bkgd,blkd->bkgl", grouped_query, state.keys.astype(jnp.float32)) / math.sqrt(head_dim)
    key_log_lambda = state.log_lambda.reshape(batch, cache_length, kv_heads, group).transpose(0, 2, 3, 1)
    decay = query_log_lambda.reshape(batch, kv_heads, group)[..., None] - key_log_lambda
    visible = jnp.arange(cache_length) < valid_length
    weights = jax.nn.softmax(jnp.where(visible, scores + decay, -jnp.inf), axis=-1)
    output = jnp.einsum("bkgl,blkd->bkgd", weights, state.values.astype(jnp.float32))
    return output.reshape(batch, 1, heads, head_dim).astype(query.dtype)


class Attention(nn.Module):
    """[batch, seq, d_model] -> [batch, seq, d_model], causal; also returns this layer's AttentionState."""

    config: ModelConfig

    def setup(self) -> None:
        config = self.config
        heads, kv_heads, head_dim = config.num_heads, config.kv_heads, config.head_dim
        dense = dict(use_bias=False, kernel_init=normal_init(config), dtype=compute_dtype(config),
                     param_dtype=jnp.float32)
        self.query = nn.DenseGeneral((heads, head_dim), **dense)
        self.key = nn.DenseGeneral((kv_heads, head_dim), **dense)
        self.value = nn.DenseGeneral((kv_heads, head_dim), **dense)
        self.output = nn.DenseGeneral(config.d_model, axis=(-2, -1), **dense)
        if config.attention == "forgetting":
            self.forget_gate = nn.Dense(heads, use_bias=True, kernel_init=normal_init(config),
                                        bias_init=forget_gate_bias(config), dtype=jnp.float32,
                                        param_dtype=jnp.float32)
        if config.kv_shift:
            gate = dict(use_bias=False, kernel_init=normal_init(config), dtype=jnp.float32, param_dtype=jnp.float32)
            self.key_shift_gate = nn.Dense(kv_heads, **gate)
            self.value_shift_gate = nn.Dense(kv_heads, **gate)
        if config.qk_norm:
            self.query_norm = per_head_norm(self.config)
            self.key_norm = per_head_norm(self.config)
        if config.output_gate:
            self.output_gate = nn.DenseGeneral((heads, head_dim), **dense)
        if config.output_norm:
            self.output_norm = per_head_norm(self.config)

    def _project(self, x: jax.Array, positions: jax.Array, key_shift: jax.Array, value_shift: jax.Array,
                 starts: jax.Array | None = None):
        """q [b, t, heads, d], k/v [b, t, kv_heads, d], log forget gates [b, t, heads] float32, new shift states.

        starts: optional [b, t] bool segment starts, where KV-shift sees zeros instead of the previous token.
        """
        config = self.config
        query, key, value = self.query(x), self.key(x), self.value(x)
        raw_last_key, raw_last_value = key[:, -1], value[:, -1]
        if config.kv_shift:
            key = token_shift(key, self.key_shift_gate(x.astype(jnp.float32)), key_shift, starts)
            value = token_shift(value, self.value_shift_gate(x.astype(jnp.float32)), value_shift, starts)
        if config.qk_norm:
            query, key = self.query_norm(query), self.key_norm(key)
        if config.rope:
            query = rotary_embedding(query, positions, config.rope_base)
            key = rotary_embedding(key, positions, config.rope_base)
        if config.attention == "forgetting":
            log_fgate = jax.nn.log_sigmoid(self.forget_gate(x.astype(jnp.float32)))
        else:
            log_fgate = jnp.zeros(x.shape[:2] + (config.num_heads,), jnp.float32)
        return query, key, value, log_fgate, raw_last_key, raw_last_value

    def _finish(self, attended: jax.Array, x: jax.Array) -> jax.Array:
        if self.config.output_norm:
            attended = self.output_norm(attended)
        if self.config.output_gate:
            attended = attended * jax.nn.sigmoid(self.output_gate(x))
        return self.output(attended.astype(compute_dtype(self.config)))

    def __call__(self, x: jax.Array, acp_eps: float | None = None,
                 segment_ids: jax.Array | None = None) -> tuple[jax.Array, AttentionState]:
        """Whole sequences from position 0. acp_eps enables Adaptive Computation Pruning in the kernel.

        segment_ids: optional [batch, seq] int episode/document ids; f = 0 at a segment's first step, so each
        segment is attended as its own sequence (KV-shift also restarts there; RoPE is relative, so global
        positions give the same scores). None leaves everything as without it. With segment ids the returned
        state spans several segments and is not a valid decode cache.
        """
        config = self.config
        batch, length, _ = x.shape
        positions = jnp.broadcast_to(jnp.arange(length), (batch, length))
        no_shift = jnp.zeros((batch, config.kv_heads, config.head_dim), x.dtype)
        starts = None
        if segment_ids is not None:
            chex.assert_shape(segment_ids, (batch, length))
            starts = segment_starts(segment_ids)
        query, key, value, log_fgate, last_key, last_value = self._project(x, positions, no_shift, no_shift, starts)
        # Kept for the ACP report (jaxrl_suite.lm.acp); dropped by XLA when nobody reads them.
        self.sow("intermediates", "attention_inputs", dict(query=query, key=key, log_fgate=log_fgate))
        block = config.attention_block_size or None
        attended = forgetting_attention(query, key, value, log_fgate, impl=config.attention_impl, acp_eps=acp_eps,
                                        block_q=block, block_k=block, segment_ids=segment_ids)
        chex.assert_shape(attended, (batch, length, config.num_heads, config.head_dim))
        state = AttentionState(keys=key, values=value, log_lambda=jnp.cumsum(log_fgate, axis=1),
                               key_shift=last_key, value_shift=last_value)
        return self._finish(attended, x), state

    def decode(self, x: jax.Array, state: AttentionState, position: jax.Array) -> tuple[jax.Array, AttentionState]:
        """One new token x [batch, 1, d_model] at `position` (= number of cached tokens, >= 1).

        The cache holds one segment per row: there are no segment ids here (start a new cache for a new one).
        """
        batch = x.shape[0]
        positions = jnp.full((batch, 1), position)
        query, key, value, log_fgate, last_key, last_value = self._project(
            x, positions, state.key_shift, state.value_shift)
        previous_lambda = jax.lax.dynamic_index_in_dim(state.log_lambda, position - 1, axis=1, keepdims=False)
        query_log_lambda = previous_lambda + log_fgate[:, 0]
        state = AttentionState(
            keys=jax.lax.dynamic_update_slice_in_dim(state.keys, key.astype(state.keys.dtype), position, axis=1),
            values=jax.lax.dynamic_update_slice_in_dim(state.values, value.astype(state.values.dtype), position, axis=1),
            log_lambda=jax.lax.dynamic_update_slice_in_dim(state.log_lambda, query_log_lambda[:, None], position, axis=1),
            key_shift=last_key.astype(state.key_shift.dtype), value_shift=last_value.astype(state.value_shift.dtype),
        )
        attended = attend_to_cache(query, state, query_log_lambda, position + 1)
        return self._finish(attended, x), state
