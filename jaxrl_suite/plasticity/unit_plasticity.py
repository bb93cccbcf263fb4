"""ReDo / ReGraMa for a learner in four calls: capture in the loss, score, log, reset when due.

Binds a PlasticityConfig to one network (its layout, initializer and optimizer) so that
learners add a few lines; everything it returns is pure and jittable.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxrl_suite.plasticity.capture import (
    Perturbations,
    UnitCapture,
    UnitRecorder,
    apply_with_capture,
    capture_units,
    zero_perturbations,
)
from jaxrl_suite.plasticity.config import PlasticityConfig
from jaxrl_suite.plasticity.diagnostics import effective_rank
from jaxrl_suite.plasticity.layout import UnitLayout, find_unit_layout
from jaxrl_suite.plasticity.resets import reset_count, reset_units, zero_optimizer_state
from jaxrl_suite.plasticity.scores import (
    LayerValues,
    activation_grad_scores,
    inactive_fraction,
    kernel_grad_scores,
    redo_scores,
    select_units,
)


@jax.custom_batching.custom_vmap
def lockstep_flag(flag: jax.Array) -> jax.Array:
    """`flag` ([] bool) for a condition every vmapped member computes alike (a step count hitting
    a period): under vmap it stays unbatched (any over members), so a `lax.cond` on it still
    skips its untaken branch instead of becoming a select that runs both branches every step."""
    return flag


@lockstep_flag.def_vmap
def _lockstep_flag_batched(axis_size, in_batched, flag):
    (batched,) = in_batched
    return (jnp.any(flag) if batched else flag), False


class _NothingRecorded:
    def capture(self) -> None:
        return None


# Keys of `UnitPlasticity.scores`.
REDO = "redo"
GRAMA = "grama"


class UnitPlasticity:
    """ReDo/ReGraMa tools bound to one network.

    config:            the learner's PlasticityConfig (validated).
    apply_fn:          network.apply.
    example_variables: the network's variables, or their ShapeDtypeStructs.
    example_inputs:    positional inputs of one forward call (arrays or ShapeDtypeStructs); with
                       example_variables they trace the layout, on first use.
    init_fn:           key -> fresh variables of the same network (each layer's own initializer).
    optimizer:      the optax transformation whose state holds the moments to zero.

    When config.captures_units is False the training-time methods are no-ops, so learners call
    them unconditionally and pay nothing; `probe` works either way.
    """

    def __init__(
        self,
        config: PlasticityConfig,
        apply_fn: Callable[..., Any],
        example_variables: Any,
        example_inputs: tuple[Any, ...],
        init_fn: Callable[[jax.Array], Any],
        optimizer: optax.GradientTransformation,
    ):
        self.config = config
        self.apply_fn = apply_fn
        self.init_fn = init_fn
        self.optimizer = optimizer
        self.active = config.captures_units
        self._example = (example_variables, example_inputs)

    @functools.cached_property
    def layout(self) -> UnitLayout:
        """The network's UnitLayout, traced on first use (learners without plasticity never pay)."""
        example_variables, example_inputs = self._example
        return find_unit_layout(self.apply_fn, example_variables, *example_inputs)

    def perturbations(self, variables: Any, *args: Any, **kwargs: Any) -> Perturbations | None:
        """Zero perturbations for `apply(variables, perturbations, *args, **kwargs)`; differentiate
        the loss with respect to them too. None when inactive."""
        if not self.active:
            return None
        return zero_perturbations(self.layout, self.apply_fn, variables, *args, **kwargs)

    def apply(
        self, variables: Any, perturbations: Perturbations | None, *args: Any, **kwargs: Any
    ) -> tuple[Any, UnitCapture | None]:
        """(network outputs, UnitCapture or None): call it for the forward pass the loss is about."""
        if not self.active:
            return self.apply_fn(variables, *args, **kwargs), None
        return apply_with_capture(self.layout, self.apply_fn, variables, perturbations, *args, **kwargs)

    @contextlib.contextmanager
    def recording(self, perturbations: Perturbations | None) -> Iterator[UnitRecorder | _NothingRecorded]:
        """`capture_units` around a learner's existing loss code; `.capture()` of the yielded
        recorder is None when inactive. Only the network calls inside the scope are recorded."""
        if not self.active:
            yield _NothingRecorded()
            return
        with capture_units(self.layout, perturbations) as recorder:
            yield recorder

    def scores(
        self, capture: UnitCapture | None, perturbation_grads: Perturbations | None, param_grads: Any
    ) -> dict[str, LayerValues]:
        """{"redo": ReDo scores, "grama": GraMa scores (config.score)}; {} when inactive."""
        if not self.active:
            return {}
        if self.config.score == "kernel_grad":
            grama = kernel_grad_scores(self.layout, param_grads)
        else:
            grama = activation_grad_scores(self.layout, perturbation_grads)
        return {REDO: redo_scores(capture), GRAMA: grama}

    def metrics(self, scores: dict[str, LayerValues]) -> dict[str, jax.Array]:
        """dormant_ratio and grama_inactive_ratio at config.diagnostic_threshold; {} when inactive.
        (Ranks need a matrix decomposition, too slow for every step on CPU: see `probe`.)"""
        if not self.active:
            return {}
        threshold = self.config.diagnostic_threshold
        return {
            "dormant_ratio": inactive_fraction(scores[REDO], threshold),
            "grama_inactive_ratio": inactive_fraction(scores[GRAMA], threshold),
        }

    def probe(self, variables: Any, *args: Any, **kwargs: Any) -> dict[str, jax.Array]:
        """Forward-only diagnostics on a probe batch, for evaluation time: dormant ratio (ReDo
        scores at config.diagnostic_threshold) and the effective rank of the features each
        output layer reads (feature_rank_<layer name>). Works whatever config.method is."""
        _, capture = apply_with_capture(self.layout, self.apply_fn, variables, None, *args, **kwargs)
        metrics = {"probe_dormant_ratio": inactive_fraction(redo_scores(capture), self.config.diagnostic_threshold)}
        for key, features in capture.features.items():
            metrics[f"feature_rank_{key.rsplit('/', 1)[-1]}"] = effective_rank(features).astype(jnp.float32)
        return metrics

    def maybe_reset(
        self, variables: Any, opt_state: Any, scores: dict[str, LayerValues], key: jax.Array, updates_done: jax.Array
    ) -> tuple[Any, Any, dict[str, jax.Array]]:
        """Resets the selected units when `updates_done` (counting this update) is a multiple of
        config.period. Returns (variables, opt_state, {"reset_units_sum": [] float32 units reset})."""
        if not self.config.enabled:
            return variables, opt_state, {}
        method_scores = scores[REDO] if self.config.method == "redo" else scores[GRAMA]
        masks = select_units(method_scores, self.config.reset_threshold, self.config.max_reset_fraction)
        due = (updates_done % self.config.period == 0) & (updates_done > 0)
        # Fresh weights are costly (orthogonal init runs a QR): draw them only when due.
        reset_now = lockstep_flag(due)

        def reset(operands):
            variables, opt_state = operands
            new_variables, touched = reset_units(self.layout, variables, self.init_fn(key), masks)
            return new_variables, zero_optimizer_state(self.optimizer, opt_state, touched)

        variables, opt_state = jax.lax.cond(reset_now, reset, lambda operands: operands, (variables, opt_state))
        return variables, opt_state, {"reset_units_sum": jnp.where(due, reset_count(masks), 0.0)}


def mean_scores(stacked_scores: dict[str, LayerValues]) -> dict[str, LayerValues]:
    """Averages scores stacked over several gradient steps ([steps, num_units] -> [num_units])."""
    return jax.tree.map(lambda s: s.mean(0), stacked_scores)
