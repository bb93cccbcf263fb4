"""The chunked run loop: compiled chunks of updates, host work (logs, eval, checkpoints) between.

The run directory it writes is run_dir.py's; `resume=True` continues from the newest intact checkpoint and ends with the same metrics as an
uninterrupted run (or extends the run when only run.total_steps grew). Off the critical path: the
evaluation program compiles on a background thread while the first chunk compiles and runs, and
checkpoints are written in the background; timing.json holds where the time went.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import jax
import numpy as np

from jaxrl_suite.runner.checkpoints import Checkpointer
from jaxrl_suite.runner.chunks import AheadOfTime, init_stacked, make_chunk_fn, seed_keys
from jaxrl_suite.runner.config import RunConfig
from jaxrl_suite.runner.learner import Learner
from jaxrl_suite.runner.metrics_log import MetricsWriter, to_json_value, truncate_metrics
from jaxrl_suite.runner.plots import plot_runs
from jaxrl_suite.runner.progress import Progress
from jaxrl_suite.runner.run_dir import (
    CHECKPOINT_DIR,
    PLOT_FILE,
    UNREADABLE_CHECKPOINT_DIR,
    RunDirectoryError,
    check_run_dir,
    prepare_run_dir,
    records_same_run,
    resume_differences,
    stored_definition,
    write_config,
)
from jaxrl_suite.runner.timing import PhaseTimer

DEFAULT_LOG_POINTS = 50


def sync_processes(name: str) -> None:
    """Waits until every process of a jax.distributed run gets here; nothing with one process."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


@dataclasses.dataclass(frozen=True)
class Schedule:
    """Update counts of a run: chunk length, and how often to evaluate and checkpoint (in chunks)."""

    total_updates: int
    updates_per_chunk: int
    eval_every_chunks: int  # 0 = only at the end, -1 = never
    checkpoint_every_chunks: int

    @classmethod
    def build(cls, run: RunConfig, env_steps_per_update: int) -> Schedule:
        total_updates = run.total_steps // env_steps_per_update
        if total_updates < 1:
            raise ValueError(
                f"invalid run.total_steps={run.total_steps}: one update consumes {env_steps_per_update} env "
                f"steps, so total_steps must be at least {env_steps_per_update}"
            )
        log_every = run.log_every or math.ceil(run.total_steps / DEFAULT_LOG_POINTS)
        per_chunk = dividing_chunk_length(total_updates, max(1, min(total_updates, log_every // env_steps_per_update)))
        chunk_steps = per_chunk * env_steps_per_update

        def in_chunks(every: int) -> int:
            return every if every <= 0 else max(1, round(every / chunk_steps))

        return cls(total_updates, per_chunk, in_chunks(run.eval_every), in_chunks(run.checkpoint_every) or 1)


def dividing_chunk_length(total_updates: int, target: int) -> int:
    """The longest chunk of `target` updates or fewer, down to half of it, that divides the run,
    so that one compiled chunk program serves the whole run; `target` when none does (the last
    chunk is then shorter and compiles on its own)."""
    for length in range(target, (target + 1) // 2 - 1, -1):
        if total_updates % length == 0:
            return length
    return target


def summarize(per_seed: dict[str, np.ndarray]) -> dict[str, Any]:
    """Per-seed chunk metrics -> a log record: the mean over seeds for each, plus
    `<name>_per_seed` lists for returns (names ending in "return")."""
    record: dict[str, Any] = {}
    for name, values in per_seed.items():
        values = np.asarray(values, dtype=np.float64)
        finite = values[np.isfinite(values)]
        record[name] = to_json_value(finite.mean()) if finite.size else None
        if name.endswith("return"):
            record[f"{name}_per_seed"] = to_json_value(values)
    return record


@dataclasses.dataclass
class RunResult:
    """What `train` hands back: the final stacked TrainState and the log records it wrote."""

    state: Any
    records: list[dict[str, Any]]
    run_dir: pathlib.Path
    completed: bool


def train(learner: Learner, run: RunConfig, run_dir: str | pathlib.Path, *, algo: str, env_id: str,
          resume: bool = False, overwrite: bool = False, max_chunks: int | None = None,
          member_seeds: Sequence[int] | None = None,
          init_members: Callable[[jax.Array], Any] | None = None) -> RunResult:
    """Trains `learner` for `run.total_steps` env steps per seed; writes everything into `run_dir`.

    max_chunks stops after that many chunks in THIS call (used to test interruption + resume).
    Sweeps vmap (setting, seed) members: `member_seeds` gives each member's seed (default
    run.seed .. run.seed + num_seeds - 1) and `init_members(keys [M, 2])` their stacked states
    (default `init_stacked`: learner.init for one member after another).
    """
    run.validate()
    timer = PhaseTimer()
    run_dir = pathlib.Path(run_dir)
    schedule = Schedule.build(run, learner.env_steps_per_update)
    check_memory = getattr(learner, "check_memory", None)
    if check_memory is not None:  # replay buffers: refuse what cannot fit, before compiling
        check_memory(len(member_seeds) if member_seeds is not None else run.num_seeds)
    # Several processes (jax.distributed): all check the directory, run the same programs and
    # save checkpoints together (Orbax coordinates them); only process 0 writes other files.
    primary = jax.process_index() == 0
    if primary:
        prepare_run_dir(run_dir, resume=resume, overwrite=overwrite)
    else:  # refuses a bad directory itself instead of waiting at the barrier for process 0
        check_run_dir(run_dir, resume=resume, overwrite=overwrite)
    if resume:
        differences = resume_differences(run_dir, algo, env_id, run, learner.config)
        if differences:
            raise RunDirectoryError(f"cannot resume {run_dir} with another config: {', '.join(differences)} "
                                    "(only a larger run.total_steps may differ)")
    sync_processes("run directory prepared")
    checkpointer = Checkpointer(run_dir / CHECKPOINT_DIR, keep=run.keep_checkpoints, asynchronous=True)

    seeds = list(member_seeds) if member_seeds is not None else list(range(run.seed, run.seed + run.num_seeds))
    keys = seed_keys(seeds)
    with timer.phase("init"):
        state = init_members(keys) if init_members is not None else init_stacked(learner, keys)
        updates_done, wall_offset = 0, 0.0
        if resume:
            restored = checkpointer.restore_newest_intact(state)
            state, metadata = restored.state, restored.metadata
            updates_done, wall_offset = int(metadata["updates"]), float(metadata["wall_time"])
            if primary:
                _set_aside_unreadable(checkpointer, restored, run_dir)
                truncate_metrics(run_dir, updates_done)
                if stored_definition(run_dir)["run"]["total_steps"] != run.total_steps:  # an extension
                    write_config(run_dir, algo, env_id, run, learner.config)
            sync_processes("checkpoint restored")
        elif primary:
            write_config(run_dir, algo, env_id, run, learner.config)
        jax.block_until_ready(state)

    compiler = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jaxrl-compile")
    evaluate: Future | None = None
    if schedule.eval_every_chunks >= 0 and updates_done < schedule.total_updates:
        with timer.phase("compile"):  # traced here, compiled beside the first chunk
            evaluate = compiler.submit(AheadOfTime(jax.jit(jax.vmap(learner.evaluate)), state,
                                                   eval_keys(keys, 0)).compile)
    chunk_fns: dict[int, Any] = {}
    writer = MetricsWriter(run_dir, tensorboard=run.tensorboard) if primary else None
    steps_per_update = learner.env_steps_per_update
    progress = Progress(run.total_steps, updates_done * steps_per_update, enabled=run.progress and primary)
    records: list[dict[str, Any]] = []
    chunk_index = updates_done // schedule.updates_per_chunk
    chunks_run = 0
    start = time.monotonic()
    try:
        while updates_done < schedule.total_updates:
            if max_chunks is not None and chunks_run >= max_chunks:
                break
            length = min(schedule.updates_per_chunk, schedule.total_updates - updates_done)
            if length not in chunk_fns:
                with timer.phase("compile"):
                    chunk_fns[length] = AheadOfTime(make_chunk_fn(learner, length), state).compile()
            with timer.phase("train"):
                chunk_start = time.monotonic()
                state, chunk_metrics = chunk_fns[length](state)
                chunk_metrics = jax.device_get(chunk_metrics)
                chunk_seconds = time.monotonic() - chunk_start
            updates_done += length
            chunk_index += 1
            chunks_run += 1
            finished = updates_done >= schedule.total_updates
            record = {"updates": updates_done, "env_steps": updates_done * steps_per_update}
            record.update(summarize(chunk_metrics))
            if evaluate is not None and (
                finished or (schedule.eval_every_chunks > 0 and chunk_index % schedule.eval_every_chunks == 0)
            ):
                with timer.phase("compile"):  # waits only if the background compile has not finished
                    program = evaluate.result()
                with timer.phase("eval"):
                    record.update(summarize(jax.device_get(program(state, eval_keys(keys, updates_done)))))
            wall_time = wall_offset + time.monotonic() - start
            record["wall_time"] = wall_time
            record["sps"] = length * steps_per_update * run.num_seeds / max(chunk_seconds, 1e-9)
            with timer.phase("logging"):
                if writer is not None:
                    writer.write(record)
                records.append(record)
                progress.update(record["env_steps"], record)
            if finished or chunk_index % schedule.checkpoint_every_chunks == 0:
                with timer.phase("checkpoint"):
                    checkpointer.save(updates_done, state, {"updates": updates_done, "wall_time": wall_time})
    finally:
        compiler.shutdown(wait=False, cancel_futures=True)
        progress.close()
        with timer.phase("logging"):
            if writer is not None:
                writer.close()
        with timer.phase("checkpoint"):
            checkpointer.close()
    completed = updates_done >= schedule.total_updates
    if completed and primary:
        with timer.phase("logging"):
            try:
                plot_runs([run_dir], run_dir / PLOT_FILE, title=f"{algo} on {env_id}")
            except ValueError as error:  # no episode finished during the whole run
                print(f"no learning curve drawn: {error}")
    if primary and run_dir.is_dir():
        timer.write(run_dir)
    return RunResult(state=state, records=records, run_dir=run_dir, completed=completed)


def eval_keys(keys: jax.Array, updates_done: int) -> jax.Array:
    """Each member's evaluation key after `updates_done` updates: fold_in(seed key, updates) [M, 2]."""
    return jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, updates_done)


def _set_aside_unreadable(checkpointer: Checkpointer, restored: Any, run_dir: pathlib.Path) -> None:
    """Moves the checkpoints newer than the restored one, which could not be restored, out of the
    way of the resumed run's saves, and says so in one line."""
    if not restored.unreadable:
        return
    steps = sorted(restored.unreadable)
    moved = checkpointer.set_aside(steps, run_dir / UNREADABLE_CHECKPOINT_DIR)
    newest = steps[-1]
    print(f"checkpoint{'s' if len(steps) > 1 else ''} {', '.join(map(str, steps))} could not be restored "
          f"({restored.unreadable[newest]}): resuming from checkpoint {restored.step}, the newest intact one; "
          f"moved to {', '.join(map(str, moved))}", flush=True)


def train_or_continue(learner: Learner, run: RunConfig, run_dir: str | pathlib.Path, *, algo: str, env_id: str,
                      overwrite: bool = False, member_seeds: Sequence[int] | None = None) -> RunResult:
    """`train` for studies that get re-run: a directory holding this exact run (same algo, env, run and
    learner config) is continued from its last checkpoint -- a finished one just hands back its final
    state -- and one holding a different run is refused (RunDirectoryError) unless `overwrite`.

    The result's `records` are this call's only; read_metrics(run_dir) holds the whole run.
    `member_seeds` is train's (config.json does not record it: name run_dir after the seeds).
    """
    same_run = not overwrite and records_same_run(run_dir, algo, env_id, run, learner.config)
    done = Checkpointer(pathlib.Path(run_dir) / CHECKPOINT_DIR).latest_step() if same_run else None
    resume = done is not None
    if resume:
        finished = done >= Schedule.build(run, learner.env_steps_per_update).total_updates
        print(f"   {'reusing the finished' if finished else 'continuing the'} run in {run_dir}", flush=True)
    # the same run without a checkpoint stopped inside its first chunk: nothing there to keep
    return train(learner, run, run_dir, algo=algo, env_id=env_id, resume=resume,
                 overwrite=overwrite or (same_run and not resume), member_seeds=member_seeds)
