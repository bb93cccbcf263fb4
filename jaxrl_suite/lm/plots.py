"""Figures of the LM evaluations: per-position loss (with the training length marked) and needle accuracy.

One line or bar group per model, so the same functions draw one run or a comparison.
"""

from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from jaxrl_suite.runner.plots import save_figure  # noqa: E402


def smooth(curve: np.ndarray, window: int) -> np.ndarray:
    """Moving average with a `window`-wide box (shorter near the start): [n] -> [n]."""
    if window <= 1:
        return curve
    cumulative = np.cumsum(np.insert(curve, 0, 0.0))
    ends = np.arange(1, curve.size + 1)
    starts = np.maximum(0, ends - window)
    return (cumulative[ends] - cumulative[starts]) / (ends - starts)


def plot_position_losses(curves: dict[str, np.ndarray], train_length: int, output: str | pathlib.Path,
                         title: str = "loss by token position") -> pathlib.Path:
    """curves: {model name: per-position loss [seq]}; positions past train_length are extrapolation."""
    figure, axis = plt.subplots(figsize=(7, 4.2))
    for name, curve in curves.items():
        curve = np.asarray(curve)
        axis.plot(np.arange(1, curve.size + 1), smooth(curve, max(1, curve.size // 64)), label=name)
    axis.axvline(train_length, color="grey", linestyle="--", linewidth=1, label="training length")
    axis.set_xscale("log")
    axis.set_xlabel("token position")
    axis.set_ylabel("loss (nats/byte, smoothed)")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small")
    return save_figure(figure, output)


def plot_needle(results: dict[str, dict], output: str | pathlib.Path, metric: str = "exact") -> pathlib.Path:
    """results: {model name: needle_report dict}; bars of `metric` (averaged over depths) per context length."""
    figure, axis = plt.subplots(figsize=(7, 4.2))
    names = list(results)
    lengths = results[names[0]]["context_lengths"]
    width = 0.8 / len(names)
    for index, name in enumerate(names):
        values = np.mean(np.asarray(results[name][metric]), axis=1)
        axis.bar(np.arange(len(lengths)) + index * width, values, width, label=name)
    axis.set_xticks(np.arange(len(lengths)) + 0.4 - width / 2, [str(n) for n in lengths])
    axis.set_xlabel("context length (tokens)")
    axis.set_ylabel("exact-match retrieval" if metric == "exact" else "per-digit accuracy (teacher forced)")
    axis.set_ylim(0, 1.05)
    axis.set_title("needle in a haystack")
    axis.grid(alpha=0.3, axis="y")
    axis.legend(fontsize="small")
    return save_figure(figure, output)
