"""Learning-curve PNGs from run directories: the mean over seeds with its 95% t-interval band,
one line per run. Used at the end of every run and by `jaxrl plot DIR [DIR ...]`.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

import chex
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats as scipy_stats  # noqa: E402

from jaxrl_suite.runner.metrics_log import METRICS_FILE, read_metrics  # noqa: E402

CONFIDENCE = 0.95


def seed_curves(run_dir: str | pathlib.Path, metric: str = "episode_return",
                x_key: str = "env_steps") -> tuple[np.ndarray, np.ndarray]:
    """(x_key values [P], metric values [P, num_seeds]) of one run; NaN where a seed had no value."""
    records = [r for r in read_metrics(run_dir) if r.get(metric) is not None or r.get(f"{metric}_per_seed")]
    steps = np.array([r[x_key] for r in records], dtype=np.float64)
    rows = []
    for record in records:
        per_seed = record.get(f"{metric}_per_seed", [record.get(metric)])
        rows.append([np.nan if v is None else v for v in per_seed])
    width = max((len(row) for row in rows), default=0)
    values = np.array(rows, dtype=np.float64).reshape(len(records), width)
    return steps, values


def mean_and_ci(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """values [P, num_seeds] (NaN: no value) -> (mean [P], half-width [P] of the Student-t interval
    over each point's finite seeds): stats.mean_ci row by row, vectorized. Half-width 0 where
    fewer than two seeds have a value; mean NaN where none has."""
    chex.assert_rank(values, 2)
    finite = np.isfinite(values)
    count = finite.sum(axis=1)
    filled = np.where(finite, values, 0.0)
    mean = np.where(count > 0, filled.sum(axis=1) / np.maximum(count, 1), np.nan)
    squares = np.where(finite, (values - mean[:, None]) ** 2, 0.0).sum(axis=1)
    std = np.sqrt(squares / np.maximum(count - 1, 1))
    quantile = scipy_stats.t.ppf(0.5 + confidence / 2, np.maximum(count - 1, 1))
    half = np.where(count > 1, quantile * std / np.sqrt(np.maximum(count, 1)), 0.0)
    chex.assert_equal_shape([mean, half])
    return mean, half


def check_metric(run_dirs: Sequence[str | pathlib.Path], metric: str) -> None:
    """ValueError in one line unless every directory exists and holds a metrics.jsonl and one of
    them logs `metric` (the message lists those they log)."""
    logged: set[str] = set()
    for run_dir in map(pathlib.Path, run_dirs):
        if not run_dir.is_dir():
            raise ValueError(f"no such run directory: {run_dir}")
        records = read_metrics(run_dir)
        if not records:
            raise ValueError(f"{run_dir} has no {METRICS_FILE} records (not a run directory, or its run "
                             "stopped before the first log point)")
        logged.update(key for record in records for key in record if not key.endswith("_per_seed"))
    if metric not in logged:
        raise ValueError(f"metric {metric!r} is not in {METRICS_FILE} of {', '.join(map(str, run_dirs))}; "
                         f"logged there: {', '.join(sorted(logged))}")


def plot_runs(run_dirs: Sequence[str | pathlib.Path], output: str | pathlib.Path,
              metric: str = "episode_return", title: str | None = None,
              x_key: str = "env_steps") -> pathlib.Path:
    """Draws `metric` vs `x_key` for each run (mean over seeds, 95% CI band) into `output`."""
    if not run_dirs:
        raise ValueError("plot_runs needs at least one run directory")
    check_metric(run_dirs, metric)
    figure, axis = plt.subplots(figsize=(7, 4.2))
    drawn = 0
    for run_dir in run_dirs:
        steps, values = seed_curves(run_dir, metric, x_key)
        if steps.size == 0:
            continue
        mean, half = mean_and_ci(values)
        seeds = values.shape[1]
        name = pathlib.Path(run_dir).name
        label = f"{name}: mean and {CONFIDENCE:.0%} CI over {seeds} seeds" if seeds > 1 else f"{name} (1 seed)"
        (line,) = axis.plot(steps, mean, label=label)
        if seeds > 1:
            axis.fill_between(steps, mean - half, mean + half, color=line.get_color(), alpha=0.2)
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

