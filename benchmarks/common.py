"""Timing helpers shared by the benchmark scripts: compile and steady run time of a jitted call.

Every figure is wall-clock on the current default device; results are blocked on before timing stops.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxrl_suite.envs import make


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


def restore_brax_device_helpers() -> None:
    """brax 0.14 calls jax.device_put_replicated/sharded, which newer JAX keeps only in jax._src.api."""
    from jax._src import api

    for name in ("device_put_replicated", "device_put_sharded"):
        if not hasattr(jax, name) and hasattr(api, name):
            setattr(jax, name, getattr(api, name))


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
