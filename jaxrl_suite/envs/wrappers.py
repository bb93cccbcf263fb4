"""Wrappers that give every backend the same episode semantics: action rescaling, time
limits and the `stop` mask, auto-reset with the final observation, and episode statistics.

`make` composes them, innermost first:

    EpisodeStats(AutoReset(TimeLimit(ActionRescale(adapter))))    # ActionRescale: Box only

- ActionRescale: the agent acts in [-1, 1]^d; actions are clipped there and mapped affinely
  onto the backend's bounds.
- TimeLimit: owns time limits. Keeps info["step_count"] and sets
  truncated = (step_count >= max_steps | stop | backend truncation) & ~terminated,
  so a learner's `stop` mask (LEAST) ends an episode exactly like a time limit does.
- AutoReset: when a step ends the episode (terminated | truncated) it writes the
  episode's last observation to info["final_obs"] (always present, equal to `obs` when
  nothing ended) and replaces obs, backend and every inner info entry with a reset. The
  step's reward, terminated and truncated are kept, so the learner sees the transition
  that ended the episode and bootstraps truncations from info["final_obs"].
  reset_mode="fresh" (default) resets with a new key from the per-env info["rng"], with
  one of two reset strategies that give identical results:
  "branch": a real branch even under (nested) vmap: a batch gathers its done envs and
  resets only those, in chunks of an eighth of the batch, so a step where no env is done
  costs no reset (`masked_map.branching_map_where`); expensive physics resets then cost
  little, but the data-dependent loop makes a GPU wait for its condition at every step.
  "select": resets every env at every step and keeps the done ones (PureJaxRL's way):
  no control flow, best when a reset is cheap. "auto" (default) picks "select" for envs
  with `cheap_reset` (gymnax) on an accelerator, and "branch" otherwise (brax, Playground,
  and every env on CPU, where a loop costs nothing and skipping resets saves work).
  reset_mode="cached" restarts from the episode's first state (brax's convention): no
  reset computation at all, at the cost of a fixed start state per env.
- EpisodeStats sits OUTSIDE AutoReset, so its running sums are never touched by the reset:
  it reads the step's reward and done flags (kept by AutoReset) and at every step writes
  info["completed"] ([] bool, an episode ended here), info["completed_return"] and
  info["completed_length"] (that episode's return and length; 0 when none ended), next to
  its running info["episode_return"] and info["episode_length"].

All wrappers act on ONE environment; vmap `reset`/`step` for batches.
"""

from __future__ import annotations

from typing import Literal

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxrl_suite.envs.core import Env, State, Wrapper
from jaxrl_suite.envs.spaces import Box
from jaxrl_suite.xla_cpu.masked_map import branching_map_where, select_rows, selecting_map_where

RESET_MODES = ("fresh", "cached")
RESET_STRATEGIES = ("auto", "branch", "select")
ResetMode = Literal["fresh", "cached"]
ResetStrategy = Literal["auto", "branch", "select"]

# info entries owned by each wrapper (documented above; tests and learners read them).
STEP_COUNT = "step_count"
RNG = "rng"
FINAL_OBS = "final_obs"
RESET_CACHE = "reset_cache"
EPISODE_RETURN = "episode_return"
EPISODE_LENGTH = "episode_length"
COMPLETED = "completed"
COMPLETED_RETURN = "completed_return"
COMPLETED_LENGTH = "completed_length"


def resolve_reset_strategy(strategy: ResetStrategy, cheap_reset: bool, platform: str) -> str:
    """"branch" or "select" for a requested strategy; "auto" selects only for cheap resets on
    an accelerator (`platform` as jax.default_backend() names it), where a data-dependent
    loop makes the device wait for the host at every step."""
    if strategy not in RESET_STRATEGIES:
        raise ValueError(f"reset_strategy must be one of {RESET_STRATEGIES}, got {strategy!r}")
    if strategy != "auto":
        return strategy
    return "select" if cheap_reset and platform != "cpu" else "branch"


class ActionRescale(Wrapper):
    """Lets the agent act in [-1, 1]^d on a bounded Box action space: clips the action to
    that cube, then maps it affinely onto the backend's [low, high]."""

    def __init__(self, env: Env):
        super().__init__(env)
        space = env.action_space
        if not isinstance(space, Box) or not space.bounded:
            raise ValueError(
                f"ActionRescale needs a bounded Box action space; {env.env_id!r} has {space.describe()}"
            )
        self._low = np.broadcast_to(np.asarray(space.low, np.float32), space.shape)
        self._high = np.broadcast_to(np.asarray(space.high, np.float32), space.shape)
        self._is_identity = bool(np.all(self._low == -1.0) and np.all(self._high == 1.0))

    @property
    def action_space(self) -> Box:  # type: ignore[override]
        return Box(self.env.action_space.shape, -1.0, 1.0)

    def step(self, state: State, action: jax.Array, stop: jax.Array | None = None) -> State:
        chex.assert_shape(action, self.env.action_space.shape)
        action = jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)
        if not self._is_identity:
            action = self._low + (action + 1.0) * (0.5 * (self._high - self._low))
        return self.env.step(state, action, stop)


class TimeLimit(Wrapper):
    """Truncates an episode after `max_episode_steps` steps (None: no limit) or when the
    `stop` mask is set, unless the same step terminated it."""

    def __init__(self, env: Env, max_episode_steps: int | None):
        super().__init__(env)
        if max_episode_steps is not None and (
            not isinstance(max_episode_steps, (int, np.integer)) or max_episode_steps < 1
        ):
            raise ValueError(f"max_episode_steps must be a positive int or None, got {max_episode_steps!r}")
        self._max_episode_steps = None if max_episode_steps is None else int(max_episode_steps)

    @property
    def max_episode_steps(self) -> int | None:  # type: ignore[override]
        return self._max_episode_steps

    def reset(self, key: jax.Array) -> State:
        state = self.env.reset(key)
        return state.replace(info={**state.info, STEP_COUNT: jnp.zeros((), jnp.int32)})

    def step(self, state: State, action: jax.Array, stop: jax.Array | None = None) -> State:
        next_state = self.env.step(state, action)
        step_count = state.info[STEP_COUNT] + 1
        cut = next_state.truncated
        if self._max_episode_steps is not None:
            cut = cut | (step_count >= self._max_episode_steps)
        if stop is not None:
            chex.assert_shape(stop, ())
            cut = cut | jnp.asarray(stop, jnp.bool_)
        return next_state.replace(
            truncated=cut & ~next_state.terminated,
            info={**next_state.info, STEP_COUNT: step_count},
        )


class AutoReset(Wrapper):
    """Resets the inner env when a step ends the episode; see the module docstring."""

    def __init__(self, env: Env, reset_mode: ResetMode = "fresh", reset_strategy: ResetStrategy = "auto"):
        super().__init__(env)
        if reset_mode not in RESET_MODES:
            raise ValueError(f"reset_mode must be one of {RESET_MODES}, got {reset_mode!r}")
        self.reset_mode = reset_mode
        self.reset_strategy = resolve_reset_strategy(reset_strategy, env.cheap_reset, jax.default_backend())
        self._inner_names: tuple[str, ...] | None = None
        strategy = selecting_map_where if self.reset_strategy == "select" else branching_map_where
        self._reset_where = strategy(self._fresh_start)

    def reset(self, key: jax.Array) -> State:
        rng, reset_key = jax.random.split(key)
        state = self.env.reset(reset_key)
        info = {**state.info, FINAL_OBS: state.obs}
        if self.reset_mode == "fresh":
            info[RNG] = rng
        else:
            info[RESET_CACHE] = (state.obs, state.backend, state.info)
        return state.replace(info=info)

    def step(self, state: State, action: jax.Array, stop: jax.Array | None = None) -> State:
        stepped = self.env.step(state, action, stop)
        info = dict(stepped.info)
        done = stepped.done
        info[FINAL_OBS] = stepped.obs
        if self.reset_mode == "fresh":
            info[RNG], reset_key = jax.random.split(stepped.info[RNG])
            inner_names = self._inner_info_names()
            current = (stepped.obs, stepped.backend, {name: stepped.info[name] for name in inner_names})
            obs, backend, inner_info = self._reset_where(done, reset_key, current)
        else:
            first_obs, first_backend, first_info = stepped.info[RESET_CACHE]
            current = (stepped.obs, stepped.backend, {name: stepped.info[name] for name in first_info})
            obs, backend, inner_info = select_rows(done, (first_obs, first_backend, first_info), current)
        info.update(inner_info)
        return stepped.replace(obs=obs, backend=backend, info=info)

    def _inner_info_names(self) -> tuple[str, ...]:
        """info entries the inner env's reset creates (and a reset must overwrite)."""
        if self._inner_names is None:
            abstract = jax.eval_shape(self.env.reset, jax.ShapeDtypeStruct((2,), jnp.uint32))
            self._inner_names = tuple(abstract.info)
        return self._inner_names

    def _fresh_start(self, key: jax.Array):
        first = self.env.reset(key)
        return first.obs, first.backend, first.info


class EpisodeStats(Wrapper):
    """Running and completed episode return/length; outermost, so resets never erase them."""

    def reset(self, key: jax.Array) -> State:
        state = self.env.reset(key)
        zero_return = jnp.zeros((), jnp.float32)
        zero_length = jnp.zeros((), jnp.int32)
        return state.replace(
            info={
                **state.info,
                EPISODE_RETURN: zero_return,
                EPISODE_LENGTH: zero_length,
                COMPLETED: jnp.zeros((), jnp.bool_),
                COMPLETED_RETURN: zero_return,
                COMPLETED_LENGTH: zero_length,
            }
        )

    def step(self, state: State, action: jax.Array, stop: jax.Array | None = None) -> State:
        stepped = self.env.step(state, action, stop)
        episode_return = state.info[EPISODE_RETURN] + stepped.reward
        episode_length = state.info[EPISODE_LENGTH] + 1
        done = stepped.done
        return stepped.replace(
            info={
                **stepped.info,
                EPISODE_RETURN: jnp.where(done, 0.0, episode_return),
                EPISODE_LENGTH: jnp.where(done, 0, episode_length),
                COMPLETED: done,
                COMPLETED_RETURN: jnp.where(done, episode_return, 0.0),
                COMPLETED_LENGTH: jnp.where(done, episode_length, 0),
            }
        )


def wrap(
    env: Env,
    max_episode_steps: int | None = None,
    reset_mode: ResetMode = "fresh",
    rescale_actions: bool = True,
    reset_strategy: ResetStrategy = "auto",
) -> Env:
    """The standard stack around an adapter (see the module docstring). `max_episode_steps`
    None keeps the adapter's own limit (`env.max_episode_steps`)."""
    if rescale_actions and isinstance(env.action_space, Box):
        env = ActionRescale(env)
    limit = env.max_episode_steps if max_episode_steps is None else max_episode_steps
    return EpisodeStats(AutoReset(TimeLimit(env, limit), reset_mode, reset_strategy))
