"""gymnax adapter: interface conformance for classic control and MinAtar, and time limits
owned by our TimeLimit wrapper rather than gymnax."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_suite.envs import Box, Discrete, make, make_raw
from jaxrl_suite.envs.conformance import check_env


@pytest.mark.parametrize(
    "env_id, obs_shape, action_space, max_steps",
    [
        ("gymnax/CartPole-v1", (4,), Discrete(2), 500),
        ("gymnax/Pendulum-v1", (3,), Box((1,), -1.0, 1.0), 200),
        ("gymnax/Breakout-MinAtar", (400,), Discrete(3), 1000),
    ],
)
def test_wrapped_env_conforms(env_id, obs_shape, action_space, max_steps):
    env = make(env_id)
    assert env.env_id == env_id
    assert env.observation_space.shape == obs_shape
    assert env.action_space == action_space
    assert env.max_episode_steps == max_steps
    state = check_env(env, num_envs=3, num_steps=4)
    np.testing.assert_array_equal(state.info["step_count"], 4)


def test_minatar_keeps_image_shape_on_request():
    env = make_raw("gymnax/Breakout-MinAtar", flatten_obs=False)
    assert env.observation_space.shape == (10, 10, 4)
    check_env(env, num_envs=2, num_steps=2)


def test_pendulum_actions_are_rescaled_to_its_torque_bounds():
    raw = make_raw("gymnax/Pendulum-v1")
    assert raw.action_space == Box((1,), -2.0, 2.0)
    rescaled, unscaled = make("gymnax/Pendulum-v1"), make("gymnax/Pendulum-v1", rescale_actions=False)
    key = jax.random.PRNGKey(0)
    for unit_action, torque in [(1.0, 2.0), (-0.5, -1.0), (4.0, 2.0)]:
        np.testing.assert_allclose(
            rescaled.step(rescaled.reset(key), jnp.full(1, unit_action)).obs,
            unscaled.step(unscaled.reset(key), jnp.full(1, torque)).obs,
            rtol=1e-6,
        )


def test_cartpole_time_limit_is_a_truncation_not_a_termination():
    raw = make_raw("gymnax/CartPole-v1")
    state = raw.reset(jax.random.PRNGKey(0))
    near_limit = state.replace(
        backend=state.backend.replace(env_state=state.backend.env_state.replace(time=499))
    )
    stepped = raw.step(near_limit, jnp.int32(1))
    assert not stepped.terminated and not stepped.truncated  # upright pole: gymnax does not end it

    env = make("gymnax/CartPole-v1", max_episode_steps=5)
    state = env.reset(jax.random.PRNGKey(0))
    step = jax.jit(env.step)
    for action in [0, 1, 0, 1, 0]:
        state = step(state, jnp.int32(action))
    assert state.truncated and not state.terminated
    assert state.info["completed"] and state.info["completed_length"] == 5
    assert state.info["completed_return"] == 5.0


@pytest.mark.parametrize("env_id", ["gymnax/CartPole-v1", "gymnax/Breakout-MinAtar"])
def test_select_and_branch_reset_strategies_agree_on_gymnax(env_id):
    """"select" (the default on accelerators) and "branch" (the default on CPU) give the same
    states over 60 steps of 64 envs with random actions, including many resets."""

    def rollout(strategy):
        env = make(env_id, reset_strategy=strategy)
        state = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(0), 64))

        def body(state, key):
            action = jax.random.randint(key, (64,), 0, env.action_space.n)
            state = jax.vmap(env.step)(state, action)
            return state, (state.obs, state.reward, state.done, state.info["final_obs"])

        return jax.jit(lambda s: jax.lax.scan(body, s, jax.random.split(jax.random.PRNGKey(1), 60))[1])(state)

    branch, select = rollout("branch"), rollout("select")
    assert int(branch[2].sum()) > 10
    for a, b in zip(branch, select, strict=True):
        np.testing.assert_array_equal(a, b)
