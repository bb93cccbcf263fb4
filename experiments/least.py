"""LEAST study: SAC and TD3, each plain, with LEAST, and with LEAST's control (the fixed-horizon
rule: every episode stops at a step H ~ U{L/2..L}, no value information), on several envs, each
variant's seeds vmapped.

Reports per env the final deterministic return with a 95% t-interval over seeds, the stop rate and
the fraction of env steps saved; draws eval return vs env steps (mean and 95% band) and stop rate.
Run: python experiments/least.py --preset cpu [--envs A,B --total-steps N --num-seeds S --out runs/least]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import sys
import warnings
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from experiments.common import confidence_interval, use_compilation_cache  # noqa: E402
from jaxrl_suite import algorithms  # noqa: E402
from jaxrl_suite.early_stop import FixedHorizonConfig, LeastConfig  # noqa: E402
from jaxrl_suite.envs import list_env_ids  # noqa: E402
from jaxrl_suite.runner import RunConfig, read_metrics, train_or_continue  # noqa: E402
from jaxrl_suite.runner.plots import seed_curves  # noqa: E402
from jaxrl_suite.runner.sweep import parse_field_value  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Task:
    """One environment of a preset: its budget and the learner and LEAST settings scaled to it."""

    env_id: str
    total_steps: int
    learner_overrides: dict
    least: LeastConfig
    least_fields: dict = dataclasses.field(default_factory=dict)
    """LeastConfig fields set on the command line; they win over the learner's noise cap."""


@dataclasses.dataclass(frozen=True)
class Preset:
    """One scale of the study: env ids and their budgets, how a task is set up, seeds, logging."""

    budgets: dict[str, int]
    """Env steps per seed of each env the preset runs."""
    make_task: Callable[[str, int], Task]
    """(env id, budget) -> Task: the learner and LEAST settings scaled to this preset."""
    default_steps: int
    """Budget of an env named with --envs that the preset does not list."""
    num_seeds: int
    log_points: int
    eval_points: int


def cpu_task(env_id: str, total_steps: int) -> Task:
    """A few dozen episodes per seed on a CPU: 8 envs, 2 gradient steps per update (replay
    ratio 1/4), 64x64 networks; LEAST windows scaled to the few dozen episodes such a run sees,
    warm-up 15% of the budget (the paper: 5-15% on DMC, 10-20% on MuJoCo)."""
    return Task(
        env_id=env_id, total_steps=total_steps,
        learner_overrides=dict(num_envs=8, batch_size=128, utd_ratio=2, hidden_sizes=(64, 64),
                               learning_starts=2_000, buffer_size=total_steps),
        least=LeastConfig(start_steps=total_steps * 15 // 100, min_episodes=5, window_init=20, window_min=5,
                          window_max=40, window_change=-5, window_every=total_steps // 10, noise_episodes=10),
    )


def gpu_task(env_id: str, total_steps: int) -> Task:
    """The paper's scale: the family's default learner, K = 250, warm-up 10% of the budget."""
    return Task(env_id=env_id, total_steps=total_steps, learner_overrides={},
                least=LeastConfig(start_steps=total_steps // 10))


PRESETS = {
    # 4 variants ran in 26 min on a 2-core CPU; the 2 fixed-horizon ones are not yet timed (docs/least.md).
    "cpu": Preset(
        budgets={"dmc/CartpoleSwingup": 40_000, "brax/inverted_pendulum": 20_000, "brax/hopper": 40_000},
        make_task=cpu_task, default_steps=20_000, num_seeds=5, log_points=20, eval_points=5,
    ),
    "gpu": Preset(
        budgets=dict.fromkeys(("dmc/CheetahRun", "dmc/HopperHop", "dmc/WalkerWalk", "brax/ant", "brax/humanoid"),
                              1_000_000),
        make_task=gpu_task, default_steps=1_000_000, num_seeds=5, log_points=50, eval_points=20,
    ),
}
VARIANTS = tuple((algo, rule) for algo in ("sac", "td3") for rule in ("none", "least", "fixed-horizon"))
# Metric-name prefix of each stop rule's counts (stopped_count, stopped_length_sum, steps_saved_sum).
STOP_PREFIXES = {"none": "least_", "least": "least_", "fixed-horizon": "fixed_horizon_"}
NOISE_CAPS = {"sac": 0.2, "td3": 0.3}  # the middle of the paper's ranges


def with_least_fields(task: Task, fields: dict) -> Task:
    """`task` with LeastConfig `fields` set (validated) and remembered as the command line's."""
    return dataclasses.replace(task, least=dataclasses.replace(task.least, **fields).validate(), least_fields=fields)


def variant_config(task: Task, algo: str, early_stop: str):
    """The learner config of one variant: the family's defaults, the task's overrides, and LEAST
    with the algorithm's noise cap unless the command line set one; the fixed-horizon control
    starts stopping episodes when LEAST does (its start_steps)."""
    least = dataclasses.replace(task.least, **{"noise_cap": NOISE_CAPS[algo], **task.least_fields})
    config = algorithms.default_config(algo, task.env_id)
    horizon = FixedHorizonConfig(start_steps=least.start_steps) if early_stop == "fixed-horizon" else config.horizon
    return dataclasses.replace(config, **task.learner_overrides, early_stop=early_stop, least=least, horizon=horizon)


def run_variant(task: Task, preset: Preset, algo: str, early_stop: str, run_dir: pathlib.Path,
                overwrite: bool = False) -> pathlib.Path:
    learner = algorithms.make_learner(algo, variant_config(task, algo, early_stop), task.env_id)
    learner.check_memory(preset.num_seeds)  # all seeds' buffers live in one vmapped program
    run = RunConfig(total_steps=task.total_steps, num_seeds=preset.num_seeds,
                    log_every=task.total_steps // preset.log_points,
                    eval_every=task.total_steps // preset.eval_points, keep_checkpoints=1,
                    progress=False, tensorboard=False)
    train_or_continue(learner, run, run_dir, algo=algo, env_id=task.env_id, overwrite=overwrite)
    return run_dir


def estimated_steps_saved(records: list[dict], start_steps: int, prefix: str = "least_") -> float:
    """Stopped episodes x (mean length of the episodes that ended unstopped after LEAST's warm-up
    - the stopped episodes' mean length), at least 0; 0 when none stopped or none ran to its end.
    `prefix`: the stop rule's metric names (STOP_PREFIXES)."""
    after = [r for r in records if r["env_steps"] > start_steps]
    stopped = sum(r.get(f"{prefix}stopped_count") or 0.0 for r in after)
    unstopped = sum(r.get("completed_count") or 0.0 for r in after) - stopped
    if stopped == 0 or unstopped <= 0:
        return 0.0
    stopped_length = sum(r.get(f"{prefix}stopped_length_sum") or 0.0 for r in after)
    unstopped_length = sum(r.get("completed_length_sum") or 0.0 for r in after) - stopped_length
    return stopped * max(unstopped_length / unstopped - stopped_length / stopped, 0.0)


def summarize_variant(run_dir: pathlib.Path, total_steps: int, start_steps: int, prefix: str = "least_") -> dict:
    """Final eval return (95% t-interval over seeds) and the stop rule's statistics of one run
    (`prefix`: its metric names, STOP_PREFIXES).

    stop_rate: stopped / finished episodes over the whole run; stop_rate_active: the same over
    the log points after LEAST's warm-up; steps_saved_fraction: the stopped episodes' remaining
    steps to the time limit over all the steps the run's episodes would have taken (an upper
    bound where episodes also end by termination); steps_saved_estimate: the same with each
    stopped episode assumed to last as long as the unstopped ones after the warm-up did on average.
    """
    records = read_metrics(run_dir)
    final = records[-1]
    mean, low, high = confidence_interval(final["eval_return_per_seed"])

    def total(name, after=0):
        return sum(r.get(name) or 0.0 for r in records if r["env_steps"] > after)

    completed, stopped = total("completed_count"), total(f"{prefix}stopped_count")
    active_completed = total("completed_count", start_steps)
    saved = total(f"{prefix}steps_saved_sum")
    estimated = estimated_steps_saved(records, start_steps, prefix)
    return {
        "final_eval_return": mean, "ci95": [low, high], "per_seed": final["eval_return_per_seed"],
        "stop_rate": stopped / completed if completed else 0.0,
        "stop_rate_active": total(f"{prefix}stopped_count", start_steps) / active_completed if active_completed else 0.0,
        "mean_stopped_length": total(f"{prefix}stopped_length_sum") / stopped if stopped else None,
        "steps_saved_fraction": saved / (total_steps + saved),
        "steps_saved_estimate": estimated / (total_steps + estimated),
        "wall_time_s": final["wall_time"],
    }


def plot(out: pathlib.Path, run_dirs: dict[tuple[str, str, str], pathlib.Path]) -> pathlib.Path:
    """One row per env: eval return vs env steps for SAC and TD3 (mean, 95% band), and the stop rate."""
    env_ids = list(dict.fromkeys(env_id for env_id, _, _ in run_dirs))
    figure, axes = plt.subplots(len(env_ids), 3, figsize=(16, 4.2 * len(env_ids)), squeeze=False)
    for (env_id, algo, early_stop), run_dir in run_dirs.items():
        row = axes[env_ids.index(env_id)]
        name = algo + {"none": "", "least": "+LEAST", "fixed-horizon": "+fixed horizon"}[early_stop]
        # Deterministic full-episode evaluations: training returns of LEAST runs are cut short.
        steps, values = seed_curves(run_dir, "eval_return")
        evaluated = np.isfinite(values).any(axis=1)
        steps, values = steps[evaluated], values[evaluated]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            bands = np.array([confidence_interval(values_at_step) for values_at_step in values])
        axis = row[0] if algo == "sac" else row[1]
        axis.plot(steps, bands[:, 0], label=name)
        axis.fill_between(steps, bands[:, 1], bands[:, 2], alpha=0.2)
        if early_stop == "least":
            records = read_metrics(run_dir)
            row[2].plot([r["env_steps"] for r in records], [r.get("least_stop_rate") or 0.0 for r in records],
                        label=name)
    for env_id, row in zip(env_ids, axes, strict=True):
        for axis, title in zip(row, ("SAC", "TD3", "LEAST stop rate (last m episodes)"), strict=True):
            axis.set_title(f"{env_id}: {title}")
            axis.set_xlabel("env steps")
            if axis.get_legend_handles_labels()[0]:
                axis.legend()
        row[0].set_ylabel("eval return (mean, 95% CI over seeds)")
    path = out / "least.png"
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def least_overrides(assignments: list[str]) -> dict:
    """--least FIELD=VALUE strings -> LeastConfig field values, typed like the field's default."""
    return field_overrides(assignments, LeastConfig, "--least")


def field_overrides(assignments: list[str], config_class: type, flag: str) -> dict:
    """FIELD=VALUE strings -> values of `config_class`'s scalar (int, float, bool, str) fields,
    typed like the field's default; anything else exits naming the valid fields."""
    defaults = {field.name: field.default for field in dataclasses.fields(config_class)
                if type(field.default) in (int, float, bool, str)}
    overrides = {}
    for assignment in assignments:
        name, _, text = assignment.partition("=")
        if name not in defaults or not text:
            raise SystemExit(f"invalid {flag} {assignment!r}: expected FIELD=VALUE with FIELD one of {sorted(defaults)}")
        try:
            overrides[name] = parse_field_value(text, type(defaults[name]))
        except ValueError as error:
            raise SystemExit(f"invalid {flag} {assignment!r}: {error}") from None
    return overrides


def select_tasks(preset: Preset, args: argparse.Namespace) -> list[Task]:
    """The preset's tasks (or --envs, built like the preset's own) with the command line's overrides."""
    env_ids = args.envs.split(",") if args.envs else list(preset.budgets)
    unknown = sorted(set(env_ids) - set(list_env_ids()))
    if unknown:
        raise SystemExit(f"invalid --envs: {unknown} are not env ids (see jaxrl_suite.envs.list_env_ids())")
    tasks = []
    for env_id in env_ids:
        task = preset.make_task(env_id, args.total_steps or preset.budgets.get(env_id, preset.default_steps))
        fields = least_overrides(args.least)
        if args.least_start is not None:
            fields["start_steps"] = args.least_start
        tasks.append(with_least_fields(task, fields))
    return tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--envs", default=None, help="comma-separated env ids (default: the preset's)")
    parser.add_argument("--total-steps", type=int, default=None, help="override every task's budget")
    parser.add_argument("--num-seeds", type=int, default=None, help="override the preset's seed count")
    parser.add_argument("--algos", default="sac,td3", help="comma-separated subset of sac,td3")
    parser.add_argument("--least-start", type=int, default=None, help="override LEAST's warm-up (env steps)")
    parser.add_argument("--least", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a LeastConfig field, e.g. --least patience=5 (repeatable)")
    parser.add_argument("--out", default="runs/least")
    parser.add_argument("--overwrite", action="store_true",
                        help="retrain every variant; without it, finished variants with the same config are reused, "
                             "interrupted ones continue, and a directory holding a different run is refused")
    args = parser.parse_args()
    preset = PRESETS[args.preset]
    preset = dataclasses.replace(preset, num_seeds=args.num_seeds or preset.num_seeds)
    tasks = select_tasks(preset, args)
    algos = args.algos.split(",")
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run_dirs, summary = {}, {}
    for task in tasks:
        for algo, early_stop in VARIANTS:
            if algo not in algos:
                continue
            run_dir = out / task.env_id.replace("/", "-") / f"{algo}-{early_stop}"
            run_dirs[(task.env_id, algo, early_stop)] = run_variant(task, preset, algo, early_stop, run_dir,
                                                                   args.overwrite)
            row = summarize_variant(run_dir, task.total_steps, task.least.start_steps, STOP_PREFIXES[early_stop])
            summary.setdefault(task.env_id, {})[f"{algo}+{early_stop}"] = row
            print(f"{task.env_id} {algo} early_stop={early_stop}: {json.dumps(row)}", flush=True)
    (out / "summary.json").write_text(json.dumps({
        "preset": args.preset, "num_seeds": preset.num_seeds,
        "tasks": {task.env_id: {"total_steps": task.total_steps, "least": dataclasses.asdict(task.least),
                                "learner_overrides": task.learner_overrides} for task in tasks},
        "variants": summary}, indent=2, default=str) + "\n")
    print("\n| env | variant | final eval return (95% CI) | stop rate (after warm-up) | mean stopped length "
          "| env steps saved: estimate (to the time limit) |")
    print("|---|---|---|---|---|---|")
    for task in tasks:
        for name, row in summary[task.env_id].items():
            stopped_length = "-" if row["mean_stopped_length"] is None else f"{row['mean_stopped_length']:.0f}"
            print(f"| {task.env_id} ({task.total_steps:,} steps x {preset.num_seeds} seeds) | {name} | "
                  f"{row['final_eval_return']:.1f} [{row['ci95'][0]:.1f}, {row['ci95'][1]:.1f}] | "
                  f"{row['stop_rate']:.2f} ({row['stop_rate_active']:.2f}) | {stopped_length} | "
                  f"{row['steps_saved_estimate']:.1%} ({row['steps_saved_fraction']:.1%}) |")
    print(f"\nplot: {plot(out, run_dirs)}; summary: {out / 'summary.json'}")


if __name__ == "__main__":
    use_compilation_cache()  # not in main(): tests call main() and leave the cache alone
    main()
