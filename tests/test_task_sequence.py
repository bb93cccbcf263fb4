"""Task sequences for continual RL: switches at the configured step, cut episodes, padded MinAtar."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_suite.envs import make
from jaxrl_suite.envs.task_sequence import TaskSequence, make_task_sequence


def _run(env, num_envs, num_steps, action):
    states = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(0), num_envs))

    def step(states, _):
        next_states = jax.vmap(env.step)(states, jnp.full((num_envs,), action))
        return next_states, next_states

    return jax.jit(lambda s: jax.lax.scan(step, s, None, length=num_steps))(states)


def test_switch_happens_at_configured_step_and_cuts_the_episode():
    cartpole = make("gymnax/CartPole-v1")
    env = TaskSequence([cartpole, cartpole, cartpole], steps_per_task=5)
    _, trajectory = _run(env, num_envs=2, num_steps=12, action=1)
    task_index = np.asarray(trajectory.info["task_index"][:, 0])
    # after step t (1-based) the task is min(t // 5, 2)
    np.testing.assert_array_equal(task_index, [0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2])
    switched = np.asarray(trajectory.info["task_switched"][:, 0])
    np.testing.assert_array_equal(np.flatnonzero(switched), [4, 9])
    truncated = np.asarray(trajectory.truncated[:, 0] | trajectory.terminated[:, 0])
    assert truncated[4] and truncated[9]
    # the new task's untouched first observation is served at the switch
    task_one_first_obs = trajectory.backend.task_states[1].obs[3, 0]
    np.testing.assert_array_equal(trajectory.obs[4, 0], task_one_first_obs)
    # the old task's state is frozen once it is left
    np.testing.assert_array_equal(trajectory.backend.task_states[0].obs[4, 0], trajectory.backend.task_states[0].obs[11, 0])
    # final_obs of the cut step is the old task's last observation, not the new task's
    np.testing.assert_array_equal(trajectory.info["final_obs"][4, 0], trajectory.backend.task_states[0].obs[4, 0])


def test_minatar_sequence_pads_to_shared_spaces():
    env = make_task_sequence("minatar", steps_per_task=3)
    assert env.observation_space.shape == (10, 10, 6) and env.action_space.n == 5
    state = jax.eval_shape(env.reset, jax.ShapeDtypeStruct((2,), jnp.uint32))
    assert jax.eval_shape(env.step, state, jnp.int32(4)).obs.shape == (10, 10, 6)
    two_games = TaskSequence(env.tasks[:2], steps_per_task=2)
    _, trajectory = _run(two_games, num_envs=1, num_steps=3, action=4)  # 4 acts as 0 in Breakout
    np.testing.assert_array_equal(np.asarray(trajectory.info["task_index"][:, 0]), [0, 1, 1])
    np.testing.assert_array_equal(trajectory.obs[..., 4:], 0.0)  # Breakout's 4 channels, padded to 6


def test_unknown_and_unavailable_sequences_explain_themselves():
    with pytest.raises(ValueError, match="no Quadruped"):
        make_task_sequence("dmc-quadruped", 10)
    with pytest.raises(ValueError, match="valid:"):
        make_task_sequence("walker", 10)
    with pytest.raises(ValueError, match="share spaces"):
        TaskSequence([make("gymnax/CartPole-v1"), make("gymnax/Acrobot-v1")], 10)
