"""Auto-reset, time-limit, stop-mask, episode-statistics and action-rescale semantics,
checked exactly on a tiny hand-made environment."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_suite.envs import ActionRescale, AutoReset, Box, Discrete, Env, State, TimeLimit, wrap
from jaxrl_suite.envs.conformance import check_env
from jaxrl_suite.envs.wrappers import resolve_reset_strategy

GOAL = 3


class CounterEnv(Env):
    """obs = [position, start_marker]; action 1 moves right and earns reward 1, action 0
    waits and earns 0; reaching position GOAL terminates. `start_marker` is drawn from the
    reset key, so a fresh reset is distinguishable from a cached one."""

    env_id = "test/Counter"
    observation_space = Box((2,))
    action_space = Discrete(2)
    max_episode_steps = 6

    def reset(self, key):
        marker = jax.random.uniform(key, ())
        return State(
            obs=jnp.stack([jnp.float32(0.0), marker]),
            reward=jnp.float32(0.0),
            terminated=jnp.bool_(False),
            truncated=jnp.bool_(False),
            backend=jnp.int32(0),
            info={},
        )

    def step(self, state, action, stop=None):
        position = state.backend + action
        return state.replace(
            obs=jnp.stack([position.astype(jnp.float32), state.obs[1]]),
            reward=action.astype(jnp.float32),
            terminated=position >= GOAL,
            truncated=jnp.bool_(False),
            backend=position,
        )


def run(env, actions, stops=None, seed=0):
    """Scans `env.step` over per-step actions (and stops); returns (states per step, first)."""
    first = env.reset(jax.random.PRNGKey(seed))
    stops = jnp.zeros(len(actions), bool) if stops is None else jnp.asarray(stops)

    def body(state, action_and_stop):
        action, stop = action_and_stop
        state = env.step(state, action, stop)
        return state, state

    _, states = jax.jit(lambda s: jax.lax.scan(body, s, (jnp.asarray(actions, jnp.int32), stops)))(first)
    return states, first


def test_termination_delivers_final_obs_and_exact_stats():
    env = wrap(CounterEnv())
    states, first = run(env, [1, 1, 1, 1])
    np.testing.assert_array_equal(states.terminated, [False, False, True, False])
    np.testing.assert_array_equal(states.truncated, [False] * 4)
    np.testing.assert_array_equal(states.reward, [1, 1, 1, 1])
    # The ending step reports the episode's last obs in final_obs and a reset obs in obs.
    np.testing.assert_array_equal(states.info["final_obs"][:, 0], [1, 2, 3, 1])
    np.testing.assert_array_equal(states.obs[:, 0], [1, 2, 0, 1])
    np.testing.assert_array_equal(states.info["step_count"], [1, 2, 0, 1])
    np.testing.assert_array_equal(states.info["completed"], [False, False, True, False])
    np.testing.assert_array_equal(states.info["completed_return"], [0, 0, 3, 0])
    np.testing.assert_array_equal(states.info["completed_length"], [0, 0, 3, 0])
    np.testing.assert_array_equal(states.info["episode_return"], [1, 2, 0, 1])
    # fresh reset: a new start marker after the episode ends
    assert states.obs[2, 1] != first.obs[1]
    np.testing.assert_array_equal(states.info["final_obs"][:2], states.obs[:2])


def test_time_limit_truncates_and_termination_wins_on_the_same_step():
    env = wrap(CounterEnv(), max_episode_steps=3)
    states, _ = run(env, [0, 0, 0, 0, 1, 1])
    np.testing.assert_array_equal(states.truncated, [False, False, True, False, False, True])
    np.testing.assert_array_equal(states.terminated, [False] * 6)
    np.testing.assert_array_equal(states.info["completed_length"], [0, 0, 3, 0, 0, 3])
    np.testing.assert_array_equal(states.info["completed_return"], [0, 0, 0, 0, 0, 2])

    states, _ = run(env, [1, 1, 1])  # reaches GOAL on the limit step
    np.testing.assert_array_equal(states.terminated, [False, False, True])
    np.testing.assert_array_equal(states.truncated, [False, False, False])


def test_stop_mask_truncates_through_the_same_path():
    env = wrap(CounterEnv())
    states, _ = run(env, [1, 0, 1, 1, 1], stops=[False, True, False, False, True])
    np.testing.assert_array_equal(states.truncated, [False, True, False, False, False])
    np.testing.assert_array_equal(states.terminated, [False, False, False, False, True])
    np.testing.assert_array_equal(states.info["final_obs"][:, 0], [1, 1, 1, 2, 3])
    np.testing.assert_array_equal(states.obs[:, 0], [1, 0, 1, 2, 0])
    np.testing.assert_array_equal(states.info["completed_return"], [0, 1, 0, 0, 3])
    np.testing.assert_array_equal(states.info["completed_length"], [0, 2, 0, 0, 3])


def test_cached_reset_restarts_from_the_first_state():
    env = wrap(CounterEnv(), reset_mode="cached")
    states, first = run(env, [1, 1, 1, 1])
    chex.assert_trees_all_equal(states.obs[2], first.obs)
    np.testing.assert_array_equal(states.info["final_obs"][2, 0], 3)


def test_vmapped_envs_reset_independently():
    env = wrap(CounterEnv(), max_episode_steps=2)
    state = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(0), 3))
    step = jax.jit(jax.vmap(env.step))
    actions = jnp.array([1, 0, 1], jnp.int32)
    state = step(state, actions, jnp.array([False, False, True]))
    np.testing.assert_array_equal(state.truncated, [False, False, True])
    state = step(state, actions, jnp.zeros(3, bool))
    np.testing.assert_array_equal(state.truncated, [True, True, False])
    np.testing.assert_array_equal(state.info["completed_return"], [2, 0, 0])
    np.testing.assert_array_equal(state.info["final_obs"][:, 0], [2, 0, 1])
    np.testing.assert_array_equal(state.obs[:, 0], [0, 0, 1])


def test_wrapped_counter_conforms():
    check_env(wrap(CounterEnv()), num_envs=2, num_steps=5)


class BoxEcho(CounterEnv):
    """Returns the received action as the observation."""

    action_space = Box((2,), np.array([0.0, -4.0]), np.array([10.0, 4.0]))

    def step(self, state, action, stop=None):
        return state.replace(obs=action)


def test_action_rescale_maps_unit_cube_onto_bounds_and_clips():
    env = ActionRescale(BoxEcho())
    assert env.action_space == Box((2,), -1.0, 1.0)
    state = env.reset(jax.random.PRNGKey(0))
    for action, expected in [([-1, -1], [0, -4]), ([1, 0.5], [10, 2]), ([3, -7], [10, -4])]:
        obs = env.step(state, jnp.array(action, jnp.float32)).obs
        np.testing.assert_allclose(obs, expected)


def test_invalid_wrapper_options_name_the_value():
    with pytest.raises(ValueError, match="max_episode_steps.*0"):
        TimeLimit(CounterEnv(), 0)
    with pytest.raises(ValueError, match="reset_mode.*'sometimes'"):
        AutoReset(CounterEnv(), "sometimes")
    with pytest.raises(ValueError, match="bounded Box"):
        ActionRescale(CounterEnv())


@pytest.mark.parametrize("done_pattern", ["none", "few", "many", "all"])
def test_conditional_reset_matches_reset_everywhere_under_nested_vmap(done_pattern):
    env = wrap(CounterEnv(), max_episode_steps=2)
    seeds, num_envs = 2, 24
    keys = jax.random.split(jax.random.PRNGKey(1), seeds * num_envs).reshape(seeds, num_envs, -1)
    state = jax.vmap(jax.vmap(env.reset))(keys)
    num_stopped = {"none": 0, "few": 1, "many": 13, "all": num_envs}[done_pattern]
    stop = jnp.zeros((seeds, num_envs), bool).at[:, :num_stopped].set(True)
    actions = jnp.ones((seeds, num_envs), jnp.int32)
    stepped = jax.jit(jax.vmap(jax.vmap(env.step)))(state, actions, stop)
    flat = jax.tree.map(lambda leaf: leaf.reshape(seeds * num_envs, *leaf.shape[2:]), (state, actions, stop))
    one_by_one = jax.jit(lambda args: jax.lax.map(lambda a: env.step(*a), args))(flat)  # unbatched path
    one_by_one = jax.tree.map(lambda leaf: leaf.reshape(seeds, num_envs, *leaf.shape[1:]), one_by_one)
    chex.assert_trees_all_close(stepped, one_by_one)
    np.testing.assert_array_equal(stepped.obs[..., 0], jnp.where(stop, 0.0, 1.0))


class CheapCounterEnv(CounterEnv):
    cheap_reset = True


def _nested_vmap_rollout(env, num_steps=5, seeds=2, num_envs=40):
    """States of `num_steps` steps of vmap(vmap(env.step)) with per-env random actions and stops."""
    keys = jax.random.split(jax.random.PRNGKey(2), seeds * num_envs).reshape(seeds, num_envs, -1)
    state = jax.vmap(jax.vmap(env.reset))(keys)

    def body(state, key):
        action_key, stop_key = jax.random.split(key)
        actions = jax.random.bernoulli(action_key, 0.7, (seeds, num_envs)).astype(jnp.int32)
        stop = jax.random.bernoulli(stop_key, 0.2, (seeds, num_envs))
        state = jax.vmap(jax.vmap(env.step))(state, actions, stop)
        return state, state

    def rollout():
        return jax.lax.scan(body, state, jax.random.split(jax.random.PRNGKey(3), num_steps))[1]

    return jax.jit(rollout)(), jax.make_jaxpr(rollout)()


def test_reset_strategies_give_identical_results_and_select_has_no_control_flow():
    branch, branch_program = _nested_vmap_rollout(wrap(CounterEnv(), max_episode_steps=3, reset_strategy="branch"))
    select, select_program = _nested_vmap_rollout(wrap(CounterEnv(), max_episode_steps=3, reset_strategy="select"))
    assert int(branch.done.sum()) > 20  # both strategies really reset many envs here
    chex.assert_trees_all_equal(branch, select)
    assert "while[" in str(branch_program)
    assert "while[" not in str(select_program) and "cond[" not in str(select_program)


def test_auto_reset_strategy_selects_only_for_cheap_resets_on_accelerators():
    assert resolve_reset_strategy("auto", cheap_reset=True, platform="gpu") == "select"
    assert resolve_reset_strategy("auto", cheap_reset=True, platform="tpu") == "select"
    assert resolve_reset_strategy("auto", cheap_reset=True, platform="cpu") == "branch"
    assert resolve_reset_strategy("auto", cheap_reset=False, platform="gpu") == "branch"
    assert resolve_reset_strategy("select", cheap_reset=False, platform="cpu") == "select"
    assert wrap(CheapCounterEnv()).env.reset_strategy == resolve_reset_strategy("auto", True, jax.default_backend())
    assert wrap(CounterEnv(), reset_strategy="select").env.reset_strategy == "select"
    with pytest.raises(ValueError, match="reset_strategy must be one of .*'always'"):
        AutoReset(CounterEnv(), "fresh", "always")
