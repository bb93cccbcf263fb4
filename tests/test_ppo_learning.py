"""Seeded PPO learning on gymnax classic control, and vmapped seeds through the runner's chunks.

CartPole-v1 must reach a deterministic return >= 475 within 500k env steps, Pendulum-v1 >= -300.
"""

import chex
import jax
import numpy as np
import pytest

from jaxrl_suite.agents.ppo import PPOConfig, default_config, make_ppo
from jaxrl_suite.envs import make
from jaxrl_suite.runner import RunConfig, read_metrics, train
from jaxrl_suite.runner.chunks import init_seeds, make_chunk_fn, seed_keys


def train_seeds(config: PPOConfig, env_id: str, first_seed: int, num_seeds: int, num_chunks: int = 4):
    """Trains seeds first_seed.. as one vmapped program for config.num_updates updates; returns
    (last chunk metrics, eval metrics), each {name: [num_seeds]}."""
    learner = make_ppo(config, make(env_id))
    updates_per_chunk = config.num_updates // num_chunks
    chunk = make_chunk_fn(learner, updates_per_chunk)
    state = init_seeds(learner, first_seed, num_seeds)
    for _ in range(num_chunks):
        state, metrics = chunk(state)
    eval_keys = seed_keys([seed + 100 for seed in range(first_seed, first_seed + num_seeds)])
    evaluation = jax.jit(jax.vmap(learner.evaluate))(state, eval_keys)
    return jax.device_get(metrics), jax.device_get(evaluation)


def train_and_evaluate(config: PPOConfig, env_id: str, seed: int = 0):
    """One seed: (last chunk metrics, eval metrics) as floats."""
    metrics, evaluation = train_seeds(config, env_id, seed, 1)
    return jax.tree.map(lambda x: float(x[0]), metrics), jax.tree.map(lambda x: float(x[0]), evaluation)


def test_cartpole_solves_within_500k_steps():
    config = default_config("gymnax/CartPole-v1", total_steps=500_000)
    metrics, evaluation = train_and_evaluate(config, "gymnax/CartPole-v1")
    assert evaluation["eval_return"] >= 475.0, (metrics, evaluation)
    assert metrics["episode_return"] >= 400.0, metrics  # the stochastic policy, last quarter of training


def test_pendulum_reaches_minus_300():
    config = default_config("gymnax/Pendulum-v1", total_steps=200_000)
    metrics, evaluation = train_and_evaluate(config, "gymnax/Pendulum-v1")
    assert evaluation["eval_return"] >= -300.0, (metrics, evaluation)


@pytest.mark.slow
def test_cartpole_solves_for_most_of_twelve_more_seeds():
    # PPO on CartPole collapses late on a few seeds (about 1 in 12 over 36 seeds, with either
    # jax.random.permutation or our shuffle): a rate over seeds, not any one seed, is the claim.
    config = default_config("gymnax/CartPole-v1", total_steps=500_000)
    _, evaluation = train_seeds(config, "gymnax/CartPole-v1", first_seed=1, num_seeds=12)
    chex.assert_shape(evaluation["eval_return"], (12,))
    assert (evaluation["eval_return"] >= 475.0).sum() >= 10, evaluation["eval_return"]


def test_vmapped_seeds_differ_and_match_single_seed_runs():
    config = PPOConfig(num_envs=4, rollout_length=16, num_minibatches=2, num_epochs=2, hidden_sizes=(16,),
                       total_steps=4 * 16 * 4, normalize_observations=True)
    learner = make_ppo(config, make("gymnax/CartPole-v1"))
    chunk = make_chunk_fn(learner, 2)
    batched_state, batched_metrics = chunk(init_seeds(learner, 0, 3))
    np.testing.assert_array_equal(batched_metrics["update_fraction"], 1.0)  # no KL stop by default
    kernels = batched_state.params["params"]["actor_trunk"]["MLP_0"]["Dense_0"]["kernel"]
    for first, second in ((0, 1), (1, 2), (0, 2)):
        assert not np.allclose(kernels[first], kernels[second])
    single_state, single_metrics = make_chunk_fn(learner, 2)(init_seeds(learner, 1, 1))
    seed_one = jax.tree.map(lambda x: x[1:2], (batched_state, batched_metrics))
    chex.assert_trees_all_close(seed_one, (single_state, single_metrics), rtol=1e-5, atol=1e-5)



@pytest.mark.slow
def test_interrupted_run_resumes_bit_for_bit(tmp_path):
    """Through the runner: obs/reward normalizers, env state and RNG all live in the checkpoint."""
    config = PPOConfig(num_envs=4, rollout_length=16, num_minibatches=2, num_epochs=2, hidden_sizes=(16,),
                       normalize_observations=True, normalize_rewards=True, total_steps=64 * 8)
    run = RunConfig(total_steps=64 * 8, num_seeds=2, log_every=64 * 2, eval_every=64 * 4, progress=False,
                    tensorboard=False)

    def train_ppo(run_dir, **options):
        learner = make_ppo(config, make("gymnax/CartPole-v1"))
        train(learner, run, run_dir, algo="ppo", env_id="gymnax/CartPole-v1", **options)

    train_ppo(tmp_path / "full")
    train_ppo(tmp_path / "resumed", max_chunks=2)
    train_ppo(tmp_path / "resumed", resume=True)
    volatile = {"wall_time", "sps"}
    full, resumed = ([{k: v for k, v in record.items() if k not in volatile} for record in read_metrics(run_dir)]
                     for run_dir in (tmp_path / "full", tmp_path / "resumed"))
    assert full == resumed
