"""Double DQN: targets and schedules by hand, config errors, plasticity/churn hook-up, and a
short seeded CartPole run that must beat a random policy."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_suite import algorithms
from jaxrl_suite.agents.dqn import default_config, double_dqn_next_value, epsilon_at, make_dqn
from jaxrl_suite.envs import make
from jaxrl_suite.plasticity import ChurnConfig, PlasticityConfig
from jaxrl_suite.runner.chunks import init_seeds, make_chunk_fn
from tests.seeded_learning import assert_solved, train_seeds

CARTPOLE = "gymnax/CartPole-v1"


def test_double_dqn_target_by_hand():
    online = jnp.array([[1.0, 3.0], [5.0, 2.0]])
    target = jnp.array([[10.0, 20.0], [30.0, 40.0]])
    # double: online argmax [1, 0] -> target values [20, 30]; plain: max of target [20, 40]
    np.testing.assert_array_equal(double_dqn_next_value(online, target, True), [20.0, 30.0])
    np.testing.assert_array_equal(double_dqn_next_value(online, target, False), [20.0, 40.0])


def test_epsilon_decays_linearly_then_stays():
    config = default_config(CARTPOLE, epsilon_start=1.0, epsilon_end=0.1, epsilon_decay_steps=100)
    values = [float(epsilon_at(config, jnp.int32(step))) for step in (0, 50, 100, 1000)]
    np.testing.assert_allclose(values, [1.0, 0.55, 0.1, 0.1], rtol=1e-6)


def test_config_errors_name_field_value_and_valid_values():
    with pytest.raises(ValueError, match=r"dqn.td_loss='l1'.*one of"):
        default_config(CARTPOLE, td_loss="l1").validate()
    with pytest.raises(ValueError, match=r"dqn.plasticity.method='redu'"):
        default_config(CARTPOLE, plasticity=PlasticityConfig(method="redu")).validate()
    with pytest.raises(ValueError, match=r"dqn.conv_input_shape=\(\)"):
        make_dqn(default_config("gymnax/Breakout-MinAtar", conv_input_shape=()), make("gymnax/Breakout-MinAtar"))
    config = default_config(CARTPOLE, plasticity=PlasticityConfig(method="redo"), churn=ChurnConfig(method="cchain"))
    assert algorithms.config_from_dict("dqn", dataclasses.asdict(config)) == config  # config.json round trip


def test_regrama_and_cchain_run_inside_the_compiled_update():
    config = default_config(
        CARTPOLE, num_envs=4, gradient_steps_per_update=2, buffer_size=64, batch_size=8, learning_starts=8,
        hidden_sizes=(16, 16), plasticity=PlasticityConfig(method="regrama", period=2, threshold=0.5,
                                                           max_reset_fraction=0.5),
        churn=ChurnConfig(method="cchain", warmup=1),
    )
    learner = make_dqn(config, make(CARTPOLE))
    state = init_seeds(learner, 0, 1)
    state, metrics = make_chunk_fn(learner, 6)(state)
    # learning starts at update 2 (8 env steps stored): 5 learning updates of 2 gradient steps
    assert int(state.gradient_steps[0]) == 5 * config.gradient_steps_per_update
    assert float(metrics["reset_units_sum"][0]) > 0.0
    for name in ("dormant_ratio", "grama_inactive_ratio", "churn_loss", "churn_coefficient", "td_loss"):
        assert np.isfinite(float(metrics[name][0])), name
    assert int(state.agent.churn.updates[0]) == 10


def test_minatar_conv_network_traces_on_flat_observations():
    config = default_config("gymnax/Breakout-MinAtar", plasticity=PlasticityConfig(method="redo"), buffer_size=100)
    learner = make_dqn(config, make("gymnax/Breakout-MinAtar"))  # flat [400] observations, reshaped
    state = jax.eval_shape(learner.init, jax.random.PRNGKey(0))
    assert state.agent.network["params"]["Trunk_0"]["ConvTorso_0"]["Conv_0"]["kernel"].shape == (3, 3, 4, 16)
    _, metrics = jax.eval_shape(learner.update, state)
    assert {"dormant_ratio", "reset_units_sum", "td_loss"} <= set(metrics)
    conv, dense = learner.agent.plasticity.layout.hidden
    assert conv.num_units == 16 and conv.private_consumers == (("Trunk_0", "MLP_0", "Dense_0"),)


@pytest.mark.slow
def test_dqn_learns_cartpole_a_little_on_most_of_8_seeds():
    """8 seeds, 20k env steps: >= 6 must beat 60 (a random policy balances about 22 steps). The
    per-seed rate of this claim is not yet measured over many seeds, so it stays out of make test."""
    learner = make_dqn(default_config(CARTPOLE, plasticity=PlasticityConfig(log_unit_activity=True)), make(CARTPOLE))
    _, evaluation = train_seeds(learner, 2000, 0, 8)
    assert_solved(evaluation["eval_return"], 60.0, 6, 0.95)
    evaluation = jax.tree.map(lambda values: values[:1], evaluation)
    for name in ("ntk_rank", "feature_rank_q_values", "probe_dormant_ratio", "weight_norm"):
        assert np.isfinite(float(evaluation[name][0])), name
    assert 1 <= float(evaluation["ntk_rank"][0]) <= 32 * 2  # probe batch x actions
