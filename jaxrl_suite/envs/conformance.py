"""Checks that an `Env` honours the interface contract: shapes and dtypes of every State
field, types kept across a step, and reset/step under jit and vmap. Used by the tests for every family.
"""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp

from jaxrl_suite.envs.core import Env, State
from jaxrl_suite.envs.spaces import Box, Discrete


def assert_state_conforms(env: Env, state: State, batch_shape: tuple[int, ...] = ()) -> None:
    """Shapes/dtypes of a (possibly batched) State against `env`'s spaces."""
    chex.assert_shape(state.obs, batch_shape + env.observation_space.shape)
    chex.assert_type(state.obs, jnp.float32)
    chex.assert_shape([state.reward, state.terminated, state.truncated], batch_shape)
    chex.assert_type(state.reward, jnp.float32)
    chex.assert_type([state.terminated, state.truncated], bool)
    if "final_obs" in state.info:
        chex.assert_trees_all_equal_shapes_and_dtypes(state.info["final_obs"], state.obs)


def sample_actions(env: Env, key: jax.Array, num_envs: int) -> jax.Array:
    """[num_envs, *action_shape] uniform random actions in `env.action_space`."""
    return jax.vmap(env.action_space.sample)(jax.random.split(key, num_envs))


def type_changes(before: Any, after: Any) -> list[str]:
    """"path: (shape, dtype, weak_type) -> (...)" for every leaf whose type differs between two
    pytrees of arrays or ShapeDtypeStructs (a leaf missing on one side shows as None)."""

    def types(tree: Any) -> dict[str, tuple]:
        leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
        return {jax.tree_util.keystr(path): (leaf.shape, leaf.dtype, leaf.weak_type) for path, leaf in leaves}

    old, new = types(before), types(after)
    return [f"{path}: {old.get(path)} -> {new.get(path)}" for path in sorted(old.keys() | new.keys())
            if old.get(path) != new.get(path)]


def assert_step_keeps_types(env: Env, num_envs: int) -> None:
    """A step hands back the types it was given, weak types included: a learner's chunk program
    carries the state, and a changed type would recompile it after its first call."""
    keys = jax.random.split(jax.random.PRNGKey(0), num_envs)
    reset_state = jax.eval_shape(jax.vmap(env.reset), keys)
    stepped = jax.eval_shape(jax.vmap(env.step), reset_state, sample_actions(env, keys[0], num_envs))
    changed = type_changes(reset_state, stepped)
    assert not changed, f"{env.env_id}: step changes the state's types (shape, dtype, weak_type): {changed}"


def check_env(env: Env, num_envs: int = 3, num_steps: int = 4, seed: int = 0) -> State:
    """Runs vmap(reset) and a lax.scan of `num_steps` vmap(step) with random actions in
    one jit, asserting conformance of every state; returns the last batched State."""
    space = env.action_space
    if isinstance(space, Discrete):
        action = space.sample(jax.random.PRNGKey(0))
        chex.assert_shape(action, ())
        chex.assert_type(action, jnp.int32)
    elif isinstance(space, Box):
        assert len(space.shape) == 1, (
            f"{env.env_id}: continuous actions must be [action_dim], got {space.shape}"
        )
    else:
        raise AssertionError(f"{env.env_id}: action space {space!r} is neither Discrete nor Box")

    def rollout(key):
        reset_key, scan_key = jax.random.split(key)
        first = jax.vmap(env.reset)(jax.random.split(reset_key, num_envs))

        def advance(state, action_key):
            state = jax.vmap(env.step)(state, sample_actions(env, action_key, num_envs))
            return state, state

        return first, jax.lax.scan(advance, first, jax.random.split(scan_key, num_steps))[1]

    assert_step_keeps_types(env, num_envs)
    # one compiled program for reset and step keeps the check cheap for physics backends
    first, states = jax.jit(rollout)(jax.random.PRNGKey(seed))
    assert_state_conforms(env, first, (num_envs,))
    assert_state_conforms(env, states, (num_steps, num_envs))
    chex.assert_tree_all_finite(states.obs)
    return jax.tree.map(lambda leaf: leaf[-1], states)
