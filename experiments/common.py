"""Helpers shared by the experiment scripts: confidence intervals over seeds, and the compilation
cache the studies share (the `jaxrl` command's, from jaxrl_suite.runner.compilation_cache).
"""

from __future__ import annotations

import numpy as np

from jaxrl_suite.runner.compilation_cache import use_compilation_cache
from jaxrl_suite.stats import mean_ci

__all__ = ["confidence_interval", "use_compilation_cache"]


def confidence_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): Student-t interval of the mean over seeds (NaN seeds dropped), from
    jaxrl_suite.stats.mean_ci."""
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean, half_width = mean_ci(values, level)
    return mean, mean - half_width, mean + half_width
