"""A tiny Learner (noisy bandit fitted by Adam) for testing the run loop without an environment.

It has params, optimizer state, RNG and counters, like a real TrainState.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax
from flax import struct


@dataclasses.dataclass(frozen=True)
class ToyConfig:
    batch: int = 8
    learning_rate: float = 0.1


@struct.dataclass
class ToyState:
    params: jax.Array
    opt_state: optax.OptState
    rng: jax.Array
    updates: jax.Array


class ToyLearner:
    """Fits a scalar to noisy targets around 3; `episode` = one update of `batch` steps."""

    def __init__(self, config: ToyConfig = ToyConfig()):
        self.config = config
        self.env_steps_per_update = config.batch
        self.optimizer = optax.adam(config.learning_rate)

    def init(self, key):
        params = jax.random.normal(key, ())
        return ToyState(params, self.optimizer.init(params), key, jnp.zeros((), jnp.int32))

    def update(self, state):
        rng, noise_key = jax.random.split(state.rng)
        targets = 3.0 + jax.random.normal(noise_key, (self.config.batch,))
        loss, grad = jax.value_and_grad(lambda p: jnp.mean((p - targets) ** 2))(state.params)
        updates, opt_state = self.optimizer.update(grad, state.opt_state)
        params = optax.apply_updates(state.params, updates)
        metrics = {"loss": loss, "completed_return_sum": -loss, "completed_count": jnp.float32(1.0)}
        return ToyState(params, opt_state, rng, state.updates + 1), metrics

    def evaluate(self, state, key):
        return {"eval_return": -jnp.abs(state.params - 3.0)}
