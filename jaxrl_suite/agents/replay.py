"""Circular replay buffer kept inside a TrainState, as pure functions over a pytree of arrays.

`init_replay` / `add_batch` / `sample_batch`, plus a memory estimate checked against the host or
device memory before anything compiles (a buffer that does not fit fails with a clear error).
"""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

GIB = 2**30
# A buffer may take at most this share of the memory available when it is checked: the
# networks, optimizer states, env states and XLA's temporaries need the rest.
DEFAULT_MEMORY_FRACTION = 0.5


@struct.dataclass
class Transition:
    """One env step (or a batch of them: a leading [B] axis on every field).

    obs:        [*obs_shape] observation acted on.
    action:     [*action_shape] action taken (in the agent's action space, e.g. [-1, 1]^d).
    reward:     [] float32.
    next_obs:   [*obs_shape] the state the step led to: the pre-reset final observation when
                the episode ended at this step (envs' info["final_obs"]).
    terminated: [] bool, next_obs is terminal: do not bootstrap from it.
    truncated:  [] bool, the episode was cut (time limit or early stop): bootstrap from next_obs.
    """

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    next_obs: jax.Array
    terminated: jax.Array
    truncated: jax.Array


@struct.dataclass
class ReplayBuffer:
    """Fixed-capacity ring of items (any pytree, usually a Transition).

    data:           the item pytree with a leading [capacity] axis on every leaf.
    insert_position: [] int32 slot the next item is written to.
    size:           [] int32 number of written slots (saturates at capacity).
    """

    data: Any
    insert_position: jax.Array
    size: jax.Array

    @property
    def capacity(self) -> int:
        return jax.tree.leaves(self.data)[0].shape[0]


def init_replay(capacity: int, example_item: Any) -> ReplayBuffer:
    """An empty buffer of `capacity` slots shaped like `example_item` (one item, no batch axis; its
    leaves are arrays or jax.ShapeDtypeStruct)."""
    if capacity < 1:
        raise ValueError(f"replay capacity must be >= 1, got {capacity}")
    data = jax.tree.map(lambda leaf: jnp.zeros((capacity, *leaf.shape), leaf.dtype), example_item)
    return ReplayBuffer(data, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def add_batch(buffer: ReplayBuffer, batch: Any) -> ReplayBuffer:
    """Writes `batch` (the item pytree with a leading [B] axis, B <= capacity) at the insert
    position, wrapping around and overwriting the oldest items once the buffer is full."""
    capacity = buffer.capacity
    batch_size = jax.tree.leaves(batch)[0].shape[0]
    if batch_size > capacity:
        raise ValueError(f"cannot add {batch_size} items at once to a replay buffer of capacity {capacity}")
    chex.assert_trees_all_equal_shapes_and_dtypes(
        jax.tree.map(lambda leaf: leaf[0], buffer.data), jax.tree.map(lambda leaf: leaf[0], batch)
    )
    slots = (buffer.insert_position + jnp.arange(batch_size)) % capacity
    data = jax.tree.map(lambda stored, new: stored.at[slots].set(new), buffer.data, batch)
    return ReplayBuffer(
        data=data,
        insert_position=(buffer.insert_position + batch_size) % capacity,
        size=jnp.minimum(buffer.size + batch_size, capacity),
    )


def sample_batch(buffer: ReplayBuffer, key: jax.Array, batch_size: int) -> Any:
    """`batch_size` items drawn uniformly with replacement from the written slots only:
    the item pytree with a leading [batch_size] axis. An empty buffer yields slot 0 (zeros)."""
    slots = jax.random.randint(key, (batch_size,), 0, jnp.maximum(buffer.size, 1))
    return jax.tree.map(lambda stored: stored[slots], buffer.data)


def item_bytes(example_item: Any) -> int:
    """Bytes one item takes in the buffer (`example_item` may hold arrays or ShapeDtypeStructs)."""
    return sum(int(np.prod(leaf.shape)) * np.dtype(leaf.dtype).itemsize for leaf in jax.tree.leaves(example_item))


def available_memory_bytes() -> tuple[int, str]:
    """(bytes available, where) for the default device: device memory on accelerators
    (bytes_limit - bytes_in_use), otherwise the host's available RAM."""
    device = jax.devices()[0]
    stats = device.memory_stats() if device.platform != "cpu" else None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0)), f"{device.platform} device memory"
    try:
        import psutil

        return int(psutil.virtual_memory().available), "host RAM"
    except ImportError:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "host RAM"
    raise RuntimeError("cannot tell how much memory is available (no psutil, no /proc/meminfo)")


def check_replay_fits(
    capacity: int,
    example_item: Any,
    *,
    copies: int = 1,
    extra_bytes: int = 0,
    memory_fraction: float = DEFAULT_MEMORY_FRACTION,
    capacity_field: str = "buffer_size",
    available: tuple[int, str] | None = None,
) -> int:
    """Raises ValueError when `copies` buffers (one per vmapped seed) of `capacity` items, plus
    `extra_bytes`, exceed `memory_fraction` of the available memory; returns the bytes needed.

    Run it before compiling: XLA would otherwise fail late, or the host would start swapping.
    """
    per_item = item_bytes(example_item)
    needed = copies * capacity * per_item + extra_bytes
    available_bytes, where = available if available is not None else available_memory_bytes()
    budget = int(memory_fraction * available_bytes)
    if needed > budget:
        fitting_capacity = max(0, (budget - extra_bytes) // max(copies * per_item, 1))
        raise ValueError(
            f"replay buffer needs {needed / GIB:.2f} GiB ({copies} x {capacity:,} transitions x "
            f"{per_item} bytes + {extra_bytes / GIB:.2f} GiB of per-episode statistics), more than "
            f"{memory_fraction:.0%} of the {available_bytes / GIB:.2f} GiB of {where} available; "
            f"lower {capacity_field} to at most {fitting_capacity:,}, train fewer seeds at once, "
            f"or use a machine with more memory"
        )
    return needed
