"""One learner update of online RLHF on a minibatch of sampled pairs: online DPO, RLOO (k = 2) or best-of-2 SFT.

Rows 2i and 2i + 1 are the two responses to prompt i; log-probs use logits / temperature for policy and reference.
"""

from __future__ import annotations

from collections.abc import Callable

import chex
import jax
import jax.numpy as jnp
import optax

from jaxrl_suite.lm.finetune import masked_sft_loss, response_mask, sequence_logprobs
from jaxrl_suite.lm.rlhf.losses import chosen_and_rejected, dpo_loss, pair_by_gold_score, rloo_loss
from jaxrl_suite.lm.train import TrainState
from jaxrl_suite.models import ModelConfig

ALGOS = ("dpo", "rloo", "best-of-2")


def _pairs(values: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(first, second) responses of each pair: values[0::2], values[1::2]."""
    return values[0::2], values[1::2]


def make_update(algo: str, model: ModelConfig, optimizer: optax.GradientTransformation, prompt_width: int,
                temperature: float, beta: float, rloo_kl_coef: float
                ) -> Callable[..., tuple[TrainState, dict[str, jax.Array]]]:
    """jit of update(state, reference_params, rows [2B, T], scores [2B], sampler_logprobs [2B]) -> (state, metrics).

    dpo: chosen = the higher gold score of each pair (a tie goes to the first), dpo_loss with beta.
    rloo: k = 2 leave-one-out advantages of gold - rloo_kl_coef * (sampler log-prob - reference log-prob).
    best-of-2: masked SFT loss on the chosen responses. metrics["kl_to_sft"] is the batch's
    mean(sampler log-prob - reference log-prob), the behaviour policy's KL estimate to the SFT model.
    The state is not donated: the generator may still hold its params.
    """
    if algo not in ALGOS:
        raise ValueError(f"invalid algo={algo!r}: expected one of {ALGOS}")

    def loss_fn(params, reference_params, rows, scores, sampler_logprobs):
        mask = response_mask(rows, prompt_width)
        reference = jax.lax.stop_gradient(sequence_logprobs(model, reference_params, rows, mask, temperature))
        metrics = {"kl_to_sft": jnp.mean(sampler_logprobs - reference)}
        chosen_is_first = pair_by_gold_score(*_pairs(scores))
        if algo == "best-of-2":
            first, second = _pairs(rows)
            chosen_rows = jnp.where(chosen_is_first[:, None], first, second)
            loss, _ = masked_sft_loss(model, params, chosen_rows, response_mask(chosen_rows, prompt_width))
            return loss, metrics
        logprobs = sequence_logprobs(model, params, rows, mask, temperature)
        if algo == "dpo":
            chosen, rejected = chosen_and_rejected(chosen_is_first, *_pairs(logprobs))
            reference_chosen, reference_rejected = chosen_and_rejected(chosen_is_first, *_pairs(reference))
            loss, dpo_metrics = dpo_loss(chosen, rejected, reference_chosen, reference_rejected, beta)
            return loss, metrics | {"margin": dpo_metrics.margin, "accuracy": dpo_metrics.accuracy}
        rewards = scores - rloo_kl_coef * (sampler_logprobs - reference)
        loss, _ = rloo_loss(logprobs.reshape(-1, 2), rewards.reshape(-1, 2))
        return loss, metrics

    def update(state: TrainState, reference_params: chex.ArrayTree, rows: jax.Array, scores: jax.Array,
               sampler_logprobs: jax.Array) -> tuple[TrainState, dict[str, jax.Array]]:
        chex.assert_rank(rows, 2)
        chex.assert_shape([scores, sampler_logprobs], (rows.shape[0],))
        chex.assert_type([rows, scores, sampler_logprobs], [int, float, float])
        if rows.shape[0] % 2:
            raise ValueError(f"invalid rows.shape={rows.shape}: expected an even number of rows (pairs)")
        (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, reference_params, rows, scores, sampler_logprobs)
        metrics = metrics | {"loss": loss, "grad_norm": optax.global_norm(grads)}
        return state.apply_gradients(optimizer, grads), metrics

    return jax.jit(update)
