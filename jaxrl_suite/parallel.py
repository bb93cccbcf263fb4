"""Data parallelism over a device Mesh: the env batch is sharded, parameters are replicated.

Plain jax.sharding (NamedSharding + with_sharding_constraint); works under vmap over seeds.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

ENV_AXIS = "envs"


def make_mesh(num_devices: int | None = None, devices: list[jax.Device] | None = None) -> Mesh:
    """A 1-D Mesh named ENV_AXIS over the first `num_devices` devices (default: all).

    Axes are Auto so sharding constraints guide XLA's partitioner inside jit.
    """
    devices = list(devices if devices is not None else jax.devices())
    if num_devices is not None:
        if not 1 <= num_devices <= len(devices):
            raise ValueError(f"num_devices={num_devices} is not available; valid: 1..{len(devices)}")
        devices = devices[:num_devices]
    return Mesh(np.array(devices), (ENV_AXIS,), axis_types=(jax.sharding.AxisType.Auto,))


def check_divisible(num_envs: int, mesh: Mesh | None, field: str = "num_envs") -> None:
    """Raises ValueError unless the env batch splits evenly over the mesh's devices."""
    if mesh is not None and num_envs % mesh.size:
        raise ValueError(
            f"{field}={num_envs} must be divisible by the number of devices in the mesh ({mesh.size})"
        )


def shard_along(tree: Any, mesh: Mesh | None, axis: int) -> Any:
    """Constrains every array leaf to be split over devices along `axis` (others replicated).

    Identity without a mesh. Under vmap, JAX leaves the vmapped axis unsharded, so `axis`
    counts the axes of ONE seed's arrays.
    """
    if mesh is None:
        return tree

    def constrain(leaf: jax.Array) -> jax.Array:
        spec = PartitionSpec(*([None] * axis), ENV_AXIS)
        return jax.lax.with_sharding_constraint(leaf, NamedSharding(mesh, spec))

    return jax.tree.map(constrain, tree)


def replicate(tree: Any, mesh: Mesh | None) -> Any:
    """Constrains every array leaf to be replicated on all devices; identity without a mesh."""
    if mesh is None:
        return tree
    replicated = NamedSharding(mesh, PartitionSpec())
    return jax.tree.map(lambda leaf: jax.lax.with_sharding_constraint(leaf, replicated), tree)
