"""Helpers shared by the experiment scripts: confidence intervals over seeds, and the compilation
cache the studies share (the `jaxrl` command's, from jaxrl_suite.runner.compilation_cache).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from jaxrl_suite.runner.compilation_cache import use_compilation_cache

__all__ = ["confidence_interval", "use_compilation_cache"]


def confidence_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): Student-t interval of the mean over seeds (NaN seeds dropped)."""
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    mean = float(values.mean()) if values.size else float("nan")
    if values.size < 2:
        return mean, mean, mean
    half_width = stats.t.ppf(0.5 + level / 2, values.size - 1) * values.std(ddof=1) / np.sqrt(values.size)
    return mean, mean - half_width, mean + half_width
