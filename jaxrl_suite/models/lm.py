"""Decoder-only language model: embedding, pre-norm blocks (attention + SwiGLU), final norm, vocabulary head.

One module covers FoX, FoX-Pro and the RoPE Transformer baseline (arXiv 2503.02130); ModelConfig picks the variant.
"""

from __future__ import annotations

import dataclasses

import chex
import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp

from jaxrl_suite.models.attention import Attention, AttentionState
from jaxrl_suite.models.config import ModelConfig
from jaxrl_suite.models.layers import SwiGLU, compute_dtype, normal_init, residual_norm

AcpEps = float | tuple[float | None, ...] | None


class DecodeCache(flax.struct.PyTreeNode):
    """KV cache of a whole model: one AttentionState per layer, padded to max_length; `length` tokens are filled."""

    layers: tuple[AttentionState, ...]
    length: jax.Array  # [] int32


class Block(nn.Module):
    """x + attention(norm(x)), then + SwiGLU(norm(.)): [batch, seq, d_model] -> same."""

    config: ModelConfig

    def setup(self) -> None:
        self.attention_norm = residual_norm(self.config)
        self.attention = Attention(self.config)
        self.mlp_norm = residual_norm(self.config)
        self.mlp = SwiGLU(self.config)

    def __call__(self, x: jax.Array, acp_eps: float | None = None) -> tuple[jax.Array, AttentionState]:
        attended, state = self.attention(self.attention_norm(x), acp_eps)
        x = x + attended
        return x + self.mlp(self.mlp_norm(x)), state

    def decode(self, x: jax.Array, state: AttentionState, position: jax.Array) -> tuple[jax.Array, AttentionState]:
        attended, state = self.attention.decode(self.attention_norm(x), state, position)
        x = x + attended
        return x + self.mlp(self.mlp_norm(x)), state


class LanguageModel(nn.Module):
    """tokens [batch, seq] int32 -> next-token logits [batch, seq, vocab_size] float32."""

    config: ModelConfig

    def setup(self) -> None:
        config = self.config
        self.embedding = nn.Embed(config.vocab_size, config.d_model, embedding_init=normal_init(config),
                                  dtype=compute_dtype(config), param_dtype=jnp.float32)
        self.blocks = [Block(config, name=f"block_{index}") for index in range(config.num_layers)]
        self.final_norm = residual_norm(config)
        if not config.tie_embeddings:
            self.head = nn.Dense(config.vocab_size, use_bias=False, kernel_init=normal_init(config),
                                 dtype=jnp.float32, param_dtype=jnp.float32)

    def _logits(self, x: jax.Array) -> jax.Array:
        x = self.final_norm(x).astype(jnp.float32)
        if self.config.tie_embeddings:
            return self.embedding.attend(x)
        return self.head(x)

    def forward_with_states(self, tokens: jax.Array, acp_eps: AcpEps = None
                            ) -> tuple[jax.Array, tuple[AttentionState, ...]]:
        """Logits and every layer's AttentionState (the unpadded KV cache of `tokens`).

        acp_eps: None (no pruning), one eps for every layer, or a tuple with one entry (eps or None) per layer.
        """
        chex.assert_rank(tokens, 2)
        if isinstance(acp_eps, tuple) and len(acp_eps) != self.config.num_layers:
            raise ValueError(f"acp_eps has {len(acp_eps)} entries for {self.config.num_layers} layers")
        x = self.embedding(tokens)
        states = []
        for index, block in enumerate(self.blocks):
            x, state = block(x, acp_eps[index] if isinstance(acp_eps, tuple) else acp_eps)
            states.append(state)
        logits = self._logits(x)
        chex.assert_shape(logits, tokens.shape + (self.config.vocab_size,))
        return logits, tuple(states)

    def __call__(self, tokens: jax.Array, acp_eps: AcpEps = None) -> jax.Array:
        return self.forward_with_states(tokens, acp_eps)[0]

    def prefill(self, tokens: jax.Array, max_length: int) -> tuple[jax.Array, DecodeCache]:
        """Logits of the prompt [batch, prompt_len, vocab] and a cache with room for max_length tokens."""
        prompt_length = tokens.shape[1]
        logits, states = self.forward_with_states(tokens)

        def pad(array: jax.Array) -> jax.Array:
            padding = [(0, 0)] * array.ndim
            padding[1] = (0, max_length - prompt_length)
            return jnp.pad(array, padding)

        layers = tuple(state.replace(keys=pad(state.keys), values=pad(state.values),
                                     log_lambda=pad(state.log_lambda)) for state in states)
        return logits, DecodeCache(layers=layers, length=jnp.asarray(prompt_length, jnp.int32))

    def decode_step(self, token: jax.Array, cache: DecodeCache) -> tuple[jax.Array, DecodeCache]:
        """Appends token [batch] at position cache.length; returns its logits [batch, vocab] and the new cache."""
        chex.assert_rank(token, 1)
        x = self.embedding(token[:, None])
        states = []
        for block, state in zip(self.blocks, cache.layers, strict=True):
            x, state = block.decode(x, state, cache.length)
            states.append(state)
        logits = self._logits(x)[:, 0]
        return logits, DecodeCache(layers=tuple(states), length=cache.length + 1)


def count_parameters(params: chex.ArrayTree) -> int:
    return sum(int(leaf.size) for leaf in jax.tree.leaves(params))


def init_params(config: ModelConfig, key: jax.Array, sequence_length: int = 8) -> chex.ArrayTree:
    """Float32 parameters of LanguageModel(config) (shapes do not depend on sequence_length)."""
    tokens = jnp.zeros((1, sequence_length), jnp.int32)
    # Parameters do not depend on the attention kernel; the dense one keeps GPU kernel compiles out of init.
    shape_only = dataclasses.replace(config, attention_impl="reference", attention_block_size=0)
    return jax.jit(LanguageModel(shape_only).init)(key, tokens)["params"]
