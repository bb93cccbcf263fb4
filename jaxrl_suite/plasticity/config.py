"""Frozen configs of the plasticity tools, nested in every learner's config: PlasticityConfig
(ReDo / ReGraMa resets, arXiv 2505.24061; Shrink and Perturb) and ChurnConfig (C-CHAIN, arXiv 2506.00592).
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Literal

import tyro

from jaxrl_suite.validation import added_field, require, require_defaults

PLASTICITY_METHODS = ("none", "redo", "regrama", "shrink-perturb")
UNIT_METHODS = ("redo", "regrama")  # the methods that reset units selected by a score
GRAMA_SCORES = ("activation_grad", "kernel_grad")
CHURN_METHODS = ("none", "cchain")
CHAIN_WEIGHTS = ("value_coefficient", "policy_coefficient")  # read by SAC/TD3 (CHAIN) only
# C-CHAIN's adaptive coefficient, read by PPO and DQN only (SAC/TD3's CHAIN uses fixed weights).
ADAPTIVE_FIELDS = ("initial_coefficient", "kappa", "window", "warmup", "adaptive", "min_coefficient")
UNIT_RESET_FIELDS = ("threshold", "max_reset_fraction")
SHRINK_PERTURB_FIELDS = ("shrink_factor", "perturb_scale")
# Thresholds of the papers: ReDo tau = 0.1 (its DQN setting); ReGraMa tau = 0 for plain MLPs.
DEFAULT_THRESHOLDS = {"redo": 0.1, "regrama": 0.0}


def _flag(name: str):
    """CLI name of a nested field (the CLI drops nesting prefixes, so names must be unique)."""
    return tyro.conf.arg(name=name, prefix_name=False)


@dataclasses.dataclass(frozen=True)
class PlasticityConfig:
    """Dormant/inactive neuron resets and the unit diagnostics that come with them."""

    method: Annotated[Literal["none", "redo", "regrama", "shrink-perturb"], _flag("plasticity")] = "none"
    """none, redo (Sokar et al. 2023), regrama (gradient score) or shrink-perturb (Ash & Adams 2020)."""
    score: Annotated[Literal["activation_grad", "kernel_grad"], _flag("grama-score")] = "activation_grad"
    """ReGraMa's reset score (method regrama only): E|dL/d pre-activation| per unit, or the proxy
    mean_j |dL/dW[j, i]|; other methods log grama_inactive_ratio with activation_grad."""
    period: Annotated[int, _flag("reset-period")] = 1000
    """Updates between resets (DQN, SAC, TD3: gradient steps, TD3's actor: its delayed steps; PPO: iterations)."""
    threshold: Annotated[float | None, _flag("reset-threshold")] = None
    """Reset units whose normalized score is <= this; None: 0.1 for redo, 0.0 for regrama."""
    max_reset_fraction: Annotated[float, _flag("max-reset-fraction")] = 0.05
    """At most this fraction of each layer's units is reset at once (lowest scores first)."""
    shrink_factor: Annotated[float, _flag("shrink-factor")] = added_field("2026-12-03", default=0.8)
    """Shrink and Perturb's lambda: theta <- lambda * theta + sigma * (a fresh initialization)."""
    perturb_scale: Annotated[float, _flag("perturb-scale")] = added_field("2026-12-03", default=0.2)
    """Shrink and Perturb's sigma."""
    log_unit_activity: Annotated[bool, _flag("log-unit-activity")] = False
    """Log dormant / GraMa-inactive ratios and feature rank even when method is none."""
    diagnostic_threshold: Annotated[float, _flag("diagnostic-threshold")] = 0.1
    """tau of the logged dormant_ratio and grama_inactive_ratio (the same for every method)."""

    @property
    def enabled(self) -> bool:
        return self.method != "none"

    @property
    def captures_units(self) -> bool:
        """Whether the learner has to capture unit activations and gradients."""
        return self.method in UNIT_METHODS or self.log_unit_activity

    @property
    def reset_threshold(self) -> float:
        if self.threshold is not None:
            return self.threshold
        return DEFAULT_THRESHOLDS.get(self.method, 0.0)

    def validate(self, owner: str = "plasticity") -> PlasticityConfig:
        require(self.method in PLASTICITY_METHODS, owner, "method", self.method, f"one of {PLASTICITY_METHODS}")
        require(self.score in GRAMA_SCORES, owner, "score", self.score, f"one of {GRAMA_SCORES}")
        if self.method != "regrama":  # only ReGraMa resets by it
            require_defaults(self, ("score",), owner, "unless method='regrama' (only ReGraMa resets by this score)")
        require(isinstance(self.period, int) and self.period >= 1, owner, "period", self.period, "an integer >= 1")
        require(self.threshold is None or self.threshold >= 0, owner, "threshold", self.threshold,
                "None (method default) or a float >= 0")
        require(0.0 < self.max_reset_fraction <= 1.0, owner, "max_reset_fraction", self.max_reset_fraction,
                "a fraction in (0, 1]")
        require(self.diagnostic_threshold >= 0, owner, "diagnostic_threshold", self.diagnostic_threshold,
                "a float >= 0")
        require(0.0 <= self.shrink_factor <= 1.0, owner, "shrink_factor", self.shrink_factor, "a float in [0, 1]")
        require(self.perturb_scale >= 0, owner, "perturb_scale", self.perturb_scale, "a float >= 0")
        if not self.enabled:
            require_defaults(self, ("period",), owner,
                             "unless a reset method is on (method 'redo', 'regrama' or 'shrink-perturb')")
        if self.method not in UNIT_METHODS:
            require_defaults(self, UNIT_RESET_FIELDS, owner,
                             "unless method is 'redo' or 'regrama' (only their unit resets read it)")
        if self.method != "shrink-perturb":
            require_defaults(self, SHRINK_PERTURB_FIELDS, owner,
                             "unless method='shrink-perturb' (shrink_factor and perturb_scale are its settings)")
        if not self.captures_units:
            require_defaults(self, ("diagnostic_threshold",), owner,
                             "unless method is 'redo' or 'regrama' or log_unit_activity is on (nothing is logged otherwise)")
        return self


@dataclasses.dataclass(frozen=True)
class ChurnConfig:
    """C-CHAIN: an MSE (or KL) between the network's outputs and those of its parameters one
    gradient step earlier, on an independent reference batch, with an adaptive coefficient."""

    method: Annotated[Literal["none", "cchain"], _flag("churn")] = "none"
    """none or cchain."""
    initial_coefficient: Annotated[float, _flag("churn-initial-coefficient")] = 100.0
    """lambda during warm-up and right after a task switch."""
    kappa: Annotated[float, _flag("churn-kappa")] = 0.05
    """lambda = kappa * mean|L_rl| / (mean L_churn + 1e-8) * lr_fraction after warm-up."""
    window: Annotated[int, _flag("churn-window")] = 100
    """Updates of loss history the adaptive lambda averages over."""
    warmup: Annotated[int, _flag("churn-warmup")] = 50
    """Updates before lambda adapts (it stays at initial_coefficient until then)."""
    adaptive: Annotated[bool, _flag("churn-adaptive")] = True
    """False: keep lambda = initial_coefficient throughout."""
    min_coefficient: Annotated[float, _flag("churn-min-coefficient")] = 0.0
    """Lower bound on lambda (ProcGen's setting is 1)."""
    value_coefficient: Annotated[float, _flag("churn-value-coefficient")] = 0.1
    """SAC/TD3 (CHAIN): weight of the Q-value churn, summed over critics."""
    policy_coefficient: Annotated[float, _flag("churn-policy-coefficient")] = 5e-4
    """SAC/TD3 (CHAIN): the policy churn weight is this * mean|Q| * action_dim."""

    @property
    def enabled(self) -> bool:
        return self.method != "none"

    def validate(self, owner: str = "churn", chain_weights: bool = True,
                 defaults: ChurnConfig | None = None) -> ChurnConfig:
        """Refuses fields nothing reads, judged against `defaults` (the owner's default churn, the
        class defaults unless given): every field but method when method is none; with
        chain_weights=False (PPO, DQN: C-CHAIN's adaptive coefficient) value_coefficient and
        policy_coefficient; with chain_weights=True (SAC/TD3: CHAIN's fixed weights) the adaptive ones."""
        require(self.method in CHURN_METHODS, owner, "method", self.method, f"one of {CHURN_METHODS}")
        for name in ("initial_coefficient", "kappa", "min_coefficient", "value_coefficient", "policy_coefficient"):
            require(getattr(self, name) >= 0, owner, name, getattr(self, name), "a float >= 0")
        require(isinstance(self.window, int) and self.window >= 1, owner, "window", self.window, "an integer >= 1")
        require(isinstance(self.warmup, int) and self.warmup >= 0, owner, "warmup", self.warmup, "an integer >= 0")
        if not self.enabled:
            require_defaults(self, ADAPTIVE_FIELDS + CHAIN_WEIGHTS, owner,
                             "unless method='cchain' (the churn settings act only with C-CHAIN)", defaults)
        elif chain_weights:
            require_defaults(self, ADAPTIVE_FIELDS, owner,
                             "(SAC/TD3's CHAIN uses the fixed weights value_coefficient and policy_coefficient; "
                             "the adaptive coefficient is PPO's and DQN's C-CHAIN)", defaults)
        else:
            require_defaults(self, CHAIN_WEIGHTS, owner,
                             "(only SAC/TD3's CHAIN reads these weights; PPO and DQN run C-CHAIN)", defaults)
        return self
