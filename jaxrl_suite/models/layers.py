"""Building blocks shared by every block variant: initializers, RMSNorms, rotary embedding, SwiGLU, token shift.

The Pro pieces (per-head norms, KV-shift, SwiGLU 3.5x) follow the Forgetting Transformer paper (arXiv 2503.02130).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxrl_suite.models.config import ModelConfig


def compute_dtype(config: ModelConfig) -> jnp.dtype:
    return jnp.dtype(config.compute_dtype)


def normal_init(config: ModelConfig) -> nn.initializers.Initializer:
    """N(0, init_std): the paper's initialization for every Linear and the embedding."""
    return nn.initializers.normal(stddev=config.init_std)


def residual_norm(config: ModelConfig, name: str | None = None) -> nn.RMSNorm:
    """RMSNorm over d_model with a learned scale (statistics in float32)."""
    return nn.RMSNorm(epsilon=config.norm_eps, dtype=compute_dtype(config), param_dtype=jnp.float32, name=name)


def per_head_norm(config: ModelConfig, name: str | None = None) -> nn.RMSNorm:
    """RMSNorm over head_dim of [..., heads, head_dim] with a separate scale per head ([heads, head_dim])."""
    return nn.RMSNorm(epsilon=config.norm_eps, dtype=compute_dtype(config), param_dtype=jnp.float32,
                      reduction_axes=-1, feature_axes=(-2, -1), name=name)


def forget_gate_bias(config: ModelConfig) -> nn.initializers.Initializer:
    """Zero bias (f ~ 0.5), or b_h = -log(expm1(1/T_h)) so that log f_h = -1/T_h, T_h log-spaced."""
    if config.forget_gate_bias_init is None:
        return nn.initializers.zeros

    def init(key: jax.Array, shape: tuple[int, ...], dtype: jnp.dtype = jnp.float32) -> jax.Array:
        del key
        low, high = config.forget_gate_bias_init
        decay_times = np.exp(np.linspace(math.log(low), math.log(high), shape[-1]))
        return jnp.asarray(-np.log(np.expm1(1.0 / decay_times)), dtype)

    return init


def rotary_embedding(x: jax.Array, positions: jax.Array, base: float) -> jax.Array:
    """Rotates pairs (x[..., i], x[..., i + d/2]) by angle position * base^(-2i/d).

    x: [batch, seq, heads, head_dim]; positions: [batch, seq] int. Computed in float32.
    """
    half = x.shape[-1] // 2
    inverse_frequency = base ** (-jnp.arange(half, dtype=jnp.float32) / half)
    angles = positions[..., None, None].astype(jnp.float32) * inverse_frequency  # [batch, seq, 1, half]
    cos, sin = jnp.cos(angles), jnp.sin(angles)
    first, second = jnp.split(x.astype(jnp.float32), 2, axis=-1)
    rotated = jnp.concatenate([first * cos - second * sin, first * sin + second * cos], axis=-1)
    return rotated.astype(x.dtype)


def token_shift(current: jax.Array, shift_logit: jax.Array, previous_last: jax.Array,
                segment_starts: jax.Array | None = None) -> jax.Array:
    """KV-shift: out_t = a_t * current_{t-1} + (1 - a_t) * current_t with a_t = sigmoid(shift_logit_t).

    current: [batch, seq, heads, head_dim]; shift_logit: [batch, seq, heads];
    previous_last: [batch, heads, head_dim], the unshifted value before position 0 (zeros at a sequence start);
    segment_starts: optional [batch, seq] bool, where current_{t-1} is replaced by zeros (a new segment).
    """
    previous = jnp.concatenate([previous_last[:, None].astype(current.dtype), current[:, :-1]], axis=1)
    if segment_starts is not None:
        previous = jnp.where(segment_starts[..., None, None], jnp.zeros((), previous.dtype), previous)
    mix = jax.nn.sigmoid(shift_logit.astype(jnp.float32))[..., None]
    return (mix * previous + (1.0 - mix) * current).astype(current.dtype)


def segment_starts(segment_ids: jax.Array) -> jax.Array:
    """[batch, seq] bool, True where a segment begins (position 0 and wherever the id changes)."""
    changed = segment_ids[:, 1:] != segment_ids[:, :-1]
    return jnp.pad(changed, ((0, 0), (1, 0)), constant_values=True)


class SwiGLU(nn.Module):
    """down(silu(gate(x)) * up(x)): [batch, seq, d_model] -> [batch, seq, d_model]."""

    config: ModelConfig

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        config = self.config
        dense = dict(use_bias=False, kernel_init=normal_init(config), dtype=compute_dtype(config),
                     param_dtype=jnp.float32)
        gate = nn.Dense(config.mlp_hidden, name="gate", **dense)(x)
        up = nn.Dense(config.mlp_hidden, name="up", **dense)(x)
        return nn.Dense(config.d_model, name="down", **dense)(nn.silu(gate) * up)
