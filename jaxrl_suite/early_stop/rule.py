"""The stop-rule protocol: how a learner that steps envs asks a rule which episodes to end early.

A rule (LEAST, FixedHorizon) keeps its own state, stepped once per env step with that step's
statistics; its stop mask ends episodes as truncations (bootstrapped), like a time limit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import jax

from jaxrl_suite.envs.core import State

# Folded into a seed's key for the stop rule's own draws (its init key).
STOP_RULE_KEY_STREAM = 0x570F
# Statistics every learner passes to `StopRule.observe` (see `env_step_statistics`); a rule's
# `reads` names the learner-specific ones it needs on top (LEAST: "q", "gradient", "recording").
ENV_STATISTICS = ("step_index", "terminated", "truncated", "episode_length", "env_steps_before", "env_steps_after")


class StopRule(Protocol):
    """A stateful decision rule, in the manner of optax.contrib.reduce_on_plateau.

    A rule is built for one env's time limit L (`max_episode_steps`); its fields:
    reads:        learner-specific statistics `observe` needs besides ENV_STATISTICS.
    explores:     whether `action_noise` can be non-zero (learners add it to their actions).
    init(num_envs, key) -> state.
    state_bytes(num_envs) -> bytes of one seed's state (memory checks).
    observe(state, step) -> (state, metrics, trace): after one env step of every env; `step` maps
        ENV_STATISTICS and `reads` to [num_envs] arrays ([] for the env step counts); trace holds
        per-env values for inspection (may be {}).
    stop_mask(state) -> [num_envs] bool: the `stop` argument of the next env step.
    action_noise(state) -> [] float32 std of extra Gaussian exploration noise.
    """

    max_episode_steps: int
    reads: tuple[str, ...]
    explores: bool

    def init(self, num_envs: int, key: jax.Array) -> Any: ...

    def state_bytes(self, num_envs: int) -> int: ...

    def observe(self, state: Any, step: Mapping[str, jax.Array]) -> tuple[Any, dict[str, jax.Array],
                                                                         dict[str, jax.Array]]: ...

    def stop_mask(self, state: Any) -> jax.Array: ...

    def action_noise(self, state: Any) -> jax.Array: ...


def env_step_statistics(env_state: State, next_env_state: State, env_steps_before: jax.Array,
                        env_steps_after: jax.Array) -> dict[str, jax.Array]:
    """ENV_STATISTICS of one vmapped env step from `env_state` to `next_env_state` (auto-reset
    envs.State with info["step_count"] and info["completed_length"])."""
    return {
        "step_index": env_state.info["step_count"],
        "terminated": next_env_state.terminated,
        "truncated": next_env_state.truncated,
        "episode_length": next_env_state.info["completed_length"],
        "env_steps_before": env_steps_before,
        "env_steps_after": env_steps_after,
    }


def init_stop_rule(rule: StopRule | None, num_envs: int, seed_key: jax.Array) -> Any:
    """The rule's initial state for one seed (None without a rule), drawn from its own stream of
    the seed's key so that the learner's other draws are the same with or without a rule."""
    return None if rule is None else rule.init(num_envs, jax.random.fold_in(seed_key, STOP_RULE_KEY_STREAM))


def step_envs(
    env: Any, env_state: State, action: jax.Array, rule: StopRule | None, rule_state: Any,
    env_steps_before: jax.Array, *, place: Callable[[State], State] = lambda state: state,
    statistics: Callable[[State], dict[str, jax.Array]] = lambda next_env_state: {},
) -> tuple[State, Any, dict[str, jax.Array], dict[str, jax.Array]]:
    """One vmapped step of every env, with the rule's stop mask; then the rule observes it.

    place:      applied to the next env state first (a learner's device sharding).
    statistics: next env state -> the rule's `reads` (learner-specific; LEAST: q, gradient, ...).
    Returns (next env state, rule state, rule metrics, per-env trace with step_index and done);
    without a rule just the step, the unchanged rule state and two empty dicts.
    """
    if rule is None:
        return place(jax.vmap(env.step)(env_state, action)), rule_state, {}, {}
    next_env_state = place(jax.vmap(env.step)(env_state, action, rule.stop_mask(rule_state)))
    num_envs = action.shape[0]
    step = env_step_statistics(env_state, next_env_state, env_steps_before, env_steps_before + num_envs)
    rule_state, metrics, trace = rule.observe(rule_state, {**step, **statistics(next_env_state)})
    trace = {**trace, "step_index": step["step_index"], "done": step["terminated"] | step["truncated"]}
    return next_env_state, rule_state, metrics, trace
