"""Early episode termination for off-policy learners: LEAST (arXiv 2506.13672).

Pure functions over a small LeastState kept in the learner's TrainState; see least.py.
"""

from jaxrl_suite.early_stop.least import (
    GRADIENT_STATISTICS,
    STATISTICS,
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
    least_step,
    maybe_adapt_window,
    recent_stop_rate,
    record_step,
    rule_threshold,
    stop_rule,
    window_entropy,
    window_rows,
)

__all__ = [
    "GRADIENT_STATISTICS",
    "STATISTICS",
    "LeastConfig",
    "LeastState",
    "StopDecision",
    "adapt_window",
    "column_spread",
    "column_statistic",
    "column_values",
    "decide_stop",
    "exploration_noise",
    "histogram_entropy",
    "init_least",
    "least_state_bytes",
    "least_step",
    "maybe_adapt_window",
    "record_step",
    "recent_stop_rate",
    "rule_threshold",
    "stop_rule",
    "window_entropy",
    "window_rows",
]
