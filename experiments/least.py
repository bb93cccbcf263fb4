"""LEAST study: SAC vs SAC+LEAST and TD3 vs TD3+LEAST, every variant's seeds vmapped in one program.

Reports the final deterministic return with a 95% t-interval over seeds, the stop rate and the
fraction of env steps saved; draws evaluation return vs env steps (mean and 95% band) and stop rate.
Run: python experiments/least.py --preset cpu [--total-steps N --num-seeds S --out runs/least]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from experiments.common import confidence_interval  # noqa: E402
from jaxrl_suite import algorithms  # noqa: E402
from jaxrl_suite.early_stop import LeastConfig  # noqa: E402
from jaxrl_suite.runner import RunConfig, read_metrics, train  # noqa: E402
from jaxrl_suite.runner.plots import seed_curves  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Preset:
    """One scale of the study: where, how long, how many seeds, and the learner overrides."""

    env_id: str
    total_steps: int
    num_seeds: int
    log_points: int
    learner_overrides: dict
    least: LeastConfig


PRESETS = {
    # Minutes on a laptop CPU: Pendulum (200-step episodes), small networks, windows scaled to
    # the few dozen episodes such a run sees; LEAST starts after 15% of the budget.
    "cpu": Preset(
        env_id="gymnax/Pendulum-v1", total_steps=20_000, num_seeds=5, log_points=20,
        learner_overrides=dict(hidden_sizes=(64, 64)),
        least=LeastConfig(start_steps=3_000, min_episodes=5, window_init=20, window_min=5, window_max=40,
                          window_change=-5, window_every=2_000, noise_episodes=10),
    ),
    # The paper's scale on an accelerator: DMC, 1M steps, 5 seeds, K = 250, warm-up 10%.
    "gpu": Preset(
        env_id="dmc/CheetahRun", total_steps=1_000_000, num_seeds=5, log_points=50,
        learner_overrides={},
        least=LeastConfig(start_steps=100_000),
    ),
}
VARIANTS = (("sac", "none"), ("sac", "least"), ("td3", "none"), ("td3", "least"))


def run_variant(preset: Preset, algo: str, early_stop: str, out: pathlib.Path, noise_cap: float | None) -> pathlib.Path:
    least = preset.least if noise_cap is None else dataclasses.replace(preset.least, noise_cap=noise_cap)
    config = algorithms.default_config(algo, preset.env_id)
    config = dataclasses.replace(config, **preset.learner_overrides, early_stop=early_stop, least=least)
    learner = algorithms.make_learner(algo, config, preset.env_id)
    learner.check_memory(preset.num_seeds)  # all seeds' buffers live in one vmapped program
    run = RunConfig(total_steps=preset.total_steps, num_seeds=preset.num_seeds,
                    log_every=preset.total_steps // preset.log_points, eval_every=preset.total_steps // 10,
                    progress=False, tensorboard=False)
    run_dir = out / f"{algo}-{early_stop}"
    train(learner, run, run_dir, algo=algo, env_id=preset.env_id, overwrite=True)
    return run_dir


def summarize_variant(run_dir: pathlib.Path, total_steps: int) -> dict:
    records = read_metrics(run_dir)
    final = records[-1]
    mean, low, high = confidence_interval(final["eval_return_per_seed"])
    completed = sum(r.get("completed_count") or 0.0 for r in records)
    stopped = sum(r.get("least_stopped_count") or 0.0 for r in records)
    saved = sum(r.get("least_steps_saved_sum") or 0.0 for r in records)
    stopped_length = sum(r.get("least_stopped_length_sum") or 0.0 for r in records)
    return {
        "final_eval_return": mean, "ci95": [low, high], "per_seed": final["eval_return_per_seed"],
        "stop_rate": stopped / completed if completed else 0.0,
        "mean_stopped_length": stopped_length / stopped if stopped else None,
        "steps_saved_fraction": saved / (total_steps + saved),
        "wall_time_s": final["wall_time"],
    }


def plot(out: pathlib.Path, run_dirs: dict[tuple[str, str], pathlib.Path]) -> pathlib.Path:
    figure, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    for (algo, early_stop), run_dir in run_dirs.items():
        axis = axes[0] if algo == "sac" else axes[1]
        # Deterministic full-episode evaluations: training returns of LEAST runs are cut short.
        steps, values = seed_curves(run_dir, "eval_return")
        evaluated = np.isfinite(values).any(axis=1)
        steps, values = steps[evaluated], values[evaluated]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            bands = np.array([confidence_interval(row) for row in values])
        axis.plot(steps, bands[:, 0], label=f"{algo}{'+LEAST' if early_stop == 'least' else ''}")
        axis.fill_between(steps, bands[:, 1], bands[:, 2], alpha=0.2)
        if early_stop == "least":
            records = read_metrics(run_dir)
            axes[2].plot([r["env_steps"] for r in records], [r.get("least_stop_rate") or 0.0 for r in records],
                         label=f"{algo}+LEAST")
    for axis, title in zip(axes, ("SAC", "TD3", "LEAST stop rate (last m episodes)"), strict=True):
        axis.set_title(title)
        axis.set_xlabel("env steps")
        if axis.get_legend_handles_labels()[0]:
            axis.legend()
    axes[0].set_ylabel("eval return (mean, 95% CI over seeds)")
    path = out / "least.png"
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--total-steps", type=int, default=None, help="override the preset's budget")
    parser.add_argument("--num-seeds", type=int, default=None, help="override the preset's seed count")
    parser.add_argument("--algos", default="sac,td3", help="comma-separated subset of sac,td3")
    parser.add_argument("--least-start", type=int, default=None, help="override LEAST's warm-up (env steps)")
    parser.add_argument("--out", default="runs/least")
    args = parser.parse_args()
    preset = PRESETS[args.preset]
    preset = dataclasses.replace(
        preset,
        total_steps=args.total_steps or preset.total_steps,
        num_seeds=args.num_seeds or preset.num_seeds,
        least=preset.least if args.least_start is None else dataclasses.replace(preset.least,
                                                                                 start_steps=args.least_start),
    )
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    algos = args.algos.split(",")
    run_dirs, summary = {}, {}
    for algo, early_stop in VARIANTS:
        if algo not in algos:
            continue
        noise_cap = 0.3 if algo == "td3" else 0.2  # the middle of the paper's ranges
        run_dirs[(algo, early_stop)] = run_variant(preset, algo, early_stop, out, noise_cap)
        summary[f"{algo}+{early_stop}"] = summarize_variant(run_dirs[(algo, early_stop)], preset.total_steps)
        print(f"{algo} early_stop={early_stop}: {json.dumps(summary[f'{algo}+{early_stop}'])}", flush=True)
    (out / "summary.json").write_text(json.dumps({"preset": args.preset, "env": preset.env_id,
                                                  "total_steps": preset.total_steps, "num_seeds": preset.num_seeds,
                                                  "variants": summary}, indent=2) + "\n")
    print(f"\n{preset.env_id}, {preset.total_steps:,} env steps x {preset.num_seeds} seeds")
    print("| variant | final eval return (95% CI) | stop rate | mean stopped length | env steps saved |")
    print("|---|---|---|---|---|")
    for name, row in summary.items():
        stopped_length = "-" if row["mean_stopped_length"] is None else f"{row['mean_stopped_length']:.0f}"
        print(f"| {name} | {row['final_eval_return']:.1f} [{row['ci95'][0]:.1f}, {row['ci95'][1]:.1f}] | "
              f"{row['stop_rate']:.2f} | {stopped_length} | {row['steps_saved_fraction']:.1%} |")
    print(f"\nplot: {plot(out, run_dirs)}; summary: {out / 'summary.json'}")


if __name__ == "__main__":
    main()
