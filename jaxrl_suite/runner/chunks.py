"""Compiled chunks of learner updates: `lax.scan` of `update`, vmapped over seeds.

The only place the run loop touches jit; tests and sweeps call these directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxrl_suite.runner.learner import COMPLETED_COUNT, COMPLETED_RETURN_SUM, Learner, reduce_stacked_metrics


def scan_updates(learner: Learner, state: Any, num_updates: int) -> tuple[Any, dict[str, jax.Array]]:
    """Runs `num_updates` updates of ONE seed; metrics stacked along a leading [num_updates] axis."""
    return jax.lax.scan(lambda carry, _: learner.update(carry), state, None, length=num_updates)


def reduce_chunk_metrics(stacked: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Reduces [num_updates, ...] metrics to one value each: *_sum/*_count summed, others averaged.

    Adds `episode_return` (mean return of episodes finished in the chunk; NaN if none).
    """
    reduced = reduce_stacked_metrics(stacked)
    if COMPLETED_RETURN_SUM in reduced and COMPLETED_COUNT in reduced:
        count = reduced[COMPLETED_COUNT]
        reduced["episode_return"] = jnp.where(
            count > 0, reduced[COMPLETED_RETURN_SUM] / jnp.maximum(count, 1), jnp.nan
        )
    return reduced


def make_chunk_fn(learner: Learner, num_updates: int) -> Callable[[Any], tuple[Any, dict[str, jax.Array]]]:
    """jit(vmap over seeds) of `num_updates` updates; metrics reduced per seed: {name: [num_seeds]}."""

    def one_seed(state: Any) -> tuple[Any, dict[str, jax.Array]]:
        state, stacked = scan_updates(learner, state, num_updates)
        return state, reduce_chunk_metrics(stacked)

    return jax.jit(jax.vmap(one_seed), donate_argnums=0)


def _signature(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """(shape, dtype, sharding) of every leaf; the tree structure is the compiled call's own check
    (comparing treedefs would compare static fields, e.g. an env's numpy model constants)."""
    return tuple((leaf.shape, leaf.dtype, getattr(leaf, "sharding", None)) for leaf in jax.tree.leaves(args))


class AheadOfTime:
    """`jitted` lowered for `args` now and compiled by `compile()` (which may run on another
    thread), before its first call. A call with arguments of other shapes, dtypes or shardings,
    or before `compile()` finished, goes to `jitted` itself. Same program, same results."""

    def __init__(self, jitted: Any, *args: Any):
        self.jitted = jitted
        self.signature = _signature(args)
        self.lowered = jitted.lower(*args)
        self.compiled: Any = None

    def compile(self) -> AheadOfTime:
        self.compiled = self.lowered.compile()
        return self

    def __call__(self, *args: Any) -> Any:
        if self.compiled is not None and _signature(args) == self.signature:
            return self.compiled(*args)
        return self.jitted(*args)


def seed_keys(seeds: list[int]) -> jax.Array:
    """Raw uint32 [len(seeds), 2] keys, PRNGKey(seed) each, so that Orbax checkpoints them as plain arrays."""
    return jnp.stack([jax.random.PRNGKey(seed) for seed in seeds])


def init_one_by_one(init: Callable[[Any], Any], members: Any) -> Any:
    """init(member) for each member along the leading axis of `members`, stacked, run one after
    another in one jitted program (lax.map, not vmap). Our networks' init is safe under vmap
    (serial_linalg); this also keeps learners whose init uses another batched LAPACK call (flax's
    own orthogonal init) clear of the XLA:CPU thread-pool deadlock that a batched QR caused (brax,
    5 seeds)."""
    return jax.jit(lambda members: jax.lax.map(init, members))(members)


def init_stacked(learner: Learner, keys: jax.Array) -> Any:
    """TrainStates for keys [K, 2] stacked on a leading [K] axis, initialised one after another."""
    return init_one_by_one(learner.init, keys)


def init_seeds(learner: Learner, seed: int, num_seeds: int) -> Any:
    """TrainStates for seeds seed..seed+num_seeds-1 stacked on a leading [num_seeds] axis.

    Seed s alone and seed s inside a batch get the same key, so a vmapped run of K seeds
    reproduces each single-seed run.
    """
    return init_stacked(learner, seed_keys(list(range(seed, seed + num_seeds))))
