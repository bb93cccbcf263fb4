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
from jaxrl_suite.models.layout import STACKED_KEY, looped_key

AcpEps = float | tuple[float | None, ...] | None


class DecodeCache(flax.struct.PyTreeNode):
    """KV cache of a whole model, padded to max_length; `length` tokens are filled.

    layers: one AttentionState per layer (looped layout), or with scan_layers one AttentionState whose arrays
    have a leading layer axis.
    """

    layers: AttentionState | tuple[AttentionState, ...]
    length: jax.Array  # [] int32


class Block(nn.Module):
    """x + attention(norm(x)), then + SwiGLU(norm(.)): [batch, seq, d_model] -> same."""

    config: ModelConfig

    def setup(self) -> None:
        self.attention_norm = residual_norm(self.config)
        self.attention = Attention(self.config)
        self.mlp_norm = residual_norm(self.config)
        self.mlp = SwiGLU(self.config)

    def __call__(self, x: jax.Array, acp_eps: float | None = None,
                 segment_ids: jax.Array | None = None) -> tuple[jax.Array, AttentionState]:
        """segment_ids: optional [batch, seq] int, see `Attention.__call__` (f = 0 at a segment's first step)."""
        attended, state = self.attention(self.attention_norm(x), acp_eps, segment_ids)
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
        wrong_layout = looped_key(0) if config.scan_layers else STACKED_KEY
        if self.has_variable("params", wrong_layout):
            raise ValueError(f"LanguageModel: params have '{wrong_layout}' but model.scan_layers={config.scan_layers} "
                             "expects the other layout; convert with jaxrl_suite.models.layout (stack_layer_params / "
                             "unstack_layer_params) or set scan_layers to match")
        if config.scan_layers:
            self.blocks = self.param(STACKED_KEY, self._init_stacked_blocks)
        else:
            self.blocks = [Block(config, name=looped_key(index)) for index in range(config.num_layers)]
        self.final_norm = residual_norm(config)
        if not config.tie_embeddings:
            self.head = nn.Dense(config.vocab_size, use_bias=False, kernel_init=normal_init(config),
                                 dtype=jnp.float32, param_dtype=jnp.float32)

    def _init_stacked_blocks(self, key: jax.Array) -> chex.ArrayTree:
        """Every block's params stacked on a leading layer axis, from one vmapped block init."""
        # Shapes do not depend on the kernel or the length: the dense reference on one token is enough.
        shape_only = dataclasses.replace(self.config, attention_impl="reference", attention_block_size=0)
        x = jnp.zeros((1, 1, self.config.d_model), compute_dtype(self.config))

        def init_one(layer_key: jax.Array) -> chex.ArrayTree:
            return Block(shape_only, parent=None).init(layer_key, x)["params"]

        return jax.vmap(init_one)(jax.random.split(key, self.config.num_layers))

    def _scanned_blocks(self, x: jax.Array, acp_eps: AcpEps, segment_ids: jax.Array | None
                        ) -> tuple[jax.Array, AttentionState]:
        """All blocks over stacked params: one `lax.scan` per run of consecutive layers sharing an acp_eps."""
        collect = self.is_mutable_collection("intermediates")
        block = Block(self.config, parent=None)
        states, sown = [], []
        for first, end, eps in _eps_runs(acp_eps, self.config.num_layers):

            def body(x, layer_params, eps=eps):
                variables = {"params": layer_params}
                if not collect:
                    x, state = block.apply(variables, x, eps, segment_ids)
                    return x, (state, None)
                (x, state), written = block.apply(variables, x, eps, segment_ids, mutable=["intermediates"])
                return x, (state, written["intermediates"])

            run_params = jax.tree.map(lambda leaf, first=first, end=end: leaf[first:end], self.blocks)
            x, (state, written) = jax.lax.scan(body, x, run_params)
            states.append(state)
            sown.append(written)
        states = jax.tree.map(lambda *runs: jnp.concatenate(runs), *states)
        if collect:
            # The looped layout's names, so readers of block_<i>/attention/... need not know the layout.
            sown = jax.tree.map(lambda *runs: jnp.concatenate(runs), *sown)
            for index in range(self.config.num_layers):
                self.put_variable("intermediates", looped_key(index),
                                  jax.tree.map(lambda leaf, index=index: leaf[index], sown))
        return x, states

    def _logits(self, x: jax.Array) -> jax.Array:
        x = self.final_norm(x).astype(jnp.float32)
        if self.config.tie_embeddings:
            return self.embedding.attend(x)
        return self.head(x)

    def forward_with_states(self, tokens: jax.Array, acp_eps: AcpEps = None, segment_ids: jax.Array | None = None
                            ) -> tuple[jax.Array, AttentionState | tuple[AttentionState, ...]]:
        """Logits and every layer's AttentionState (the unpadded KV cache of `tokens`), laid out as DecodeCache.layers.

        acp_eps: None (no pruning), one eps for every layer, or a tuple with one entry (eps or None) per layer.
        segment_ids: optional [batch, seq] int, see `Attention.__call__` (f = 0 at a segment's first step).
        """
        chex.assert_rank(tokens, 2)
        if isinstance(acp_eps, tuple) and len(acp_eps) != self.config.num_layers:
            raise ValueError(f"acp_eps has {len(acp_eps)} entries for {self.config.num_layers} layers")
        if segment_ids is not None:
            chex.assert_shape(segment_ids, tokens.shape)
        x = self.embedding(tokens)
        if self.config.scan_layers:
            x, states = self._scanned_blocks(x, acp_eps, segment_ids)
        else:
            states = []
            for index, block in enumerate(self.blocks):
                x, state = block(x, acp_eps[index] if isinstance(acp_eps, tuple) else acp_eps, segment_ids)
                states.append(state)
            states = tuple(states)
        logits = self._logits(x)
        chex.assert_shape(logits, tokens.shape + (self.config.vocab_size,))
        return logits, states

    def __call__(self, tokens: jax.Array, acp_eps: AcpEps = None, segment_ids: jax.Array | None = None) -> jax.Array:
        return self.forward_with_states(tokens, acp_eps, segment_ids)[0]

    def prefill(self, tokens: jax.Array, max_length: int) -> tuple[jax.Array, DecodeCache]:
        """Logits of the prompt [batch, prompt_len, vocab] and a cache with room for max_length tokens.

        One segment per row: the cache has no segment ids (see `Attention.decode`).
        """
        prompt_length = tokens.shape[1]
        logits, states = self.forward_with_states(tokens)
        time_axis = 2 if self.config.scan_layers else 1  # after the layer axis of stacked states

        def pad(array: jax.Array) -> jax.Array:
            padding = [(0, 0)] * array.ndim
            padding[time_axis] = (0, max_length - prompt_length)
            return jnp.pad(array, padding)

        def pad_state(state: AttentionState) -> AttentionState:
            return state.replace(keys=pad(state.keys), values=pad(state.values), log_lambda=pad(state.log_lambda))

        layers = pad_state(states) if self.config.scan_layers else tuple(pad_state(state) for state in states)
        return logits, DecodeCache(layers=layers, length=jnp.asarray(prompt_length, jnp.int32))

    def decode_step(self, token: jax.Array, cache: DecodeCache) -> tuple[jax.Array, DecodeCache]:
        """Appends token [batch] at position cache.length; returns its logits [batch, vocab] and the new cache."""
        chex.assert_rank(token, 1)
        x = self.embedding(token[:, None])
        if self.config.scan_layers:
            block = Block(self.config, parent=None)

            def body(x, layer):
                layer_params, state = layer
                return block.apply({"params": layer_params}, x, state, cache.length, method=Block.decode)

            x, states = jax.lax.scan(body, x, (self.blocks, cache.layers))
        else:
            states = []
            for block, state in zip(self.blocks, cache.layers, strict=True):
                x, state = block.decode(x, state, cache.length)
                states.append(state)
            states = tuple(states)
        logits = self._logits(x)[:, 0]
        return logits, DecodeCache(layers=states, length=cache.length + 1)


def _eps_runs(acp_eps: AcpEps, num_layers: int) -> list[tuple[int, int, float | None]]:
    """(first, end, eps) for each run of consecutive layers with the same acp_eps."""
    per_layer = acp_eps if isinstance(acp_eps, tuple) else (acp_eps,) * num_layers
    runs: list[tuple[int, int, float | None]] = []
    for index, eps in enumerate(per_layer):
        if runs and runs[-1][2] == eps:
            runs[-1] = (runs[-1][0], index + 1, eps)
        else:
            runs.append((index, index + 1, eps))
    return runs


def count_parameters(params: chex.ArrayTree) -> int:
    return sum(int(leaf.size) for leaf in jax.tree.leaves(params))


def init_params(config: ModelConfig, key: jax.Array, sequence_length: int = 8) -> chex.ArrayTree:
    """Float32 parameters of LanguageModel(config) (shapes do not depend on sequence_length)."""
    tokens = jnp.zeros((1, sequence_length), jnp.int32)
    # Parameters do not depend on the attention kernel; the dense one keeps GPU kernel compiles out of init.
    shape_only = dataclasses.replace(config, attention_impl="reference", attention_block_size=0)
    return jax.jit(LanguageModel(shape_only).init)(key, tokens)["params"]
