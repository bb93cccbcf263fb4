"""Evaluation episodes: the early-exiting loop gives exactly what a full-length scan gives, by
hand on CartPole with a constant action, and caps episodes at max_steps."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl_suite.agents.episodes import evaluate_policy
from jaxrl_suite.envs import make


def full_length_returns(env, act, key, num_envs, max_steps):
    """The reference: always max_steps steps, rewards counted until each episode's end."""
    state = jax.vmap(env.reset)(jax.random.split(key, num_envs))

    def step(carry, _):
        state, total, running = carry
        state = jax.vmap(env.step)(state, act(state.obs))
        total = total + jnp.where(running, state.reward, 0.0)
        return (state, total, running & ~state.done), None

    (_, total, running), _ = jax.lax.scan(step, (state, jnp.zeros(num_envs), jnp.ones(num_envs, bool)), None,
                                          length=max_steps)
    return total, running


def test_early_exit_matches_the_full_scan_and_caps_at_max_steps():
    env = make("gymnax/CartPole-v1")
    push_left = lambda obs: jnp.zeros(obs.shape[0], jnp.int32)  # noqa: E731  falls within ~10 steps
    key = jax.random.PRNGKey(0)
    result = jax.jit(lambda k: evaluate_policy(env, push_left, k, 8, 500))(key)
    total, running = full_length_returns(env, push_left, key, 8, 500)
    assert not running.any() and 5 <= float(total.mean()) <= 20  # CartPole pays 1 per step
    np.testing.assert_allclose(result["eval_return"], total.mean(), rtol=0, atol=0)
    np.testing.assert_allclose(result["eval_return_std"], total.std(), rtol=0, atol=0)
    assert float(result["eval_finished_fraction"]) == 1.0
    capped = evaluate_policy(env, push_left, key, 8, 3)
    assert float(capped["eval_return"]) == 3.0 and float(capped["eval_finished_fraction"]) == 0.0
