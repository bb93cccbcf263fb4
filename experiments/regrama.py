"""ReGraMa study: no resets vs ReDo vs ReGraMa for SAC (dmc, brax) and PPO/DQN (MinAtar), every
variant's seeds vmapped in one program.

Reports the final greedy return (95% t-interval over seeds) next to the dormant (ReDo) and
GraMa-inactive ratios (SAC: of the critics and of the actor), units reset, and the final
feature and NTK rank of each network (DQN, SAC); draws return and ratios vs env steps, one row per study.
Run: python experiments/regrama.py --preset cpu [--studies sac-dmc,dqn-minatar --total-steps N
     --num-seeds S --methods none,regrama --out runs/regrama]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import sys
import warnings
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from experiments.common import confidence_interval, use_compilation_cache  # noqa: E402
from jaxrl_suite import algorithms  # noqa: E402
from jaxrl_suite.plasticity import PlasticityConfig  # noqa: E402
from jaxrl_suite.runner import RunConfig, read_metrics, train_or_continue  # noqa: E402
from jaxrl_suite.runner.plots import seed_curves  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Study:
    """One learner on one environment, trained once per method with the same budget and seeds.

    reset_period: learner updates between resets (DQN/SAC: gradient steps; PPO: iterations).
    """

    name: str
    algo: str
    env_id: str
    total_steps: int
    learner_overrides: dict
    reset_period: int
    max_reset_fraction: float
    log_points: int = 15
    eval_points: int = 3
    thresholds: dict = dataclasses.field(default_factory=dict)
    """method -> reset threshold tau, where it differs from the method's default."""


@dataclasses.dataclass(frozen=True)
class Preset:
    """A scale of the study: its studies and the seeds each variant runs (vmapped)."""

    studies: tuple[Study, ...]
    num_seeds: int


# SAC on a CPU: 16 envs, batch 128, 2 gradient steps per env step, 128-unit critics and actor.
SAC_CPU = dict(num_envs=16, batch_size=128, utd_ratio=2, buffer_size=40_960, learning_starts=2_048,
               hidden_sizes=(128, 128), num_eval_envs=5)
# DQN on MinAtar on a CPU: the MinAtar network and replay ratio (1 gradient step per 4 env steps)
# with 16 envs per update, a shorter warm-up and exploration schedule.
DQN_MINATAR_CPU = dict(num_envs=16, gradient_steps_per_update=4, buffer_size=40_000, learning_starts=2_000,
                       epsilon_decay_steps=20_000, target_update_period=500, num_eval_envs=5)
# PPO on MinAtar on a CPU: 32 envs x 64 steps per iteration.
PPO_MINATAR_CPU = dict(num_envs=32, rollout_length=64, num_eval_envs=5)
# ReGraMa's tau for LayerNorm networks (the SAC critics here; 0, the default, is for plain MLPs).
LAYER_NORM_TAU = {"regrama": 0.01}
PRESETS = {
    # Under 45 minutes on an idle 2-core CPU: 26 minutes end to end (docs/plasticity.md). The
    # machinery at small scale, far below the budgets where the papers report effects. Resets
    # every 250 gradient steps (PPO: 4 iterations).
    "cpu": Preset(
        studies=(
            Study("sac-dmc", "sac", "dmc/CartpoleSwingup", 40_960, SAC_CPU, reset_period=250,
                  max_reset_fraction=0.1, log_points=16, eval_points=4, thresholds=LAYER_NORM_TAU),
            Study("sac-brax", "sac", "brax/inverted_pendulum", 40_960, SAC_CPU, reset_period=250,
                  max_reset_fraction=0.1, log_points=16, eval_points=4, thresholds=LAYER_NORM_TAU),
            Study("dqn-minatar", "dqn", "gymnax/Breakout-MinAtar", 40_000, DQN_MINATAR_CPU, reset_period=250,
                  max_reset_fraction=0.1),
            Study("ppo-minatar", "ppo", "gymnax/Breakout-MinAtar", 32_768, PPO_MINATAR_CPU, reset_period=4,
                  max_reset_fraction=0.1, log_points=16, eval_points=4),
        ),
        num_seeds=5,
    ),
    # An accelerator, at the papers' scale: Playground's SAC recipe for 1M steps (ReGraMa's
    # SAC budget), the MinAtar DQN and PPO recipes for 3M and 10M steps; resets every 1000
    # gradient steps (PPO: 10 iterations = 82k env steps), at most 5% of a layer.
    "gpu": Preset(
        studies=(
            Study("sac-dmc", "sac", "dmc/CartpoleSwingup", 1_000_000, {}, reset_period=1_000,
                  max_reset_fraction=0.05, log_points=50, eval_points=10, thresholds=LAYER_NORM_TAU),
            Study("sac-brax", "sac", "brax/inverted_pendulum", 1_000_000, {}, reset_period=1_000,
                  max_reset_fraction=0.05, log_points=50, eval_points=10, thresholds=LAYER_NORM_TAU),
            Study("dqn-minatar", "dqn", "gymnax/Breakout-MinAtar", 3_000_000, {}, reset_period=1_000,
                  max_reset_fraction=0.05, log_points=60, eval_points=10),
            Study("ppo-minatar", "ppo", "gymnax/Breakout-MinAtar", 10_000_000, {}, reset_period=10,
                  max_reset_fraction=0.05, log_points=60, eval_points=10),
        ),
        num_seeds=5,
    ),
    # The earlier DQN-on-CartPole study (minutes on a CPU; its results are in docs/plasticity.md):
    # a high replay ratio (4 gradient steps per 10 env steps), where dormant units appear early.
    "cartpole": Preset(
        studies=(
            Study("dqn-cartpole", "dqn", "gymnax/CartPole-v1", 30_000, dict(gradient_steps_per_update=4),
                  reset_period=250, max_reset_fraction=0.1),
        ),
        num_seeds=5,
    ),
}
METHODS = ("none", "redo", "regrama")
TAIL_FRACTION = 0.2  # ratios are averaged over the last 20% of log points
# Metric prefixes of each learner's networks: SAC/TD3 log critic_* and actor_* unit metrics.
NETWORKS = {"sac": ("critic_", "actor_"), "td3": ("critic_", "actor_"), "dqn": ("",), "ppo": ("",)}
RATIOS = ("dormant_ratio", "grama_inactive_ratio")


def build_variant(study: Study, method: str, num_seeds: int) -> tuple[Any, RunConfig]:
    """The learner and run schedule of one variant, validated (config, replay memory for
    `num_seeds` buffers) before anything compiles."""
    resets = dict(period=study.reset_period, threshold=study.thresholds.get(method),
                  max_reset_fraction=study.max_reset_fraction) if method != "none" else {}
    plasticity = PlasticityConfig(method=method, log_unit_activity=True, **resets)
    config = algorithms.default_config(study.algo, study.env_id)
    overrides = dict(study.learner_overrides)
    if any(field.name == "total_steps" for field in dataclasses.fields(config)):  # PPO anneals over it
        overrides["total_steps"] = study.total_steps
    config = dataclasses.replace(config, **overrides, plasticity=plasticity)
    learner = algorithms.make_learner(study.algo, config, study.env_id)
    if hasattr(learner, "check_memory"):  # replay-based learners: refuse buffers that cannot fit
        learner.check_memory(num_seeds)
    log_every, eval_every = even_schedule(study, learner.env_steps_per_update)
    run = RunConfig(total_steps=study.total_steps, num_seeds=num_seeds, log_every=log_every, eval_every=eval_every,
                    progress=False, tensorboard=False)
    return learner, run


def run_variant(study: Study, method: str, num_seeds: int, out: pathlib.Path, overwrite: bool = False) -> pathlib.Path:
    learner, run = build_variant(study, method, num_seeds)
    run_dir = out / study.name / method
    train_or_continue(learner, run, run_dir, algo=study.algo, env_id=study.env_id, overwrite=overwrite)
    return run_dir


def even_schedule(study: Study, steps_per_update: int) -> tuple[int, int]:
    """(log_every, eval_every) in env steps, near the study's log and eval points, with chunks that
    divide the run evenly: a shorter last chunk would compile a second program."""
    total_updates = max(1, study.total_steps // steps_per_update)
    per_chunk = max(1, total_updates // study.log_points)
    while total_updates % per_chunk:
        per_chunk -= 1
    chunks = total_updates // per_chunk
    return per_chunk * steps_per_update, per_chunk * steps_per_update * max(1, chunks // study.eval_points)


def tail_mean(records: list[dict], metric: str) -> float | None:
    values = [r[metric] for r in records if r.get(metric) is not None]
    if not values:
        return None
    return float(np.mean(values[-max(1, int(len(values) * TAIL_FRACTION)):]))


def summarize_variant(study: Study, run_dir: pathlib.Path) -> dict:
    records = read_metrics(run_dir)
    final = records[-1]
    mean, low, high = confidence_interval(final["eval_return_per_seed"])
    row = {
        "final_eval_return": mean, "ci95": [low, high], "per_seed": final["eval_return_per_seed"],
        "train_return_tail": tail_mean(records, "episode_return"),
        "wall_time_s": final["wall_time"],
    }
    for prefix in NETWORKS[study.algo]:
        for ratio in RATIOS:
            row[f"{prefix}{ratio}_tail"] = tail_mean(records, prefix + ratio)
        row[f"{prefix}units_reset"] = float(sum(r.get(f"{prefix}reset_units_sum") or 0.0 for r in records))
        # evaluation-time probe (DQN, SAC, TD3): feature rank averaged over the output layers' inputs
        feature_ranks = [value for name, value in final.items()
                         if name.startswith(f"{prefix}feature_rank_") and value is not None]
        row[f"{prefix}final_feature_rank"] = float(np.mean(feature_ranks)) if feature_ranks else None
        row[f"{prefix}final_ntk_rank"] = final.get(f"{prefix}ntk_rank")
    return row


def plot(out: pathlib.Path, run_dirs: list[tuple[Study, dict[str, pathlib.Path]]]) -> pathlib.Path:
    figure, axes = plt.subplots(len(run_dirs), 3, figsize=(16, 4.2 * len(run_dirs)), squeeze=False)
    for row, (study, methods) in zip(axes, run_dirs, strict=True):
        for index, (method, run_dir) in enumerate(methods.items()):
            color = f"C{index}"
            steps, values = seed_curves(run_dir, "episode_return")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                bands = np.array([confidence_interval(seeds) for seeds in values])
            row[0].plot(steps, bands[:, 0], color=color, label=method)
            row[0].fill_between(steps, bands[:, 1], bands[:, 2], color=color, alpha=0.2)
            records = read_metrics(run_dir)
            for axis, ratio in zip(row[1:], RATIOS, strict=True):
                for prefix, style in zip(NETWORKS[study.algo], ("-", "--"), strict=False):
                    points = [(r["env_steps"], r[prefix + ratio]) for r in records if r.get(prefix + ratio) is not None]
                    if points:
                        axis.plot(*zip(*points, strict=True), style, color=color,
                                  label=f"{method} {prefix.rstrip('_')}".strip())
        titles = (f"{study.algo.upper()} {study.env_id}: training return (mean, 95% CI)",
                  "dormant ratio (ReDo score <= 0.1)", "GraMa-inactive ratio (gradient score <= 0.1)")
        for axis, title in zip(row, titles, strict=True):
            axis.set_title(title, fontsize=10)
            axis.set_xlabel("env steps")
            axis.legend(fontsize=8)
    path = out / "regrama.png"
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_table(study: Study, num_seeds: int, rows: dict[str, dict]) -> None:
    networks = NETWORKS[study.algo]
    print(f"\n{study.algo.upper()} on {study.env_id}, {study.total_steps:,} env steps x {num_seeds} seeds, "
          f"resets every {study.reset_period} updates")
    columns = [f"{prefix}{name}" for prefix in networks
               for name in ("dormant ratio", "GraMa-inactive ratio", "units reset", "feature rank", "NTK rank")]
    print("| method | final eval return (95% CI) | train return (last 20%) | " + " | ".join(columns) + " |")
    print("|---" * (3 + len(columns)) + "|")
    for method, row in rows.items():
        cells = []
        for prefix in networks:
            cells += [number(row[f"{prefix}dormant_ratio_tail"]), number(row[f"{prefix}grama_inactive_ratio_tail"]),
                      f"{row[f'{prefix}units_reset']:.0f}", number(row[f"{prefix}final_feature_rank"], 1),
                      number(row[f"{prefix}final_ntk_rank"], 1)]
        print(f"| {method} | {row['final_eval_return']:.1f} [{row['ci95'][0]:.1f}, {row['ci95'][1]:.1f}] | "
              f"{number(row['train_return_tail'], 1)} | " + " | ".join(cells) + " |")


def selected_studies(preset: Preset, names: str | None, total_steps: int | None) -> tuple[Study, ...]:
    """The preset's studies named in `names` (comma-separated; None: all), with `total_steps`
    replacing each one's budget when given. Unknown names are refused with the valid ones."""
    by_name = {study.name: study for study in preset.studies}
    wanted = list(by_name) if names is None else names.split(",")
    unknown = [name for name in wanted if name not in by_name]
    if unknown:
        raise SystemExit(f"--studies: unknown {unknown}; this preset has {sorted(by_name)}")
    return tuple(dataclasses.replace(by_name[name], total_steps=total_steps or by_name[name].total_steps)
                 for name in wanted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--studies", default=None,
                        help="comma-separated subset of the preset's studies (cpu/gpu: sac-dmc, sac-brax, "
                             "dqn-minatar, ppo-minatar; cartpole: dqn-cartpole)")
    parser.add_argument("--total-steps", type=int, default=None, help="override every study's budget")
    parser.add_argument("--num-seeds", type=int, default=None, help="override the preset's seed count")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated subset of {METHODS}")
    parser.add_argument("--out", default="runs/regrama")
    parser.add_argument("--overwrite", action="store_true",
                        help="retrain every variant; without it, finished variants with the same config are reused, "
                             "interrupted ones continue, and a directory holding a different run is refused")
    args = parser.parse_args()
    preset = PRESETS[args.preset]
    methods = args.methods.split(",")
    if not set(methods) <= set(METHODS):
        raise SystemExit(f"--methods: unknown {sorted(set(methods) - set(METHODS))}; valid: {METHODS}")
    studies = selected_studies(preset, args.studies, args.total_steps)
    num_seeds = args.num_seeds or preset.num_seeds
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run_dirs: list[tuple[Study, dict[str, pathlib.Path]]] = []
    summary: dict[str, dict] = {}
    for study in studies:
        study_dirs, variants = {}, {}
        run_dirs.append((study, study_dirs))
        for method in methods:
            study_dirs[method] = run_variant(study, method, num_seeds, out, args.overwrite)
            variants[method] = summarize_variant(study, study_dirs[method])
            print(f"{study.name} {method}: {json.dumps(variants[method])}", flush=True)
        summary[study.name] = {"algo": study.algo, "env": study.env_id, "total_steps": study.total_steps,
                               "reset_period": study.reset_period, "variants": variants}
    (out / "summary.json").write_text(json.dumps({"preset": args.preset, "num_seeds": num_seeds,
                                                  "studies": summary}, indent=2) + "\n")
    for study in studies:
        print_table(study, num_seeds, summary[study.name]["variants"])
    print(f"\nplot: {plot(out, run_dirs)}; summary: {out / 'summary.json'}")


if __name__ == "__main__":
    use_compilation_cache()  # not in main(): tests call main() and leave the cache alone
    main()
