"""Seed robustness of the defaults: each reference task's default config, its seeds vmapped as
one program, scored by how many seeds reach the solved return (jaxrl_suite.reference_tasks).

Writes one JSON per task and variant to docs/results/seed_robustness/ (per-seed returns, solved
count with a Wilson interval, mean with a t-interval, the machine) and reuses finished runs.
Run: python experiments/seed_robustness.py [--tasks ppo-gymnax-CartPole-v1,...] [--num-seeds N]
     [--set FIELD=VALUE ...] [--total-steps N] [--tag NAME] [--out runs/seed_robustness] | --report
A tag alone names a variant run under other conditions (e.g. XLA_FLAGS=--xla_cpu_max_isa=AVX2).
`--seeds 3,19,23,25` screens a variant on chosen seeds only (e.g. the default's failures): a cheap
first look, written to screens/ beside the results and never counted as a robustness figure.
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

from experiments.common import use_compilation_cache  # noqa: E402
from jaxrl_suite import algorithms  # noqa: E402
from jaxrl_suite.machine import describe_machine, machine_info  # noqa: E402
from jaxrl_suite.reference_tasks import REFERENCE_TASKS, ReferenceTask, reference_task  # noqa: E402
from jaxrl_suite.runner import RunConfig, read_metrics, train_or_continue  # noqa: E402
from jaxrl_suite.runner.sweep import parse_grid  # noqa: E402
from jaxrl_suite.stats import solved_rate_interval, summarize_seeds  # noqa: E402

RESULTS = pathlib.Path(__file__).resolve().parent.parent / "docs" / "results" / "seed_robustness"


def learner_config(task: ReferenceTask, settings: list[str]):
    """The family default of task.algo on task.env_id, with FIELD=VALUE settings applied and the
    PPO annealing horizon (total_steps, where the config has it) set to the task's budget."""
    config = algorithms.default_config(task.algo, task.env_id)
    grid = parse_grid(settings, config)
    if any(len(values) != 1 for values in grid.values()):
        raise ValueError(f"--set takes one value per field, got {settings}")
    overrides = {name: values[0] for name, values in grid.items()}
    if hasattr(config, "total_steps"):
        overrides.setdefault("total_steps", task.total_steps)
    return dataclasses.replace(config, **overrides), overrides


def run_task(task: ReferenceTask, num_seeds: int, settings: list[str], tag: str, out: pathlib.Path,
             seeds: list[int] | None = None) -> dict:
    """Trains seeds 0..num_seeds-1 (or the listed `seeds`) of the variant as one vmapped program."""
    config, overrides = learner_config(task, settings)
    num_seeds = len(seeds) if seeds else num_seeds
    run = RunConfig(total_steps=task.total_steps, num_seeds=num_seeds, log_every=task.total_steps // 10,
                    eval_every=0, progress=False, tensorboard=False, keep_checkpoints=1)
    learner = algorithms.make_learner(task.algo, config, task.env_id)
    variant = task.name + (f"-{tag}" if tag else "") + (f"-seeds{'.'.join(map(str, seeds))}" if seeds else "")
    start = time.monotonic()
    train_or_continue(learner, run, out / variant, algo=task.algo, env_id=task.env_id, member_seeds=seeds)
    final = read_metrics(out / variant)[-1]
    per_seed = final["eval_return_per_seed"]
    summary = summarize_seeds(per_seed, task.threshold)
    low, high = solved_rate_interval(summary.solved, num_seeds)
    return {
        "task": task.name, "variant": variant, "algo": task.algo, "env": task.env_id,
        "total_steps": task.total_steps, "env_steps_trained": final["env_steps"], "num_seeds": num_seeds,
        "overrides": {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()},
        "threshold": task.threshold, "solved": summary.solved, "solved_rate_wilson_95": [low, high],
        "min_solved_rate": task.min_solved_rate, "mean": summary.mean, "ci95_half_width": summary.ci_half_width,
        "seeds": seeds or list(range(num_seeds)), "eval_return_per_seed": per_seed,
        "episode_return_per_seed": final.get("episode_return_per_seed"),
        "wall_s_this_call": round(time.monotonic() - start, 1), "machine": machine_info(),
        "command": "python experiments/seed_robustness.py " + " ".join(sys.argv[1:]),
    }


def write_summary(results: pathlib.Path) -> str:
    """Regenerates summary.md (one row per result JSON) and per_seed.png (every seed's final
    return against its task's threshold) in `results`; returns the markdown table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(path.read_text()) for path in sorted(results.glob("*.json"))]
    lines = ["| variant | env steps | seeds solved | rate 95% CI | goal | mean +- 95% CI | worst seed | machine |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        low, high = r["solved_rate_wilson_95"]
        lines.append(f"| {r['variant']} | {r['env_steps_trained']:,} | {r['solved']}/{r['num_seeds']} "
                     f"(>= {r['threshold']:g}) | {low:.2f}-{high:.2f} | {r['min_solved_rate']:.0%} | "
                     f"{r['mean']:.1f} +- {r['ci95_half_width']:.1f} | {min(r['eval_return_per_seed']):.1f} | "
                     f"{describe_machine(r['machine'])} |")
    table = "\n".join(lines) + "\n"
    (results / "summary.md").write_text("# Seed robustness of the defaults\n\nGenerated by "
                                        "`python experiments/seed_robustness.py`; one row per JSON here.\n\n"
                                        + table)
    if rows:
        figure, axes = plt.subplots(1, len(rows), figsize=(2.2 * len(rows), 3.2), squeeze=False)
        for axis, r in zip(axes[0], rows, strict=True):
            values = r["eval_return_per_seed"]
            axis.scatter([0.0] * len(values), values, s=10, alpha=0.6)
            axis.axhline(r["threshold"], color="red", linewidth=1, label="solved")
            axis.set_title(f"{r['variant']}\n{r['solved']}/{r['num_seeds']} solved", fontsize=7)
            axis.set_xticks([])
        axes[0][0].set_ylabel("final deterministic eval return (one dot per seed)")
        figure.tight_layout()
        figure.savefig(results / "per_seed.png", dpi=110)
        plt.close(figure)
    return table


def parse_seeds(parser: argparse.ArgumentParser, text: str) -> list[int] | None:
    """`--seeds 3,19` -> [3, 19]; None when empty; one parser error for anything else."""
    if not text:
        return None
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        parser.error(f"--seeds={text!r}: expected distinct integers >= 0 separated by commas, e.g. 3,19,23,25")
    return seeds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(t.name for t in REFERENCE_TASKS),
                        help="comma-separated reference task names (default: all)")
    parser.add_argument("--num-seeds", type=int, default=0, help="seeds per task (0: the task's own count)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="learner config field to change from the default (a tuning variant)")
    parser.add_argument("--total-steps", type=int, default=0,
                        help="env steps per seed (0: the task's own budget; another budget is a variant)")
    parser.add_argument("--tag", default="", help="variant name (required with --set)")
    parser.add_argument("--seeds", default="", metavar="S,S,...",
                        help="screen on these seeds only (written to screens/, not counted as a robustness figure)")
    parser.add_argument("--out", default="runs/seed_robustness", help="run directories (resumable)")
    parser.add_argument("--results", default=str(RESULTS), help="where the JSON results go")
    parser.add_argument("--report", action="store_true", help="only regenerate summary.md and per_seed.png")
    args = parser.parse_args(argv)
    if args.report:
        if (args.set or args.tag or args.num_seeds or args.total_steps or args.seeds
                or args.tasks != parser.get_default("tasks")):
            parser.error("--report only regenerates the summary: it takes no --tasks, --set, --total-steps, --tag, "
                         "--seeds or --num-seeds")
        print(write_summary(pathlib.Path(args.results)))
        return
    tasks = [reference_task(name.strip()) for name in args.tasks.split(",") if name.strip()]
    if (args.set or args.total_steps) and not args.tag:
        parser.error("--set and --total-steps change the task: name the variant with --tag")
    if args.total_steps < 0:
        parser.error(f"--total-steps={args.total_steps}: expected 0 (the task's own budget) or a positive count")
    if args.total_steps:
        tasks = [dataclasses.replace(task, total_steps=args.total_steps) for task in tasks]
    if args.num_seeds < 0:
        parser.error(f"--num-seeds={args.num_seeds}: expected 0 (the task's own count) or a positive count")
    seeds = parse_seeds(parser, args.seeds)
    if seeds and args.num_seeds:
        parser.error("--seeds lists the seeds itself: drop --num-seeds")
    for task in tasks:  # bad settings fail here, before anything compiles
        learner_config(task, args.set)
    use_compilation_cache()
    results = pathlib.Path(args.results) / ("screens" if seeds else "")
    results.mkdir(parents=True, exist_ok=True)
    print(f"machine: {describe_machine()}", flush=True)
    for task in tasks:
        result = run_task(task, args.num_seeds or task.num_seeds, args.set, args.tag, pathlib.Path(args.out), seeds)
        (results / f"{result['variant']}.json").write_text(json.dumps(result, indent=1) + "\n")
        low, high = result["solved_rate_wilson_95"]
        print(f"{result['variant']}: {result['solved']}/{result['num_seeds']} seeds >= {task.threshold:g} "
              f"(rate 95% CI {low:.2f}-{high:.2f}), mean {result['mean']:.1f} +- {result['ci95_half_width']:.1f}, "
              f"worst {min(result['eval_return_per_seed']):.1f}; per seed "
              + ", ".join(f"{s}: {r:.1f}" for s, r in zip(result["seeds"], result["eval_return_per_seed"], strict=True)),
              flush=True)
        if not seeds:
            write_summary(results)


if __name__ == "__main__":
    main()
