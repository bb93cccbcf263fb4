"""`where(mask, fn(inputs), current)` over a batch, computing `fn` only for the masked rows.

Used where few rows of a batch need an expensive function: auto-resets of the envs whose episode
ended (envs/wrappers.py) and PPO's critic on the final observations of truncated episodes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

CHUNK_FRACTION = 0.125  # share of a batch that one iteration of the gather loop handles
MIN_BATCH_TO_GATHER = 32  # smaller batches take all their masked rows in one iteration

RowFunction = Callable[[Any], Any]  # one row's inputs -> one row's outputs (no batch axis)


def select_rows(condition: jax.Array, on_true: Any, on_false: Any) -> Any:
    """`where` over matching pytrees whose leaves lead with `condition`'s shape."""

    def select_leaf(a, b):
        return jnp.where(condition.reshape(condition.shape + (1,) * (jnp.ndim(a) - condition.ndim)), a, b)

    return jax.tree.map(select_leaf, on_true, on_false)


def gathered_map_where(fn: RowFunction, mask: jax.Array, inputs: Any, current: Any) -> Any:
    """`where(mask, vmap(fn)(inputs), current)` for rows batched over `mask.shape`, computing
    `fn` only for the masked rows: a loop gathers up to CHUNK_FRACTION of the batch of masked
    rows per iteration, applies `fn` to them and scatters the results back, so a batch with no
    masked row runs no `fn` and the compiled program holds a single `fn`. Batches under
    MIN_BATCH_TO_GATHER take all their masked rows in one iteration. Under vmap the loop stays
    a loop (it runs while any batch member has masked rows), unlike a lax.cond."""
    batch_shape = mask.shape
    if not batch_shape:
        return jax.lax.cond(mask, lambda: fn(inputs), lambda: current)
    size = mask.size
    chunk = size if size < MIN_BATCH_TO_GATHER else max(1, int(size * CHUNK_FRACTION))

    def flat(leaf):
        return leaf.reshape((size,) + leaf.shape[len(batch_shape) :])

    inputs, current = jax.tree.map(flat, inputs), jax.tree.map(flat, current)

    def map_chunk(carry):
        pending, result = carry
        (index,) = jnp.nonzero(pending, size=chunk, fill_value=size)
        mapped = jax.vmap(fn)(jax.tree.map(lambda leaf: leaf[jnp.minimum(index, size - 1)], inputs))
        # fill indices are out of bounds: the scatters drop them
        result = jax.tree.map(lambda old, new: old.at[index].set(new, mode="drop"), result, mapped)
        return pending.at[index].set(False, mode="drop"), result

    _, result = jax.lax.while_loop(lambda carry: jnp.any(carry[0]), map_chunk, (mask.reshape(size), current))
    return jax.tree.map(lambda leaf: leaf.reshape(batch_shape + leaf.shape[1:]), result)


def branching_map_where(fn: RowFunction) -> Callable[[jax.Array, Any, Any], Any]:
    """(mask, inputs, current) -> `where(mask, fn(inputs), current)` for ONE row that stays a
    real branch under vmap (nested vmaps included): each vmap level adds a batch dimension and
    re-enters the same rule, so the whole batch shares one `gathered_map_where`. (A plain
    lax.cond under vmap becomes a select that computes `fn` for every row.) Not
    reverse-differentiable."""

    @jax.custom_batching.custom_vmap
    def map_where(mask, inputs, current):
        return gathered_map_where(fn, mask, inputs, current)

    @map_where.def_vmap
    def batched_rule(axis_size, in_batched, mask, inputs, current):
        def broadcast(leaf, batched):
            leaf = jnp.asarray(leaf)
            return leaf if batched else jnp.broadcast_to(leaf, (axis_size,) + leaf.shape)

        args = jax.tree.map(broadcast, (mask, inputs, current), tuple(in_batched))
        result = map_where(*args)
        return result, jax.tree.map(lambda _: True, result)

    return map_where


def selecting_map_where(fn: RowFunction) -> Callable[[jax.Array, Any, Any], Any]:
    """(mask, inputs, current) -> `where(mask, fn(inputs), current)` for ONE row, computed as a
    select: `fn` runs for every row. No control flow, so nothing waits on `mask`."""

    def map_where(mask, inputs, current):
        return select_rows(mask, fn(inputs), current)

    return map_where
