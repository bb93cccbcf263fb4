"""The critic half of a SAC or TD3 gradient step: the ensemble's regression on the TD target,
with CHAIN's value churn on a reference batch when churn is on, and one optimizer step.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxrl_suite.agents.replay import Transition
from jaxrl_suite.agents.targets import apply_gradients, critic_regression_loss
from jaxrl_suite.plasticity import chain_value_churn


class CriticStep(NamedTuple):
    """The updated critic and its optimizer state, the loss, Q [num_critics, B] on the batch,
    CHAIN's value churn ([] 0 without a reference batch), and what the plasticity units score:
    the capture, the perturbation gradients and the parameter gradients."""

    critic: Any
    opt_state: Any
    loss: jax.Array
    q: jax.Array
    value_churn: jax.Array
    capture: Any
    perturbation_grads: Any
    grads: Any


def critic_step(agent: Any, params: Any, batch: Transition, target: jax.Array,
                reference_batch: Transition | None) -> CriticStep:
    """One step of `agent`'s critic ensemble (agent.critic, agent.units.critic,
    agent.critic_optimizer, agent.config.churn) from `params` (.critic, .critic_opt_state and,
    with a reference_batch, .churn, a ChurnState whose reference is (actor, critic) one gradient
    step earlier) towards
    `target` [B]: mean-squared regression + churn.value_coefficient * value churn."""
    units = agent.units

    def loss_fn(critic_params, perturbations):
        q, capture = units.critic.apply(critic_params, perturbations, batch.obs, batch.action)
        value_churn = jnp.zeros(())
        if reference_batch is not None:
            value_churn = chain_value_churn(
                agent.critic.apply(critic_params, reference_batch.obs, reference_batch.action),
                agent.critic.apply(params.churn.reference_params[1], reference_batch.obs, reference_batch.action),
            )
        return (critic_regression_loss(q, target) + agent.config.churn.value_coefficient * value_churn,
                (q, value_churn, capture))

    (loss, (q, value_churn, capture)), (grads, perturbation_grads) = jax.value_and_grad(
        loss_fn, argnums=(0, 1), has_aux=True
    )(params.critic, units.critic.perturbations(params.critic, batch.obs, batch.action))
    critic, opt_state = apply_gradients(agent.critic_optimizer, params.critic, params.critic_opt_state, grads)
    return CriticStep(critic, opt_state, loss, q, value_churn, capture, perturbation_grads, grads)
