"""Parameter layouts of the blocks: looped (params['block_0'], ...) and scanned (params['blocks'], layer axis first).

`stack_layer_params` and `unstack_layer_params` convert between them, e.g. for checkpoints of looped runs.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

STACKED_KEY = "blocks"


def looped_key(index: int) -> str:
    return f"block_{index}"


def stack_layer_params(params: chex.ArrayTree, num_layers: int) -> dict:
    """Looped params (block_0 .. block_{num_layers-1}) -> scanned params (one 'blocks' tree, [layer, ...] leaves)."""
    names = [looped_key(index) for index in range(num_layers)]
    present = sorted(key for key in params if key.startswith("block_"))
    if present != sorted(names):
        raise ValueError(f"stack_layer_params: params have blocks {present}, expected {names} (the looped layout)")
    stacked = jax.tree.map(lambda *layers: jnp.stack(layers), *(params[name] for name in names))
    rest = {key: value for key, value in params.items() if key not in names}
    return {**rest, STACKED_KEY: stacked}


def unstack_layer_params(params: chex.ArrayTree) -> dict:
    """Scanned params ('blocks' with a leading layer axis) -> looped params (block_0, block_1, ...)."""
    if STACKED_KEY not in params:
        raise ValueError(f"unstack_layer_params: params have keys {sorted(params)}, expected '{STACKED_KEY}' "
                         "(the scanned layout)")
    stacked = params[STACKED_KEY]
    num_layers = jax.tree.leaves(stacked)[0].shape[0]
    rest = {key: value for key, value in params.items() if key != STACKED_KEY}
    layers = {looped_key(index): jax.tree.map(lambda leaf, index=index: leaf[index], stacked)
              for index in range(num_layers)}
    return {**rest, **layers}
