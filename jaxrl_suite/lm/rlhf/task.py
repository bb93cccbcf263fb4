"""Bag-of-words summaries, an offline byte-level task with a programmatic gold reward and a noisy teacher.

A prompt is a random bag of words; its ideal response lists the TOP_K most frequent words; the teacher writes it with noise.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np

from jaxrl_suite.lm.finetune import EOS_ID, response_mask
from jaxrl_suite.validation import require

WORDS = ("ant", "bee", "cat", "dog", "eel", "elk", "emu", "fox", "gnu", "hen", "owl", "yak")
"""The vocabulary: twelve distinct three-letter lowercase words."""
PROMPT_PREFIX = "sum: "
MIN_PROMPT_WORDS, MAX_PROMPT_WORDS = 6, 12
"""A prompt holds a uniform number of words in this range, each drawn uniformly from WORDS with replacement."""
TOP_K = 3
"""The ideal response's length in words (fewer when the prompt has fewer distinct words)."""
_WORD_BYTES = max(len(word) for word in WORDS)
PROMPT_WIDTH = len(PROMPT_PREFIX) + MAX_PROMPT_WORDS * (_WORD_BYTES + 1)
"""53 bytes: the longest prompt (52 bytes) plus at least one space of padding before the response starts."""
MAX_RESPONSE_WORDS = 2 * TOP_K
RESPONSE_WIDTH = MAX_RESPONSE_WORDS * (_WORD_BYTES + 1)
"""24 bytes: room for MAX_RESPONSE_WORDS words and the EOS (teacher responses have at most TOP_K + 1 words)."""
TEACHER_NOISE = 0.5
"""Probability that a teacher response is corrupted; an exact policy then wins 0.5 + TEACHER_NOISE / 2 = 0.75."""
NO_EOS_SCORE = -1.0
COVERAGE_WEIGHT, ORDER_WEIGHT, LENGTH_WEIGHT = 0.5, 0.5, 0.5
_PROMPT_STREAM, _TEACHER_STREAM = 0, 1


@dataclasses.dataclass(frozen=True)
class RewardTerms:
    """The gold reward of one response and its terms, each in [0, 1] (see `reward_terms`)."""

    coverage: float
    order: float
    length: float
    score: float


def make_prompts(num: int, seed: int) -> list[str]:
    """num prompts "sum: w1 w2 ...", the same for the same seed (numpy Generator on [seed, 0])."""
    require(num >= 1, "rlhf_task", "num", num, "an integer >= 1")
    rng = np.random.default_rng([seed, _PROMPT_STREAM])
    lengths = rng.integers(MIN_PROMPT_WORDS, MAX_PROMPT_WORDS + 1, size=num)
    return [PROMPT_PREFIX + " ".join(rng.choice(WORDS, size=length)) for length in lengths]


def prompt_words(prompt: str) -> list[str]:
    require(prompt.startswith(PROMPT_PREFIX), "rlhf_task", "prompt", prompt, f"text starting {PROMPT_PREFIX!r}")
    return prompt[len(PROMPT_PREFIX):].split()


def ideal_words(prompt: str) -> tuple[str, ...]:
    """The TOP_K most frequent words of the prompt, most frequent first; equal counts in alphabetical order."""
    counts = Counter(prompt_words(prompt))
    ranked = sorted(counts, key=lambda word: (-counts[word], word))
    return tuple(ranked[:TOP_K])


def ideal_response(prompt: str) -> str:
    """The ideal words joined by single spaces (the EOS is added by finetune.encode_rows)."""
    return " ".join(ideal_words(prompt))


def _common_subsequence_length(a: Sequence[str], b: Sequence[str]) -> int:
    previous = [0] * (len(b) + 1)
    for item in a:
        current = [0]
        for j, other in enumerate(b):
            current.append(previous[j] + 1 if item == other else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def _response_text(response: str | Sequence[int] | np.ndarray) -> str:
    if isinstance(response, str):
        return response
    tokens = np.asarray(response, np.int64)
    require(bool(((tokens >= 0) & (tokens < EOS_ID)).all()), "rlhf_task", "response", tokens.tolist(),
            f"byte tokens in [0, {EOS_ID}) before the EOS")
    return bytes(tokens.astype(np.uint8)).decode("utf-8", errors="replace")


def reward_terms(prompt: str, response: str | Sequence[int] | np.ndarray, has_eos: bool) -> RewardTerms:
    """The gold reward: score = 0.5 coverage + 0.5 order - 0.5 length, in [-0.5, 1]; NO_EOS_SCORE = -1 without EOS.

    With ideal = ideal_words(prompt) (m words) and words = the response split on whitespace:
    coverage = |set(words) & set(ideal)| / m; order = LCS(words, ideal) / m (longest common subsequence);
    length = min(max(len(words) - m, 0), m) / m (extra words). The ideal response alone scores 1.
    A response without EOS scores exactly -1 whatever its words (the score is replaced, the terms are 0).
    response: text, or byte tokens of the response before its EOS.
    """
    if not has_eos:
        return RewardTerms(0.0, 0.0, 0.0, NO_EOS_SCORE)
    ideal, words = ideal_words(prompt), _response_text(response).split()
    m = len(ideal)
    coverage = len(set(words) & set(ideal)) / m
    order = _common_subsequence_length(words, ideal) / m
    length = min(max(len(words) - m, 0), m) / m
    score = COVERAGE_WEIGHT * coverage + ORDER_WEIGHT * order - LENGTH_WEIGHT * length
    return RewardTerms(coverage, order, length, score)


def gold_reward(prompt: str, response: str | Sequence[int] | np.ndarray, has_eos: bool) -> float:
    """`reward_terms(prompt, response, has_eos).score`."""
    return reward_terms(prompt, response, has_eos).score


def score_rows(prompts: Sequence[str], tokens: np.ndarray, prompt_width: int = PROMPT_WIDTH) -> np.ndarray:
    """Gold rewards of sampled rows int [batch, T] (prompt in [0, prompt_width)): float32 [batch].

    Each response is cut as finetune.response_mask cuts it: from prompt_width to its first EOS there,
    which it must have to score above -1; later tokens are ignored.
    """
    tokens = np.asarray(tokens)
    require(tokens.ndim == 2 and tokens.shape[0] == len(prompts), "rlhf_task", "tokens.shape", tokens.shape,
            f"[{len(prompts)}, T]: one row per prompt")
    mask = np.asarray(response_mask(jnp.asarray(tokens, jnp.int32), prompt_width))
    scores = []
    for prompt, row, keep in zip(prompts, tokens, mask, strict=True):
        response = row[keep]
        has_eos = response.size > 0 and response[-1] == EOS_ID
        scores.append(gold_reward(prompt, response[:-1] if has_eos else response, has_eos))
    return np.asarray(scores, np.float32)


def teacher_response(prompt: str, rng: np.random.Generator, noise: float = TEACHER_NOISE) -> str:
    """The ideal response, or with probability `noise` one corruption of it, drawn uniformly among those
    that apply: drop one word (score 1 - 1/m for m ideal words), swap two words (m >= 2; adjacent:
    1 - 0.5/m), add one uniform WORDS word at a uniform position (1 - 0.5/m).
    """
    require(0.0 <= noise <= 1.0, "rlhf_task", "noise", noise, "a probability in [0, 1]")
    words = list(ideal_words(prompt))
    if rng.random() >= noise:
        return " ".join(words)
    kinds = ["drop", "add"] + (["swap"] if len(words) >= 2 else [])
    kind = kinds[rng.integers(len(kinds))]
    if kind == "drop":
        del words[rng.integers(len(words))]
    elif kind == "add":
        words.insert(rng.integers(len(words) + 1), WORDS[rng.integers(len(WORDS))])
    else:
        i, j = rng.choice(len(words), size=2, replace=False)
        words[i], words[j] = words[j], words[i]
    return " ".join(words)


def teacher_responses(prompts: Sequence[str], seed: int, noise: float = TEACHER_NOISE) -> list[str]:
    """`teacher_response` for each prompt from one Generator on [seed, 1]: SFT targets or reference responses."""
    rng = np.random.default_rng([seed, _TEACHER_STREAM])
    return [teacher_response(prompt, rng, noise) for prompt in prompts]


def make_sft_pairs(num: int, seed: int, noise: float = TEACHER_NOISE) -> list[tuple[str, str]]:
    """num (prompt, teacher response) pairs, deterministic in seed; they fit
    finetune.encode_rows(pairs, PROMPT_WIDTH, RESPONSE_WIDTH)."""
    prompts = make_prompts(num, seed)
    return list(zip(prompts, teacher_responses(prompts, seed, noise), strict=True))


def win_rate(policy_scores: Sequence[float] | np.ndarray, reference_scores: Sequence[float] | np.ndarray
             ) -> float:
    """Fraction of prompts where the policy's gold score beats the reference's; a tie counts 1/2."""
    policy, reference = np.asarray(policy_scores, np.float64), np.asarray(reference_scores, np.float64)
    require(policy.ndim == 1 and policy.size >= 1 and policy.shape == reference.shape, "rlhf_task",
            "policy_scores.shape", policy.shape, f"a non-empty vector shaped like reference_scores {reference.shape}")
    return float(np.mean((policy > reference) + 0.5 * (policy == reference)))
