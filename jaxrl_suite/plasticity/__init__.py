"""Plasticity tools for any learner: neuron scores and resets (ReDo, GraMa/ReGraMa), churn
reduction (C-CHAIN/CHAIN) and diagnostics (dormant ratio, feature and NTK rank, ...).

Pure functions plus small states, optax-style; `UnitPlasticity` binds a reset rule
(reset_rules.py: ReDo, ReGraMa, Shrink and Perturb) and the unit tools to one network.
"""

from jaxrl_suite.plasticity.capture import (
    Perturbations,
    UnitCapture,
    UnitRecorder,
    apply_with_capture,
    capture_units,
    zero_perturbations,
)
from jaxrl_suite.plasticity.churn import (
    ChurnState,
    advance_reference,
    chain_policy_coefficient,
    chain_value_churn,
    churn_categorical_kl,
    churn_gaussian_kl,
    churn_metrics,
    churn_mse,
    init_churn_state,
    record_losses,
    restart_on_task_switch,
)
from jaxrl_suite.plasticity.config import ChurnConfig, PlasticityConfig
from jaxrl_suite.plasticity.diagnostics import (
    PROBE_SIZE,
    effective_rank,
    gradient_kurtosis,
    network_probe,
    ntk_gram,
    ntk_rank,
    spectrum_rank,
    weight_norm,
)
from jaxrl_suite.plasticity.ensemble import StackedMembers
from jaxrl_suite.plasticity.layout import UnitLayer, UnitLayout, find_unit_layout, layer_key
from jaxrl_suite.plasticity.reset_rules import ResetRule, UnitReset, reset_rule
from jaxrl_suite.plasticity.resets import reset_count, reset_units, zero_optimizer_state
from jaxrl_suite.plasticity.scores import (
    activation_grad_scores,
    inactive_fraction,
    kernel_grad_scores,
    normalize_per_layer,
    redo_scores,
    select_units,
)
from jaxrl_suite.plasticity.shrink_perturb import ShrinkPerturb, shrink_and_perturb
from jaxrl_suite.plasticity.unit_plasticity import UnitPlasticity

__all__ = [
    "PROBE_SIZE",
    "ChurnConfig",
    "ChurnState",
    "Perturbations",
    "PlasticityConfig",
    "ResetRule",
    "ShrinkPerturb",
    "StackedMembers",
    "UnitCapture",
    "UnitLayer",
    "UnitLayout",
    "UnitPlasticity",
    "UnitRecorder",
    "UnitReset",
    "activation_grad_scores",
    "advance_reference",
    "apply_with_capture",
    "capture_units",
    "chain_policy_coefficient",
    "chain_value_churn",
    "churn_categorical_kl",
    "churn_gaussian_kl",
    "churn_metrics",
    "churn_mse",
    "effective_rank",
    "find_unit_layout",
    "gradient_kurtosis",
    "inactive_fraction",
    "init_churn_state",
    "kernel_grad_scores",
    "layer_key",
    "normalize_per_layer",
    "ntk_gram",
    "network_probe",
    "ntk_rank",
    "record_losses",
    "redo_scores",
    "reset_count",
    "reset_rule",
    "reset_units",
    "restart_on_task_switch",
    "select_units",
    "shrink_and_perturb",
    "spectrum_rank",
    "weight_norm",
    "zero_optimizer_state",
    "zero_perturbations",
]
