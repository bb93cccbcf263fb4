"""A run directory: what it holds (config.json, metrics.jsonl, tensorboard/, checkpoints/,
learning_curve.png, timing.json), config.json written and compared, and the checks before a run may use it.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import shutil
from typing import Any

from jaxrl_suite.runner.checkpoints import Checkpointer
from jaxrl_suite.runner.config import RunConfig
from jaxrl_suite.runner.timing import TIMING_FILE

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"
UNREADABLE_CHECKPOINT_DIR = "unreadable_checkpoints"  # where a resume sets aside checkpoints it cannot restore
PLOT_FILE = "learning_curve.png"
RUN_ARTIFACTS = (CONFIG_FILE, "metrics.jsonl", "metrics.jsonl.tmp", "tensorboard", CHECKPOINT_DIR,
                 UNREADABLE_CHECKPOINT_DIR, PLOT_FILE, TIMING_FILE)
MACHINE_KEY = "machine"  # config.json's record of what ran it; no part of the run's definition


class RunDirectoryError(RuntimeError):
    """The run directory cannot be used as asked (exists without --overwrite, nothing to resume, ...)."""


def _config_payload(algo: str, env_id: str, run: RunConfig, learner_config: Any) -> dict[str, Any]:
    """config.json's definition of a run, as it reads back from JSON."""
    payload = {"algo": algo, "env": env_id, "run": dataclasses.asdict(run),
               "learner": dataclasses.asdict(learner_config)}
    return json.loads(json.dumps(payload, default=str))


def write_config(run_dir: pathlib.Path, algo: str, env_id: str, run: RunConfig, learner_config: Any) -> None:
    """config.json: the run's definition and, under "machine", the machine and library versions."""
    from jaxrl_suite.machine import machine_info

    payload = {**_config_payload(algo, env_id, run, learner_config), MACHINE_KEY: machine_info()}
    (run_dir / CONFIG_FILE).write_text(json.dumps(payload, indent=2, default=str) + "\n")


def stored_definition(run_dir: str | pathlib.Path) -> dict[str, Any]:
    """config.json without the machine, with the fields added since it was written at their defaults."""
    from jaxrl_suite.algorithms import ALGORITHMS, get_algorithm
    from jaxrl_suite.runner.config_file import with_added_defaults

    stored = read_config(run_dir)
    stored.pop(MACHINE_KEY, None)
    if stored.get("algo") in ALGORITHMS and isinstance(stored.get("learner"), dict):
        config_class = get_algorithm(stored["algo"]).load("config_class")
        stored["learner"] = with_added_defaults(config_class, stored["learner"])
    return stored


def records_same_run(run_dir: str | pathlib.Path, algo: str, env_id: str, run: RunConfig, learner_config: Any) -> bool:
    """True when `run_dir` was started with exactly this algo, env, run and learner config, so
    continuing or reusing it is meaningful (studies use this to pick up where they stopped);
    the recorded machine does not count."""
    if not (pathlib.Path(run_dir) / CONFIG_FILE).exists():
        return False
    return stored_definition(run_dir) == _config_payload(algo, env_id, run, learner_config)


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(_flatten(value, f"{prefix}.{key}" if prefix else key))
    return flat


def resume_differences(run_dir: str | pathlib.Path, algo: str, env_id: str, run: RunConfig,
                       learner_config: Any) -> list[str]:
    """Where config.json differs from the run about to resume it, as "field (stored X, given Y)".
    A larger run.total_steps is no difference: it extends the run (learner fields keep theirs)."""
    stored = _flatten(stored_definition(run_dir))
    given = _flatten(_config_payload(algo, env_id, run, learner_config))
    differences = []
    for path in sorted(stored.keys() | given.keys()):
        old, new = stored.get(path, "<missing>"), given.get(path, "<missing>")
        extends = path == "run.total_steps" and isinstance(old, int) and new > old
        if old != new and not extends:
            differences.append(f"{path} (stored {old!r}, given {new!r})")
    return differences


def has_checkpoint(run_dir: str | pathlib.Path) -> bool:
    return Checkpointer(pathlib.Path(run_dir) / CHECKPOINT_DIR).latest_step() is not None


def read_config(run_dir: str | pathlib.Path) -> dict[str, Any]:
    path = pathlib.Path(run_dir) / CONFIG_FILE
    if not path.exists():
        raise RunDirectoryError(f"{run_dir} has no {CONFIG_FILE}: it is not a jaxrl run directory")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise RunDirectoryError(f"invalid {path}: not JSON ({error})") from None


def check_run_dir(run_dir: pathlib.Path, *, resume: bool, overwrite: bool) -> list[str]:
    """Raises RunDirectoryError unless the directory may be used as asked (before any
    compilation, changing nothing); returns the run artifacts it holds."""
    if resume and overwrite:
        raise RunDirectoryError("choose either resume or overwrite, not both")
    existing = [name for name in RUN_ARTIFACTS if (run_dir / name).exists()]
    if resume:
        if CONFIG_FILE not in existing:
            raise RunDirectoryError(f"cannot resume {run_dir}: no {CONFIG_FILE} there (not a jaxrl run directory)")
        if not has_checkpoint(run_dir):
            unfinished = sorted(p.name for p in (run_dir / CHECKPOINT_DIR).glob("*.orbax-checkpoint-tmp*"))
            left = f"; the unfinished {', '.join(unfinished)} is left as it is" if unfinished else ""
            raise RunDirectoryError(
                f"cannot resume {run_dir}: it holds no checkpoint (the run stopped before its first checkpoint "
                f"was committed{left}); start it again with --overwrite instead of --resume"
            )
    elif existing and not overwrite:
        raise RunDirectoryError(
            f"run directory {run_dir} already holds a run ({', '.join(existing)}); pass --resume {run_dir} "
            f"to continue it, --overwrite to replace it, or choose another --out"
        )
    return existing


def prepare_run_dir(run_dir: pathlib.Path, *, resume: bool, overwrite: bool) -> None:
    """check_run_dir, then clears the directory on overwrite and creates it for a new run."""
    existing = check_run_dir(run_dir, resume=resume, overwrite=overwrite)
    if resume:
        return
    for name in existing:
        path = run_dir / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)
