"""Tiny FLAM encoders in Flax linen: audio = 1-D conv over time + one self-attention layer giving frame
embeddings (global = time mean before the projection); text = byte embedding + masked mean pool + alpha/beta heads."""

from __future__ import annotations

import chex
import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from jaxrl_suite.audio import losses


class AudioEncoder(nn.Module):
    """feats [A, F, M] -> (frames [A, F, embed_dim], global [A, embed_dim])."""

    hidden: int = 64
    embed_dim: int = 32
    num_heads: int = 4  # head_dim 16

    @nn.compact
    def __call__(self, feats):
        chex.assert_rank(feats, 3)
        x = nn.LayerNorm()(feats)
        x = nn.gelu(nn.Conv(self.hidden, kernel_size=(3,), padding="SAME")(x))
        x = nn.LayerNorm()(x + nn.MultiHeadDotProductAttention(num_heads=self.num_heads)(x, x))
        proj = nn.Dense(self.embed_dim, name="proj")
        return proj(x), proj(x.mean(axis=1))


class TextEncoder(nn.Module):
    """bytes [K, L] int32 with mask [K, L] -> (embedding [K, embed_dim], alpha [K], beta [K]).
    alpha = exp(MLP) starts at ALPHA_INIT and beta = MLP starts at BETA_INIT (zero last kernels),
    both read the pre-projection text features."""

    hidden: int = 64
    embed_dim: int = 32

    @nn.compact
    def __call__(self, ids, mask):
        chex.assert_rank([ids, mask], [2, 2])
        x = nn.Embed(256, self.hidden)(ids)
        m = mask.astype(x.dtype)[..., None]
        pooled = (x * m).sum(axis=1) / jnp.maximum(m.sum(axis=1), 1.0)
        h = nn.gelu(nn.Dense(self.hidden)(pooled))
        embedding = nn.Dense(self.embed_dim, name="proj")(h)

        def head(name, init):
            hidden = nn.gelu(nn.Dense(self.hidden // 2, name=f"{name}_hidden")(h))
            out = nn.Dense(1, kernel_init=nn.initializers.zeros, bias_init=nn.initializers.constant(init), name=name)
            return out(hidden)[:, 0]

        alpha = jnp.exp(head("log_alpha", float(np.log(losses.ALPHA_INIT))))
        beta = head("beta", losses.BETA_INIT)
        return embedding, alpha, beta
