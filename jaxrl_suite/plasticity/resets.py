"""Neuron resets: re-draw a unit's incoming weights, zero its outgoing weights and its optimizer moments.

The reset rule of ReDo (Sokar et al. 2023) and ReGraMa (arXiv 2505.24061); only the score that
selects the units differs. Output layers are never reset.
"""

from __future__ import annotations

import functools
from typing import Any

import chex
import jax
import jax.numpy as jnp
import optax
from flax import traverse_util

from jaxrl_suite.plasticity.layout import PARAMS, UnitLayout, unit_of_input_feature
from jaxrl_suite.plasticity.scores import LayerValues


def _leaf_masks(layout: UnitLayout, flat_params: dict, masks: LayerValues) -> tuple[dict, dict]:
    """Per parameter leaf: (entries to re-draw, entries to zero) as bool arrays of the leaf's shape."""
    redraw: dict[tuple[str, ...], jax.Array] = {}
    zero: dict[tuple[str, ...], jax.Array] = {}

    def merge(target: dict, leaf_path: tuple[str, ...], mask: jax.Array) -> None:
        mask = jnp.broadcast_to(mask, flat_params[leaf_path].shape)
        target[leaf_path] = target[leaf_path] | mask if leaf_path in target else mask

    for layer in layout.hidden:
        if layer.key not in masks:
            continue
        unit_mask = masks[layer.key]
        chex.assert_shape(unit_mask, (layer.num_units,))
        merge(redraw, (PARAMS, *layer.path, "kernel"), unit_mask)
        if (PARAMS, *layer.path, "bias") in flat_params:
            merge(redraw, (PARAMS, *layer.path, "bias"), unit_mask)
        if layer.layer_norm is not None:
            for name in ("scale", "bias"):
                if (PARAMS, *layer.layer_norm, name) in flat_params:
                    merge(redraw, (PARAMS, *layer.layer_norm, name), unit_mask)
        for consumer in layer.private_consumers:
            kernel_path = (PARAMS, *consumer, "kernel")
            input_features = flat_params[kernel_path].shape[-2]
            row_mask = unit_mask[unit_of_input_feature(input_features, layer.num_units)]
            merge(zero, kernel_path, row_mask[:, None])
    return redraw, zero


def reset_units(
    layout: UnitLayout, variables: Any, fresh_variables: Any, masks: LayerValues
) -> tuple[Any, Any]:
    """Resets the units selected by `masks` (hidden layer key -> [num_units] bool).

    variables:       the network's variables ({"params": ...}).
    fresh_variables: a new initialization of the same network (e.g. `network.init(key, obs)`):
                     each layer's re-drawn weights come from its own initializer.
    For a selected unit: its kernel column/filter and bias are re-drawn, the parameters of a
    LayerNorm applied directly to its output are reset, and the rows of private consumers'
    kernels that read it are zeroed (outgoing weights). Every other entry is kept bit for bit.
    Returns (new variables, touched: bool pytree like `variables`, True where an entry changed).
    """
    chex.assert_trees_all_equal_shapes_and_dtypes(variables, fresh_variables)
    flat = traverse_util.flatten_dict(variables)
    flat_fresh = traverse_util.flatten_dict(fresh_variables)
    redraw, zero = _leaf_masks(layout, flat, masks)
    new_flat, touched = {}, {}
    for leaf_path, value in flat.items():
        redraw_mask = redraw.get(leaf_path)
        zero_mask = zero.get(leaf_path)
        if redraw_mask is not None:
            value = jnp.where(redraw_mask, flat_fresh[leaf_path], value)
        if zero_mask is not None:
            value = jnp.where(zero_mask, jnp.zeros_like(value), value)
        new_flat[leaf_path] = value
        touched[leaf_path] = functools.reduce(
            jnp.logical_or, [m for m in (redraw_mask, zero_mask) if m is not None], jnp.zeros(value.shape, jnp.bool_)
        )
    return traverse_util.unflatten_dict(new_flat), traverse_util.unflatten_dict(touched)


def zero_optimizer_state(optimizer: optax.GradientTransformation, opt_state: Any, touched: Any) -> Any:
    """Zeros every parameter-shaped optimizer statistic (Adam's mu and nu, ...) where `touched`
    is True; step counts and other state stay as they are."""
    return optax.tree_utils.tree_map_params(
        optimizer,
        lambda statistic, mask: jnp.where(mask, jnp.zeros_like(statistic), statistic),
        opt_state,
        touched,
        transform_non_params=lambda leaf: leaf,
    )


def reset_count(masks: LayerValues) -> jax.Array:
    """[] float32 number of units selected over all layers."""
    if not masks:
        return jnp.zeros((), jnp.float32)
    return sum(m.sum() for m in masks.values()).astype(jnp.float32)
