"""PPO learning over vmapped seeds on gymnax classic control, and seeds through the runner's chunks.

Each learning test asserts a solved count over seeds, sized from the success rate measured over
64 (or 32) seeds by experiments/seed_robustness.py (docs/seed_robustness.md): a correct learner
fails it with probability < 1e-3, whatever the CPU's float rounding does to any one seed.
"""

import chex
import jax
import numpy as np
import pytest

from jaxrl_suite.agents.ppo import PPOConfig, default_config, make_ppo
from jaxrl_suite.envs import make
from jaxrl_suite.reference_tasks import solved_return
from jaxrl_suite.runner import RunConfig, read_metrics, train
from jaxrl_suite.runner.chunks import init_seeds, make_chunk_fn
from tests.seeded_learning import assert_learner_solves

CARTPOLE_SUCCESS_RATE = 0.850
"""Lowest lower end of the Wilson 95% intervals measured over three CPU code paths (>= 475 within
500k env steps, 64 seeds each): native and AVX2 62/64 (0.893), SSE4_2 60/64 (0.850)."""


def assert_default_solves(env_id: str, total_steps: int, num_seeds: int, success_rate: float,
                          expected_min_solved: int) -> None:
    """The family default trained on seeds 0..num_seeds-1 solves on >= expected_min_solved seeds."""
    config = default_config(env_id, total_steps=total_steps)
    assert_learner_solves(make_ppo(config, make(env_id)), total_steps, num_seeds, solved_return(env_id),
                          success_rate, expected_min_solved)


def test_cartpole_solves_on_most_of_16_seeds():
    """16 seeds, >= 8 must reach 475: P(Binomial(16, 0.850) < 8) = 1.6e-4 (stats.failure_probability);
    8 is the largest count below 1e-3 (P(Binomial(16, 0.850) < 9) >= 1e-3)."""
    assert_default_solves("gymnax/CartPole-v1", 500_000, 16, CARTPOLE_SUCCESS_RATE, 8)


PENDULUM_SUCCESS_RATE = 0.893
"""Lower end of the Wilson 95% interval of 32/32 seeds solved (>= -300 within 500k env steps)."""


@pytest.mark.slow
def test_pendulum_solves_on_most_of_8_seeds():
    """8 seeds, >= 4 must reach -300: P(Binomial(8, 0.893) < 4) = 5.9e-4 (stats.failure_probability)."""
    assert_default_solves("gymnax/Pendulum-v1", 500_000, 8, PENDULUM_SUCCESS_RATE, 4)


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
