"""Env steps/s through jaxrl_suite.envs.make (all wrappers) vs each backend called directly
with its own auto-reset, vmapped over a batch inside one jitted lax.scan, random actions.

    python benchmarks/env_throughput.py                       # quick default, a few minutes
    python benchmarks/env_throughput.py --envs brax/ant --batches 1 256 4096 --min-time 2
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl_suite.envs import Box, Discrete, make

DEFAULT_ENVS = (
    "gymnax/CartPole-v1",
    "gymnax/Pendulum-v1",
    "gymnax/Breakout-MinAtar",
    "brax/inverted_pendulum",
    "dmc/CartpoleBalance",
)

# A batched rollout: init(key) -> carry, step(carry, key) -> carry.
Rollout = tuple[Callable[[jax.Array], Any], Callable[[Any, jax.Array], Any]]


def sample_batch(space: Discrete | Box, key: jax.Array, batch: int) -> jax.Array:
    """[batch, *action_shape] uniform actions, drawn the same way for both sides."""
    if isinstance(space, Discrete):
        return jax.random.randint(key, (batch,), 0, space.n, jnp.int32)
    low = jnp.broadcast_to(jnp.asarray(space.low, jnp.float32), space.shape)
    high = jnp.broadcast_to(jnp.asarray(space.high, jnp.float32), space.shape)
    return jax.random.uniform(key, (batch, *space.shape), jnp.float32, low, high)


def ours(env_id: str, batch: int, reset_mode: str, options: dict[str, Any]) -> Rollout:
    """`reset_mode` is "cached", "fresh" (auto strategy), "fresh:branch" or "fresh:select"."""
    mode, _, strategy = reset_mode.partition(":")
    env = make(env_id, reset_mode=mode, reset_strategy=strategy or "auto", **options)
    reset, step = jax.vmap(env.reset), jax.vmap(env.step)

    def init(key):
        return reset(jax.random.split(key, batch))

    def advance(state, key):
        return step(state, sample_batch(env.action_space, key, batch))

    return init, advance


def direct_gymnax(name: str, batch: int) -> Rollout:
    import gymnax
    import gymnax.environments.spaces as gymnax_spaces

    env, params = gymnax.make(name)
    space = env.action_space(params)
    if isinstance(space, gymnax_spaces.Discrete):
        action_space: Discrete | Box = Discrete(int(space.n))
    else:
        action_space = Box(tuple(space.shape), np.asarray(space.low), np.asarray(space.high))
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def init(key):
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, batch), params)
        zeros = jnp.zeros(batch)
        return key, env_state, obs, zeros, zeros > 0, zeros > 0, obs

    def advance(carry, key):
        env_key, env_state = carry[0], carry[1]
        env_key, step_key = jax.random.split(env_key)
        action = sample_batch(action_space, key, batch)
        obs, env_state, reward, terminated, truncated, info = step(
            jax.random.split(step_key, batch), env_state, action, params
        )
        return env_key, env_state, obs, reward, terminated, truncated, info["final_observation"]

    return init, advance


def direct_brax(name: str, batch: int, options: dict[str, Any]) -> Rollout:
    from brax import envs

    from jaxrl_suite.envs.brax_env import MAX_EPISODE_STEPS, default_backend

    env = envs.get_environment(name, backend=options.get("backend") or default_backend(name))
    return _brax_training_rollout(envs.training.wrap(env, episode_length=MAX_EPISODE_STEPS), batch)


def direct_dmc(name: str, batch: int, options: dict[str, Any]) -> Rollout:
    from mujoco_playground import registry, wrapper

    from jaxrl_suite.envs.playground_env import default_impl

    env = registry.load(name, config_overrides={"impl": options.get("impl") or default_impl()})
    episode_length = int(env._config.episode_length)
    return _brax_training_rollout(wrapper.wrap_for_brax_training(env, episode_length=episode_length), batch)


def _brax_training_rollout(env: Any, batch: int) -> Rollout:
    """brax.training-style wrapped env (vmap, episode limit, cached-state auto-reset)."""
    action_space = Box((env.action_size,), -1.0, 1.0)

    def init(key):
        return env.reset(jax.random.split(key, batch))

    def advance(state, key):
        return env.step(state, sample_batch(action_space, key, batch))

    return init, advance


def direct(env_id: str, batch: int, options: dict[str, Any]) -> Rollout:
    family, name = env_id.split("/", 1)
    if family == "gymnax":
        return direct_gymnax(name, batch)
    if family == "brax":
        return direct_brax(name, batch, options)
    if family == "dmc":
        return direct_dmc(name, batch, options)
    raise ValueError(f"no direct baseline for family {family!r} (env {env_id!r})")


def checksum(tree: Any) -> jax.Array:
    """Sum of every leaf, so XLA cannot drop any part of the simulation as dead code."""
    total = jnp.zeros((), jnp.float32)
    for leaf in jax.tree.leaves(tree):
        if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        total = total + jnp.sum(leaf.astype(jnp.float32))
    return total


class Timer:
    """Compiles a rollout of `scan_length` steps once, then times repeated calls."""

    def __init__(self, rollout: Rollout, scan_length: int, batch: int):
        init, advance = rollout

        def run(key):
            init_key, scan_key = jax.random.split(key)
            carry = jax.lax.scan(
                lambda carry, key: (advance(carry, key), None),
                init(init_key),
                jax.random.split(scan_key, scan_length),
            )[0]
            return checksum(carry)

        self.steps_per_call = scan_length * batch
        self._run = jax.jit(run)
        started = time.perf_counter()
        self._run(jax.random.PRNGKey(0)).block_until_ready()
        self.compile_s = time.perf_counter() - started
        self.best_rate = 0.0
        self.best_cpu_rate = 0.0

    def measure(self, min_time: float) -> None:
        """One round: calls until `min_time` wall seconds pass; keeps the best wall-clock
        rate and the best rate per CPU-second of this process (robust on a shared machine)."""
        calls, started, cpu_started, elapsed = 0, time.perf_counter(), time.process_time(), 0.0
        while elapsed < min_time:
            self._run(jax.random.PRNGKey(calls + 1)).block_until_ready()
            calls += 1
            elapsed = time.perf_counter() - started
        cpu_elapsed = time.process_time() - cpu_started
        self.best_rate = max(self.best_rate, calls * self.steps_per_call / elapsed)
        self.best_cpu_rate = max(self.best_cpu_rate, calls * self.steps_per_call / cpu_elapsed)


def format_rate(rate: float) -> str:
    if rate >= 1e6:
        return f"{rate / 1e6:.2f}M"
    if rate >= 1e3:
        return f"{rate / 1e3:.1f}k"
    return f"{rate:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", nargs="+", default=list(DEFAULT_ENVS))
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 256, 4096])
    parser.add_argument(
        "--steps-per-call",
        type=int,
        default=65536,
        help="env steps (batch x scan length) per timed call; scan length is clipped to [16, 1000]",
    )
    parser.add_argument("--min-time", type=float, default=0.5, help="seconds of timed calls per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best rate is kept")
    parser.add_argument(
        "--reset-modes",
        nargs="+",
        default=["fresh"],
        choices=["fresh", "fresh:branch", "fresh:select", "cached"],
        help="our reset modes to time ('fresh' uses the env's auto reset strategy; ':branch'/':select' "
        "force one); brax's and Playground's own auto-reset restart from a cached first state, so add "
        "'cached' for a like-for-like comparison on brax/dmc",
    )
    parser.add_argument("--backend", default=None, help="brax physics backend")
    args = parser.parse_args()

    print(f"jax {jax.__version__}, device {jax.devices()[0].device_kind}, {jax.default_backend()}")
    rows = []
    for env_id in args.envs:
        family = env_id.split("/", 1)[0]
        options = {"backend": args.backend} if family == "brax" and args.backend else {}
        modes = args.reset_modes
        for batch in args.batches:
            scan_length = int(np.clip(args.steps_per_call // batch, 16, 1000))
            timers = {"direct": Timer(direct(env_id, batch, options), scan_length, batch)}
            for mode in modes:
                timers[mode] = Timer(ours(env_id, batch, mode, options), scan_length, batch)
            for _ in range(args.rounds):
                for timer in timers.values():
                    timer.measure(args.min_time)
            direct_timer = timers["direct"]
            for mode in modes:
                ours_timer = timers[mode]
                rows.append((env_id, batch, mode, ours_timer, direct_timer))
                print(
                    f"  {env_id} batch {batch} {mode}: {format_rate(ours_timer.best_rate)}/s vs direct "
                    f"{format_rate(direct_timer.best_rate)}/s (per CPU-s: {format_rate(ours_timer.best_cpu_rate)} "
                    f"vs {format_rate(direct_timer.best_cpu_rate)})",
                    flush=True,
                )

    print(f"\nload average over the run's last minute: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(
        "\n| env | batch | our reset | ours steps/s | direct steps/s | ratio | ours per CPU-s "
        "| direct per CPU-s | CPU ratio | our compile s |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for env_id, batch, mode, ours_timer, direct_timer in rows:
        print(
            f"| {env_id} | {batch} | {mode} | {format_rate(ours_timer.best_rate)} "
            f"| {format_rate(direct_timer.best_rate)} | {ours_timer.best_rate / direct_timer.best_rate:.2f} "
            f"| {format_rate(ours_timer.best_cpu_rate)} | {format_rate(direct_timer.best_cpu_rate)} "
            f"| {ours_timer.best_cpu_rate / direct_timer.best_cpu_rate:.2f} | {ours_timer.compile_s:.1f} |"
        )


if __name__ == "__main__":
    main()
