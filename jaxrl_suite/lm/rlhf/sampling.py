"""Sampling responses on fixed-width prompts with `models.generate`, the sampler's log-probs, and evaluation.

Responses are cut after their first EOS (finetune.response_mask); an evaluation scores one sample per held-out prompt.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from functools import partial

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxrl_suite.lm.finetune import EOS_ID, encode_prompts, response_mask, sequence_logprobs
from jaxrl_suite.lm.rlhf.task import gold_reward, make_prompts, score_rows, teacher_responses, win_rate
from jaxrl_suite.models import ModelConfig, generate

EVAL_SEED = 2_000_000_000
"""Seed of the held-out prompts and their teacher (reference) responses, the same for every run."""
EVAL_SAMPLE_KEY = 17
"""PRNG key of evaluation sampling: every evaluation draws with the same key (common random numbers)."""


@partial(jax.jit, static_argnames=("model", "response_width", "temperature"))
def sample_rows(params: chex.ArrayTree, model: ModelConfig, prompt_tokens: jax.Array, key: jax.Array,
                response_width: int, temperature: float) -> tuple[jax.Array, jax.Array]:
    """Rows [b, prompt_width + response_width] (prompt, sampled response) and the sampler's response log-probs [b].

    The log-probs are log_softmax(logits / temperature) of the sampled tokens from the generator's own logits,
    summed over finetune.response_mask (up to and including the first EOS), as the learner recomputes them.
    """
    chex.assert_rank(prompt_tokens, 2)
    generation = generate(params, model, prompt_tokens, response_width, key, temperature)
    rows = jnp.concatenate([prompt_tokens, generation.tokens], axis=1)
    prompt_width = prompt_tokens.shape[1]
    token_logprobs = jnp.take_along_axis(jax.nn.log_softmax(generation.logits / temperature, axis=-1),
                                         generation.tokens[..., None], axis=-1)[..., 0]
    in_response = response_mask(rows, prompt_width)[:, prompt_width:]
    sampler_logprobs = jnp.where(in_response, token_logprobs, 0.0).sum(axis=1)
    chex.assert_shape(sampler_logprobs, (prompt_tokens.shape[0],))
    return rows, sampler_logprobs


@partial(jax.jit, static_argnames=("model", "prompt_width", "temperature"))
def response_logprobs(params: chex.ArrayTree, model: ModelConfig, rows: jax.Array, prompt_width: int,
                      temperature: float) -> jax.Array:
    """finetune.sequence_logprobs of rows over their response mask at the sampling temperature: float32 [b]."""
    return sequence_logprobs(model, params, rows, response_mask(rows, prompt_width), temperature)


def eos_rate(rows: np.ndarray, prompt_width: int) -> float:
    """Fraction of rows whose response holds an EOS."""
    return float(np.mean((np.asarray(rows)[:, prompt_width:] == EOS_ID).any(axis=1)))


@dataclasses.dataclass(frozen=True)
class EvalSet:
    """Held-out prompts, their encoded tokens, and the gold scores of the teacher's reference responses."""

    prompts: list[str]
    prompt_tokens: np.ndarray
    reference_scores: np.ndarray


def make_eval_set(num_prompts: int, prompt_width: int) -> EvalSet:
    """num_prompts prompts from EVAL_SEED and the noisy teacher's responses to them (the reference)."""
    prompts = make_prompts(num_prompts, EVAL_SEED)
    references = teacher_responses(prompts, EVAL_SEED)
    scores = np.asarray([gold_reward(p, r, True) for p, r in zip(prompts, references, strict=True)], np.float32)
    return EvalSet(prompts, encode_prompts(prompts, prompt_width), scores)


def evaluate_policy(model: ModelConfig, params: chex.ArrayTree, eval_set: EvalSet, response_width: int,
                    temperature: float, reference_params: chex.ArrayTree | None = None) -> dict[str, float]:
    """One sample per held-out prompt: win rate vs the reference under the gold reward, mean gold score,
    EOS rate, and (with reference_params) the KL estimate mean(log pi(y) - log pi_sft(y)) at the temperature."""
    rows, sampler_logprobs = sample_rows(params, model, jnp.asarray(eval_set.prompt_tokens),
                                         jax.random.PRNGKey(EVAL_SAMPLE_KEY), response_width, temperature)
    rows = np.asarray(rows)
    prompt_width = eval_set.prompt_tokens.shape[1]
    scores = score_rows(eval_set.prompts, rows, prompt_width)
    result = {"win_rate": win_rate(scores, eval_set.reference_scores), "gold_score": float(scores.mean()),
              "eos_rate": eos_rate(rows, prompt_width)}
    if reference_params is not None:
        reference = response_logprobs(reference_params, model, jnp.asarray(rows), prompt_width, temperature)
        result["kl_to_sft"] = float(np.mean(np.asarray(sampler_logprobs) - np.asarray(reference)))
    return result


def pair_rows(prompts: Sequence[str], prompt_width: int) -> tuple[list[str], np.ndarray]:
    """Each prompt twice in a row (prompt i -> rows 2i and 2i + 1, the two responses of one pair): texts and tokens."""
    doubled = [prompt for prompt in prompts for _ in range(2)]
    return doubled, encode_prompts(doubled, prompt_width)
