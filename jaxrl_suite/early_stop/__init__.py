"""Early episode termination behind one protocol (rule.py): LEAST (arXiv 2506.13672, least.py)
and a fixed-horizon control (fixed_horizon.py); `make_stop_rule` builds a learner's from its config.
"""

import dataclasses
from typing import Any

from jaxrl_suite.early_stop.fixed_horizon import FixedHorizon, FixedHorizonConfig, FixedHorizonState
from jaxrl_suite.early_stop.least import (
    GRADIENT_STATISTICS,
    STATISTICS,
    Least,
    LeastConfig,
    LeastState,
    StopDecision,
    adapt_window,
    column_spread,
    column_statistic,
    column_values,
    decide_stop,
    exploration_noise,
    histogram_entropy,
    init_least,
    least_state_bytes,
    least_step_with_decision,
    maybe_adapt_window,
    recent_stop_rate,
    record_step,
    rule_threshold,
    stop_rule,
    window_entropy,
    window_rows,
)
from jaxrl_suite.early_stop.rule import (
    ENV_STATISTICS,
    STOP_RULE_KEY_STREAM,
    StopRule,
    env_step_statistics,
    init_stop_rule,
    step_envs,
)
from jaxrl_suite.validation import require, require_defaults

# Values of a learner config's `early_stop` field (the rule's own constants sit in `least` / `horizon`).
EARLY_STOP_MODES = ("none", "least", "fixed-horizon")


def validate_stop_fields(config: Any, modes: tuple[str, ...] = EARLY_STOP_MODES) -> None:
    """config.early_stop one of `modes`; its `least` (when the config has one) and `horizon` valid,
    and `horizon` at its defaults unless early_stop="fixed-horizon" (nothing would read it)."""
    owner = config.owner
    require(config.early_stop in modes, owner, "early_stop", config.early_stop, f"one of {modes}")
    if hasattr(config, "least"):
        config.least.validate(f"{owner}.least")
    config.horizon.validate(f"{owner}.horizon")
    if config.early_stop != "fixed-horizon":
        require_defaults(config.horizon, [field.name for field in dataclasses.fields(config.horizon)],
                         f"{owner}.horizon",
                         "unless early_stop='fixed-horizon' (its settings act only with that rule)")


def make_stop_rule(config: Any, env_id: str, max_episode_steps: int | None) -> StopRule | None:
    """The StopRule of config.early_stop (None for "none"), built from config.least or
    config.horizon for an env whose time limit is max_episode_steps; ValueError (one line naming
    the field) when the env has no time limit."""
    mode = config.early_stop
    if mode == "none":
        return None
    if max_episode_steps is None:
        raise ValueError(f"invalid {config.owner}.early_stop={mode!r}: a stop rule needs an env with a time limit, "
                         f"and {env_id!r} has none")
    if mode == "least":
        return Least(config.least, max_episode_steps)
    return FixedHorizon(config.horizon, max_episode_steps)

__all__ = [
    "EARLY_STOP_MODES",
    "ENV_STATISTICS",
    "GRADIENT_STATISTICS",
    "STATISTICS",
    "STOP_RULE_KEY_STREAM",
    "FixedHorizon",
    "FixedHorizonConfig",
    "FixedHorizonState",
    "Least",
    "LeastConfig",
    "LeastState",
    "StopDecision",
    "StopRule",
    "adapt_window",
    "column_spread",
    "column_statistic",
    "column_values",
    "decide_stop",
    "env_step_statistics",
    "exploration_noise",
    "histogram_entropy",
    "init_stop_rule",
    "init_least",
    "least_state_bytes",
    "least_step_with_decision",
    "make_stop_rule",
    "validate_stop_fields",
    "maybe_adapt_window",
    "record_step",
    "recent_stop_rate",
    "rule_threshold",
    "step_envs",
    "stop_rule",
    "window_entropy",
    "window_rows",
]
