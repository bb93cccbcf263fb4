"""Learning-curve PNGs from run directories: mean and spread over seeds, one line per run.

Used at the end of every run and by `jaxrl plot DIR [DIR ...]`.
"""

from __future__ import annotations

import pathlib
import warnings
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from jaxrl_suite.runner.metrics_log import read_metrics  # noqa: E402


def seed_curves(run_dir: str | pathlib.Path, metric: str = "episode_return",
                x_key: str = "env_steps") -> tuple[np.ndarray, np.ndarray]:
    """(x_key values [P], metric values [P, num_seeds]) of one run; NaN where a seed had no value."""
    records = [r for r in read_metrics(run_dir) if r.get(metric) is not None or r.get(f"{metric}_per_seed")]
    steps = np.array([r[x_key] for r in records], dtype=np.float64)
    rows = []
    for record in records:
        per_seed = record.get(f"{metric}_per_seed", [record.get(metric)])
        rows.append([np.nan if v is None else v for v in per_seed])
    values = np.array(rows, dtype=np.float64).reshape(len(records), -1)
    return steps, values


def plot_runs(run_dirs: Sequence[str | pathlib.Path], output: str | pathlib.Path,
              metric: str = "episode_return", title: str | None = None,
              x_key: str = "env_steps") -> pathlib.Path:
    """Draws `metric` vs `x_key` for each run (mean line, min-max band over seeds) into `output`."""
    if not run_dirs:
        raise ValueError("plot_runs needs at least one run directory")
    figure, axis = plt.subplots(figsize=(7, 4.2))
    drawn = 0
    for run_dir in run_dirs:
        steps, values = seed_curves(run_dir, metric, x_key)
        if steps.size == 0:
            continue
        with warnings.catch_warnings():  # log points where no episode had ended yet are all-NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(values, axis=1)
            low, high = np.nanmin(values, axis=1), np.nanmax(values, axis=1)
        label = pathlib.Path(run_dir).name + (f" ({values.shape[1]} seeds)" if values.shape[1] > 1 else "")
        (line,) = axis.plot(steps, mean, label=label)
        if values.shape[1] > 1:
            axis.fill_between(steps, low, high, color=line.get_color(), alpha=0.2)
        drawn += 1
    if drawn == 0:
        plt.close(figure)
        raise ValueError(f"no '{metric}' values in metrics.jsonl of {', '.join(map(str, run_dirs))}")
    axis.set_xlabel(x_key.replace("_", " "))
    axis.set_ylabel(metric.replace("_", " "))
    axis.set_title(title or metric.replace("_", " "))
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small")
    return save_figure(figure, output)


def save_figure(figure: plt.Figure, output: str | pathlib.Path) -> pathlib.Path:
    """Writes `figure` to `output` (parent folders created) and closes it."""
    output = pathlib.Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(output, dpi=120)
    plt.close(figure)
    return output

