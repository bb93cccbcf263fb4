"""ACP report on a trained FoX model: per layer and head, the attention tiles pruning skips, and what it costs in loss.

Adaptive Computation Pruning (arXiv 2504.06949) through `jaxrl_suite.ops.acp_stats` and the kernels' acp_eps.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxrl_suite.lm.evaluate import position_losses
from jaxrl_suite.models import LanguageModel, ModelConfig
from jaxrl_suite.ops import acp_stats


def _attention_inputs(model: ModelConfig, params: chex.ArrayTree, tokens: jax.Array) -> list[dict[str, jax.Array]]:
    """Per layer the {query, key, log_fgate} that reach the kernel for inputs tokens [n, seq]."""
    _, variables = LanguageModel(model).apply({"params": params}, tokens, mutable=["intermediates"])
    blocks = variables["intermediates"]
    return [blocks[f"block_{index}"]["attention"]["attention_inputs"][0] for index in range(model.num_layers)]


_jit_acp_stats = jax.jit(acp_stats, static_argnames=("acp_eps", "block_q", "block_k", "scale"))


def head_skip_fractions(query: jax.Array, key: jax.Array, log_fgate: jax.Array, *, acp_eps: float,
                        block_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tile fraction, FLOP fraction, bound on the attention mass a row loses) per head, each [heads].

    query: [n, seq, heads, head_dim]; key: [n, seq, kv_heads, head_dim]; log_fgate: [n, seq, heads].
    """
    heads, kv_heads = query.shape[2], key.shape[2]
    group = heads // kv_heads
    tiles, flops, mass = [], [], []
    for head in range(heads):
        kv_head = head // group
        stats = _jit_acp_stats(query[:, :, head:head + 1], key[:, :, kv_head:kv_head + 1],
                               log_fgate[:, :, head:head + 1], acp_eps=acp_eps, block_q=block_size, block_k=block_size)
        tiles.append(float(stats.tile_fraction_skipped))
        flops.append(float(stats.flop_fraction_skipped))
        mass.append(float(stats.mass_bound))
    return np.array(tiles), np.array(flops), np.array(mass)


def acp_report(model: ModelConfig, params: chex.ArrayTree, tokens: np.ndarray, *, acp_eps: float = float(np.exp(-10)),
               block_size: int = 64, batch_size: int = 8) -> dict[str, Any]:
    """ACP on windows tokens [n, seq + 1] with tiles of block_size x block_size.

    Returns per layer and head the fraction of causal tiles (and attention FLOPs) skipped and the bound on
    the attention mass a query row loses (<= eps), the loss
    without pruning, with pruning in every layer, and with pruning in one layer at a time.
    """
    if model.attention != "forgetting":
        raise ValueError(f"ACP needs forget gates: model.attention={model.attention!r} has none to prune with")
    # The dense reference cannot prune; the blockwise kernels prune with the same tiles the stats count.
    impl = "xla" if model.attention_impl == "reference" else model.attention_impl
    pruned_model = dataclasses.replace(model, attention_impl=impl, attention_block_size=block_size)
    tokens = jnp.asarray(tokens)
    inputs = _attention_inputs(pruned_model, params, tokens[:, :-1])
    tile_fraction, flop_fraction, mass_bound = [], [], []
    for layer in inputs:
        tiles, flops, mass = head_skip_fractions(layer["query"], layer["key"], layer["log_fgate"], acp_eps=acp_eps,
                                           block_size=block_size)
        tile_fraction.append(tiles.tolist())
        flop_fraction.append(flops.tolist())
        mass_bound.append(mass.tolist())

    def loss(eps: float | tuple[float | None, ...] | None) -> float:
        return float(position_losses(pruned_model, params, tokens, batch_size, eps).mean())

    dense_loss = loss(None)
    all_layers_loss = loss(acp_eps)
    one_layer_delta = []
    for index in range(model.num_layers):
        only_this = tuple(acp_eps if other == index else None for other in range(model.num_layers))
        one_layer_delta.append(loss(only_this) - dense_loss)
    return {
        "acp_eps": acp_eps, "block_size": block_size, "sequences": int(tokens.shape[0]),
        "sequence_length": int(tokens.shape[1] - 1),
        "tile_fraction_skipped": tile_fraction, "flop_fraction_skipped": flop_fraction,
        "mean_tile_fraction_skipped": float(np.mean(tile_fraction)),
        "mean_flop_fraction_skipped": float(np.mean(flop_fraction)),
        "pruned_mass_bound": mass_bound, "max_pruned_mass_bound": float(np.max(mass_bound)),
        "loss_dense": dense_loss, "loss_pruned": all_layers_loss, "loss_change": all_layers_loss - dense_loss,
        "loss_change_pruning_one_layer": one_layer_delta,
    }
