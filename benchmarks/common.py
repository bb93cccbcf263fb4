"""Timing helpers shared by the benchmark scripts: compile and steady run time of a jitted call.

Every figure is wall-clock on the current default device; results are blocked on before timing stops.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import jax


@dataclasses.dataclass
class Timing:
    compile_s: float
    run_s: float
    output: Any


def time_jitted(fn: Callable[..., Any], *args: Any, repeats: int = 1) -> Timing:
    """Compiles `fn` for `args` (timed), then runs it `repeats` times; run_s is the fastest run."""
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - start
    best, output = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        output = jax.block_until_ready(compiled(*args))
        best = min(best, time.perf_counter() - start)
    return Timing(compile_s, best, output)


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def device_description() -> str:
    device = jax.devices()[0]
    return f"{device.platform}:{device.device_kind} x{jax.device_count()} (jax {jax.__version__})"
