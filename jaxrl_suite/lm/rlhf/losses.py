"""Preference and policy-gradient losses of online RLHF: gold-score pairing, DPO and RLOO, as pure jittable functions.

Log-probs are response sums from finetune.sequence_logprobs with the logits divided by the sampling temperature.
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from jaxrl_suite.validation import require


class DPOMetrics(NamedTuple):
    """Batch means of the implicit rewards beta * (logp - ref_logp) and of their margin chosen - rejected;
    accuracy is the fraction of pairs with a positive margin."""

    margin: jax.Array
    accuracy: jax.Array
    chosen_reward: jax.Array
    rejected_reward: jax.Array


def pair_by_gold_score(scores_a: jax.Array, scores_b: jax.Array) -> jax.Array:
    """bool [B]: True where response a is the chosen one, i.e. scores_a >= scores_b (a tie goes to a)."""
    chex.assert_rank([scores_a, scores_b], 1)
    chex.assert_equal_shape([scores_a, scores_b])
    return scores_a >= scores_b


def chosen_and_rejected(chosen_is_a: jax.Array, values_a: jax.Array, values_b: jax.Array
                        ) -> tuple[jax.Array, jax.Array]:
    """(chosen, rejected) values [B] of each pair, e.g. log-probs, by the mask of `pair_by_gold_score`."""
    chex.assert_rank([chosen_is_a, values_a, values_b], 1)
    chex.assert_equal_shape([chosen_is_a, values_a, values_b])
    return jnp.where(chosen_is_a, values_a, values_b), jnp.where(chosen_is_a, values_b, values_a)


def dpo_loss(logp_chosen: jax.Array, logp_rejected: jax.Array, ref_logp_chosen: jax.Array,
             ref_logp_rejected: jax.Array, beta: float | jax.Array = 0.1) -> tuple[jax.Array, DPOMetrics]:
    """mean over pairs of -log sigmoid(beta * ((lp_c - ref_c) - (lp_r - ref_r))): float32 [] and DPOMetrics.

    Each input is float [B], a sum over response tokens (to and including EOS) of log-probs from
    finetune.sequence_logprobs(model, params, tokens, response_mask(tokens, prompt_width), temperature),
    for the policy and the reference alike, at the temperature the responses were sampled with: the logits
    are divided by it before log-softmax, so both score the distributions that were sampled from. The
    reference enters only as data (no gradient flows to it). beta > 0 (checked when a Python number).
    """
    chex.assert_rank([logp_chosen, logp_rejected, ref_logp_chosen, ref_logp_rejected], 1)
    chex.assert_equal_shape([logp_chosen, logp_rejected, ref_logp_chosen, ref_logp_rejected])
    if isinstance(beta, int | float):
        require(beta > 0, "dpo", "beta", beta, "a positive number")
    chosen_reward = beta * (logp_chosen - jax.lax.stop_gradient(ref_logp_chosen))
    rejected_reward = beta * (logp_rejected - jax.lax.stop_gradient(ref_logp_rejected))
    margin = chosen_reward - rejected_reward
    loss = -jax.nn.log_sigmoid(margin).mean()
    metrics = DPOMetrics(margin=margin.mean(), accuracy=(margin > 0).mean(),
                         chosen_reward=chosen_reward.mean(), rejected_reward=rejected_reward.mean())
    return loss.astype(jnp.float32), metrics


def rloo_advantages(rewards: jax.Array) -> jax.Array:
    """float [B, k]: r_i - mean_{j != i} r_j over each prompt's k >= 2 samples (REINFORCE leave-one-out)."""
    chex.assert_rank(rewards, 2)
    k = rewards.shape[1]
    require(k >= 2, "rloo", "k", k, "at least 2 samples per prompt (rewards.shape[1])")
    others_mean = (rewards.sum(axis=1, keepdims=True) - rewards) / (k - 1)
    return rewards - others_mean


def rloo_loss(logp: jax.Array, rewards: jax.Array) -> tuple[jax.Array, jax.Array]:
    """-mean(stop_gradient(advantage) * logp) over [B, k] samples: (loss float32 [], advantages [B, k]).

    logp: float [B, k] response log-probs of the policy (as in `dpo_loss`, at the sampling temperature);
    rewards: float [B, k], k >= 2 samples per prompt; advantages from `rloo_advantages`.
    """
    chex.assert_rank([logp, rewards], 2)
    chex.assert_equal_shape([logp, rewards])
    advantages = jax.lax.stop_gradient(rloo_advantages(rewards))
    return -(advantages * logp).mean().astype(jnp.float32), advantages
