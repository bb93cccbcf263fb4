"""GAE on hand-computed cases: terminations stop bootstrapping, truncations bootstrap from the
final observation's value, and the recursion never crosses an episode boundary."""

import chex
import jax.numpy as jnp
import numpy as np

from jaxrl_suite.agents.gae import compute_gae

GAMMA, LAMBDA = 0.9, 0.8


def test_gae_with_termination_and_truncation():
    # Env 0: step 1 terminates, step 2 is truncated (final obs value 5.0, while the value of the
    # reset obs acted on at step 3 is 2.0), step 3 ends the rollout (bootstrap value 3.0).
    # Env 1: no episode ends; zero values, unit rewards.
    rewards = jnp.array([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0], [4.0, 1.0]])
    values = jnp.array([[0.5, 0.0], [1.0, 0.0], [1.5, 0.0], [2.0, 0.0]])
    next_values = jnp.array([[1.0, 0.0], [7.0, 0.0], [5.0, 0.0], [3.0, 0.0]])  # 7.0 must be ignored
    terminated = jnp.array([[False, False], [True, False], [False, False], [False, False]])
    truncated = jnp.array([[False, False], [False, False], [True, False], [False, False]])

    advantages, returns = compute_gae(
        rewards, values, next_values, terminated, terminated | truncated, GAMMA, LAMBDA
    )

    # Env 0 by hand:
    #   delta_3 = 4 + 0.9 * 3.0 - 2.0 = 4.7           A_3 = 4.7
    #   delta_2 = 3 + 0.9 * 5.0 - 1.5 = 6.0           A_2 = 6.0   (episode ends: no A_3 term)
    #   delta_1 = 2 + 0             - 1.0 = 1.0       A_1 = 1.0   (terminal: no bootstrap, no A_2)
    #   delta_0 = 1 + 0.9 * 1.0 - 0.5 = 1.4           A_0 = 1.4 + 0.72 * 1.0 = 2.12
    # Env 1: every delta is 1, A_t = 1 + 0.72 * A_{t+1}.
    env1 = [1.0]
    for _ in range(3):
        env1.insert(0, 1.0 + 0.72 * env1[0])
    expected_advantages = np.array([[2.12, env1[0]], [1.0, env1[1]], [6.0, env1[2]], [4.7, env1[3]]])
    np.testing.assert_allclose(advantages, expected_advantages, rtol=1e-6)
    np.testing.assert_allclose(env1, [2.611648, 2.2384, 1.72, 1.0], rtol=1e-6)
    np.testing.assert_allclose(returns, expected_advantages + np.asarray(values), rtol=1e-6)


def test_gae_lambda_one_is_discounted_return_minus_value():
    rewards = jnp.array([1.0, 2.0, 3.0])
    values = jnp.array([0.3, 0.2, 0.1])
    next_values = jnp.array([0.2, 0.1, 10.0])
    no = jnp.zeros(3, bool)
    advantages, returns = compute_gae(rewards, values, next_values, no, no, gamma=0.5, gae_lambda=1.0)
    # Monte Carlo with bootstrap 10.0 at the end: G_2 = 3 + 5 = 8, G_1 = 2 + 4 = 6, G_0 = 1 + 3 = 4.
    np.testing.assert_allclose(returns, [4.0, 6.0, 8.0], rtol=1e-6)
    np.testing.assert_allclose(advantages, [3.7, 5.8, 7.9], rtol=1e-6)


def test_gae_lambda_zero_is_one_step_td():
    rewards = jnp.array([1.0, 2.0])
    values = jnp.array([0.5, 0.25])
    next_values = jnp.array([0.25, 4.0])
    terminated = jnp.array([False, True])
    advantages, _ = compute_gae(rewards, values, next_values, terminated, terminated, 0.5, 0.0)
    np.testing.assert_allclose(advantages, [1.0 + 0.125 - 0.5, 2.0 - 0.25], rtol=1e-6)


def test_gae_shapes_must_match():
    ones = jnp.ones((3, 2))
    with np.testing.assert_raises(AssertionError):
        compute_gae(ones, ones, jnp.ones((3,)), ones.astype(bool), ones.astype(bool), 0.9, 0.9)
    chex.assert_shape(compute_gae(ones, ones, ones, ones > 2, ones > 2, 0.9, 0.9)[0], (3, 2))
