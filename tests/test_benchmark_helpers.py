"""The benchmarks' timing and work-bound helpers on hand-computed cases: interleaved timed runs,
XLA's FLOP count of a matrix product (compiled alone or timed), the widest weight matrix of a
parameter tree, and the shares WorkBound reports."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks.common import (
    WorkBound,
    compiled_flops,
    matmul_flops_per_second,
    time_interleaved,
    time_jitted,
    widest_kernel_shape,
)


def test_compiled_flops_counts_a_matrix_product_and_a_loop_body_once():
    x, w = jnp.ones((8, 16)), jnp.ones((16, 4))
    assert compiled_flops(lambda x, w: x @ w, x, w) == 2 * 8 * 16 * 4
    assert time_jitted(lambda x, w: x @ w, x, w).flops == 2 * 8 * 16 * 4  # the timed program's own count
    square = jnp.ones((16, 16))
    looped = compiled_flops(lambda x: jax.lax.scan(lambda c, _: (c @ square, None), x, None, length=5)[0],
                            jnp.ones((8, 16)))
    assert 2 * 8 * 16 * 16 <= looped < 2 * (2 * 8 * 16 * 16)  # the body once, not five times


def test_widest_kernel_shape_skips_biases():
    params = {"a": {"kernel": jnp.zeros((4, 64)), "bias": jnp.zeros(64)},
              "b": {"kernel": jnp.zeros((64, 64)), "bias": jnp.zeros(64)},
              "c": {"kernel": jnp.zeros((64, 2))}}
    assert widest_kernel_shape(params) == (64, 64)


def test_matmul_rate_is_a_positive_rate():
    rate = matmul_flops_per_second(32, 16, 8, products=4, repeats=1)
    assert np.isfinite(rate) and rate > 0


def test_work_bound_shares():
    # 1 MFLOP per env step at 100k steps/s = 100 GFLOP/s, against a 200 GFLOP/s matmul rate;
    # 1.2x a peer at 90k steps/s needs 108 GFLOP/s = 54% of it.
    bound = WorkBound(flops_per_env_step=1e6, achieved=1e6 * 100_000, matmul_rate=200e9)
    assert bound.fraction_of_matmul_rate == 0.5
    lines = bound.lines(100_000, 90_000, goal_ratio=1.2)
    assert "100.0 GFLOP/s" in lines[0] and "50% of it" in lines[1]
    assert "108.0 GFLOP/s = 54% of the matmul rate" in lines[2]


def test_time_interleaved_alternates_calls_and_keeps_every_run():
    order = []

    def traced(name):
        def fn(x):
            jax.debug.callback(lambda: order.append(name))
            return x + 1

        return fn

    first, second = time_interleaved([(traced("a"), (jnp.float32(1),)), (traced("b"), (jnp.float32(2),))], repeats=3)
    assert order == ["a", "b"] * 3
    assert float(first.output) == 2.0 and float(second.output) == 3.0
    assert len(first.runs_s) == 3 and first.run_s == min(first.runs_s)
    assert min(second.runs_s) <= second.median_s <= max(second.runs_s)


def test_ppo_vs_rejax_step_counts_round_as_each_side_does():
    """rejax rounds a budget up to whole iterations (500,000 at 64 x 128 -> 62 iterations,
    507,904 steps), ours rounds down (61, 499,712)."""
    from types import SimpleNamespace

    from benchmarks.ppo_vs_rejax import rejax_trained_steps, trained_steps

    assert trained_steps({"num_envs": 64, "rollout_length": 128, "total_steps": 500_000}) == 61 * 8192
    rejax_like = SimpleNamespace(num_envs=64, num_steps=128, total_timesteps=500_000, eval_freq=500_000)
    assert rejax_trained_steps(rejax_like) == 62 * 8192
    # two evaluation periods of ceil(300,000 / 8,192) = 37 iterations each
    assert rejax_trained_steps(SimpleNamespace(num_envs=64, num_steps=128, total_timesteps=500_000,
                                               eval_freq=300_000)) == 2 * 37 * 8192


def test_ppo_vs_rejax_gives_rejax_our_budget_and_counts_as_rejax_does():
    """With rejax installed (the `bench` extra): make_rejax trains exactly our env steps, and the
    count formula matches rejax's own `global_step` on a tiny run that rejax rounds up."""
    pytest.importorskip("rejax")
    import dataclasses

    from benchmarks.ppo_vs_rejax import make_rejax, rejax_trained_steps

    settings = dict(num_envs=64, rollout_length=128, num_epochs=4, num_minibatches=4, learning_rate=2.5e-4,
                    gamma=0.99, gae_lambda=0.95, clip_eps=0.2, entropy_coef=0.01, value_coef=0.5,
                    max_grad_norm=0.5, total_steps=500_000)
    assert rejax_trained_steps(make_rejax("CartPole-v1", settings)) == 61 * 8192
    tiny = make_rejax("CartPole-v1", {**settings, "num_envs": 4, "rollout_length": 8, "num_epochs": 1,
                                      "num_minibatches": 1, "total_steps": 100})
    assert rejax_trained_steps(tiny) == 96  # 3 iterations of 32, ours too
    unrounded = dataclasses.replace(tiny, total_timesteps=100, eval_freq=100)
    assert rejax_trained_steps(unrounded) == 128  # rejax's own rounding: 4 iterations
    train_state, _ = jax.jit(unrounded.train)(jax.random.PRNGKey(0))
    assert int(train_state.global_step) == 128


def test_ppo_vs_brax_gives_ours_brax_s_step_count():
    """brax's ppo.train runs 2 epochs of ceil(total / (2 x iteration)) iterations: 1,000,000 at
    256 x 30 -> 2 x 66 iterations = 1,013,760 steps (our runner alone would stop at 130 x 7,680)."""
    from benchmarks.ppo_vs_brax import brax_trained_steps

    assert brax_trained_steps({"num_envs": 256, "rollout_length": 30, "total_steps": 1_000_000}) == 132 * 7680
    assert brax_trained_steps({"num_envs": 256, "rollout_length": 30, "total_steps": 15_360}) == 2 * 7680
    assert brax_trained_steps({"num_envs": 256, "rollout_length": 30, "total_steps": 1}) == 2 * 7680


def test_shared_greedy_return_is_our_evaluate_and_reads_rejax_logits():
    """The one evaluation of both sides in ppo_vs_rejax: on our policy it is our PPO's own
    greedy `evaluate`; rejax_logits gives the logits of rejax's own Categorical (up to its normalization)."""
    import functools

    from benchmarks.ppo_vs_rejax import make_ours, shared_greedy_return

    settings = dict(num_envs=4, rollout_length=8, num_epochs=1, num_minibatches=1, learning_rate=2.5e-4,
                    adam_eps=1e-8, gamma=0.99, gae_lambda=0.95, clip_eps=0.2, entropy_coef=0.01, value_coef=0.5,
                    max_grad_norm=0.5, total_steps=32)
    learner = make_ours("CartPole-v1", settings)
    state, key = learner.init(jax.random.PRNGKey(0)), jax.random.PRNGKey(1)
    shared = shared_greedy_return(learner, functools.partial(learner.policy_outputs, state.params, state.obs_stats),
                                  key)
    assert float(shared) == float(learner.evaluate(state, key)["eval_return"])

    pytest.importorskip("rejax")
    from benchmarks.ppo_vs_rejax import make_rejax, rejax_logits

    algo = make_rejax("CartPole-v1", settings)
    actor_params = algo.init_state(jax.random.PRNGKey(2)).actor_ts.params
    obs = jax.random.normal(jax.random.PRNGKey(3), (5, 4))
    expected = algo.actor.apply(actor_params, obs, method="_action_dist").logits  # distrax normalizes them
    np.testing.assert_allclose(jax.nn.log_softmax(rejax_logits(algo, actor_params)(obs)), expected, rtol=1e-5)
