"""ReGraMa and C-CHAIN/CHAIN wired into PPO, SAC and TD3: they run inside the compiled update,
restart at task switches, and leave the learners untouched when switched off."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_suite.agents import sac, td3
from jaxrl_suite.agents.ppo import default_config, make_ppo
from jaxrl_suite.envs import make
from jaxrl_suite.envs.task_sequence import TaskSequence
from jaxrl_suite.plasticity import ChurnConfig, PlasticityConfig
from jaxrl_suite.runner.chunks import init_seeds, make_chunk_fn

CARTPOLE = "gymnax/CartPole-v1"


def test_ppo_regrama_and_cchain_restart_at_the_task_switch():
    cartpole = make(CARTPOLE)
    # 4 envs x 16 steps per update: the switch comes after 4 updates (64 steps of each env)
    env = TaskSequence([cartpole, cartpole], steps_per_task=64)
    config = default_config(CARTPOLE, num_envs=4, rollout_length=16, num_minibatches=2, num_epochs=2,
                            plasticity=PlasticityConfig(method="regrama", period=2, threshold=0.5),
                            churn=ChurnConfig(method="cchain", warmup=2, window=4))
    learner = make_ppo(config, env)
    state = init_seeds(learner, 0, 1)
    state, metrics = make_chunk_fn(learner, 6)(state)
    assert int(state.churn.task_index[0]) == 1
    assert int(state.churn.updates[0]) == 3  # updates 4, 5, 6 ran in the second task
    assert float(metrics["reset_units_sum"][0]) > 0.0
    for name in ("churn_loss", "churn_coefficient", "dormant_ratio", "grama_inactive_ratio"):
        assert np.isfinite(float(metrics[name][0])), name
    seed_state = jax.tree.map(lambda leaf: leaf[0], state)
    churn = learner.policy_churn(seed_state.params, seed_state.params, seed_state.obs_stats, seed_state.env_state.obs)
    assert float(churn) == pytest.approx(0.0, abs=1e-7)


def test_ppo_without_plasticity_or_churn_keeps_no_extra_state():
    learner = make_ppo(default_config(CARTPOLE, num_envs=2, rollout_length=8, num_minibatches=2), make(CARTPOLE))
    state, metrics = jax.jit(learner.update)(learner.init(jax.random.PRNGKey(0)))
    assert state.churn is None
    assert not {"churn_loss", "dormant_ratio", "reset_units_sum"} & set(metrics)


def test_ppo_logs_network_diagnostics_on_request():
    """log_unit_activity adds the probe diagnostics on the training envs' observations to evaluation."""
    hidden = 16
    config = default_config(CARTPOLE, num_envs=8, rollout_length=8, num_minibatches=2, num_eval_envs=2,
                            hidden_sizes=(hidden, hidden), plasticity=PlasticityConfig(log_unit_activity=True))
    learner = make_ppo(config, make(CARTPOLE))
    metrics = jax.device_get(jax.jit(learner.evaluate)(learner.init(jax.random.PRNGKey(0)), jax.random.PRNGKey(1)))
    assert 1 <= metrics["ntk_rank"] <= 8 * 2  # 8 probe observations x 2 logits
    feature_ranks = [value for name, value in metrics.items() if name.startswith("feature_rank_")]
    assert feature_ranks and all(1 <= rank <= hidden for rank in feature_ranks), metrics
    assert 0.0 <= metrics["probe_dormant_ratio"] <= 1.0 and metrics["weight_norm"] > 0.0


@pytest.mark.parametrize("module, make_learner", [(sac, sac.make_sac), (td3, td3.make_td3)])
def test_chain_churn_terms_in_sac_and_td3(module, make_learner):
    config = module.default_config(
        "gymnax/Pendulum-v1", num_envs=2, utd_ratio=2, buffer_size=200, learning_starts=20, batch_size=16,
        hidden_sizes=(16, 16), churn=ChurnConfig(method="cchain"),
    )
    learner = make_learner(config, make("gymnax/Pendulum-v1"))
    state = init_seeds(learner, 0, 1)
    state, metrics = make_chunk_fn(learner, 20)(state)
    assert float(metrics["value_churn"][0]) > 0.0
    if module is sac:
        assert float(metrics["policy_churn"][0]) > 0.0
    reference_actor, reference_critic = state.agent.churn.reference_params
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), reference_critic, state.agent.critic)
    assert any(jax.tree.leaves(changed))  # the reference trails the critic by one step
    assert jax.tree.structure(reference_actor) == jax.tree.structure(state.agent.actor)


@pytest.mark.parametrize("module, make_learner", [(sac, sac.make_sac), (td3, td3.make_td3)])
def test_regrama_resets_critic_members_and_actor_in_sac_and_td3(module, make_learner):
    # 2 envs, learning from env step 8: gradient steps 2 per update from update 4 on; every unit
    # scores <= 10, so each due reset takes the cap of 4 units per layer (25% of 16).
    config = module.default_config(
        "gymnax/Pendulum-v1", num_envs=2, utd_ratio=2, buffer_size=64, learning_starts=8, batch_size=8,
        hidden_sizes=(16, 16), critic_layer_norm=True,
        plasticity=PlasticityConfig(method="regrama", period=4, threshold=10.0, max_reset_fraction=0.25),
    )
    learner = make_learner(config, make("gymnax/Pendulum-v1"))
    state = init_seeds(learner, 0, 1)
    state, metrics = make_chunk_fn(learner, 10)(state)
    assert int(state.gradient_steps[0]) == 14
    # critics: 3 resets (steps 4, 8, 12) x 2 members x 2 layers x 4 units
    assert float(metrics["critic_reset_units_sum"][0]) == 3 * 2 * 2 * 4
    # actor: SAC every 4 gradient steps; TD3 every 4 of its 7 delayed steps
    assert float(metrics["actor_reset_units_sum"][0]) == (3 if module is sac else 1) * 2 * 4
    for name in ("critic_dormant_ratio", "critic_grama_inactive_ratio", "actor_dormant_ratio",
                 "actor_grama_inactive_ratio"):
        assert 0.0 <= float(metrics[name][0]) <= 1.0, name


@pytest.mark.parametrize("module, make_learner", [(sac, sac.make_sac), (td3, td3.make_td3)])
def test_sac_and_td3_log_network_diagnostics_on_request(module, make_learner):
    """With log_unit_activity the evaluation adds each network's probe diagnostics (32 replay
    samples); without it, only the returns."""
    hidden = 16
    config = module.default_config(
        "gymnax/Pendulum-v1", num_envs=2, utd_ratio=1, buffer_size=64, learning_starts=8, batch_size=8,
        hidden_sizes=(hidden, hidden), num_eval_envs=2, plasticity=PlasticityConfig(log_unit_activity=True),
    )
    learner = make_learner(config, make("gymnax/Pendulum-v1"))
    state, _ = make_chunk_fn(learner, 20)(init_seeds(learner, 0, 1))
    one_seed = jax.tree.map(lambda leaf: leaf[0], state)
    metrics = jax.device_get(jax.jit(learner.evaluate)(one_seed, jax.random.PRNGKey(1)))
    num_critics, probe = config.num_critics, 32
    assert 1 <= metrics["critic_ntk_rank"] <= probe * num_critics
    assert 1 <= metrics["actor_ntk_rank"] <= probe  # Pendulum: one action dimension
    for network in ("critic_", "actor_"):
        feature_ranks = [value for name, value in metrics.items() if name.startswith(network + "feature_rank_")]
        assert feature_ranks and all(1 <= rank <= hidden for rank in feature_ranks), metrics
        assert 0.0 <= metrics[network + "probe_dormant_ratio"] <= 1.0
        assert metrics[network + "weight_norm"] > 0.0

    plain = make_learner(module.default_config("gymnax/Pendulum-v1", num_envs=2, buffer_size=64, num_eval_envs=2,
                                               hidden_sizes=(hidden, hidden)), make("gymnax/Pendulum-v1"))
    plain_state = jax.tree.map(lambda leaf: leaf[0], init_seeds(plain, 0, 1))
    assert set(jax.eval_shape(plain.evaluate, plain_state, jax.random.PRNGKey(1))) == {
        name for name in metrics if name.startswith("eval_")}
