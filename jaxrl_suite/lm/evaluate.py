"""Language-model evaluations: validation loss, per-position loss, length extrapolation, needle-in-a-haystack.

The measurements behind the Forgetting Transformer paper's figures (arXiv 2503.02130), at byte level.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from functools import partial

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxrl_suite.lm.data import END_OF_DOCUMENT, Corpus, encode, packed_windows
from jaxrl_suite.models import LanguageModel, ModelConfig, generate

NEEDLE_KEY = "secret_number"
NEEDLE_DIGITS = 6


def token_losses(model: ModelConfig, params: chex.ArrayTree, tokens: jax.Array, batch_size: int,
                 acp_eps: float | tuple[float | None, ...] | None = None) -> jax.Array:
    """Cross-entropy of every next token: tokens [n, seq + 1] -> losses [n, seq] float32 (batch_size rows at a time)."""
    network = LanguageModel(model)

    def one_sequence(sequence: jax.Array) -> jax.Array:
        logits = network.apply({"params": params}, sequence[None, :-1], acp_eps)[0]
        return optax.softmax_cross_entropy_with_integer_labels(logits, sequence[1:])

    return jax.lax.map(one_sequence, tokens, batch_size=batch_size)


def mean_loss(model: ModelConfig, params: chex.ArrayTree, tokens: jax.Array, batch_size: int) -> jax.Array:
    """Mean next-token loss (nats/token) over tokens [n, seq + 1]."""
    return token_losses(model, params, tokens, batch_size).mean()


@partial(jax.jit, static_argnames=("model", "batch_size", "acp_eps"))
def position_losses(model: ModelConfig, params: chex.ArrayTree, tokens: jax.Array, batch_size: int,
                    acp_eps: float | tuple[float | None, ...] | None = None) -> jax.Array:
    """Loss at every position averaged over sequences: tokens [n, seq + 1] -> [seq]."""
    return token_losses(model, params, tokens, batch_size, acp_eps).mean(axis=0)


def extrapolation_summary(curve: np.ndarray, train_length: int) -> dict[str, float]:
    """Mean loss of contexts 1x, 2x, 4x the training length, and of the positions beyond it.

    curve: [>= 4 * train_length] per-position loss from windows that start at the same points;
    by causality the mean of its first m positions is the loss of m-token windows.
    """
    summary = {}
    for multiple in (1, 2, 4):
        if curve.size >= multiple * train_length:
            summary[f"loss_{multiple}x"] = float(curve[:multiple * train_length].mean())
    for low, high in ((1, 2), (2, 4)):
        if curve.size >= high * train_length:
            summary[f"loss_positions_{low}x_to_{high}x"] = float(curve[low * train_length:high * train_length].mean())
    return summary


@dataclasses.dataclass(frozen=True)
class NeedleTask:
    """Prompts that hide 'secret_number = DIGITS' in real code and end by asking for it again.

    prompts: [n, context_length] int32; answers: [n, NEEDLE_DIGITS] int32 (digit bytes);
    depths: [n] the needle's relative position in the haystack.
    """

    prompts: np.ndarray
    answers: np.ndarray
    depths: np.ndarray


def needle_task(corpus: Corpus, files: Sequence[str], context_length: int, depths: Sequence[float],
                trials: int, seed: int = 0) -> NeedleTask:
    """`trials` haystacks per depth from `files` (packed, document breaks as blank lines), one needle each."""
    rng = np.random.default_rng([seed, context_length])
    query = encode(f"\n{NEEDLE_KEY} = ")
    prompts, answers, depth_of_row = [], [], []
    needle_example = encode(f"\n{NEEDLE_KEY} = {'0' * NEEDLE_DIGITS}\n")
    haystack_length = context_length - needle_example.size - query.size
    if haystack_length < 16:
        raise ValueError(f"context_length={context_length} leaves no room for a haystack around the needle")
    haystacks = packed_windows(corpus, files, haystack_length - 1, trials)
    haystacks = np.where(haystacks == END_OF_DOCUMENT, ord("\n"), haystacks)
    for depth in depths:
        for trial in range(trials):
            haystack = haystacks[trial % len(haystacks)]
            digits = "".join(str(d) for d in rng.integers(0, 10, NEEDLE_DIGITS))
            needle = encode(f"\n{NEEDLE_KEY} = {digits}\n")
            # Insert at the line break nearest the requested depth, so the needle is a line of its own.
            target = int(depth * haystack_length)
            breaks = np.flatnonzero(haystack == ord("\n"))
            cut = int(breaks[np.argmin(np.abs(breaks - target))]) if breaks.size else target
            prompts.append(np.concatenate([haystack[:cut], needle, haystack[cut:], query]))
            answers.append(encode(digits))
            depth_of_row.append(depth)
    return NeedleTask(np.stack(prompts).astype(np.int32), np.stack(answers).astype(np.int32), np.array(depth_of_row))


@partial(jax.jit, static_argnames=("model",))
def _answer_logits(model: ModelConfig, params: chex.ArrayTree, prompts: jax.Array, answers: jax.Array) -> jax.Array:
    """Teacher-forced logits at the answer positions: [n, digits, vocab]."""
    tokens = jnp.concatenate([prompts, answers[:, :-1]], axis=1)
    logits = LanguageModel(model).apply({"params": params}, tokens)
    return logits[:, prompts.shape[1] - 1:]


def needle_scores(model: ModelConfig, params: chex.ArrayTree, task: NeedleTask, batch_size: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per prompt: greedy KV-cached generation reproduces all digits (exact) and teacher-forced per-digit accuracy."""
    exact, digit_accuracy = [], []
    for start in range(0, len(task.prompts), batch_size):
        prompts = jnp.asarray(task.prompts[start:start + batch_size])
        answers = jnp.asarray(task.answers[start:start + batch_size])
        generated = generate(params, model, prompts, NEEDLE_DIGITS, jax.random.PRNGKey(0)).tokens
        exact.append(np.asarray(jnp.all(generated == answers, axis=1)))
        predicted = jnp.argmax(_answer_logits(model, params, prompts, answers), axis=-1)
        digit_accuracy.append(np.asarray(jnp.mean(predicted == answers, axis=1)))
    return np.concatenate(exact), np.concatenate(digit_accuracy)


def needle_report(model: ModelConfig, params: chex.ArrayTree, corpus: Corpus, files: Sequence[str],
                  context_lengths: Sequence[int], depths: Sequence[float], trials: int, batch_size: int,
                  seed: int = 0) -> dict[str, list]:
    """Exact-match and per-digit accuracy per (context length, depth): {'exact': [[...]], ...}."""
    exact_table, digit_table = [], []
    for context_length in context_lengths:
        task = needle_task(corpus, files, context_length, depths, trials, seed)
        exact, digits = needle_scores(model, params, task, batch_size)
        exact_table.append([float(exact[task.depths == d].mean()) for d in depths])
        digit_table.append([float(digits[task.depths == d].mean()) for d in depths])
    return {"context_lengths": list(context_lengths), "depths": list(depths), "trials": trials,
            "exact": exact_table, "digit_accuracy": digit_table}
