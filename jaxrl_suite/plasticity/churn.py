"""Churn reduction: C-CHAIN's regularizer with its adaptive coefficient, and CHAIN's SAC/TD3 terms.

C-CHAIN: arXiv 2506.00592; CHAIN: Tang & Berseth, NeurIPS 2024. Churn is the change of the
network's outputs on reference inputs caused by one gradient step; the regularizer pulls
f_theta(x_ref) towards f_{theta one step earlier}(x_ref).
"""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
from flax import struct

from jaxrl_suite.plasticity.config import ChurnConfig

COEFFICIENT_EPSILON = 1e-8


@struct.dataclass
class ChurnState:
    """C-CHAIN's statistics inside a TrainState (W = config.window).

    coefficient:        [] float32 lambda applied to the churn loss at the next update.
    rl_loss_history:    [W] float32 |L_rl| of recent updates (ring buffer).
    churn_loss_history: [W] float32 unweighted churn loss of recent updates.
    updates:            [] int32 updates recorded since the start or the last task switch.
    task_index:         [] int32 task the statistics belong to (continual RL).
    reference_params:   the parameters one gradient step earlier (any pytree).
    """

    coefficient: jax.Array
    rl_loss_history: jax.Array
    churn_loss_history: jax.Array
    updates: jax.Array
    task_index: jax.Array
    reference_params: Any


def init_churn_state(config: ChurnConfig, params: Any, task_index: jax.Array | int = 0) -> ChurnState:
    """Fresh statistics; the reference starts as a copy of `params` (zero churn)."""
    return ChurnState(
        coefficient=jnp.asarray(config.initial_coefficient, jnp.float32),
        rl_loss_history=jnp.zeros((config.window,), jnp.float32),
        churn_loss_history=jnp.zeros((config.window,), jnp.float32),
        updates=jnp.zeros((), jnp.int32),
        task_index=jnp.asarray(task_index, jnp.int32),
        reference_params=params,
    )


def churn_mse(current: jax.Array, reference: jax.Array) -> jax.Array:
    """mean((f_theta(x_ref) - stop_grad(f_ref(x_ref)))^2) over every element: [B, ...] -> [].
    Policy means (continuous PPO), Q values (DQN, SAC/TD3 critics), actions (TD3 actor)."""
    chex.assert_equal_shape([current, reference])
    return jnp.mean(jnp.square(current - jax.lax.stop_gradient(reference)))


def chain_value_churn(q_values: jax.Array, reference_q_values: jax.Array) -> jax.Array:
    """CHAIN's value churn of a critic ensemble: sum over critics of the MSE between Q_i(x_ref)
    and stop_grad(Q_i,ref(x_ref)). q_values, reference_q_values [num_critics, B] -> []."""
    chex.assert_equal_shape([q_values, reference_q_values])
    chex.assert_rank(q_values, 2)
    return jnp.sum(jnp.mean(jnp.square(q_values - jax.lax.stop_gradient(reference_q_values)), axis=-1))


def churn_categorical_kl(current_logits: jax.Array, reference_logits: jax.Array) -> jax.Array:
    """mean_x KL(p_ref(.|x) || p_theta(.|x)) for logits [B, num_actions] -> [].

    The cross-entropy churn of discrete PPO minus the reference entropy, which does not depend
    on theta: same gradient, and 0 when the two networks agree.
    """
    chex.assert_equal_shape([current_logits, reference_logits])
    reference_log_probs = jax.nn.log_softmax(jax.lax.stop_gradient(reference_logits))
    current_log_probs = jax.nn.log_softmax(current_logits)
    return jnp.mean(jnp.sum(jnp.exp(reference_log_probs) * (reference_log_probs - current_log_probs), -1))


def churn_gaussian_kl(
    mean: jax.Array, log_std: jax.Array, reference_mean: jax.Array, reference_log_std: jax.Array
) -> jax.Array:
    """mean_x KL(N_ref || N_theta) of diagonal Gaussians (SAC's pre-tanh policy), [B, D] -> []."""
    chex.assert_equal_shape([mean, log_std, reference_mean, reference_log_std])
    reference_mean = jax.lax.stop_gradient(reference_mean)
    reference_log_std = jax.lax.stop_gradient(reference_log_std)
    variance_ratio = jnp.exp(2.0 * (reference_log_std - log_std))
    mean_term = jnp.square(mean - reference_mean) * jnp.exp(-2.0 * log_std)
    per_dimension = 0.5 * (variance_ratio + mean_term - 1.0) + log_std - reference_log_std
    return jnp.mean(jnp.sum(per_dimension, -1))


def chain_policy_coefficient(config: ChurnConfig, q_values: jax.Array, action_dim: int) -> jax.Array:
    """CHAIN's SAC/TD3 policy churn weight: policy_coefficient * mean|Q| * action_dim (no gradient)."""
    return config.policy_coefficient * jax.lax.stop_gradient(jnp.abs(q_values).mean()) * action_dim


def record_losses(
    config: ChurnConfig, state: ChurnState, rl_loss: jax.Array, churn_loss: jax.Array, lr_fraction: jax.Array | float = 1.0
) -> ChurnState:
    """Appends one update's losses and sets the coefficient for the next update.

    During the first `warmup` updates lambda = initial_coefficient; afterwards
    lambda = max(min_coefficient, kappa * mean|L_rl| / (mean L_churn + 1e-8) * lr_fraction),
    means over the last min(updates, window) updates. lr_fraction: current / initial step size.
    """
    chex.assert_shape([rl_loss, churn_loss], ())
    slot = state.updates % config.window
    rl_history = state.rl_loss_history.at[slot].set(jnp.abs(rl_loss).astype(jnp.float32))
    churn_history = state.churn_loss_history.at[slot].set(jnp.asarray(churn_loss, jnp.float32))
    updates = state.updates + 1
    filled = jnp.minimum(updates, config.window).astype(jnp.float32)
    mean_rl = rl_history.sum() / filled
    mean_churn = churn_history.sum() / filled
    adapted = config.kappa * mean_rl / (mean_churn + COEFFICIENT_EPSILON) * lr_fraction
    adapted = jnp.maximum(adapted, config.min_coefficient)
    use_adapted = config.adaptive & (updates >= config.warmup)
    coefficient = jnp.where(use_adapted, adapted, config.initial_coefficient).astype(jnp.float32)
    return state.replace(
        coefficient=coefficient, rl_loss_history=rl_history, churn_loss_history=churn_history, updates=updates
    )


def advance_reference(state: ChurnState, params_before_step: Any) -> ChurnState:
    """After a gradient step: the reference becomes the parameters that step started from."""
    return state.replace(reference_params=params_before_step)


def restart_on_task_switch(config: ChurnConfig, state: ChurnState, params: Any, task_index: jax.Array) -> ChurnState:
    """At a task switch (task_index differs from the state's): lambda back to its initial
    value, loss history cleared, reference = current params. The optimizer is not touched."""
    switched = jnp.asarray(task_index, jnp.int32) != state.task_index
    restarted = init_churn_state(config, params, task_index)
    return jax.tree.map(lambda fresh, kept: jnp.where(switched, fresh, kept), restarted, state)


def churn_metrics(state: ChurnState, churn_loss: jax.Array) -> dict[str, jax.Array]:
    """{"churn_loss", "churn_coefficient"} for the learner's metrics."""
    return {"churn_loss": churn_loss, "churn_coefficient": state.coefficient}
