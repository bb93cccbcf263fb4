"""Fine-tuning on fixed-width prompt/response rows of byte tokens: encoding, response masks, log-probabilities, SFT loss.

Rows are prompt bytes space-padded to prompt_width, then response bytes, EOS and spaces; the logits at t predict token t + 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxrl_suite.lm.data import END_OF_DOCUMENT, encode
from jaxrl_suite.models import LanguageModel, ModelConfig
from jaxrl_suite.validation import require

EOS_ID = END_OF_DOCUMENT
"""End of a response: the vocabulary's end-of-document token (256 of lm.data.VOCAB_SIZE = 257); no id is added."""
PAD_ID = ord(" ")
"""Padding of prompts (on the right) and of responses after their EOS: the space byte, as text fields are padded."""


def _byte_rows(texts: Sequence[str], width: int, field: str, minimum: int, what: str,
               suffix: Sequence[int] = ()) -> np.ndarray:
    """Each text's bytes, then `suffix`, then PAD_ID up to `width`: int32 [len(texts), width]."""
    encoded = [np.concatenate([encode(text), np.asarray(suffix, np.int32)]) for text in texts]
    need = max([minimum] + [piece.size for piece in encoded])
    require(width >= need, "finetune", field, width, f"an integer >= {need} for {what}")
    rows = np.full((len(texts), width), PAD_ID, np.int32)
    for row, piece in zip(rows, encoded, strict=True):
        row[:piece.size] = piece
    return rows


def encode_prompts(prompts: Sequence[str], prompt_width: int) -> np.ndarray:
    """Prompts as int32 [batch, prompt_width]: UTF-8 bytes padded on the right with spaces (PAD_ID).

    The prompt half of `encode_rows`, e.g. for `generate`. Raises ValueError (one line) when a prompt's
    byte count exceeds prompt_width or prompt_width < 1.
    """
    require(len(prompts) >= 1, "finetune", "prompts", list(prompts), "at least one prompt")
    return _byte_rows(prompts, prompt_width, "prompt_width", 1, "the longest prompt")


def encode_rows(pairs: Sequence[tuple[str, str]], prompt_width: int, response_width: int) -> np.ndarray:
    """(prompt, response) pairs as int32 [batch, prompt_width + response_width], one row per pair.

    Columns [0, prompt_width): the prompt's UTF-8 bytes, then PAD_ID (space) to prompt_width (left-aligned,
    so every row's response starts at prompt_width, as `generate` needs one prompt length per batch);
    columns [prompt_width, end): the response's bytes, one EOS_ID, then PAD_ID to response_width.
    Raises ValueError (one line naming the width, its value and the smallest that fits) when a prompt or a
    response plus its EOS does not fit.
    """
    require(len(pairs) >= 1, "finetune", "pairs", list(pairs), "at least one (prompt, response) pair")
    prompts = encode_prompts([prompt for prompt, _ in pairs], prompt_width)
    responses = _byte_rows([response for _, response in pairs], response_width, "response_width", 1,
                           "the longest response plus EOS", suffix=(EOS_ID,))
    return np.concatenate([prompts, responses], axis=1)


def response_mask(tokens: jax.Array, prompt_width: int, eos_id: int = EOS_ID) -> jax.Array:
    """bool [batch, T]: True on positions >= prompt_width up to and including the first eos_id there.

    False on the prompt (an eos_id inside it is ignored) and on everything after that first EOS, so
    sampled responses that run on past EOS are cut there; a response without EOS is True to the end.
    prompt_width is a Python int (static under jit), in [1, T).
    """
    chex.assert_rank(tokens, 2)
    chex.assert_type(tokens, int)
    length = tokens.shape[1]
    require(1 <= prompt_width < length, "finetune", "prompt_width", prompt_width,
            f"an integer in [1, {length}) for rows of {length} tokens")
    in_response = jnp.arange(length)[None, :] >= prompt_width
    is_eos = (tokens == eos_id) & in_response
    eos_before = jnp.cumsum(is_eos, axis=1) - is_eos
    return in_response & (eos_before == 0)


def _target_logprobs(model: ModelConfig, params: chex.ArrayTree, tokens: jax.Array,
                     temperature: float | jax.Array) -> jax.Array:
    """log softmax(logits / temperature) of tokens[:, 1:] given tokens[:, :-1]: float32 [batch, T - 1]."""
    logits = LanguageModel(model).apply({"params": params}, tokens[:, :-1])
    log_probs = jax.nn.log_softmax(logits / temperature, axis=-1)
    return jnp.take_along_axis(log_probs, tokens[:, 1:, None], axis=-1)[..., 0]


def _check_rows(tokens: jax.Array, mask: jax.Array) -> None:
    chex.assert_rank(tokens, 2)
    chex.assert_type([tokens, mask], [int, bool])
    chex.assert_equal_shape([tokens, mask])
    if tokens.shape[1] < 2:
        raise ValueError(f"invalid tokens.shape={tokens.shape}: expected rows of at least 2 tokens")


def sequence_logprobs(model: ModelConfig, params: chex.ArrayTree, tokens: jax.Array, mask: jax.Array,
                      temperature: float | jax.Array = 1.0) -> jax.Array:
    """sum over t with mask[:, t] of log p(tokens[:, t] | tokens[:, :t]), logits divided by temperature.

    tokens: int [batch, T]; mask: bool [batch, T] indexed by the scored token, e.g. `response_mask`.
    Alignment: one forward pass over tokens[:, :-1]; the logits at position t - 1 give the distribution of
    token t, so mask[:, 0] is ignored (the first token has no context). Returns float32 [batch].
    """
    _check_rows(tokens, mask)
    if isinstance(temperature, int | float):
        require(temperature > 0, "finetune", "temperature", temperature, "a positive number")
    target_logprobs = _target_logprobs(model, params, tokens, temperature)
    total = jnp.where(mask[:, 1:], target_logprobs, 0.0).sum(axis=1)
    chex.assert_shape(total, (tokens.shape[0],))
    return total.astype(jnp.float32)


def masked_sft_loss(model: ModelConfig, params: chex.ArrayTree, tokens: jax.Array, mask: jax.Array
                    ) -> tuple[jax.Array, jax.Array]:
    """Mean cross-entropy (nats/token) over the masked target tokens, and how many there are.

    tokens, mask as in `sequence_logprobs` (mask[:, 0] ignored). Returns (loss float32 [], count int32 []);
    the loss is 0 when the mask selects nothing.
    """
    _check_rows(tokens, mask)
    targets = mask[:, 1:]
    count = targets.sum(dtype=jnp.int32)
    total = jnp.where(targets, _target_logprobs(model, params, tokens, 1.0), 0.0).sum()
    loss = -total / jnp.maximum(count, 1)
    return loss.astype(jnp.float32), count
