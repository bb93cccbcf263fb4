"""Reset rules: what a due reset does to one network, chosen by PlasticityConfig.method.

A rule is a small frozen object; `UnitPlasticity` runs it every `period` updates. ReDo and
ReGraMa are `UnitReset`s (select units by a score, re-draw them); Shrink and Perturb is in
shrink_perturb.py. A new rule is one file plus a line in `RULES`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

import jax

from jaxrl_suite.plasticity.config import PlasticityConfig
from jaxrl_suite.plasticity.resets import reset_count
from jaxrl_suite.plasticity.scores import LayerValues, select_units
from jaxrl_suite.plasticity.shrink_perturb import ShrinkPerturb

# Keys of `UnitPlasticity.scores`.
REDO = "redo"
GRAMA = "grama"
# Key of the unit rules' metric (units reset by an update, summed by the runner).
RESET_METRIC = "reset_units_sum"


class ResetTarget(Protocol):
    """What a rule may ask of the network it resets (`UnitPlasticity` provides it)."""

    def per_member(self, fn: Callable[..., Any]) -> Callable[..., Any]: ...

    def reset_selected(self, variables: Any, fresh_variables: Any, masks: LayerValues) -> tuple[Any, Any]: ...


class ResetRule(Protocol):
    """needs_scores:   whether `reset` reads unit scores (else learners capture nothing for it).
    zeroes_moments: whether the optimizer moments of the entries it touched are zeroed.
    metric:         name of its per-update metric (ends in "_sum" or "_count": the runner sums it).
    reset(target, variables, fresh_variables, scores) -> (new variables, touched: bool pytree
        like variables, [] float32 metric value); fresh_variables is a new initialization."""

    needs_scores: bool
    zeroes_moments: bool
    metric: str

    def reset(self, target: ResetTarget, variables: Any, fresh_variables: Any,
              scores: dict[str, LayerValues]) -> tuple[Any, Any, jax.Array]: ...


@dataclasses.dataclass(frozen=True)
class UnitReset:
    """ReDo (score "redo") or ReGraMa (score "grama"): re-draw the units whose normalized score is
    <= threshold, at most max_fraction of each layer (lowest first), and zero their moments."""

    score: str
    threshold: float
    max_fraction: float
    needs_scores = True
    zeroes_moments = True
    metric = RESET_METRIC

    def reset(self, target: ResetTarget, variables: Any, fresh_variables: Any,
              scores: dict[str, LayerValues]) -> tuple[Any, Any, jax.Array]:
        masks = target.per_member(lambda member_scores: select_units(member_scores, self.threshold,
                                                                     self.max_fraction))(scores[self.score])
        new_variables, touched = target.reset_selected(variables, fresh_variables, masks)
        return new_variables, touched, reset_count(masks)


RULES: dict[str, Callable[[PlasticityConfig], ResetRule]] = {
    "redo": lambda config: UnitReset(REDO, config.reset_threshold, config.max_reset_fraction),
    "regrama": lambda config: UnitReset(GRAMA, config.reset_threshold, config.max_reset_fraction),
    "shrink-perturb": lambda config: ShrinkPerturb(config.shrink_factor, config.perturb_scale),
}


def reset_rule(config: PlasticityConfig) -> ResetRule | None:
    """The rule of config.method; None for "none"."""
    return RULES[config.method](config) if config.enabled else None
