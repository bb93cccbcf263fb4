"""Observation and action spaces shared by every environment backend.

A space is a small frozen dataclass: `Discrete(n)` or `Box(shape, low, high)`.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class Discrete:
    """Integer actions/observations in [0, n)."""

    n: int
    dtype: str = "int32"

    @property
    def shape(self) -> tuple[int, ...]:
        return ()

    def sample(self, key: jax.Array) -> jax.Array:
        return jax.random.randint(key, (), 0, self.n, dtype=self.dtype)

    def describe(self) -> str:
        return f"Discrete({self.n})"


@dataclasses.dataclass(frozen=True)
class Box:
    """Real vectors of a fixed shape with elementwise bounds (may be +-inf)."""

    shape: tuple[int, ...]
    low: float | np.ndarray = -np.inf
    high: float | np.ndarray = np.inf
    dtype: str = "float32"

    def __hash__(self) -> int:  # numpy bounds are not hashable
        return hash((self.shape, self.dtype, np.asarray(self.low).tobytes(), np.asarray(self.high).tobytes()))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Box)
            and self.shape == other.shape
            and self.dtype == other.dtype
            and np.array_equal(np.broadcast_to(self.low, self.shape), np.broadcast_to(other.low, other.shape))
            and np.array_equal(np.broadcast_to(self.high, self.shape), np.broadcast_to(other.high, other.shape))
        )

    @property
    def bounded(self) -> bool:
        return bool(np.all(np.isfinite(self.low)) and np.all(np.isfinite(self.high)))

    def sample(self, key: jax.Array) -> jax.Array:
        low = jnp.broadcast_to(jnp.asarray(self.low, jnp.float32), self.shape)
        high = jnp.broadcast_to(jnp.asarray(self.high, jnp.float32), self.shape)
        if not self.bounded:
            return jax.random.normal(key, self.shape, self.dtype)
        return jax.random.uniform(key, self.shape, self.dtype, low, high)

    def describe(self) -> str:
        low, high = np.asarray(self.low), np.asarray(self.high)
        bounds = f"[{low.min():g}, {high.max():g}]" if low.size and high.size else ""
        return f"Box{self.shape}{bounds}"


Space = Discrete | Box
