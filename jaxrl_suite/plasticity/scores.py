"""Neuron scores: ReDo's normalized activation and GraMa's normalized gradient magnitude.

ReDo: Sokar et al. 2023 (arXiv 2302.12902). GraMa / ReGraMa: arXiv 2505.24061. Both divide a
unit's statistic by the mean of that statistic over its layer; a unit scoring <= tau is
dormant (ReDo) or inactive (GraMa).
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from jaxrl_suite.plasticity.capture import Perturbations, UnitCapture
from jaxrl_suite.plasticity.layout import PARAMS, UnitLayout

# Scores and masks: hidden layer key -> [num_units].
LayerValues = dict[str, jax.Array]

NORMALIZATION_EPSILON = 1e-9


def normalize_per_layer(values: LayerValues) -> LayerValues:
    """s_i = v_i / (mean_k v_k + 1e-9) within each layer: [num_units] -> [num_units]."""
    return {key: v / (v.mean() + NORMALIZATION_EPSILON) for key, v in values.items()}


def redo_scores(capture: UnitCapture) -> LayerValues:
    """ReDo: E_x|h_i(x)| / mean_k E_x|h_k(x)| per hidden layer."""
    return normalize_per_layer(capture.activity)


def activation_grad_scores(layout: UnitLayout, perturbation_grads: Perturbations) -> LayerValues:
    """GraMa: E_x|dL/dz_i(x)| / mean_k E_x|dL/dz_k(x)|, z the unit's pre-activation.

    perturbation_grads: the loss's gradient with respect to `zero_perturbations` (one array
    per call of a layer, shaped like its output [..., num_units]); calls are averaged.
    """
    num_units = {layer.key: layer.num_units for layer in layout.hidden}
    magnitudes = {
        key: jnp.mean(jnp.stack([jnp.abs(g.reshape(-1, num_units[key])).mean(0) for g in grads]), 0)
        for key, grads in perturbation_grads.items()
    }
    return normalize_per_layer(magnitudes)


def kernel_grad_scores(layout: UnitLayout, param_grads: dict) -> LayerValues:
    """GraMa's parameter proxy: mean_j |dL/dW[j, i]| over unit i's incoming kernel entries
    (Dense [in, out]: a column; Conv [*window, in, out]: a filter), normalized per layer.

    param_grads: gradients shaped like the network's variables ({"params": ...}).
    """
    magnitudes = {}
    for layer in layout.hidden:
        kernel_grad = _at_path(param_grads[PARAMS], layer.path)["kernel"]
        chex.assert_axis_dimension(kernel_grad, -1, layer.num_units)
        magnitudes[layer.key] = jnp.abs(kernel_grad.reshape(-1, layer.num_units)).mean(0)
    return normalize_per_layer(magnitudes)


def _at_path(tree: dict, path: tuple[str, ...]) -> dict:
    for name in path:
        tree = tree[name]
    return tree


def inactive_fraction(scores: LayerValues, threshold: float) -> jax.Array:
    """[] float32 fraction of all scored units with score <= threshold (dormant ratio for ReDo
    scores, GraMa-inactive ratio for gradient scores); 0 when nothing is scored."""
    if not scores:
        return jnp.zeros((), jnp.float32)
    flags = jnp.concatenate([s.reshape(-1) <= threshold for s in scores.values()])
    return flags.mean(dtype=jnp.float32)


def select_units(scores: LayerValues, threshold: float, max_fraction: float) -> LayerValues:
    """Units to reset: score <= threshold, at most floor(max_fraction * num_units) per layer,
    the lowest scores first (ties by unit index). [num_units] bool per layer."""
    masks = {}
    for key, s in scores.items():
        chex.assert_rank(s, 1)
        limit = int(max_fraction * s.shape[0])
        rank = jnp.argsort(jnp.argsort(s, stable=True), stable=True)
        masks[key] = (s <= threshold) & (rank < limit)
    return masks
