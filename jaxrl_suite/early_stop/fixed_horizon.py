"""A fixed-horizon stop rule: each episode ends at a step H drawn at random when it starts.

LEAST's control in its study (same truncations, no value information); it reads nothing but the
env's own statistics, so every learner that steps envs can use it (`--early-stop fixed-horizon`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl_suite.validation import require


@dataclasses.dataclass(frozen=True)
class FixedHorizonConfig:
    """H ~ Uniform{ceil(min_fraction * L), ..., L} per episode, L the env's time limit."""

    min_fraction: float = 0.5
    """Shortest horizon as a fraction of the time limit (1: never stop before it)."""
    start_steps: int = 0
    """Env steps (per seed) before any episode may be stopped."""

    def validate(self, owner: str = "horizon") -> FixedHorizonConfig:
        require(0.0 < self.min_fraction <= 1.0, owner, "min_fraction", self.min_fraction, "a fraction in (0, 1]")
        require(isinstance(self.start_steps, int) and self.start_steps >= 0, owner, "start_steps",
                self.start_steps, "an env step count >= 0")
        return self


@struct.dataclass
class FixedHorizonState:
    """horizon [N] int32 each running episode's H; pending_stop [N] bool the next step's mask;
    key: raw uint32[2] PRNG key of the next draws."""

    horizon: jax.Array
    pending_stop: jax.Array
    key: jax.Array


@dataclasses.dataclass(frozen=True)
class FixedHorizon:
    """The StopRule for an env with time limit max_episode_steps (L). Metrics:
    fixed_horizon_stopped_count (episodes it ended before L), fixed_horizon_steps_saved_sum
    (their remaining steps to L) and fixed_horizon_stopped_length_sum (their lengths)."""

    config: FixedHorizonConfig
    max_episode_steps: int
    reads = ()
    explores = False

    @property
    def shortest(self) -> int:
        return max(1, math.ceil(self.config.min_fraction * self.max_episode_steps))

    def _draw(self, key: jax.Array, num_envs: int) -> jax.Array:
        return jax.random.randint(key, (num_envs,), self.shortest, self.max_episode_steps + 1, jnp.int32)

    def init(self, num_envs: int, key: jax.Array) -> FixedHorizonState:
        draw_key, key = jax.random.split(key)
        return FixedHorizonState(horizon=self._draw(draw_key, num_envs),
                                 pending_stop=jnp.zeros((num_envs,), jnp.bool_), key=key)

    def state_bytes(self, num_envs: int) -> int:
        return 5 * num_envs + 8

    def observe(self, state: FixedHorizonState, step: Mapping[str, jax.Array]
                ) -> tuple[FixedHorizonState, dict[str, jax.Array], dict[str, jax.Array]]:
        limit = self.max_episode_steps
        done = step["terminated"] | step["truncated"]
        stopped = state.pending_stop & step["truncated"] & (step["episode_length"] < limit)
        draw_key, key = jax.random.split(state.key)
        horizon = jnp.where(done, self._draw(draw_key, state.horizon.shape[0]), state.horizon)
        next_index = jnp.where(done, 0, step["step_index"] + 1)
        # The next step is the episode's (next_index + 1)-th: stopping it makes the length H.
        stop = (next_index + 1 >= horizon) & (step["env_steps_after"] >= self.config.start_steps)
        metrics = {
            "fixed_horizon_stopped_count": stopped.sum().astype(jnp.float32),
            "fixed_horizon_steps_saved_sum": jnp.where(stopped, limit - step["episode_length"], 0
                                                       ).sum().astype(jnp.float32),
            "fixed_horizon_stopped_length_sum": jnp.where(stopped, step["episode_length"], 0).sum().astype(jnp.float32),
        }
        state = FixedHorizonState(horizon=horizon, pending_stop=stop, key=key)
        return state, metrics, {"stop": stop, "horizon": horizon}

    def stop_mask(self, state: FixedHorizonState) -> jax.Array:
        return state.pending_stop

    def action_noise(self, state: FixedHorizonState) -> jax.Array:
        return jnp.zeros((), jnp.float32)
