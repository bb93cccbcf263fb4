"""Resets for a learner in four calls: capture in the loss, score, log, reset when due.

Binds a PlasticityConfig to one network (its layout, initializer and optimizer) so that
learners add a few lines; what a reset does is the config's rule (reset_rules.py).
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
from jaxrl_suite.plasticity.ensemble import StackedMembers
from jaxrl_suite.plasticity.layout import UnitLayout, find_unit_layout
from jaxrl_suite.plasticity.reset_rules import GRAMA, REDO, reset_rule
from jaxrl_suite.plasticity.resets import reset_units, zero_optimizer_state
from jaxrl_suite.plasticity.scores import (
    LayerValues,
    activation_grad_scores,
    inactive_fraction,
    kernel_grad_scores,
    redo_scores,
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


# Keys of `UnitPlasticity.metrics`.
RATIO_METRICS = ("dormant_ratio", "grama_inactive_ratio")


class UnitPlasticity:
    """Reset rule (ReDo, ReGraMa, Shrink and Perturb) and unit diagnostics bound to one network.

    config:            the learner's PlasticityConfig (validated).
    apply_fn:          network.apply.
    example_variables: the network's variables, or their ShapeDtypeStructs.
    example_inputs:    positional inputs of one forward call (arrays or ShapeDtypeStructs); with
                       example_variables they trace the layout, on first use.
    init_fn:           key -> fresh variables of the same network (each layer's own initializer).
    optimizer:         the optax transformation whose state holds the moments to zero.
    ensemble:          for a network of members stacked on a leading parameter axis (nn.vmap):
                       where they sit and how one runs. The layout is one member's; captures,
                       scores and reset masks gain a leading [size] axis, every member is
                       scored, capped and reset on its own, and `apply` runs the members
                       vmapped (same outputs as the network's apply).

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
        ensemble: StackedMembers | None = None,
    ):
        self.config = config
        self.apply_fn = apply_fn
        self.init_fn = init_fn
        self.optimizer = optimizer
        self.ensemble = ensemble
        self.active = config.captures_units
        self.rule = reset_rule(config)
        self._example = (example_variables, example_inputs)

    @functools.cached_property
    def layout(self) -> UnitLayout:
        """The network's (or one ensemble member's) UnitLayout, traced on first use (learners
        without plasticity never pay)."""
        example_variables, example_inputs = self._example
        if self.ensemble is not None:
            return find_unit_layout(self.ensemble.member_apply, self.ensemble.one_member(example_variables),
                                    *example_inputs)
        return find_unit_layout(self.apply_fn, example_variables, *example_inputs)

    @property
    def _unit_apply_fn(self) -> Callable[..., Any]:
        """The apply whose units the layout describes: the network's, or one member's."""
        return self.apply_fn if self.ensemble is None else self.ensemble.member_apply

    def per_member(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """`fn` of one network's values; for an ensemble, vmapped over the members' leading axis
        of every argument."""
        return fn if self.ensemble is None else jax.vmap(fn)

    def _unit_variables(self, variables: Any) -> Any:
        """The variables `_unit_apply_fn` takes: the network's, or the stacked members'."""
        return variables if self.ensemble is None else self.ensemble.members(variables)

    def perturbations(self, variables: Any, *args: Any, **kwargs: Any) -> Perturbations | None:
        """Zero perturbations for `apply(variables, perturbations, *args, **kwargs)`; differentiate
        the loss with respect to them too. None when inactive. (Ensembles: [size, ...] each.)"""
        if not self.active:
            return None
        if self.ensemble is None:
            return zero_perturbations(self.layout, self.apply_fn, variables, *args, **kwargs)
        member = zero_perturbations(self.layout, self.ensemble.member_apply, self.ensemble.one_member(variables),
                                    *args, **kwargs)
        return self.ensemble.stack(member)

    def apply(
        self, variables: Any, perturbations: Perturbations | None, *args: Any, **kwargs: Any
    ) -> tuple[Any, UnitCapture | None]:
        """(network outputs, UnitCapture or None): call it for the forward pass the loss is about."""
        if not self.active:
            return self.apply_fn(variables, *args, **kwargs), None

        def member_apply(unit_variables, unit_perturbations):
            return apply_with_capture(self.layout, self._unit_apply_fn, unit_variables, unit_perturbations,
                                      *args, **kwargs)

        return self.per_member(member_apply)(self._unit_variables(variables), perturbations)

    @contextlib.contextmanager
    def recording(self, perturbations: Perturbations | None) -> Iterator[UnitRecorder | _NothingRecorded]:
        """`capture_units` around a learner's existing loss code; `.capture()` of the yielded
        recorder is None when inactive. Only the network calls inside the scope are recorded.
        Not for ensembles (their members run vmapped: use `apply`)."""
        if not self.active:
            yield _NothingRecorded()
            return
        if self.ensemble is not None:
            raise ValueError("recording() cannot reach inside an ensemble's nn.vmap; use apply() for its forward pass")
        with capture_units(self.layout, perturbations) as recorder:
            yield recorder

    def scores(
        self, capture: UnitCapture | None, perturbation_grads: Perturbations | None, param_grads: Any
    ) -> dict[str, LayerValues]:
        """{"redo": ReDo scores, "grama": GraMa scores (config.score)}; {} when inactive.
        Ensembles: [size, num_units] per layer, each member normalized over its own layer."""
        if not self.active:
            return {}

        def member_scores(capture, perturbation_grads, param_grads):
            if self.config.score == "kernel_grad":
                grama = kernel_grad_scores(self.layout, param_grads)
            else:
                grama = activation_grad_scores(self.layout, perturbation_grads)
            return {REDO: redo_scores(capture), GRAMA: grama}

        return self.per_member(member_scores)(capture, perturbation_grads, self._unit_variables(param_grads))

    def metrics(self, scores: dict[str, LayerValues]) -> dict[str, jax.Array]:
        """dormant_ratio and grama_inactive_ratio at config.diagnostic_threshold; {} when inactive.
        (Ranks need a matrix decomposition, too slow for every step on CPU: see `probe`.)"""
        if not self.active:
            return {}
        threshold = self.config.diagnostic_threshold
        dormant, grama_inactive = RATIO_METRICS
        return {
            dormant: inactive_fraction(scores[REDO], threshold),
            grama_inactive: inactive_fraction(scores[GRAMA], threshold),
        }

    def zero_metrics(self) -> dict[str, jax.Array]:
        """The keys of `metrics` with zeros (for learners that carry the latest values)."""
        return {name: jnp.zeros((), jnp.float32) for name in RATIO_METRICS} if self.active else {}

    def no_reset_metrics(self) -> dict[str, jax.Array]:
        """The reset metrics of an update that did not try to reset (same keys as `maybe_reset`'s)."""
        return {self.rule.metric: jnp.zeros((), jnp.float32)} if self.rule is not None else {}

    def probe(self, variables: Any, *args: Any, **kwargs: Any) -> dict[str, jax.Array]:
        """Forward-only diagnostics on a probe batch, for evaluation time: dormant ratio (ReDo
        scores at config.diagnostic_threshold) and the effective rank of the features each
        output layer reads (feature_rank_<layer name>). Works whatever config.method is.
        Ensembles: both averaged over the members."""

        def member_probe(unit_variables):
            _, capture = apply_with_capture(self.layout, self._unit_apply_fn, unit_variables, None, *args, **kwargs)
            metrics = {"probe_dormant_ratio": inactive_fraction(redo_scores(capture),
                                                                self.config.diagnostic_threshold)}
            for key, features in capture.features.items():
                metrics[f"feature_rank_{key.rsplit('/', 1)[-1]}"] = effective_rank(features).astype(jnp.float32)
            return metrics

        metrics = self.per_member(member_probe)(self._unit_variables(variables))
        return metrics if self.ensemble is None else jax.tree.map(jnp.mean, metrics)

    def maybe_reset(
        self, variables: Any, opt_state: Any, scores: dict[str, LayerValues], key: jax.Array, updates_done: jax.Array
    ) -> tuple[Any, Any, dict[str, jax.Array]]:
        """Resets the selected units when `updates_done` (counting this update) is a multiple of
        config.period. Returns (variables, opt_state, {"reset_units_sum": [] float32 units reset})."""
        variables, opt_state, _, metrics = self.maybe_reset_with_target(variables, opt_state, None, scores, key,
                                                                        updates_done)
        return variables, opt_state, metrics

    def maybe_reset_with_target(
        self, variables: Any, opt_state: Any, target_variables: Any, scores: dict[str, LayerValues], key: jax.Array,
        updates_done: jax.Array,
    ) -> tuple[Any, Any, Any, dict[str, jax.Array]]:
        """`maybe_reset` for a network with a Polyak-averaged target copy (None: no target): every
        entry a reset touches is copied into the target too, so averaging does not blend a
        re-drawn neuron's incoming weights with its old ones. Returns (variables, opt_state,
        target_variables, {"reset_units_sum": ...})."""
        if self.rule is None:
            return variables, opt_state, target_variables, {}
        due = (updates_done % self.config.period == 0) & (updates_done > 0)
        # Fresh weights are costly (orthogonal init runs a QR): draw them only when due.
        reset_now = lockstep_flag(due)
        rule = self.rule

        def reset(operands):
            variables, opt_state, target_variables = operands
            new_variables, touched, value = rule.reset(self, variables, self.init_fn(key), scores)
            if target_variables is not None:
                target_variables = jax.tree.map(lambda target, new, mask: jnp.where(mask, new, target),
                                                target_variables, new_variables, touched)
            if rule.zeroes_moments:
                opt_state = zero_optimizer_state(self.optimizer, opt_state, touched)
            return new_variables, opt_state, target_variables, value

        def keep(operands):
            return (*operands, jnp.zeros((), jnp.float32))

        variables, opt_state, target_variables, value = jax.lax.cond(
            reset_now, reset, keep, (variables, opt_state, target_variables)
        )
        return variables, opt_state, target_variables, {rule.metric: jnp.where(due, value, 0.0)}

    def reset_selected(self, variables: Any, fresh_variables: Any, masks: dict[str, jax.Array]) -> tuple[Any, Any]:
        """`reset_units` on the network, or on every ensemble member with its own masks row."""
        if self.ensemble is None:
            return reset_units(self.layout, variables, fresh_variables, masks)
        members = self.ensemble
        new_members, touched_members = jax.vmap(functools.partial(reset_units, self.layout))(
            members.members(variables), members.members(fresh_variables), masks
        )
        untouched = jax.tree.map(lambda leaf: jnp.zeros(leaf.shape, jnp.bool_), variables)
        return members.replace_members(variables, new_members), members.replace_members(untouched, touched_members)
