"""Unit activations and activation gradients captured inside a jitted forward/backward pass.

A flax method interceptor reads each layer's values as the network runs and adds a zero
"perturbation" to every hidden Dense/Conv output, whose gradient is dL/d(pre-activation).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct

from jaxrl_suite.plasticity.layout import UNIT_MODULES, UnitLayout, layer_key

# layer key -> one array per call of that layer in the forward pass, shaped like its output.
Perturbations = dict[str, tuple[jax.Array, ...]]


@struct.dataclass
class UnitCapture:
    """What one forward pass shows about the units.

    activity: hidden layer key -> [num_units] mean |activation| over samples (and positions
              for convolutions). The activation is read where the unit's value enters its
              private consumers (after LayerNorm and the nonlinearity, whatever they are);
              for units that feed only shared streams (residual sums) it is the unit's
              LayerNorm output, or its pre-activation without LayerNorm.
    features: output layer key -> [num_samples, input_features] the features the output layer
              reads (the last hidden representation), for rank diagnostics.
    """

    activity: dict[str, jax.Array]
    features: dict[str, jax.Array]


def mean_abs_per_unit(values: jax.Array, num_units: int) -> jax.Array:
    """[..., k * num_units] -> [num_units]: mean |value| of each unit over everything else.
    Input feature r belongs to unit r % num_units (channels-last flattening)."""
    return jnp.abs(values.reshape(-1, num_units)).mean(0)


def _is_layer_call(context: Any) -> bool:
    return context.method_name == "__call__" and isinstance(context.module, UNIT_MODULES + (nn.LayerNorm,))


class UnitRecorder:
    """Collects unit statistics while `capture_units` is active; `capture()` summarizes them."""

    def __init__(self, layout: UnitLayout, perturbations: Perturbations | None):
        self.layout = layout
        self.perturbations = perturbations
        self.layers = layout.by_path()
        self.producer_of = layout.producer_of()
        self.layer_of_norm = {layer.layer_norm: layer for layer in layout.hidden if layer.layer_norm is not None}
        self.from_consumers: dict[str, list[jax.Array]] = {}
        self.from_layer: dict[str, list[jax.Array]] = {}
        self.features: dict[str, list[jax.Array]] = {}
        self.calls_seen: dict[str, int] = {}

    def intercept(self, next_fun, call_args, call_kwargs, context):
        """flax method interceptor: reads values, adds the perturbations."""
        if not _is_layer_call(context):
            return next_fun(*call_args, **call_kwargs)
        path = tuple(context.module.path)
        inputs = call_args[0]
        output = next_fun(*call_args, **call_kwargs)
        if isinstance(context.module, nn.LayerNorm):
            layer = self.layer_of_norm.get(path)
            if layer is not None and not layer.private_consumers:
                self.from_layer.setdefault(layer.key, []).append(mean_abs_per_unit(output, layer.num_units))
            return output
        if path in self.producer_of:
            producer = self.producer_of[path]
            self.from_consumers.setdefault(producer.key, []).append(mean_abs_per_unit(inputs, producer.num_units))
        layer = self.layers.get(path)
        if layer is None:
            return output
        if layer.is_output:
            self.features.setdefault(layer.key, []).append(inputs.reshape(-1, inputs.shape[-1]))
            return output
        if self.perturbations is not None and layer.key in self.perturbations:
            call_index = self.calls_seen.get(layer.key, 0)
            self.calls_seen[layer.key] = call_index + 1
            output = output + self.perturbations[layer.key][call_index]
        if not layer.private_consumers and layer.layer_norm is None:
            self.from_layer.setdefault(layer.key, []).append(mean_abs_per_unit(output, layer.num_units))
        return output

    def capture(self) -> UnitCapture:
        """The UnitCapture of every network call made while recording."""
        activity = {}
        for layer in self.layout.hidden:
            readings = self.from_consumers.get(layer.key) or self.from_layer.get(layer.key)
            if readings:
                activity[layer.key] = jnp.mean(jnp.stack(readings), 0)
        features = {key: jnp.concatenate(values, 0) for key, values in self.features.items()}
        return UnitCapture(activity, features)


@contextlib.contextmanager
def capture_units(layout: UnitLayout, perturbations: Perturbations | None = None) -> Iterator[UnitRecorder]:
    """Records every application of the network in its scope (use it around the ONE forward
    pass the loss is about, inside the differentiated function):

        with capture_units(layout, perturbations) as recorder:
            loss = loss_fn(params, batch)
        capture = recorder.capture()   # return it as aux of the loss

    perturbations: from `zero_perturbations` for the same call, or None. Differentiating the
                   loss with respect to them yields dL/d(pre-activation) of every hidden unit
                   on every sample (see `scores.activation_grad_scores`); being zero, they
                   leave the outputs unchanged.
    """
    recorder = UnitRecorder(layout, perturbations)
    with nn.intercept_methods(recorder.intercept):
        yield recorder


def apply_with_capture(
    layout: UnitLayout,
    apply_fn: Callable[..., Any],
    variables: Any,
    perturbations: Perturbations | None,
    *args: Any,
    **kwargs: Any,
) -> tuple[Any, UnitCapture]:
    """`apply_fn(variables, *args, **kwargs)` plus the UnitCapture of that call (see `capture_units`)."""
    with capture_units(layout, perturbations) as recorder:
        outputs = apply_fn(variables, *args, **kwargs)
    return outputs, recorder.capture()


def zero_perturbations(
    layout: UnitLayout, apply_fn: Callable[..., Any], variables: Any, *args: Any, **kwargs: Any
) -> Perturbations:
    """Zeros shaped like every hidden Dense/Conv output of `apply_fn(variables, *args, **kwargs)`,
    one per call of the layer (shapes found abstractly; cheap inside jit)."""
    hidden = {layer.path for layer in layout.hidden}
    shapes: dict[str, list[jax.ShapeDtypeStruct]] = {}

    def interceptor(next_fun, call_args, call_kwargs, context):
        output = next_fun(*call_args, **call_kwargs)
        if _is_layer_call(context) and tuple(context.module.path) in hidden:
            key = layer_key(context.module.path)
            shapes.setdefault(key, []).append(jax.ShapeDtypeStruct(output.shape, output.dtype))
        return output

    with nn.intercept_methods(interceptor):
        jax.eval_shape(lambda v, a, k: apply_fn(v, *a, **k), variables, args, kwargs)
    return {key: tuple(jnp.zeros(s.shape, s.dtype) for s in per_call) for key, per_call in shapes.items()}
