"""Where a flax network's neurons are and where their values flow, found by tracing it once.

A unit is one output feature of a Dense layer or one output channel of a Conv layer; the layout
says which units may be reset (ReDo, Sokar et al. 2023; ReGraMa, arXiv 2505.24061) and how.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import numpy as np
from jax.extend import core as jax_core

# Modules whose last kernel axis indexes units: Dense [in, out] and Conv [*window, in, out].
UNIT_MODULES = (nn.Dense, nn.Conv)
PARAMS = "params"


def layer_key(path: Sequence[str]) -> str:
    """The name a layer goes by in score and mask dicts: its module path joined by '/'."""
    return "/".join(path)


@dataclasses.dataclass(frozen=True)
class UnitLayer:
    """One Dense or Conv module seen as a layer of units.

    path:              module path inside the "params" collection, e.g. ("trunk", "MLP_0", "Dense_0").
    num_units:         output features (Dense) or output channels (Conv).
    input_features:    size of the kernel's input axis (Dense: in, Conv: in channels).
    layer_norm:        path of a LayerNorm applied directly to this layer's output, if any.
    private_consumers: Dense/Conv modules whose input is computed from this layer's units alone;
                       input feature r of such a consumer belongs to unit r % num_units
                       (flattening a [..., H, W, C] map keeps channels last). Zeroing those rows
                       silences the unit's outgoing weights.
    shared_consumers:  Dense/Conv modules whose input mixes this layer with other sources
                       (residual streams, concatenations): no weight belongs to one unit alone.
    is_output:         the layer's values reach a network output without passing another
                       Dense/Conv (heads, or the last layer of a bare MLP), or go nowhere.
                       Output layers are scored for diagnostics but never reset.
    """

    path: tuple[str, ...]
    num_units: int
    input_features: int
    layer_norm: tuple[str, ...] | None
    private_consumers: tuple[tuple[str, ...], ...]
    shared_consumers: tuple[tuple[str, ...], ...]
    is_output: bool

    @property
    def key(self) -> str:
        return layer_key(self.path)

    @property
    def function_preserving_reset(self) -> bool:
        """True when zeroing the outgoing weights hides a re-drawn unit from the network's
        outputs: no LayerNorm mixing it with its neighbours and no shared consumer."""
        return not self.is_output and self.layer_norm is None and not self.shared_consumers


@dataclasses.dataclass(frozen=True)
class UnitLayout:
    """All unit layers of a network in execution order (static; hashable)."""

    layers: tuple[UnitLayer, ...]

    @property
    def hidden(self) -> tuple[UnitLayer, ...]:
        """Layers that may be reset: everything but the output layers."""
        return tuple(layer for layer in self.layers if not layer.is_output)

    @property
    def outputs(self) -> tuple[UnitLayer, ...]:
        return tuple(layer for layer in self.layers if layer.is_output)

    def by_path(self) -> dict[tuple[str, ...], UnitLayer]:
        return {layer.path: layer for layer in self.layers}

    def producer_of(self) -> dict[tuple[str, ...], UnitLayer]:
        """Consumer path -> the hidden layer it privately reads from."""
        return {consumer: layer for layer in self.hidden for consumer in layer.private_consumers}


@dataclasses.dataclass(frozen=True)
class _Call:
    path: tuple[str, ...]
    is_unit_module: bool  # Dense/Conv; otherwise a LayerNorm
    output: jax.ShapeDtypeStruct
    kernel_shape: tuple[int, ...]


def _kernel_shape(module: nn.Module) -> tuple[int, ...]:
    return tuple(module.variables[PARAMS]["kernel"].shape)


def _record_calls(apply_fn: Callable[..., Any], variables: Any, args: tuple, kwargs: dict) -> list[_Call]:
    calls: list[_Call] = []

    def interceptor(next_fun, call_args, call_kwargs, context):
        output = next_fun(*call_args, **call_kwargs)
        module = context.module
        if context.method_name == "__call__" and isinstance(module, UNIT_MODULES + (nn.LayerNorm,)):
            is_unit = isinstance(module, UNIT_MODULES)
            calls.append(_Call(
                tuple(module.path), is_unit, jax.ShapeDtypeStruct(output.shape, output.dtype),
                _kernel_shape(module) if is_unit else (),
            ))
        return output

    with nn.intercept_methods(interceptor):
        jax.eval_shape(lambda v, a, k: apply_fn(v, *a, **k), variables, args, kwargs)
    return calls


def _dependencies(closed_jaxpr: Any) -> list[frozenset[int]]:
    """For every output of a jaxpr, the indices of the inputs it may depend on.

    Conservative: every equation's outputs are taken to depend on all of its inputs.
    """
    jaxpr = closed_jaxpr.jaxpr
    sources: dict[Any, frozenset[int]] = {var: frozenset({index}) for index, var in enumerate(jaxpr.invars)}
    for equation in jaxpr.eqns:
        inputs = frozenset().union(*(
            sources.get(var, frozenset()) for var in equation.invars if not isinstance(var, jax_core.Literal)
        ))
        for var in equation.outvars:
            sources[var] = inputs
    return [
        frozenset() if isinstance(var, jax_core.Literal) else sources.get(var, frozenset())
        for var in jaxpr.outvars
    ]


def find_unit_layout(apply_fn: Callable[..., Any], variables: Any, *args: Any, **kwargs: Any) -> UnitLayout:
    """Traces `apply_fn(variables, *args, **kwargs)` (abstractly; arrays or ShapeDtypeStructs)
    and returns its UnitLayout.

    Every Dense/Conv output is replaced by a fresh input of the traced function, so data flow
    found in the jaxpr from that input to another module's input passes no other Dense/Conv:
    it is a direct connection. Run once when a learner is built, outside jit.
    """
    calls = _record_calls(apply_fn, variables, args, kwargs)
    unit_calls = [index for index, call in enumerate(calls) if call.is_unit_module]
    if not unit_calls:
        raise ValueError("the network has no flax Dense or Conv layer to score")
    replacement_shapes = [calls[index].output for index in unit_calls]

    layer_norm_of: dict[int, int] = {}  # LayerNorm call -> unit call whose raw output it reads

    def probe(replacements, variables, args, kwargs):
        call_inputs: list[Any] = []
        produced: list[Any] = []
        counter = iter(range(len(calls)))

        def interceptor(next_fun, call_args, call_kwargs, context):
            output = next_fun(*call_args, **call_kwargs)
            module = context.module
            if context.method_name != "__call__" or not isinstance(module, UNIT_MODULES + (nn.LayerNorm,)):
                return output
            index = next(counter)
            call_inputs.append(call_args[0])
            if isinstance(module, nn.LayerNorm):
                for unit_index, value in produced:
                    if call_args[0] is value:
                        layer_norm_of[index] = unit_index
                return output
            replacement = replacements[unit_calls.index(index)]
            produced.append((index, replacement))
            return replacement

        with nn.intercept_methods(interceptor):
            outputs = apply_fn(variables, *args, **kwargs)
        network_outputs = [leaf for leaf in jax.tree.leaves(outputs) if isinstance(leaf, jax.Array)]
        return call_inputs, network_outputs

    closed = jax.make_jaxpr(probe)(replacement_shapes, variables, args, kwargs)
    num_replacements = len(replacement_shapes)
    num_variable_leaves = len(jax.tree.leaves(variables))
    first_input_leaf = num_replacements + num_variable_leaves
    dependencies = _dependencies(closed)
    input_dependencies, output_dependencies = dependencies[: len(calls)], dependencies[len(calls):]

    def sources(deps: frozenset[int]) -> tuple[set[tuple[str, ...]], bool]:
        """(paths of unit layers feeding directly, whether a network input feeds directly)."""
        paths = {calls[unit_calls[d]].path for d in deps if d < num_replacements}
        return paths, any(d >= first_input_leaf for d in deps)

    reaches_output = {calls[unit_calls[d]].path for deps in output_dependencies for d in deps if d < num_replacements}
    layer_norms: dict[tuple[str, ...], tuple[str, ...]] = {
        calls[unit_index].path: calls[norm_index].path for norm_index, unit_index in layer_norm_of.items()
    }

    layers: dict[tuple[str, ...], UnitLayer] = {}
    for index in unit_calls:
        call = calls[index]
        if call.path in layers:
            continue  # a module applied twice is one layer; its consumers are merged below
        private, shared = [], []
        for consumer_index in unit_calls:
            consumer = calls[consumer_index]
            feeding, from_inputs = sources(input_dependencies[consumer_index])
            if call.path not in feeding or consumer.path == call.path:
                continue
            input_features = consumer.kernel_shape[-2]
            num_units = call.kernel_shape[-1]
            mappable = input_features % num_units == 0
            bucket = private if feeding == {call.path} and not from_inputs and mappable else shared
            if consumer.path not in bucket:
                bucket.append(consumer.path)
        shared = [path for path in shared if path not in private]
        layers[call.path] = UnitLayer(
            path=call.path,
            num_units=int(call.kernel_shape[-1]),
            input_features=int(call.kernel_shape[-2]),
            layer_norm=layer_norms.get(call.path),
            private_consumers=tuple(private),
            shared_consumers=tuple(shared),
            is_output=call.path in reaches_output or not (private or shared),
        )
    return UnitLayout(tuple(layers.values()))


def unit_of_input_feature(num_input_features: int, num_units: int) -> np.ndarray:
    """[num_input_features] int: the producing unit of each input feature of a private consumer."""
    return np.arange(num_input_features) % num_units
