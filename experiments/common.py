"""Helpers shared by the experiment scripts: confidence intervals over seeds.

Kept out of the library: only the studies in experiments/ summarize runs this way.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def confidence_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): Student-t interval of the mean over seeds (NaN seeds dropped)."""
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    mean = float(values.mean()) if values.size else float("nan")
    if values.size < 2:
        return mean, mean, mean
    half_width = stats.t.ppf(0.5 + level / 2, values.size - 1) * values.std(ddof=1) / np.sqrt(values.size)
    return mean, mean - half_width, mean + half_width
