"""ReGraMa study: DQN without resets vs ReDo vs ReGraMa, every variant's seeds vmapped in one program.

Reports the final greedy return (95% t-interval over seeds) next to the dormant (ReDo) and
GraMa-inactive ratios, units reset, feature and NTK rank; draws return and ratios vs env steps.
Run: python experiments/regrama.py --preset cpu [--total-steps N --num-seeds S --out runs/regrama]
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
from jaxrl_suite.plasticity import PlasticityConfig  # noqa: E402
from jaxrl_suite.runner import RunConfig, read_metrics, train  # noqa: E402
from jaxrl_suite.runner.plots import seed_curves  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Preset:
    """One scale of the study: environment, budget, seeds, DQN overrides and the reset schedule."""

    env_id: str
    total_steps: int
    num_seeds: int
    log_points: int
    eval_points: int
    learner_overrides: dict
    reset_period: int
    max_reset_fraction: float


PRESETS = {
    # Minutes on a CPU: CartPole with a high replay ratio (4 gradient steps per 10 env steps),
    # which is where dormant units appear early (Sokar et al. 2023).
    "cpu": Preset(
        env_id="gymnax/CartPole-v1", total_steps=30_000, num_seeds=5, log_points=15, eval_points=3,
        learner_overrides=dict(gradient_steps_per_update=4), reset_period=250, max_reset_fraction=0.1,
    ),
    # An accelerator: MinAtar Breakout with the MinAtar DQN network, resets every 1000 gradient steps.
    "gpu": Preset(
        env_id="gymnax/Breakout-MinAtar", total_steps=3_000_000, num_seeds=5, log_points=60, eval_points=10,
        learner_overrides={}, reset_period=1_000, max_reset_fraction=0.05,
    ),
}
METHODS = ("none", "redo", "regrama")
TAIL_FRACTION = 0.2  # ratios are averaged over the last 20% of log points


def run_variant(preset: Preset, method: str, out: pathlib.Path) -> pathlib.Path:
    plasticity = PlasticityConfig(method=method, period=preset.reset_period,
                                  max_reset_fraction=preset.max_reset_fraction, log_unit_activity=True)
    config = algorithms.default_config("dqn", preset.env_id)
    config = dataclasses.replace(config, **preset.learner_overrides, plasticity=plasticity)
    learner = algorithms.make_learner("dqn", config, preset.env_id)
    learner.check_memory(preset.num_seeds)
    run = RunConfig(total_steps=preset.total_steps, num_seeds=preset.num_seeds,
                    log_every=preset.total_steps // preset.log_points,
                    eval_every=preset.total_steps // preset.eval_points, progress=False, tensorboard=False)
    run_dir = out / method
    train(learner, run, run_dir, algo="dqn", env_id=preset.env_id, overwrite=True)
    return run_dir


def tail_mean(records: list[dict], metric: str) -> float | None:
    values = [r[metric] for r in records if r.get(metric) is not None]
    if not values:
        return None
    return float(np.mean(values[-max(1, int(len(values) * TAIL_FRACTION)):]))


def summarize_variant(run_dir: pathlib.Path) -> dict:
    records = read_metrics(run_dir)
    final = records[-1]
    mean, low, high = confidence_interval(final["eval_return_per_seed"])
    return {
        "final_eval_return": mean, "ci95": [low, high], "per_seed": final["eval_return_per_seed"],
        "train_return_tail": tail_mean(records, "episode_return"),
        "dormant_ratio_tail": tail_mean(records, "dormant_ratio"),
        "grama_inactive_ratio_tail": tail_mean(records, "grama_inactive_ratio"),
        "units_reset": float(sum(r.get("reset_units_sum") or 0.0 for r in records)),
        "final_feature_rank": final.get("feature_rank_q_values"),
        "final_ntk_rank": final.get("ntk_rank"),
        "wall_time_s": final["wall_time"],
    }


def plot(out: pathlib.Path, run_dirs: dict[str, pathlib.Path]) -> pathlib.Path:
    figure, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    for method, run_dir in run_dirs.items():
        steps, values = seed_curves(run_dir, "episode_return")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            bands = np.array([confidence_interval(row) for row in values])
        axes[0].plot(steps, bands[:, 0], label=method)
        axes[0].fill_between(steps, bands[:, 1], bands[:, 2], alpha=0.2)
        records = read_metrics(run_dir)
        for axis, metric in ((axes[1], "dormant_ratio"), (axes[2], "grama_inactive_ratio")):
            points = [(r["env_steps"], r[metric]) for r in records if r.get(metric) is not None]
            if points:
                axis.plot(*zip(*points, strict=True), label=method)
    titles = ("training return (mean, 95% CI over seeds)", "dormant ratio (ReDo score <= 0.1)",
              "GraMa-inactive ratio (gradient score <= 0.1)")
    for axis, title in zip(axes, titles, strict=True):
        axis.set_title(title)
        axis.set_xlabel("env steps")
        axis.legend()
    path = out / "regrama.png"
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--total-steps", type=int, default=None, help="override the preset's budget")
    parser.add_argument("--num-seeds", type=int, default=None, help="override the preset's seed count")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated subset of {METHODS}")
    parser.add_argument("--out", default="runs/regrama")
    args = parser.parse_args()
    preset = PRESETS[args.preset]
    preset = dataclasses.replace(preset, total_steps=args.total_steps or preset.total_steps,
                                 num_seeds=args.num_seeds or preset.num_seeds)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run_dirs, summary = {}, {}
    for method in args.methods.split(","):
        run_dirs[method] = run_variant(preset, method, out)
        summary[method] = summarize_variant(run_dirs[method])
        print(f"{method}: {json.dumps(summary[method])}", flush=True)
    (out / "summary.json").write_text(json.dumps({
        "preset": args.preset, "env": preset.env_id, "total_steps": preset.total_steps,
        "num_seeds": preset.num_seeds, "reset_period": preset.reset_period, "variants": summary,
    }, indent=2) + "\n")
    print(f"\nDQN on {preset.env_id}, {preset.total_steps:,} env steps x {preset.num_seeds} seeds")
    print("| method | final eval return (95% CI) | train return (last 20%) | dormant ratio | GraMa-inactive ratio "
          "| units reset | feature rank | NTK rank |")
    print("|---|---|---|---|---|---|---|---|")
    for method, row in summary.items():
        def number(value, digits=3):
            return "-" if value is None else f"{value:.{digits}f}"

        print(f"| {method} | {row['final_eval_return']:.1f} [{row['ci95'][0]:.1f}, {row['ci95'][1]:.1f}] | "
              f"{number(row['train_return_tail'], 1)} | {number(row['dormant_ratio_tail'])} | "
              f"{number(row['grama_inactive_ratio_tail'])} | {row['units_reset']:.0f} | "
              f"{number(row['final_feature_rank'], 1)} | {number(row['final_ntk_rank'], 1)} |")
    print(f"\nplot: {plot(out, run_dirs)}; summary: {out / 'summary.json'}")


if __name__ == "__main__":
    main()
