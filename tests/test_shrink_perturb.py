"""Shrink and Perturb: the rule's arithmetic on hand-made trees, its schedule and target copy in
UnitPlasticity, and `--plasticity shrink-perturb` in PPO, DQN, SAC and TD3 with no learner code of its own."""

import dataclasses

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxrl_suite import algorithms
from jaxrl_suite.plasticity import (
    PlasticityConfig,
    ShrinkPerturb,
    UnitPlasticity,
    reset_rule,
    shrink_and_perturb,
)
from jaxrl_suite.runner.chunks import init_seeds, make_chunk_fn

SHRINK_PERTURB = PlasticityConfig(method="shrink-perturb", period=2, shrink_factor=0.5, perturb_scale=0.1)


def test_shrink_and_perturb_by_hand():
    variables = {"params": {"Dense_0": {"kernel": jnp.array([[1.0, 2.0], [3.0, 4.0]]), "bias": jnp.array([1.0, -1.0])}},
                 "stats": {"count": jnp.array(7.0)}}
    fresh = {"params": {"Dense_0": {"kernel": jnp.array([[10.0, 0.0], [0.0, 10.0]]), "bias": jnp.array([0.0, 0.0])}},
             "stats": {"count": jnp.array(0.0)}}
    new = shrink_and_perturb(variables, fresh, 0.5, 0.1)
    # 0.5 * theta + 0.1 * fresh
    np.testing.assert_allclose(new["params"]["Dense_0"]["kernel"], [[1.5, 1.0], [1.5, 3.0]], rtol=1e-6)
    np.testing.assert_allclose(new["params"]["Dense_0"]["bias"], [0.5, -0.5], rtol=1e-6)
    assert float(new["stats"]["count"]) == 7.0  # only "params" is shrunk


def test_rule_comes_from_the_config_and_needs_no_scores():
    rule = reset_rule(SHRINK_PERTURB)
    assert rule == ShrinkPerturb(0.5, 0.1) and not rule.needs_scores and not rule.zeroes_moments
    assert not SHRINK_PERTURB.captures_units  # learners capture no activations for it
    assert reset_rule(PlasticityConfig()) is None


class _MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(1)(nn.relu(nn.Dense(4)(x)))


def test_unit_plasticity_applies_it_every_period_and_copies_into_the_target():
    network = _MLP()
    obs = jnp.ones((3, 2))
    init_fn = lambda key: network.init(key, obs)  # noqa: E731
    optimizer = optax.adam(1e-3)
    units = UnitPlasticity(SHRINK_PERTURB, network.apply, init_fn(jax.random.PRNGKey(0)), (obs,), init_fn, optimizer)
    variables = init_fn(jax.random.PRNGKey(1))
    target = init_fn(jax.random.PRNGKey(2))
    grads = jax.tree.map(jnp.ones_like, variables)
    _, opt_state = optimizer.update(grads, optimizer.init(variables), variables)  # non-zero moments
    key = jax.random.PRNGKey(3)

    same, same_opt, same_target, metrics = units.maybe_reset_with_target(variables, opt_state, target, {}, key,
                                                                         jnp.asarray(1))
    chex.assert_trees_all_equal((same, same_opt, same_target), (variables, opt_state, target))
    assert metrics == {"shrink_perturb_count": 0.0}

    new, new_opt, new_target, metrics = units.maybe_reset_with_target(variables, opt_state, target, {}, key,
                                                                      jnp.asarray(2))
    expected = jax.tree.map(lambda theta, fresh: 0.5 * theta + 0.1 * fresh, variables, init_fn(key))
    chex.assert_trees_all_close(new, expected, rtol=1e-6)
    chex.assert_trees_all_equal(new_target, new)  # the target receives the new weights
    chex.assert_trees_all_equal(new_opt, opt_state)  # Adam's moments are kept
    assert float(metrics["shrink_perturb_count"]) == 1.0
    assert units.no_reset_metrics() == {"shrink_perturb_count": 0.0}


SMALL_OFF_POLICY = dict(buffer_size=64, batch_size=8, hidden_sizes=(16, 16))


@pytest.mark.parametrize("algo, env_id, fields, updates, count_name, expected", [
    # PPO: every 2 iterations -> iterations 2 and 4
    ("ppo", "gymnax/CartPole-v1", dict(num_envs=4, rollout_length=8, num_minibatches=2), 4,
     "shrink_perturb_count", 2),
    # DQN: 2 envs, learning from step 8 -> 1 gradient step per update from update 4 on: steps 1..5 -> 2, 4
    ("dqn", "gymnax/CartPole-v1", dict(SMALL_OFF_POLICY, num_envs=2, learning_starts=8), 8,
     "shrink_perturb_count", 2),
    # SAC: 2 gradient steps per update from update 4 on (steps 1..10): critic and actor at 2, 4, ..., 10
    ("sac", "gymnax/Pendulum-v1", dict(SMALL_OFF_POLICY, num_envs=2, utd_ratio=2, learning_starts=8), 8,
     "critic_shrink_perturb_count", 5),
    ("sac", "gymnax/Pendulum-v1", dict(SMALL_OFF_POLICY, num_envs=2, utd_ratio=2, learning_starts=8), 8,
     "actor_shrink_perturb_count", 5),
    # TD3: the actor's clock is its delayed steps (every 2nd gradient step: 5 of 10) -> 2 and 4
    ("td3", "gymnax/Pendulum-v1", dict(SMALL_OFF_POLICY, num_envs=2, utd_ratio=2, learning_starts=8), 8,
     "actor_shrink_perturb_count", 2),
])
def test_every_learner_runs_it_from_the_config_alone(algo, env_id, fields, updates, count_name, expected):
    config = dataclasses.replace(algorithms.default_config(algo, env_id), **fields, plasticity=SHRINK_PERTURB)
    learner = algorithms.make_learner(algo, config.validate(), env_id)
    state, metrics = make_chunk_fn(learner, updates)(init_seeds(learner, 0, 1))
    assert float(np.sum(metrics[count_name][0])) == expected
    assert not any("dormant_ratio" in name or "reset_units" in name for name in metrics)
    assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(jax.device_get(state))
               if np.issubdtype(np.asarray(leaf).dtype, np.floating))
