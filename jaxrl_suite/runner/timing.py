"""Where a run's wall time goes: init, compile, training chunks, evaluation, checkpoints, logging.

The run loop charges each stretch of host time to one phase; `timing.json` in the run directory
holds the breakdown of the latest `train` call (benchmarks/end_to_end.py reads it).
"""

from __future__ import annotations

import contextlib
import json
import pathlib
import time
from collections.abc import Iterator

TIMING_FILE = "timing.json"
PHASES = ("init", "compile", "train", "eval", "checkpoint", "logging")


class PhaseTimer:
    """Seconds per phase of one `train` call; whatever no phase claims is `other`."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self._start = time.monotonic()

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Charges the time spent inside the block to `name` (one of PHASES)."""
        if name not in self.seconds:
            raise ValueError(f"unknown timing phase {name!r} (valid: {', '.join(PHASES)})")
        start = time.monotonic()
        try:
            yield
        finally:
            self.seconds[name] += time.monotonic() - start

    def breakdown(self) -> dict[str, float]:
        """{phase: seconds, "other": the rest, "total": since construction}, rounded to ms."""
        total = time.monotonic() - self._start
        parts = dict(self.seconds, other=max(0.0, total - sum(self.seconds.values())), total=total)
        return {name: round(value, 3) for name, value in parts.items()}

    def write(self, run_dir: pathlib.Path) -> dict[str, float]:
        """Writes the breakdown to run_dir/timing.json (atomically) and returns it."""
        breakdown = self.breakdown()
        temporary = run_dir / f"{TIMING_FILE}.tmp"
        temporary.write_text(json.dumps(breakdown, indent=1) + "\n")
        temporary.replace(run_dir / TIMING_FILE)
        return breakdown


def describe_timing(breakdown: dict[str, float]) -> str:
    """One line, e.g. `time 41.2 s: compile 12.0, train 25.1, eval 1.2, checkpoint 2.0, logging 0.4, other 0.5`."""
    parts = ", ".join(f"{name} {breakdown[name]:.1f}" for name in (*PHASES, "other"))
    return f"time {breakdown['total']:.1f} s: {parts}"
