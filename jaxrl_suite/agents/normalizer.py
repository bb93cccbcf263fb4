"""Running statistics for observation and reward normalization, kept inside a TrainState.

Welford / Chan et al. parallel mean-variance updates; reward scaling by the std of the
discounted return as in Engstrom et al. 2020 ("Implementation Matters in Deep RL").
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class RunningMeanStd:
    """Mean and variance of everything seen so far, per feature.

    mean:      [*feature_shape] float32.
    sum_of_squares: [*feature_shape] float32, sum of squared deviations from the mean (M2).
    count:     [] float32 number of samples folded in.
    """

    mean: jax.Array
    sum_of_squares: jax.Array
    count: jax.Array

    @property
    def variance(self) -> jax.Array:
        return self.sum_of_squares / jnp.maximum(self.count, 1.0)


def init_running_mean_std(feature_shape: tuple[int, ...]) -> RunningMeanStd:
    """Empty statistics; `normalize` with them is the identity."""
    return RunningMeanStd(
        mean=jnp.zeros(feature_shape, jnp.float32),
        sum_of_squares=jnp.zeros(feature_shape, jnp.float32),
        count=jnp.zeros((), jnp.float32),
    )


def update_running_mean_std(stats: RunningMeanStd, batch: jax.Array) -> RunningMeanStd:
    """Folds `batch` [*batch_shape, *feature_shape] into the statistics (all batch axes at once)."""
    feature_ndim = stats.mean.ndim
    chex.assert_equal(batch.shape[batch.ndim - feature_ndim :], stats.mean.shape)
    batch = batch.astype(jnp.float32)
    batch_axes = tuple(range(batch.ndim - feature_ndim))
    batch_count = jnp.asarray(jnp.prod(jnp.array(batch.shape[: len(batch_axes)])), jnp.float32)
    batch_mean = batch.mean(batch_axes)
    batch_sum_of_squares = jnp.square(batch - batch_mean).sum(batch_axes)
    total = stats.count + batch_count
    delta = batch_mean - stats.mean
    return RunningMeanStd(
        mean=stats.mean + delta * batch_count / total,
        sum_of_squares=stats.sum_of_squares
        + batch_sum_of_squares
        + jnp.square(delta) * stats.count * batch_count / total,
        count=total,
    )


def normalize(stats: RunningMeanStd, x: jax.Array, clip: float = 10.0, epsilon: float = 1e-8) -> jax.Array:
    """(x - mean) / std, clipped to [-clip, clip]; identity while no samples were seen.

    x: [..., *feature_shape].
    """
    seen = stats.count > 0
    mean = jnp.where(seen, stats.mean, 0.0)
    std = jnp.where(seen, jnp.sqrt(stats.variance + epsilon), 1.0)
    return jnp.clip((x.astype(jnp.float32) - mean) / std, -clip, clip)


@struct.dataclass
class ReturnScaler:
    """Divides rewards by the running std of each env's discounted return.

    discounted_return: [num_envs] running gamma-discounted return of the current episodes.
    stats:             RunningMeanStd over discounted returns (feature shape ()).
    """

    discounted_return: jax.Array
    stats: RunningMeanStd


def init_return_scaler(num_envs: int) -> ReturnScaler:
    return ReturnScaler(jnp.zeros((num_envs,), jnp.float32), init_running_mean_std(()))


def update_return_scaler(
    scaler: ReturnScaler, rewards: jax.Array, done: jax.Array, gamma: float
) -> ReturnScaler:
    """Advances the discounted returns through a rollout and folds them into the statistics.

    rewards, done: [T, num_envs]; a return restarts after a step with done.
    """
    chex.assert_equal_shape([rewards, done])

    def advance(discounted_return, step):
        reward, episode_done = step
        discounted_return = discounted_return * gamma + reward
        return jnp.where(episode_done, 0.0, discounted_return), discounted_return

    final_return, returns = jax.lax.scan(advance, scaler.discounted_return, (rewards, done))
    return ReturnScaler(final_return, update_running_mean_std(scaler.stats, returns))


def scale_rewards(scaler: ReturnScaler, rewards: jax.Array, epsilon: float = 1e-8) -> jax.Array:
    """rewards [...] / std of the discounted return (unchanged while no statistics exist)."""
    std = jnp.where(scaler.stats.count > 0, jnp.sqrt(scaler.stats.variance + epsilon), 1.0)
    return rewards / std
