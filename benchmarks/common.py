"""Timing helpers shared by the benchmark scripts: compile and steady run time of a jitted call.

Every figure is wall-clock on the current default device; results are blocked on before timing stops.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl_suite.envs import make


@dataclasses.dataclass
class Timing:
    compile_s: float
    run_s: float  # the fastest run
    output: Any
    compiled: Any  # the executable that ran
    runs_s: list[float] = dataclasses.field(default_factory=list)  # every timed run, in order

    @property
    def flops(self) -> float:
        """XLA's count of one call's floating-point operations (a loop body counted once)."""
        return executable_flops(self.compiled)

    @property
    def median_s(self) -> float:
        return statistics.median(self.runs_s)


def compile_timed(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """(jit(fn) compiled for `args`, seconds the compilation took)."""
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - start


def run_timed(compiled: Any, *args: Any) -> tuple[Any, float]:
    """(output, wall seconds) of one call, blocked on its result."""
    start = time.perf_counter()
    output = jax.block_until_ready(compiled(*args))
    return output, time.perf_counter() - start


def time_jitted(fn: Callable[..., Any], *args: Any, repeats: int = 1) -> Timing:
    """Compiles `fn` for `args` (timed), then runs it `repeats` times; run_s is the fastest run."""
    return time_interleaved([(fn, args)], repeats)[0]


def time_interleaved(calls: list[tuple[Callable[..., Any], tuple[Any, ...]]], repeats: int) -> list[Timing]:
    """Like time_jitted for several (fn, args) calls, but their timed runs alternate (A B A B
    ...), so that a slow spell of a shared machine falls on every side alike; compare medians
    or fastest runs."""
    compiled = [compile_timed(fn, *args) for fn, args in calls]
    runs: list[list[float]] = [[] for _ in calls]
    outputs: list[Any] = [None] * len(calls)
    for _ in range(repeats):
        for index, ((executable, _), (_, args)) in enumerate(zip(compiled, calls, strict=True)):
            outputs[index], seconds = run_timed(executable, *args)
            runs[index].append(seconds)
    return [Timing(compile_s, min(times), output, executable, times)
            for (executable, compile_s), times, output in zip(compiled, runs, outputs, strict=True)]


def restore_brax_device_helpers() -> None:
    """brax 0.14 calls jax.device_put_replicated/sharded, which newer JAX keeps only in jax._src.api."""
    from jax._src import api

    for name in ("device_put_replicated", "device_put_sharded"):
        if not hasattr(jax, name) and hasattr(api, name):
            setattr(jax, name, getattr(api, name))


def mean_and_error(values: list[float]) -> str:
    """'mean +- standard error (n)': returns vary widely between seeds, so a gap between two
    means is only a difference once it clearly exceeds both errors."""
    if len(values) < 2:
        return f"{np.mean(values):.1f} (1 seed)"
    return f"{np.mean(values):.1f} +- {np.std(values, ddof=1) / np.sqrt(len(values)):.1f} ({len(values)} seeds)"


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def device_description() -> str:
    device = jax.devices()[0]
    return f"{device.platform}:{device.device_kind} x{jax.device_count()} (jax {jax.__version__})"


def raw_env_steps_per_second(env_id: str, num_envs: int, num_steps: int, repeats: int) -> float:
    """Random-action env steps/s: one jitted scan of num_steps vmapped steps over num_envs envs.

    Every leaf of the final state is reduced into the output so XLA cannot drop the physics.
    """
    env = make(env_id)

    def run(key):
        reset_key, action_key = jax.random.split(key)
        state = jax.vmap(env.reset)(jax.random.split(reset_key, num_envs))

        def step(state, step_key):
            actions = jax.vmap(env.action_space.sample)(jax.random.split(step_key, num_envs))
            return jax.vmap(env.step)(state, actions), None

        state, _ = jax.lax.scan(step, state, jax.random.split(action_key, num_steps))
        return sum(jnp.sum(leaf.astype(jnp.float32)) for leaf in jax.tree.leaves(state))

    compiled = jax.jit(run).lower(jax.random.PRNGKey(0)).compile()
    jax.block_until_ready(compiled(jax.random.PRNGKey(0)))
    start = time.perf_counter()
    for repeat in range(repeats):
        jax.block_until_ready(compiled(jax.random.PRNGKey(repeat + 1)))
    return num_envs * num_steps * repeats / (time.perf_counter() - start)


def executable_flops(compiled: Any) -> float:
    """Floating-point operations XLA's cost analysis counts for one call of a compiled program.

    It counts a loop's body once, whatever its trip count.
    """
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost["flops"])


def compiled_flops(fn: Callable[..., Any], *args: Any) -> float:
    """executable_flops of jit(fn) compiled for `args` (not run): pass one step of a loop."""
    return executable_flops(jax.jit(fn).lower(*args).compile())


def matmul_flops_per_second(rows: int, inner: int, outer: int, products: int = 64, repeats: int = 3) -> float:
    """This device's rate on a chain of [rows, inner] @ [inner, outer] products and their
    transposes (fastest of `repeats` timed runs): what a layer of that shape could reach."""
    weight = jnp.zeros((inner, outer), jnp.float32)

    def chain(x, w):
        return jax.lax.scan(lambda carry, _: ((carry @ w) @ w.T, None), x, None, length=products // 2)[0]

    timing = time_jitted(chain, jnp.ones((rows, inner), jnp.float32), weight, repeats=repeats)
    return 2.0 * rows * inner * outer * (products // 2 * 2) / timing.run_s


def widest_kernel_shape(params: Any) -> tuple[int, int]:
    """(inputs, outputs) of the largest 2-D weight matrix in a parameter tree."""
    kernels = [leaf.shape for leaf in jax.tree.leaves(params) if getattr(leaf, "ndim", 0) == 2]
    return max(kernels, key=lambda shape: shape[0] * shape[1])


@dataclasses.dataclass
class WorkBound:
    """How close a trainer's work runs to the device's matmul rate (all rates in FLOP/s)."""

    flops_per_env_step: float  # XLA's count, spread over the env steps of one update
    achieved: float  # flops_per_env_step x the trainer's measured env steps/s
    matmul_rate: float  # matmul_flops_per_second at the trainer's widest layer and batch

    @property
    def fraction_of_matmul_rate(self) -> float:
        return self.achieved / self.matmul_rate

    def lines(self, steps_per_second: float, peer_steps_per_second: float, goal_ratio: float) -> list[str]:
        """Where the measured rate stands, and the share of the matmul rate `goal_ratio` x the peer needs."""
        needed = goal_ratio * peer_steps_per_second * self.flops_per_env_step
        return [
            f"work: {self.flops_per_env_step / 1e6:.2f} MFLOP per env step (XLA's count); "
            f"at {steps_per_second:,.0f} steps/s that is {self.achieved / 1e9:.1f} GFLOP/s",
            f"device matmul rate at the widest layer: {self.matmul_rate / 1e9:.1f} GFLOP/s; "
            f"ours runs at {self.fraction_of_matmul_rate:.0%} of it",
            f"{goal_ratio}x the peer ({peer_steps_per_second:,.0f} steps/s) with the same work would need "
            f"{needed / 1e9:.1f} GFLOP/s = {needed / self.matmul_rate:.0%} of the matmul rate",
        ]
