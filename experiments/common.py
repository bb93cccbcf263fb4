"""Helpers shared by the experiment scripts: confidence intervals over seeds, and the compilation
cache the studies share. Kept out of the library: only the studies in experiments/ use them.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from scipy import stats

COMPILATION_CACHE = "~/.cache/jaxrl_suite/xla"


def use_compilation_cache(directory: str = COMPILATION_CACHE) -> str:
    """Turns on JAX's persistent compilation cache (in $JAX_COMPILATION_CACHE_DIR when set, else
    `directory`) and returns its path. A study compiles many programs that are alike: settings that
    share the evaluation program, variants that share init, reruns and resumed runs; those load
    from the cache instead of compiling again. Cached programs compute the same numbers."""
    if not jax.config.jax_compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", os.path.expanduser(directory))
    print(f"compiled programs are cached in {jax.config.jax_compilation_cache_dir} "
          "(JAX_COMPILATION_CACHE_DIR moves it)", flush=True)
    return jax.config.jax_compilation_cache_dir


def confidence_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): Student-t interval of the mean over seeds (NaN seeds dropped)."""
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    mean = float(values.mean()) if values.size else float("nan")
    if values.size < 2:
        return mean, mean, mean
    half_width = stats.t.ppf(0.5 + level / 2, values.size - 1) * values.std(ddof=1) / np.sqrt(values.size)
    return mean, mean - half_width, mean + half_width
