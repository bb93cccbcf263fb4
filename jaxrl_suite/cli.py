"""The `jaxrl` command: train, eval, plot, envs (and the sequence-model side under `lm`).

`jaxrl train ppo --env gymnax/CartPole-v1` trains with per-environment defaults; every config
field is a flag (`jaxrl train ppo --env ... --help` lists them).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from collections.abc import Sequence
from typing import Any

USAGE = """usage: jaxrl [--distributed] COMMAND ...

--distributed: join a multi-host job first (jax.distributed.initialize(), which finds its peers
on SLURM, Open MPI, Kubernetes and TPU pods); every host runs the same command, the env batch
spans all hosts' devices (--devices N counts them all) and process 0 writes the run directory.

commands:
  train ALGO --env ENV_ID [flags]   train a learner (ALGO: {algos}); --help lists every flag
  sweep ALGO --env ENV_ID --grid FIELD=V1,V2 [--grid ...] [flags]
                                    a grid x seeds, vmapped where shapes agree; summary.md
  eval DIR [--seed N]               run the saved policy of a run directory deterministically
  plot DIR [DIR ...] [--output PNG] learning curves (mean and 95% CI over seeds)
  envs [--family F]                 list environment ids with observation and action specs
  lm train|eval|generate|models     Forgetting Transformer language models (jaxrl lm --help)
  lm sft|dpo                        online RLHF on the bag-of-words task: SFT, then DPO/RLOO/best-of-2
"""


COMPILING_COMMANDS = ("train", "sweep", "eval", "lm")


def _algorithms() -> str:
    from jaxrl_suite.algorithms import ALGORITHMS

    return ", ".join(sorted(ALGORITHMS))


def train_command(argv: Sequence[str]) -> int:
    from jaxrl_suite import algorithms
    from jaxrl_suite.runner import RunConfig, train

    if not argv or argv[0].startswith("-"):
        print(f"usage: jaxrl train ALGO --env ENV_ID [flags]   (ALGO: {_algorithms()})", file=sys.stderr)
        return 2
    name, rest = argv[0], list(argv[1:])
    algorithms.get_algorithm(name)  # unknown names fail here with the valid ones listed
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--env", default="gymnax/CartPole-v1")
    pre.add_argument("--resume", default="")
    known, _ = pre.parse_known_args(rest)
    if known.resume:
        return _resume(name, rest, known.resume)

    from jaxrl_suite.cli_args import parse_train_flags, refuse_unread_flags
    from jaxrl_suite.envs import env_spec

    env_spec(known.env)  # unknown ids fail here, with close matches, before any compilation
    defaults = algorithms.default_config(name, known.env)
    budget = getattr(defaults, "total_steps", RunConfig.total_steps)
    flags = parse_train_flags(rest, defaults, RunConfig(total_steps=budget), known.env, f"jaxrl train {name}")
    run, config, command = flags["run"].validate(), flags["config"], flags["command"]
    refuse_unread_flags(config, defaults)
    learner = algorithms.make_learner(name, config, command["env"], mesh=_make_mesh(command["devices"]))
    out = command["out"] or f"runs/{name}-{command['env'].replace('/', '-')}-s{run.seed}"
    print(f"training {name} on {command['env']} for {run.total_steps:,} env steps x {run.num_seeds} seed(s) -> {out}")
    result = train(learner, run, out, algo=name, env_id=command["env"], overwrite=command["overwrite"])
    return _report(result, command["env"])


def _resume(name: str, argv: list[str], run_dir: str) -> int:
    """`jaxrl train NAME --resume DIR [flags]`: config.json checked, flags that contradict it
    refused (cli_args.resume_run_config), then the run continued from its newest intact checkpoint."""
    from jaxrl_suite import algorithms
    from jaxrl_suite.cli_args import resume_run_config
    from jaxrl_suite.runner import train

    stored = algorithms.read_stored_run(run_dir)
    if stored.algo != name:
        raise ValueError(f"cannot resume {run_dir} with jaxrl train {name}: it holds a {stored.algo} run "
                         f"(valid: jaxrl train {stored.algo} --resume {run_dir})")
    run = resume_run_config(argv, stored, run_dir, f"jaxrl train {name}")
    learner = algorithms.make_learner(name, stored.learner, stored.env)
    extended = f", extended from {stored.run.total_steps:,}" if run.total_steps > stored.run.total_steps else ""
    print(f"resuming {name} on {stored.env} in {run_dir} ({run.total_steps:,} env steps{extended})")
    return _report(train(learner, run, run_dir, algo=name, env_id=stored.env, resume=True), stored.env)


def sweep_command(argv: Sequence[str]) -> int:
    from jaxrl_suite import algorithms
    from jaxrl_suite.cli_args import parse_train_flags, refuse_unread_flags
    from jaxrl_suite.envs import env_spec
    from jaxrl_suite.runner import RunConfig
    from jaxrl_suite.runner.sweep import parse_grid, run_sweep

    if not argv or argv[0].startswith("-"):
        print("usage: jaxrl sweep ALGO --env ENV_ID --grid FIELD=V1,V2 [--grid ...] [train flags]", file=sys.stderr)
        return 2
    name, rest = argv[0], list(argv[1:])
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--env", default="gymnax/CartPole-v1")
    pre.add_argument("--grid", action="append", default=[])
    known, remaining = pre.parse_known_args(rest)
    env_spec(known.env)
    defaults = algorithms.default_config(name, known.env)
    budget = getattr(defaults, "total_steps", RunConfig.total_steps)
    flags = parse_train_flags(["--env", known.env, *remaining], defaults, RunConfig(total_steps=budget),
                              known.env, f"jaxrl sweep {name}")
    command = flags["command"]
    if command["devices"] != 1:
        raise ValueError(f"jaxrl sweep does not take --devices {command['devices']}: a sweep's programs run on "
                         "one device (valid: leave --devices out)")
    if command["resume"]:
        raise ValueError(f"jaxrl sweep does not take --resume {command['resume']}: a sweep cannot be continued "
                         "(valid: run it again with --overwrite, or with another --out)")
    grid = parse_grid(known.grid, flags["config"])
    if "early_stop" not in grid:
        refuse_unread_flags(flags["config"], defaults)
    out = command["out"] or f"runs/sweep-{name}-{known.env.replace('/', '-')}"
    run_sweep(name, known.env, flags["config"], grid, flags["run"].validate(), out, overwrite=command["overwrite"])
    print(f"per-setting run directories and summary.md in {out}")
    return 0


def _make_mesh(num_devices: int) -> Any:
    if num_devices == 1:
        return None
    from jaxrl_suite.parallel import make_mesh

    return make_mesh(num_devices)


def _report(result: Any, env_id: str) -> int:
    """The final lines of `jaxrl train`: env steps done, the last log point's eval return and each
    seed's latest training episode return, as mean +- 95% CI over seeds (with the solved count where the env has a threshold),
    and the outputs the run directory holds."""
    from jaxrl_suite.reference_tasks import solved_return
    from jaxrl_suite.runner import read_metrics
    from jaxrl_suite.runner.run_dir import RUN_ARTIFACTS
    from jaxrl_suite.runner.timing import TIMING_FILE, describe_timing

    records = result.records or read_metrics(result.run_dir)
    last = records[-1] if records else {}
    seeds = len(last.get("episode_return_per_seed") or [None])
    parts = [f"done: {last.get('env_steps', 0):,} env steps x {seeds} seed{'s' if seeds > 1 else ''}"]
    for metric, threshold in (("eval_return", solved_return(env_id)), ("episode_return", None)):
        if f"{metric}_per_seed" in last:
            parts.append(_seed_summary(metric, latest_per_seed(records, f"{metric}_per_seed"), threshold))
    print("; ".join(parts) + " (mean +- 95% CI over seeds)")
    timing = result.run_dir / TIMING_FILE
    if timing.exists():
        print(describe_timing(json.loads(timing.read_text())))
    written = [name + ("/" if (result.run_dir / name).is_dir() else "") for name in RUN_ARTIFACTS
               if (result.run_dir / name).exists() and not name.endswith(".tmp")]
    print(f"outputs in {result.run_dir}: {' '.join(written)}")
    return 0


def latest_per_seed(records: Sequence[dict[str, Any]], key: str) -> list[float | None]:
    """Each seed's value of `key` at the latest log point where it has one (a chunk in which a
    seed finished no episode logs None for it; earlier points then speak for that seed)."""
    latest: list[float | None] | None = None
    for record in reversed(records):
        values = record.get(key)
        if values is None:
            continue
        latest = list(values) if latest is None else [old if old is not None else new
                                                       for old, new in zip(latest, values, strict=True)]
        if all(value is not None for value in latest):
            break
    return latest or []


def _seed_summary(metric: str, per_seed: list[float | None], threshold: float | None) -> str:
    """e.g. `eval_return 496.3 +- 3.1 (8/8 seeds >= 475)`; seeds without a value are counted apart."""
    from jaxrl_suite.stats import summarize_seeds

    values = [value for value in per_seed if value is not None]
    if not values:
        return f"{metric} n/a (no seed finished an episode)"
    text = summarize_seeds(values, threshold).describe(metric)
    return text + (f" [{len(per_seed) - len(values)} seed(s) without a value]" if len(values) < len(per_seed) else "")


def eval_command(argv: Sequence[str]) -> int:
    import jax
    import jax.numpy as jnp

    from jaxrl_suite import algorithms
    from jaxrl_suite.runner import Checkpointer, init_seeds
    from jaxrl_suite.runner.run_dir import CHECKPOINT_DIR

    parser = argparse.ArgumentParser(prog="jaxrl eval", description="evaluate the saved policy of a run")
    parser.add_argument("run_dir")
    parser.add_argument("--seed", type=int, default=12345, help="evaluation seed")
    args = parser.parse_args(argv)
    stored = algorithms.read_stored_run(args.run_dir)
    run = stored.run
    learner = algorithms.make_learner(stored.algo, stored.learner, stored.env)
    restored = Checkpointer(pathlib.Path(args.run_dir) / CHECKPOINT_DIR).restore_newest_intact(
        init_seeds(learner, run.seed, run.num_seeds)
    )
    if restored.unreadable:
        newest = max(restored.unreadable)
        print(f"checkpoint {newest} could not be restored ({restored.unreadable[newest]}): evaluating "
              f"checkpoint {restored.step}, the newest intact one")
    keys = jnp.stack([jax.random.PRNGKey(args.seed + i) for i in range(run.num_seeds)])
    result = jax.device_get(jax.jit(jax.vmap(learner.evaluate))(restored.state, keys))
    print(f"{stored.algo} on {stored.env} after {restored.metadata['updates']} updates:")
    for name, values in result.items():
        print(f"  {name}: mean {float(jnp.mean(values)):.2f} per seed {[round(float(v), 2) for v in values]}")
    return 0


def plot_command(argv: Sequence[str]) -> int:
    from jaxrl_suite.runner import plot_runs

    parser = argparse.ArgumentParser(prog="jaxrl plot", description="draw learning curves of run directories")
    parser.add_argument("run_dirs", nargs="+")
    parser.add_argument("--output", default="learning_curves.png")
    parser.add_argument("--metric", default="episode_return")
    args = parser.parse_args(argv)
    print(plot_runs(args.run_dirs, args.output, metric=args.metric))
    return 0


def envs_command(argv: Sequence[str]) -> int:
    from jaxrl_suite.envs import env_spec, list_env_ids

    parser = argparse.ArgumentParser(prog="jaxrl envs", description="list environment ids")
    parser.add_argument("--family", default=None, help="gymnax, brax or dmc")
    parser.add_argument("--specs", action="store_true", help="also build each env to show its specs (slow)")
    args = parser.parse_args(argv)
    for env_id in list_env_ids(args.family):
        if args.specs:
            spec = env_spec(env_id)
            print(f"{env_id:40s} obs {spec['observation']:24s} action {spec['action']:20s} max steps {spec['max_episode_steps']}")
        else:
            print(env_id)
    return 0


def lm_command(argv: Sequence[str]) -> int:
    from jaxrl_suite.lm.cli import lm_main

    return lm_main(list(argv))


def main(argv: Sequence[str] | None = None, *, compilation_cache: bool = False) -> int:
    """Runs one `jaxrl` command; with compilation_cache, JAX's persistent compilation cache is
    turned on for the commands that compile (the installed script does; tests leave it off)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--distributed"]:  # before anything starts JAX's backends
        import jax

        jax.distributed.initialize()
        argv = argv[1:]
    if compilation_cache and argv and argv[0] in COMPILING_COMMANDS:
        from jaxrl_suite.runner.compilation_cache import use_compilation_cache

        use_compilation_cache()
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE.format(algos=_algorithms()))
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    handlers = {"train": train_command, "sweep": sweep_command, "eval": eval_command, "plot": plot_command,
                "envs": envs_command, "lm": lm_command}
    if command not in handlers:
        print(f"unknown command {command!r}; valid: {', '.join(handlers)}\n", file=sys.stderr)
        print(USAGE.format(algos=_algorithms()), file=sys.stderr)
        return 2
    from jaxrl_suite.runner import CheckpointError, RunDirectoryError

    try:
        return handlers[command](rest)
    except (ValueError, RunDirectoryError, CheckpointError) as error:
        from jaxrl_suite.cli_args import name_flags

        print(f"error: {name_flags(str(error))}", file=sys.stderr)
        return 2


def console_main() -> int:
    """The installed `jaxrl` script: `main` with the compilation cache on, so a rerun or
    `--resume` loads its programs instead of compiling them ($JAXRL_COMPILATION_CACHE=off
    turns it off)."""
    return main(compilation_cache=True)


if __name__ == "__main__":
    sys.exit(console_main())
