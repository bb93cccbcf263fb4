"""Progress feedback between chunks: a live rich bar on a terminal, plain lines otherwise.

Shows env steps, steps/s, the recent return and the ETA.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any


def _format_return(value: Any) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1f}"


class Progress:
    """`update(env_steps, record)` after each chunk; `close()` at the end."""

    def __init__(self, total_env_steps: int, start_env_steps: int = 0, *, enabled: bool = True,
                 stream=None, min_line_interval_s: float = 5.0):
        self.total = total_env_steps
        self.stream = stream or sys.stdout
        self.enabled = enabled
        self.min_line_interval_s = min_line_interval_s
        self._last_line = -math.inf
        self._start_time = time.monotonic()
        self._start_steps = start_env_steps
        self._bar = None
        if enabled and self.stream.isatty():
            from rich.progress import BarColumn, Progress as RichProgress, TextColumn, TimeRemainingColumn

            self._bar = RichProgress(
                TextColumn("[bold]{task.completed:,.0f}/{task.total:,.0f} env steps"),
                BarColumn(),
                TextColumn("{task.fields[sps]} steps/s  return {task.fields[ret]}"),
                TimeRemainingColumn(),
            )
            self._task = self._bar.add_task("train", total=total_env_steps, completed=start_env_steps,
                                            sps="-", ret="n/a")
            self._bar.start()

    def update(self, env_steps: int, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        elapsed = time.monotonic() - self._start_time
        sps = (env_steps - self._start_steps) / max(elapsed, 1e-9)
        ret = _format_return(record.get("episode_return"))
        if self._bar is not None:
            self._bar.update(self._task, completed=env_steps, sps=f"{sps:,.0f}", ret=ret)
            return
        now = time.monotonic()
        if now - self._last_line >= self.min_line_interval_s or env_steps >= self.total:
            self._last_line = now
            remaining = (self.total - env_steps) / max(sps, 1e-9)
            eta = f"{remaining:.0f}s" if math.isfinite(remaining) else "?"
            pct = 100.0 * env_steps / max(self.total, 1)
            print(f"[{pct:5.1f}%] env_steps={env_steps:,} sps={sps:,.0f} return={ret} eta={eta}",
                  file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
