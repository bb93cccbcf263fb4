"""Every learner's update hands back the TrainState types it was given (weak types included), so
the runner's chunk program compiles once per run and not again after its first call.

Traced with jax.eval_shape only: nothing is compiled.
"""

import jax
import pytest

from jaxrl_suite import algorithms
from jaxrl_suite.envs.conformance import type_changes


@pytest.mark.parametrize("algo, env_id", [
    ("ppo", "gymnax/CartPole-v1"), ("ppo", "gymnax/Pendulum-v1"), ("dqn", "gymnax/Breakout-MinAtar"),
    ("sac", "gymnax/Pendulum-v1"), ("td3", "gymnax/Pendulum-v1"), ("sac", "brax/inverted_pendulum"),
])
def test_update_keeps_the_state_types(algo, env_id):
    learner = algorithms.make_learner(algo, algorithms.default_config(algo, env_id), env_id)
    state = jax.eval_shape(learner.init, jax.random.PRNGKey(0))
    updated, _ = jax.eval_shape(learner.update, state)
    changed = type_changes(state, updated)
    assert not changed, changed
