"""Run-directory logs: `metrics.jsonl` (one JSON object per log point) and TensorBoard events.

Resuming truncates metrics.jsonl back to the restored checkpoint, atomically, so a resumed
run's file equals an uninterrupted run's.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
from typing import Any

import numpy as np

METRICS_FILE = "metrics.jsonl"


def to_json_value(value: Any) -> Any:
    """numpy/jax scalars and arrays to plain JSON (NaN/inf become None)."""
    array = np.asarray(value)
    if array.ndim == 0:
        scalar = array.item()
        if isinstance(scalar, float) and not math.isfinite(scalar):
            return None
        return scalar
    return [to_json_value(item) for item in array]


def read_metrics(run_dir: str | pathlib.Path) -> list[dict[str, Any]]:
    path = pathlib.Path(run_dir) / METRICS_FILE
    if not path.exists():
        return []
    with path.open() as handle:
        return [json.loads(line) for line in handle if line.strip()]


def truncate_metrics(run_dir: pathlib.Path, max_updates: int) -> None:
    """Keeps only records with `updates <= max_updates` (atomic rewrite)."""
    records = [r for r in read_metrics(run_dir) if r["updates"] <= max_updates]
    temporary = run_dir / (METRICS_FILE + ".tmp")
    with temporary.open("w") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in records)
    os.replace(temporary, run_dir / METRICS_FILE)


class MetricsWriter:
    """Appends log records to metrics.jsonl and mirrors scalar means to TensorBoard.

    step_key names the record field used as the TensorBoard step ("env_steps" for RL, "tokens" for LMs).
    """

    def __init__(self, run_dir: pathlib.Path, tensorboard: bool = True, step_key: str = "env_steps"):
        self.path = run_dir / METRICS_FILE
        self.step_key = step_key
        self._handle = self.path.open("a")
        self._tensorboard = None
        if tensorboard:
            from tensorboardX import SummaryWriter

            self._tensorboard = SummaryWriter(str(run_dir / "tensorboard"))

    def write(self, record: dict[str, Any]) -> None:
        self._handle.write(json.dumps(record) + "\n")
        self._handle.flush()
        if self._tensorboard is not None:
            step = record[self.step_key]
            for name, value in record.items():
                if isinstance(value, (int, float)) and name != self.step_key:
                    self._tensorboard.add_scalar(name, value, step)
            self._tensorboard.flush()

    def close(self) -> None:
        self._handle.close()
        if self._tensorboard is not None:
            self._tensorboard.close()
