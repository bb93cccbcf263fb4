"""PPO pieces on tiny hand-made inputs: clipped surrogate, value clipping, entropy, the KL early
stop, truncation bootstrapping in the batch, running normalizers and config validation."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_suite.agents.normalizer import (
    init_return_scaler,
    init_running_mean_std,
    normalize,
    scale_rewards,
    update_return_scaler,
    update_running_mean_std,
)
from jaxrl_suite.agents.ppo import (
    Batch,
    PPOConfig,
    Trajectory,
    bootstrap_values,
    clipped_surrogate_loss,
    default_config,
    explained_variance,
    make_ppo,
    value_loss,
)
from jaxrl_suite.envs import make
from jaxrl_suite.networks import squashed_gaussian_entropy

TINY = PPOConfig(num_envs=2, rollout_length=8, num_minibatches=2, num_epochs=2, hidden_sizes=(8,),
                 num_eval_envs=2, total_steps=64)


@pytest.fixture(scope="module")
def cartpole():
    return make("gymnax/CartPole-v1")


def test_clipped_surrogate_by_hand():
    ratio = jnp.array([0.5, 1.0, 1.5, 1.5])
    advantage = jnp.array([1.0, -1.0, 1.0, -1.0])
    # per sample min(r A, clip(r, 0.8, 1.2) A): 0.5, -1.0, 1.2, -1.5 -> mean -0.2
    np.testing.assert_allclose(clipped_surrogate_loss(ratio, advantage, 0.2), 0.2, rtol=1e-6)
    # Gradient flows only where the unclipped term is the minimum: d/dr = -A / 4 there, 0 else.
    grad = jax.grad(clipped_surrogate_loss)(ratio, advantage, 0.2)
    np.testing.assert_allclose(grad, [-0.25, 0.25, 0.0, 0.25], rtol=1e-6)


def test_value_loss_with_and_without_clipping():
    value, old_value, target = jnp.array([1.0, 3.0]), jnp.array([0.0, 2.0]), jnp.array([2.0, 2.0])
    np.testing.assert_allclose(value_loss(value, old_value, target, None), 0.5, rtol=1e-6)
    # clipped predictions 0.5 and 2.5: max((1-2)^2, (0.5-2)^2) = 2.25, max(1, 0.25) = 1
    np.testing.assert_allclose(value_loss(value, old_value, target, 0.5), 0.5 * (2.25 + 1.0) / 2, rtol=1e-6)


def test_explained_variance():
    target = jnp.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(explained_variance(target, target), 1.0)
    np.testing.assert_allclose(explained_variance(jnp.full(4, 2.5), target), 0.0, atol=1e-6)
    np.testing.assert_allclose(explained_variance(target, jnp.ones(4)), 0.0)


def test_ppo_loss_combines_pieces_with_entropy(cartpole):
    config = dataclasses.replace(TINY, entropy_coef=0.1, value_coef=0.5, normalize_advantages=False)
    learner = make_ppo(config, cartpole)
    params = learner.network.init(jax.random.PRNGKey(0), jnp.zeros((1, 4)))
    obs = jax.random.normal(jax.random.PRNGKey(1), (6, 4))
    policy, value = learner.network.apply(params, obs)
    actions = jnp.array([0, 1, 0, 1, 1, 0])
    minibatch = Batch(obs=obs, raw_action=actions, old_log_prob=policy.log_prob(actions) - 0.1,
                      old_value=value, advantage=jnp.linspace(-1.0, 1.0, 6), target_return=value + 1.0)
    loss, metrics = learner.ppo_loss(params, init_running_mean_std((4,)), minibatch)
    probs = jax.nn.softmax(policy.logits)
    entropy = -(probs * jnp.log(probs)).sum(-1).mean()
    np.testing.assert_allclose(metrics["entropy"], entropy, rtol=1e-5)
    np.testing.assert_allclose(metrics["value_loss"], 0.5, rtol=1e-5)
    ratio = jnp.exp(0.1)
    np.testing.assert_allclose(metrics["clip_fraction"], 0.0)
    np.testing.assert_allclose(metrics["policy_loss"], -(ratio * minibatch.advantage).mean(), atol=1e-6)
    np.testing.assert_allclose(metrics["approx_kl"], (ratio - 1.0) - 0.1, rtol=1e-4)
    np.testing.assert_allclose(
        loss, metrics["policy_loss"] + 0.5 * 0.5 - 0.1 * entropy, rtol=1e-5, atol=1e-6
    )


def test_gaussian_entropy_in_loss():
    env = make("gymnax/Pendulum-v1")
    learner = make_ppo(dataclasses.replace(TINY, init_log_std=-0.5), env)
    params = learner.network.init(jax.random.PRNGKey(0), jnp.zeros((1, 3)))
    policy, _ = learner.network.apply(params, jnp.zeros((3, 3)))
    # one action dim: 0.5 * log(2 pi e sigma^2) with log sigma = -0.5
    np.testing.assert_allclose(policy.entropy(), 0.5 * np.log(2 * np.pi * np.e) - 0.5, rtol=1e-5)


def test_squashed_entropy_in_loss_and_its_validation():
    env = make("gymnax/Pendulum-v1")
    config = dataclasses.replace(TINY, action_squash="tanh", squashed_entropy=True)
    learner = make_ppo(config, env)
    params = learner.network.init(jax.random.PRNGKey(0), jnp.zeros((1, 3)))
    obs = jax.random.normal(jax.random.PRNGKey(1), (4, 3))
    policy, value = learner.network.apply(params, obs)
    minibatch = Batch(obs=obs, raw_action=policy.mean(), old_log_prob=policy.log_prob(policy.mean()),
                      old_value=value, advantage=jnp.zeros(4), target_return=value)
    _, metrics = learner.ppo_loss(params, init_running_mean_std((3,)), minibatch)
    np.testing.assert_allclose(metrics["entropy"], squashed_gaussian_entropy(policy).mean(), rtol=1e-6)
    assert metrics["entropy"] < policy.entropy().mean()  # tanh' <= 1 lowers the entropy
    with pytest.raises(ValueError, match="squashed_entropy"):
        dataclasses.replace(TINY, squashed_entropy=True).validate()  # action_squash is "clip"
    with pytest.raises(ValueError, match="action_squash='tanh'.*discrete action space"):
        make_ppo(config, make("gymnax/CartPole-v1"))  # squashing has no meaning for discrete actions


def test_truncated_and_last_steps_bootstrap_from_bootstrap_value_by_hand(cartpole):
    config = dataclasses.replace(TINY, num_envs=1, rollout_length=3, num_minibatches=1, gamma=0.5,
                                 gae_lambda=1.0)
    learner = make_ppo(config, cartpole)
    column = lambda *values: jnp.array(values, jnp.float32)[:, None]  # noqa: E731  [T=3, N=1]
    trajectory = Trajectory(
        obs=jnp.zeros((3, 1, 4)), raw_action=jnp.zeros((3, 1), jnp.int32), log_prob=jnp.zeros((3, 1)),
        value=column(1.0, 2.0, 4.0), reward=column(1.0, 1.0, 1.0), terminated=jnp.zeros((3, 1), bool),
        done=jnp.array([[True], [False], [False]]),  # step 0 truncated, step 1 goes on, step 2 is the last
        bootstrap_value=column(10.0, 99.0, 20.0),  # 99: not read, step 1 bootstraps from value[2]
    )
    np.testing.assert_allclose(bootstrap_values(trajectory), column(10.0, 4.0, 20.0))
    batch, _ = learner.make_batch(trajectory)
    # deltas: 1 + 0.5*10 - 1 = 5; 1 + 0.5*4 - 2 = 1; 1 + 0.5*20 - 4 = 7
    # advantages: A2 = 7; A1 = 1 + 0.5*7 = 4.5; A0 = 5 (the truncation cuts the recursion)
    np.testing.assert_allclose(batch.advantage, [5.0, 4.5, 7.0], rtol=1e-6)


@pytest.mark.parametrize("num_envs, rollout_length", [(2, 16), (40, 16)])  # 2 envs: one gather; 40: in chunks
def test_critic_on_truncations_only_matches_the_critic_on_every_final_obs(num_envs, rollout_length):
    env = make("gymnax/CartPole-v1", max_episode_steps=12)  # truncates often; a random policy also terminates
    learner = make_ppo(dataclasses.replace(TINY, num_envs=num_envs, rollout_length=rollout_length), env)

    def both_ways(key):
        state = learner.init(key)
        results = []
        for critic_on_truncations_only in (True, False):
            learner.critic_on_truncations_only = critic_on_truncations_only
            _, trajectory, _ = learner.rollout(state.params, state.obs_stats, state.env_state, key)
            batch, _ = learner.make_batch(trajectory)
            results.append((trajectory, bootstrap_values(trajectory), batch.advantage))
        return results

    keys = jax.random.split(jax.random.PRNGKey(4), 3)
    (trajectory, fewer, fewer_advantage), (_, every, every_advantage) = jax.jit(jax.vmap(both_ways))(keys)
    truncated = trajectory.done & ~trajectory.terminated
    assert int(truncated[:, :-1].sum()) > 0 and int(trajectory.terminated.sum()) > 0
    assert int((~trajectory.done).sum()) > 0
    chex.assert_shape(fewer, (3, rollout_length, num_envs))
    # equal wherever GAE reads them (a terminated step's V(s') is multiplied by 0)
    np.testing.assert_allclose(jnp.where(trajectory.terminated, 0.0, fewer),
                               jnp.where(trajectory.terminated, 0.0, every), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fewer_advantage, every_advantage, rtol=1e-5, atol=1e-5)
    (_, alone, _), _ = jax.jit(both_ways)(keys[1])  # one seed without vmap
    np.testing.assert_allclose(alone, fewer[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shared_trunk", [False, True])
def test_rollout_values_after_acting_equal_values_while_acting(shared_trunk, cartpole):
    learner = make_ppo(dataclasses.replace(TINY, num_envs=4, rollout_length=16, shared_trunk=shared_trunk), cartpole)
    assert learner.values_while_acting == shared_trunk  # separate trunks: one critic pass after the rollout
    state = learner.init(jax.random.PRNGKey(5))

    def rollout(values_while_acting):
        learner.values_while_acting = values_while_acting
        return jax.jit(lambda s, k: learner.rollout(s.params, s.obs_stats, s.env_state, k))(
            state, jax.random.PRNGKey(6))

    (env_after, after, sums_after), (env_while, acting, sums_while) = rollout(False), rollout(True)
    same = lambda t: t.replace(value=None, bootstrap_value=None)  # noqa: E731
    chex.assert_trees_all_close(same(after), same(acting), rtol=0, atol=0)
    chex.assert_trees_all_close((env_after, sums_after), (env_while, sums_while), rtol=0, atol=0)
    np.testing.assert_allclose(after.value, acting.value, rtol=1e-5, atol=1e-6)
    assert float(jnp.abs(after.value).max()) > 0


def test_kl_early_stop_masks_remaining_minibatches(cartpole):
    stopping = make_ppo(dataclasses.replace(TINY, target_kl=1e-12), cartpole)
    state = jax.jit(stopping.init)(jax.random.PRNGKey(0))
    new_state, metrics = jax.jit(stopping.update)(state)
    # The first step starts from the rollout policy (KL = 0) and is applied; the second
    # minibatch sees KL > 0 and it and everything after it are skipped.
    np.testing.assert_allclose(metrics["update_fraction"], 1.0 / (TINY.num_epochs * TINY.num_minibatches))
    assert int(new_state.opt_state.inner_state[1].count) == 1  # Adam's step count: one applied step
    assert int(new_state.opt_state.count) == 1  # inject_hyperparams' count too


def test_running_mean_std_matches_numpy():
    data = np.random.default_rng(0).normal(3.0, 2.0, size=(3, 50, 2)).astype(np.float32)
    stats = init_running_mean_std((2,))
    np.testing.assert_array_equal(normalize(stats, jnp.asarray(data[0])), np.clip(data[0], -10, 10))
    for chunk in data:
        stats = update_running_mean_std(stats, jnp.asarray(chunk))
    flat = data.reshape(-1, 2)
    np.testing.assert_allclose(stats.mean, flat.mean(0), rtol=1e-5)
    np.testing.assert_allclose(stats.variance, flat.var(0), rtol=1e-4)
    np.testing.assert_allclose(stats.count, 150)
    normalized = normalize(stats, jnp.asarray(flat))
    np.testing.assert_allclose(normalized.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(normalized.std(0), 1.0, rtol=1e-3)


def test_return_scaler_tracks_discounted_returns():
    scaler = init_return_scaler(1)
    rewards = jnp.array([[1.0], [1.0], [1.0]])
    done = jnp.array([[False], [True], [False]])
    scaler = update_return_scaler(scaler, rewards, done, gamma=0.5)
    # returns 1, 1.5 (episode ends, restart), 1
    np.testing.assert_allclose(scaler.discounted_return, [1.0])
    np.testing.assert_allclose(scaler.stats.mean, 3.5 / 3, rtol=1e-6)
    std = np.std([1.0, 1.5, 1.0])
    np.testing.assert_allclose(scale_rewards(scaler, jnp.array([2.0])), [2.0 / std], rtol=1e-4)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(num_minibatches=3), r"ppo.num_minibatches=3: expected a divisor of num_envs \* rollout_length = 16"),
        (dict(num_envs=0), r"ppo.num_envs=0: expected an integer >= 1"),
        (dict(gamma=1.5), r"ppo.gamma=1.5: expected a discount in \(0, 1\]"),
        (dict(gae_lambda=-0.1), r"ppo.gae_lambda=-0.1: expected a number in \[0, 1\]"),
        (dict(learning_rate=0.0), r"ppo.learning_rate=0.0: expected a number > 0"),
        (dict(target_kl=-1.0), r"ppo.target_kl=-1.0: expected a number > 0, or None to disable"),
        (dict(activation="swoosh"), r"ppo.activation='swoosh': expected one of \['elu', 'gelu'"),
        (dict(action_squash="sigmoid"), r"ppo.action_squash='sigmoid': expected one of \['clip'"),
        (dict(hidden_sizes=(64, 0)), r"ppo.hidden_sizes=\(64, 0\): expected a tuple of positive integers"),
        (dict(shared_trunk=True, critic_hidden_sizes=(8,)), r"critic_hidden_sizes=\(8,\): expected None when shared_trunk"),
    ],
)
def test_config_validation_names_field_value_and_valid_range(change, message, cartpole):
    config = dataclasses.replace(TINY, **change)
    with pytest.raises(ValueError, match=message):
        config.validate()
    with pytest.raises(ValueError, match=message):  # before anything is built or compiled
        make_ppo(config, cartpole)


def test_default_configs_are_valid_per_family():
    for env_id in ("gymnax/CartPole-v1", "gymnax/Pendulum-v1", "gymnax/Breakout-MinAtar",
                   "dmc/CartpoleBalance", "brax/ant"):
        default_config(env_id).validate()
    assert default_config("gymnax/Breakout-MinAtar").conv_channels == (16,)
    assert default_config("gymnax/MountainCarContinuous-v0").normalize_rewards
    assert default_config("dmc/CheetahRun").normalize_observations
    assert default_config("gymnax/CartPole-v1", num_envs=8).num_envs == 8


def test_evaluate_is_deterministic_and_bounded(cartpole):
    learner = make_ppo(TINY, cartpole)
    state = jax.jit(learner.init)(jax.random.PRNGKey(0))
    evaluate = jax.jit(learner.evaluate)
    first, second = evaluate(state, jax.random.PRNGKey(5)), evaluate(state, jax.random.PRNGKey(5))
    chex.assert_trees_all_equal(first, second)
    assert 1.0 <= float(first["eval_return"]) <= 500.0
    assert float(first["eval_finished_fraction"]) == 1.0


def test_learning_rate_lives_in_the_optimizer_state_and_anneals_per_iteration(cartpole):
    """The step size Adam applies is the opt_state's injected hyperparameter, set from
    learning_rate(update_count) each iteration: lr * (1 - k / num_updates) when annealed."""
    config = dataclasses.replace(TINY, anneal_lr=True, learning_rate=1e-3, total_steps=4 * TINY.batch_size)
    learner = make_ppo(config, cartpole)
    state = jax.jit(learner.init)(jax.random.PRNGKey(0))
    update = jax.jit(learner.update)
    for k in range(3):
        state, metrics = update(state)
        expected = 1e-3 * (1 - k / 4)
        assert float(metrics["learning_rate"]) == pytest.approx(expected, rel=1e-6)
        assert float(state.opt_state.hyperparams["learning_rate"]) == pytest.approx(expected, rel=1e-6)
