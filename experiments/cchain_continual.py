"""C-CHAIN continual-RL study: PPO vs PPO + C-CHAIN on task sequences that switch env mid-run.

Per task: training return (95% t-interval over seeds); over time: return, policy churn of one
update and empirical-NTK rank on the envs' current observations, and C-CHAIN's lambda.
Run: python experiments/cchain_continual.py --preset cpu [--steps-per-task N --num-seeds S --out runs/cchain]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from experiments.common import confidence_interval, use_compilation_cache  # noqa: E402
from jaxrl_suite.agents.ppo import PPO, default_config, make_ppo  # noqa: E402
from jaxrl_suite.envs.task_sequence import SEQUENCES, make_task_sequence  # noqa: E402
from jaxrl_suite.plasticity import ChurnConfig, ntk_rank  # noqa: E402
from jaxrl_suite.runner.chunks import init_seeds, make_chunk_fn  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Preset:
    """One scale of the study: sequence, steps per task, seeds, PPO overrides, C-CHAIN constants."""

    sequence: str
    steps_per_task: int
    num_seeds: int
    chunks_per_task: int
    ppo_overrides: dict
    churn: ChurnConfig
    probe_size: int = 16


PRESETS = {
    # The padded MinAtar sequence (Breakout -> Asterix -> SpaceInvaders), small batches: 28 min wall
    # on an idle 2-core CPU (docs/plasticity.md).
    "cpu": Preset(
        sequence="minatar", steps_per_task=73_728, num_seeds=2, chunks_per_task=4,
        ppo_overrides=dict(num_envs=16, rollout_length=64, num_minibatches=4, anneal_lr=False),
        churn=ChurnConfig(method="cchain", initial_coefficient=50.0, kappa=0.01, warmup=10, window=20),
    ),
    # The paper's continual DMC setting on an accelerator: walker stand -> walk -> run, about 5M
    # steps per task (625 updates of 256 envs x 32 steps, so the 25 chunks divide each task).
    "gpu": Preset(
        sequence="dmc-walker", steps_per_task=5_120_000, num_seeds=5, chunks_per_task=25,
        ppo_overrides=dict(anneal_lr=False),
        churn=ChurnConfig(method="cchain", initial_coefficient=100.0, kappa=0.05, warmup=50, window=100),
        probe_size=32,
    ),
}

RESULT_FILES = ("records.json", "summary.json", "cchain_continual.png")


def build_learner(preset: Preset, churn: ChurnConfig) -> PPO:
    first_env_id = SEQUENCES[preset.sequence][0]
    num_tasks = len(SEQUENCES[preset.sequence])
    config = default_config(first_env_id, **preset.ppo_overrides, total_steps=preset.steps_per_task * num_tasks,
                            churn=churn)
    if preset.steps_per_task % (config.batch_size * preset.chunks_per_task):
        raise ValueError(f"steps_per_task={preset.steps_per_task} must be a multiple of batch_size x chunks_per_task "
                         f"= {config.batch_size * preset.chunks_per_task}, so chunks never straddle a switch")
    env = make_task_sequence(preset.sequence, steps_per_task=preset.steps_per_task // config.num_envs)
    return make_ppo(config, env)


def measured_update_fn(learner: PPO, probe_size: int):
    """jit(vmap over seeds) of one update that also returns the policy churn of that update
    and the NTK rank of the policy outputs, both on the envs' current observations."""

    def measured(state):
        probe_obs = state.env_state.obs[:probe_size]
        new_state, metrics = learner.update(state)
        churn = learner.policy_churn(new_state.params, state.params, state.obs_stats, probe_obs)
        rank = ntk_rank(lambda params, obs: learner.policy_outputs(params, state.obs_stats, obs), new_state.params,
                        probe_obs)
        return new_state, {**metrics, "update_churn": churn, "ntk_rank": rank.astype(jnp.float32)}

    return jax.jit(jax.vmap(measured))


def run_variant(preset: Preset, name: str, churn: ChurnConfig, seed: int) -> list[dict]:
    """Trains all seeds together; one record per chunk (per-seed arrays as lists)."""
    learner = build_learner(preset, churn)
    updates_per_chunk = preset.steps_per_task // (learner.config.batch_size * preset.chunks_per_task)
    chunk = make_chunk_fn(learner, updates_per_chunk - 1)
    measured_update = measured_update_fn(learner, preset.probe_size)
    state = init_seeds(learner, seed, preset.num_seeds)
    num_tasks = len(SEQUENCES[preset.sequence])
    records, start = [], time.time()
    for index in range(num_tasks * preset.chunks_per_task):
        state, metrics = chunk(state)
        state, measured = measured_update(state)
        metrics = jax.device_get(metrics)
        measured = jax.device_get(measured)
        record = {
            "variant": name,
            "task": index // preset.chunks_per_task,
            "env_steps": (index + 1) * updates_per_chunk * learner.config.batch_size,
            "episode_return": (metrics["episode_return"]).tolist(),
            "update_churn": measured["update_churn"].tolist(),
            "ntk_rank": measured["ntk_rank"].tolist(),
            "wall_time": time.time() - start,
        }
        if "churn_coefficient" in measured:
            record["churn_coefficient"] = measured["churn_coefficient"].tolist()
        records.append(record)
        print(json.dumps({k: v if not isinstance(v, list) else [round(x, 4) for x in v] for k, v in record.items()}),
              flush=True)
    return records


def summarize(records: list[dict], chunks_per_task: int) -> dict:
    """Per task: the return of its last half of chunks (mean over chunks, then t-interval over seeds)."""
    summary = {}
    tail = max(1, chunks_per_task // 2)
    for task in sorted({r["task"] for r in records}):
        rows = [r for r in records if r["task"] == task][-tail:]
        per_seed = np.nanmean(np.array([r["episode_return"] for r in rows], np.float64), axis=0)
        mean, low, high = confidence_interval(per_seed)
        summary[task] = {
            "return": mean, "ci95": [low, high], "per_seed": per_seed.tolist(),
            "update_churn": float(np.mean([r["update_churn"] for r in rows])),
            "ntk_rank": float(np.mean([r["ntk_rank"] for r in rows])),
        }
    return summary


def plot(out: pathlib.Path, records_by_variant: dict[str, list[dict]], preset: Preset) -> pathlib.Path:
    figure, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    for name, records in records_by_variant.items():
        steps = [r["env_steps"] for r in records]
        for axis, metric in zip(axes, ("episode_return", "update_churn", "ntk_rank"), strict=True):
            values = np.array([r[metric] for r in records], np.float64)
            axis.plot(steps, np.nanmean(values, axis=1), label=name)
    for task in range(1, len(SEQUENCES[preset.sequence])):
        for axis in axes:
            axis.axvline(task * preset.steps_per_task, color="grey", linestyle=":")
    titles = ("training return (mean over seeds)", "policy churn of one update (probe obs)",
              "empirical NTK rank of the policy outputs")
    for axis, title in zip(axes, titles, strict=True):
        axis.set_title(title)
        axis.set_xlabel("env steps (dotted: task switch)")
        axis.legend()
    path = out / "cchain_continual.png"
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--steps-per-task", type=int, default=None, help="override the preset's steps per task")
    parser.add_argument("--chunks-per-task", type=int, default=None, help="override the preset's log points per task")
    parser.add_argument("--num-seeds", type=int, default=None, help="override the preset's seed count")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/cchain_continual")
    parser.add_argument("--overwrite", action="store_true", help="replace the results already in --out")
    args = parser.parse_args()
    existing = [name for name in RESULT_FILES if (pathlib.Path(args.out) / name).exists()]
    if existing and not args.overwrite:
        parser.error(f"{args.out} already holds results ({', '.join(existing)}); pass --overwrite to replace "
                     f"them or choose another --out")
    preset = PRESETS[args.preset]
    preset = dataclasses.replace(
        preset, steps_per_task=args.steps_per_task or preset.steps_per_task,
        chunks_per_task=args.chunks_per_task or preset.chunks_per_task, num_seeds=args.num_seeds or preset.num_seeds,
    )
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    variants = {"ppo": ChurnConfig(), "ppo+cchain": preset.churn}
    records = {name: run_variant(preset, name, churn, args.seed) for name, churn in variants.items()}
    summary = {name: summarize(rows, preset.chunks_per_task) for name, rows in records.items()}
    (out / "records.json").write_text(json.dumps(records) + "\n")
    (out / "summary.json").write_text(json.dumps({
        "preset": args.preset, "sequence": SEQUENCES[preset.sequence], "steps_per_task": preset.steps_per_task,
        "num_seeds": preset.num_seeds, "churn": dataclasses.asdict(preset.churn), "variants": summary,
    }, indent=2) + "\n")
    tasks = SEQUENCES[preset.sequence]
    print(f"\n{' -> '.join(tasks)}, {preset.steps_per_task:,} env steps per task x {preset.num_seeds} seeds")
    print("| variant | task | return, last half of the task (95% CI) | policy churn of one update | NTK rank |")
    print("|---|---|---|---|---|")
    for name, per_task in summary.items():
        for task, row in per_task.items():
            print(f"| {name} | {task}: {tasks[task]} | {row['return']:.2f} [{row['ci95'][0]:.2f}, {row['ci95'][1]:.2f}] "
                  f"| {row['update_churn']:.2e} | {row['ntk_rank']:.1f} |")
    print(f"\nplot: {plot(out, records, preset)}; summary: {out / 'summary.json'}")


if __name__ == "__main__":
    use_compilation_cache()  # not in main(): tests call main() and leave the cache alone
    main()
