"""Shrink and Perturb (Ash & Adams 2020): every `period` updates theta <- lambda * theta + sigma * eps,
eps a fresh draw from the network's own initializer, for every parameter of the network.

The reset rule behind `--plasticity shrink-perturb` (see reset_rules.py); it needs no unit scores.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from jaxrl_suite.plasticity.layout import PARAMS


def shrink_and_perturb(variables: Any, fresh_variables: Any, shrink: float, perturb: float) -> Any:
    """`variables` with every "params" leaf replaced by shrink * leaf + perturb * fresh leaf;
    other collections are kept."""
    params = jax.tree.map(lambda leaf, fresh: shrink * leaf + perturb * fresh,
                          variables[PARAMS], fresh_variables[PARAMS])
    return {**variables, PARAMS: params}


@dataclasses.dataclass(frozen=True)
class ShrinkPerturb:
    """The rule: whole-network shrink and perturb. Adam's moments are kept (the paper's SGD has
    none to reset); a Polyak target network receives the shrunk-and-perturbed weights, as a unit
    reset's entries are copied into it. Its metric counts the updates that applied it."""

    shrink: float
    perturb: float
    needs_scores = False
    zeroes_moments = False
    metric = "shrink_perturb_count"

    def reset(self, target: Any, variables: Any, fresh_variables: Any, scores: Any) -> tuple[Any, Any, jax.Array]:
        del target, scores
        touched = jax.tree.map(lambda leaf: jnp.zeros(leaf.shape, jnp.bool_), variables)
        touched[PARAMS] = jax.tree.map(lambda leaf: jnp.ones(leaf.shape, jnp.bool_), variables[PARAMS])
        return (shrink_and_perturb(variables, fresh_variables, self.shrink, self.perturb), touched,
                jnp.ones((), jnp.float32))
