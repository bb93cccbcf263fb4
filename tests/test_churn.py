"""C-CHAIN churn losses and the adaptive coefficient, against hand derivations and the formula."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_suite.plasticity import (
    ChurnConfig,
    PlasticityConfig,
    advance_reference,
    chain_policy_coefficient,
    chain_value_churn,
    churn_categorical_kl,
    churn_gaussian_kl,
    churn_mse,
    init_churn_state,
    record_losses,
    restart_on_task_switch,
)

INPUTS = jax.random.normal(jax.random.PRNGKey(0), (6, 3))


def linear(weights, inputs):
    return inputs @ weights


def test_churn_mse_zero_for_identical_params_and_gradient_by_hand():
    weights = jax.random.normal(jax.random.PRNGKey(1), (3, 2))
    reference = weights + 0.1 * jax.random.normal(jax.random.PRNGKey(2), (3, 2))

    def loss(w, ref):
        return churn_mse(linear(w, INPUTS), linear(ref, INPUTS))

    assert float(loss(weights, weights)) == 0.0
    np.testing.assert_array_equal(jax.grad(loss)(weights, weights), 0.0)
    # L = 1/(B*O) sum (x W - x W_ref)^2  =>  dL/dW = 2/(B*O) x^T (x W - x W_ref); no gradient to W_ref
    expected = 2.0 / (6 * 2) * INPUTS.T @ (INPUTS @ weights - INPUTS @ reference)
    np.testing.assert_allclose(jax.grad(loss)(weights, reference), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(jax.grad(loss, argnums=1)(weights, reference), 0.0)


def test_categorical_kl_churn_zero_and_gradient_by_hand():
    logits = jax.random.normal(jax.random.PRNGKey(3), (6, 4))
    reference_logits = logits + jax.random.normal(jax.random.PRNGKey(4), (6, 4))
    assert float(churn_categorical_kl(logits, logits)) == pytest.approx(0.0, abs=1e-6)
    # d/dlogits mean_x KL(p_ref || softmax(logits)) = (softmax(logits) - p_ref) / B
    expected = (jax.nn.softmax(logits) - jax.nn.softmax(reference_logits)) / 6
    np.testing.assert_allclose(jax.grad(churn_categorical_kl)(logits, reference_logits), expected, atol=1e-6)


def test_gaussian_kl_churn_matches_closed_form():
    mean, log_std = jnp.array([[0.5, -1.0]]), jnp.array([[0.0, 0.3]])
    ref_mean, ref_log_std = jnp.array([[0.0, -1.0]]), jnp.array([[0.2, 0.3]])
    assert float(churn_gaussian_kl(mean, log_std, mean, log_std)) == pytest.approx(0.0, abs=1e-7)
    # KL(N(m0, s0) || N(m1, s1)) = log(s1/s0) + (s0^2 + (m0 - m1)^2) / (2 s1^2) - 1/2, per dimension
    s0, s1 = np.exp(0.2), np.exp(0.0)
    first = np.log(s1 / s0) + (s0**2 + 0.25) / (2 * s1**2) - 0.5
    assert float(churn_gaussian_kl(mean, log_std, ref_mean, ref_log_std)) == pytest.approx(first, rel=1e-5)


def test_chain_value_churn_sums_critics_and_policy_weight_scales_with_q():
    q = jnp.array([[1.0, 2.0], [0.0, 0.0]])
    reference = jnp.array([[1.0, 0.0], [1.0, 3.0]])
    # critic 0: mean([0, 4]) = 2; critic 1: mean([1, 9]) = 5
    assert float(chain_value_churn(q, reference)) == pytest.approx(7.0)
    np.testing.assert_allclose(jax.grad(chain_value_churn)(q, reference), [[0.0, 2.0], [-1.0, -3.0]])
    config = ChurnConfig(policy_coefficient=5e-4)
    assert float(chain_policy_coefficient(config, jnp.array([-2.0, 4.0]), 3)) == pytest.approx(5e-4 * 3.0 * 3)


def test_adaptive_coefficient_follows_formula():
    config = ChurnConfig(method="cchain", initial_coefficient=100.0, kappa=0.05, window=3, warmup=2)
    state = init_churn_state(config, {"w": jnp.zeros(2)})
    rl_losses = [-2.0, 4.0, -6.0, 8.0]
    churn_losses = [0.5, 1.5, 1.0, 2.0]
    lr_fractions = [1.0, 0.5, 0.5, 0.25]
    expected = [
        100.0,  # 1 update recorded < warmup
        0.05 * np.mean([2, 4]) / (np.mean([0.5, 1.5]) + 1e-8) * 0.5,
        0.05 * np.mean([2, 4, 6]) / (np.mean([0.5, 1.5, 1.0]) + 1e-8) * 0.5,
        0.05 * np.mean([4, 6, 8]) / (np.mean([1.5, 1.0, 2.0]) + 1e-8) * 0.25,  # window of 3
    ]
    assert float(state.coefficient) == 100.0
    for rl_loss, churn_loss, lr_fraction, coefficient in zip(rl_losses, churn_losses, lr_fractions, expected, strict=True):
        state = record_losses(config, state, jnp.float32(rl_loss), jnp.float32(churn_loss), lr_fraction)
        assert float(state.coefficient) == pytest.approx(coefficient, rel=1e-5)

    fixed = dataclasses.replace(config, adaptive=False)
    assert float(record_losses(fixed, state, jnp.float32(1.0), jnp.float32(1.0)).coefficient) == 100.0
    floor = dataclasses.replace(config, min_coefficient=50.0)
    assert float(record_losses(floor, state, jnp.float32(1.0), jnp.float32(1.0)).coefficient) == 50.0


def test_task_switch_restarts_statistics_but_nothing_else():
    config = ChurnConfig(method="cchain", window=4, warmup=1)
    state = init_churn_state(config, {"w": jnp.zeros(2)})
    state = record_losses(config, state, jnp.float32(3.0), jnp.float32(0.1))
    state = advance_reference(state, {"w": jnp.ones(2)})
    params_now = {"w": jnp.full(2, 7.0)}
    same_task = restart_on_task_switch(config, state, params_now, jnp.int32(0))
    jax.tree.map(np.testing.assert_array_equal, same_task, state)
    switched = restart_on_task_switch(config, state, params_now, jnp.int32(1))
    assert float(switched.coefficient) == config.initial_coefficient
    assert int(switched.updates) == 0 and int(switched.task_index) == 1
    np.testing.assert_array_equal(switched.rl_loss_history, 0.0)
    np.testing.assert_array_equal(switched.reference_params["w"], 7.0)


def test_configs_name_field_value_and_valid_choices():
    with pytest.raises(ValueError, match=r"plasticity.method='redox'.*one of"):
        PlasticityConfig(method="redox").validate()
    with pytest.raises(ValueError, match=r"plasticity.max_reset_fraction=0.0"):
        PlasticityConfig(max_reset_fraction=0.0).validate()
    with pytest.raises(ValueError, match=r"churn.window=0"):
        ChurnConfig(window=0).validate()
    assert PlasticityConfig(method="redo").reset_threshold == 0.1
    assert PlasticityConfig(method="regrama").reset_threshold == 0.0
