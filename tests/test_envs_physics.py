"""Brax and MuJoCo Playground (DMC) adapters: interface conformance through `make`, with
jit + vmap of reset and step, and done flags mapped to `terminated`."""

import collections

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_suite.envs import Box, make, make_raw
from jaxrl_suite.envs.conformance import check_env


@pytest.mark.parametrize(
    "env_id, obs_shape, action_shape",
    [("brax/inverted_pendulum", (4,), (1,)), ("dmc/CartpoleBalance", (5,), (1,))],
)
def test_wrapped_physics_env_conforms(env_id, obs_shape, action_shape):
    env = make(env_id)
    assert env.observation_space.shape == obs_shape
    assert env.action_space == Box(action_shape, -1.0, 1.0)
    assert env.max_episode_steps == 1000
    state = check_env(env, num_envs=2, num_steps=3)
    np.testing.assert_array_equal(state.info["episode_length"] + state.info["completed_length"] > 0, True)


def test_brax_termination_maps_to_terminated():
    raw = make_raw("brax/inverted_pendulum")

    def push_right(key):  # a constant full push tips the pole past brax's 0.2 rad limit
        def advance(state, _):
            state = raw.step(state, jnp.ones(1))
            return state, state

        return jax.lax.scan(advance, raw.reset(key), None, 60)[1]

    states = jax.jit(push_right)(jax.random.PRNGKey(0))
    first_end = int(np.argmax(states.terminated))
    assert states.terminated[first_end] and not states.truncated.any()
    assert np.abs(states.obs[first_end, 1]) > 0.2


def test_dict_observations_are_refused_with_a_clear_message():
    from jaxrl_suite.envs.physics_env import PhysicsEnv

    FakeState = collections.namedtuple("FakeState", "obs")

    class DictObsEnv:
        def reset(self, rng):
            return FakeState({"state": jnp.zeros(3), "pixels": jnp.zeros((8, 8))})

    with pytest.raises(ValueError, match="dict observations with keys \\['pixels', 'state'\\]"):
        PhysicsEnv("dmc/Fake", DictObsEnv(), action_size=1, max_episode_steps=10)


def test_brax_backend_option_is_validated():
    with pytest.raises(ValueError, match="backend must be one of .*'warp-speed'"):
        make_raw("brax/inverted_pendulum", backend="warp-speed")
