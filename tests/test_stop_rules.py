"""Stop rules behind one protocol: the fixed-horizon rule by hand, in PPO and SAC (episodes end at
their drawn horizon as truncations), and the refusals and checkpoint/config compatibility around it."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from flax import struct

from jaxrl_suite import algorithms
from jaxrl_suite.early_stop import (
    FixedHorizon,
    FixedHorizonConfig,
    FixedHorizonState,
    Least,
    LeastConfig,
    make_stop_rule,
)
from jaxrl_suite.runner import Checkpointer, checkpoints
from jaxrl_suite.runner.chunks import init_seeds, make_chunk_fn


def _step(step_index, terminated, truncated, episode_length, env_steps_after=100):
    return {"step_index": jnp.asarray(step_index), "terminated": jnp.asarray(terminated),
            "truncated": jnp.asarray(truncated), "episode_length": jnp.asarray(episode_length),
            "env_steps_before": jnp.asarray(env_steps_after - 2), "env_steps_after": jnp.asarray(env_steps_after)}


def test_fixed_horizon_by_hand():
    rule = FixedHorizon(FixedHorizonConfig(min_fraction=0.5), max_episode_steps=4)
    assert rule.shortest == 2 and rule.reads == () and not rule.explores
    state = FixedHorizonState(horizon=jnp.array([2, 4]), pending_stop=jnp.array([False, False]),
                              key=jax.random.PRNGKey(0))
    # step 0 of both episodes: the next step is each one's 2nd, so env 0 (H = 2) stops on it
    state, metrics, _ = rule.observe(state, _step([0, 0], [False, False], [False, False], [0, 0]))
    np.testing.assert_array_equal(rule.stop_mask(state), [True, False])
    assert float(metrics["fixed_horizon_stopped_count"]) == 0.0
    # env 0's stopped step: truncated at length 2, 2 steps short of the limit; a new H in [2, 4]
    state, metrics, _ = rule.observe(state, _step([1, 1], [False, False], [True, False], [2, 0]))
    assert float(metrics["fixed_horizon_stopped_count"]) == 1.0
    assert float(metrics["fixed_horizon_steps_saved_sum"]) == 2.0
    assert float(metrics["fixed_horizon_stopped_length_sum"]) == 2.0
    assert 2 <= int(state.horizon[0]) <= 4 and int(state.horizon[1]) == 4
    np.testing.assert_array_equal(rule.stop_mask(state), [int(state.horizon[0]) <= 1, False])
    # env 1 (H = 4 = the limit): asked to stop on its 4th step, which the time limit ends anyway
    state, _, _ = rule.observe(state, _step([0, 2], [False, False], [False, False], [0, 0]))
    assert bool(rule.stop_mask(state)[1])
    # before start_steps nothing is stopped
    late = FixedHorizon(FixedHorizonConfig(min_fraction=0.5, start_steps=1000), max_episode_steps=4)
    state, _, _ = late.observe(state, _step([0, 2], [False, False], [False, False], [0, 0]))
    assert not rule.stop_mask(state).any()
    assert float(rule.action_noise(state)) == 0.0


def test_horizons_are_uniform_over_their_range():
    rule = FixedHorizon(FixedHorizonConfig(min_fraction=0.25), max_episode_steps=8)
    horizons = np.asarray(rule.init(20_000, jax.random.PRNGKey(1)).horizon)
    assert set(np.unique(horizons)) == set(range(2, 9))
    np.testing.assert_allclose(np.bincount(horizons)[2:] / 20_000, 1 / 7, atol=0.015)


def test_make_stop_rule_picks_the_configured_rule_and_needs_a_time_limit():
    config = algorithms.default_config("sac", "gymnax/Pendulum-v1")
    assert make_stop_rule(config, "gymnax/Pendulum-v1", 200) is None
    least = make_stop_rule(dataclasses.replace(config, early_stop="least"), "gymnax/Pendulum-v1", 200)
    assert isinstance(least, Least) and least.reads == ("q", "gradient", "recording") and least.explores
    assert isinstance(make_stop_rule(dataclasses.replace(config, early_stop="fixed-horizon"), "x", 200), FixedHorizon)
    with pytest.raises(ValueError, match="sac.early_stop='fixed-horizon': a stop rule needs an env with a time limit"):
        make_stop_rule(dataclasses.replace(config, early_stop="fixed-horizon"), "dmc/Nothing", None)
    assert isinstance(least.init(3, jax.random.PRNGKey(0)).pending_stop, jax.Array)
    assert least.state_bytes(3) > 0 and LeastConfig().validate()


@pytest.mark.parametrize("algo, fields, updates", [
    ("ppo", dict(num_envs=4, rollout_length=50, num_minibatches=2, num_epochs=1), 12),  # 2,400 steps per env
    ("sac", dict(num_envs=2, buffer_size=2048, batch_size=16, learning_starts=64, hidden_sizes=(16, 16)), 700),
])
def test_episodes_end_at_their_horizon_as_truncations(algo, fields, updates):
    """Pendulum never terminates and has a 200-step limit: with H ~ U{100..200} every episode
    ends by truncation after 100 to 200 steps, and most of them before the limit."""
    env_id = "gymnax/Pendulum-v1"
    config = dataclasses.replace(algorithms.default_config(algo, env_id), **fields, early_stop="fixed-horizon",
                                 horizon=FixedHorizonConfig(min_fraction=0.5))
    learner = algorithms.make_learner(algo, config.validate(), env_id)
    state, metrics = make_chunk_fn(learner, updates)(init_seeds(learner, 0, 1))
    metrics = jax.device_get(metrics)
    completed, lengths = metrics["completed_count"][0].sum(), metrics["completed_length_sum"][0].sum()
    stopped = metrics["fixed_horizon_stopped_count"][0].sum()
    assert completed >= 8 and 0 < stopped <= completed
    assert 100 * completed <= lengths <= 200 * completed
    assert metrics["fixed_horizon_steps_saved_sum"][0].sum() == 200 * stopped - (lengths - 200 * (completed - stopped))
    if algo == "sac":
        data = state.replay.data
        assert not bool(data.terminated.any()) and int(data.truncated.sum()) == completed


def test_dqn_stops_cartpole_episodes_as_truncations():
    """H ~ U{5..500}: a random CartPole policy's episodes (about 20 steps) end by termination or at
    their horizon; every truncation in the replay is the rule's (the 500-step limit is not reached)."""
    env_id = "gymnax/CartPole-v1"
    config = dataclasses.replace(algorithms.default_config("dqn", env_id), num_envs=4, buffer_size=2048,
                                 learning_starts=10_000, early_stop="fixed-horizon",
                                 horizon=FixedHorizonConfig(min_fraction=0.01))
    learner = algorithms.make_learner("dqn", config.validate(), env_id)
    state, metrics = make_chunk_fn(learner, 400)(init_seeds(learner, 0, 1))
    stopped = float(metrics["fixed_horizon_stopped_count"][0].sum())
    assert stopped > 0
    assert int(state.replay.data.truncated.sum()) == stopped
    assert float(metrics["completed_count"][0].sum()) == stopped + int(state.replay.data.terminated.sum())


def test_ppo_with_horizons_at_the_limit_is_ppo_without_a_rule():
    """min_fraction 1: every H is the time limit, so nothing changes but the rule's own state."""
    env_id = "gymnax/Pendulum-v1"
    plain = dataclasses.replace(algorithms.default_config("ppo", env_id), num_envs=4, rollout_length=64,
                                num_minibatches=2, num_epochs=1)
    ruled = dataclasses.replace(plain, early_stop="fixed-horizon", horizon=FixedHorizonConfig(min_fraction=1.0))
    results = []
    for config in (plain, ruled):
        learner = algorithms.make_learner("ppo", config, env_id)
        state, metrics = make_chunk_fn(learner, 4)(init_seeds(learner, 0, 1))
        results.append((state.params, metrics["completed_length_sum"]))
        if config is ruled:
            assert float(metrics["fixed_horizon_stopped_count"].sum()) == 0.0
    chex.assert_trees_all_equal(*results)


def test_ppo_refuses_least():
    config = dataclasses.replace(algorithms.default_config("ppo", "gymnax/CartPole-v1"), early_stop="least")
    with pytest.raises(ValueError, match=r"invalid ppo.early_stop='least': expected one of \('none', 'fixed-horizon'\)"):
        config.validate()


@struct.dataclass
class _Before:
    x: jax.Array
    churn: object = None


@struct.dataclass
class _After:
    x: jax.Array
    churn: object = None
    early_stop: object = None


def _save_per_leaf(directory, step, state, metadata):
    """A checkpoint as the code before packed_state.py wrote it: Orbax's tree, one array per leaf."""
    manager = checkpoints._manager(directory, keep=1)
    manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(checkpoints._storable(state)),
                                               metadata=ocp.args.JsonSave(metadata)))
    manager.wait_until_finished()
    manager.close()


def _save_packed(directory, step, state, metadata):
    checkpointer = Checkpointer(directory, keep=1)
    checkpointer.save(step, state, metadata)
    checkpointer.close()


@pytest.mark.parametrize("save", [_save_packed, _save_per_leaf])
def test_checkpoints_from_before_a_field_was_added_restore(tmp_path, save):
    """A train-state field added later (None unless its method is on) is filled in; any other
    difference is refused with one line; in today's packed layout and in the earlier per-leaf one."""
    save(tmp_path, 1, _Before(jnp.arange(3.0)), {"updates": 1})
    assert (tmp_path / "1" / ("packed" if save is _save_packed else "state")).is_dir()
    restored, metadata = Checkpointer(tmp_path).restore(jax.eval_shape(lambda: _After(jnp.zeros(3))))
    assert restored.early_stop is None and metadata == {"updates": 1}
    np.testing.assert_array_equal(restored.x, [0.0, 1.0, 2.0])
    with pytest.raises(Exception, match="other shapes or dtypes"):
        Checkpointer(tmp_path).restore(jax.eval_shape(lambda: _After(jnp.zeros(4))))
    with pytest.raises(Exception, match="the checkpoint has no early_stop"):
        Checkpointer(tmp_path).restore(jax.eval_shape(lambda: _After(jnp.zeros(3), early_stop=jnp.zeros(2))))
