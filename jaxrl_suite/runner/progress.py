"""Progress feedback between chunks: a live rich bar on a terminal, plain lines otherwise.

Shows env steps (or another unit, e.g. tokens), their rate, the recent return (or another metric) and the ETA.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any


def _format_return(value: Any, digits: int = 1) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


class Progress:
    """`update(env_steps, record)` after each chunk; `close()` at the end.

    unit names what is counted (rate_key labels its rate); record[metric] is shown under metric_label.
    """

    def __init__(self, total_env_steps: int, start_env_steps: int = 0, *, enabled: bool = True,
                 stream=None, min_line_interval_s: float = 5.0, unit: str = "env steps",
                 metric: str = "episode_return", metric_label: str = "return", rate_key: str = "sps",
                 metric_digits: int = 1):
        self.total = total_env_steps
        self.stream = stream or sys.stdout
        self.enabled = enabled
        self.min_line_interval_s = min_line_interval_s
        self._last_line = -math.inf
        self._start_time = time.monotonic()
        self._start_steps = start_env_steps
        self._bar = None
        self.unit, self.metric, self.metric_label, self.rate_key = unit, metric, metric_label, rate_key
        self.metric_digits = metric_digits
        if enabled and self.stream.isatty():
            from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn(f"[bold]{{task.completed:,.0f}}/{{task.total:,.0f}} {unit}"),
                BarColumn(),
                TextColumn(f"{{task.fields[sps]}} {unit}/s  {metric_label} {{task.fields[ret]}}"),
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
        ret = _format_return(record.get(self.metric), self.metric_digits)
        if self._bar is not None:
            self._bar.update(self._task, completed=env_steps, sps=f"{sps:,.0f}", ret=ret)
            return
        now = time.monotonic()
        if now - self._last_line >= self.min_line_interval_s or env_steps >= self.total:
            self._last_line = now
            remaining = (self.total - env_steps) / max(sps, 1e-9)
            eta = f"{remaining:.0f}s" if math.isfinite(remaining) else "?"
            pct = 100.0 * env_steps / max(self.total, 1)
            unit = self.unit.replace(" ", "_")
            print(f"[{pct:5.1f}%] {unit}={env_steps:,} {self.rate_key}={sps:,.0f} {self.metric_label}={ret} eta={eta}",
                  file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
