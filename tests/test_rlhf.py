"""Online-RLHF pieces: the bag-of-words task's gold reward, EOS rule and noisy teacher, and the DPO/RLOO losses.

Expected values are worked out by hand in each test; the teacher's win rates are checked on 4000 prompts.
"""

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_suite.lm.data import encode
from jaxrl_suite.lm.finetune import EOS_ID, PAD_ID, encode_rows, response_mask, sequence_logprobs
from jaxrl_suite.lm.rlhf import (
    PROMPT_WIDTH,
    RESPONSE_WIDTH,
    TEACHER_NOISE,
    chosen_and_rejected,
    dpo_loss,
    gold_reward,
    ideal_response,
    make_prompts,
    make_sft_pairs,
    pair_by_gold_score,
    reward_terms,
    rloo_advantages,
    rloo_loss,
    score_rows,
    teacher_responses,
    win_rate,
)
from jaxrl_suite.models import LanguageModel, init_params, model_config

# cat 3, dog 2, emu 1, owl 1: the ideal is "cat dog emu" (emu before owl alphabetically).
PROMPT = "sum: cat dog cat emu dog cat owl"


def test_prompts_are_deterministic_and_ideal_breaks_ties_alphabetically():
    assert make_prompts(5, seed=3) == make_prompts(5, seed=3) != make_prompts(5, seed=4)
    assert ideal_response(PROMPT) == "cat dog emu"
    assert ideal_response("sum: yak owl yak owl bee ant") == "owl yak ant"
    assert ideal_response("sum: fox fox fox fox fox fox") == "fox"


def test_sft_pairs_fit_the_fixed_width_rows():
    pairs = make_sft_pairs(500, seed=0)
    assert pairs == make_sft_pairs(500, seed=0)
    rows = encode_rows(pairs, PROMPT_WIDTH, RESPONSE_WIDTH)
    assert rows.shape == (500, PROMPT_WIDTH + RESPONSE_WIDTH)
    # At least one space between every prompt and its response.
    assert (rows[:, PROMPT_WIDTH - 1] == PAD_ID).all()


@pytest.mark.parametrize(("response", "coverage", "order", "length"), [
    ("cat dog emu", 1, 1, 0),
    ("dog cat emu", 1, 2 / 3, 0),            # LCS with the ideal is "cat emu"
    ("cat dog", 2 / 3, 2 / 3, 0),
    ("cat dog emu owl yak", 1, 1, 2 / 3),
    ("owl yak", 0, 0, 0),
    ("", 0, 0, 0),
    ("cat cat cat cat cat cat cat", 1 / 3, 1 / 3, 1),   # 4 extra words, capped at m = 3
])
def test_gold_reward_hand_values(response, coverage, order, length):
    terms = reward_terms(PROMPT, response, has_eos=True)
    assert (terms.coverage, terms.order, terms.length) == pytest.approx((coverage, order, length))
    expected = 0.5 * coverage + 0.5 * order - 0.5 * length
    assert terms.score == pytest.approx(expected)
    assert gold_reward(PROMPT, encode(response), has_eos=True) == pytest.approx(expected)


def test_ideal_response_is_the_unique_maximum():
    prompts = make_prompts(300, seed=1)
    others = teacher_responses(prompts, seed=1, noise=1.0) + ["ant bee cat", "cat dog emu fox"] * 150
    for prompt, other in zip(prompts + prompts, others, strict=True):
        assert gold_reward(prompt, ideal_response(prompt), True) == 1.0
        assert other == ideal_response(prompt) or gold_reward(prompt, other, True) < 1.0


def test_missing_eos_replaces_the_score_with_minus_one():
    assert gold_reward(PROMPT, "cat dog emu", has_eos=False) == -1.0
    assert gold_reward(PROMPT, "owl yak", has_eos=False) == -1.0
    rows = encode_rows([(PROMPT, "cat dog emu")] * 4, PROMPT_WIDTH, RESPONSE_WIDTH)
    eos_at = PROMPT_WIDTH + len("cat dog emu")
    rows[1, eos_at + 1:eos_at + 9] = encode(" owl yak")   # words after the EOS are ignored
    rows[2, eos_at] = PAD_ID                          # the perfect words, no EOS
    rows[3, eos_at], rows[3, PROMPT_WIDTH - 1] = PAD_ID, EOS_ID   # an EOS in the prompt does not count
    np.testing.assert_array_equal(score_rows([PROMPT] * 4, rows), [1.0, 1.0, -1.0, -1.0])


def test_score_rows_matches_gold_reward_of_text():
    pairs = make_sft_pairs(64, seed=2)
    rows = encode_rows(pairs, PROMPT_WIDTH, RESPONSE_WIDTH)
    expected = [gold_reward(prompt, response, True) for prompt, response in pairs]
    np.testing.assert_allclose(score_rows([p for p, _ in pairs], rows), expected, rtol=1e-6)


def test_win_rate_counts_ties_as_half():
    assert win_rate([1.0, 0.5, 0.0], [0.5, 0.5, 1.0]) == 0.5
    assert win_rate([1.0, 1.0], [0.0, 1.0]) == 0.75
    with pytest.raises(ValueError, match="invalid rlhf_task.policy_scores.shape"):
        win_rate([1.0], [1.0, 2.0])


def test_teacher_noise_gives_a_half_win_rate_against_the_reference():
    """Two teacher responses to a prompt are i.i.d., so the SFT-like policy's expected win rate against the
    reference is exactly 1/2; the exact (ideal) policy's is 1/2 + TEACHER_NOISE / 2 = 0.75, since every
    corruption scores below 1. Per-prompt wins lie in [0, 1], so by Hoeffding a 4000-prompt mean is off by
    more than 0.04 with probability <= 2 exp(-2 * 4000 * 0.04**2) = 6e-6: the tolerance below."""
    prompts = make_prompts(4000, seed=10)
    score = np.vectorize(lambda prompt, response: gold_reward(prompt, response, True))
    reference = score(prompts, teacher_responses(prompts, seed=11))
    policy = score(prompts, teacher_responses(prompts, seed=12))
    ideal = score(prompts, [ideal_response(p) for p in prompts])
    assert win_rate(policy, reference) == pytest.approx(0.5, abs=0.04)
    assert win_rate(ideal, reference) == pytest.approx(0.5 + TEACHER_NOISE / 2, abs=0.04)
    assert np.mean(reference == 1.0) == pytest.approx(1 - TEACHER_NOISE, abs=0.04)
    # Without noise the teacher is exact: every comparison with the ideal is a tie.
    exact = score(prompts[:200], teacher_responses(prompts[:200], seed=11, noise=0.0))
    assert win_rate(ideal[:200], exact) == 0.5


def test_pairing_ties_go_to_the_first_response():
    a, b = jnp.asarray([1.0, 0.5, 0.2, -1.0]), jnp.asarray([1.0, 0.7, 0.1, -1.0])
    chosen_is_a = jax.jit(pair_by_gold_score)(a, b)
    np.testing.assert_array_equal(chosen_is_a, [True, False, True, True])
    chosen, rejected = chosen_and_rejected(chosen_is_a, jnp.arange(4.0), 10 + jnp.arange(4.0))
    np.testing.assert_array_equal(chosen, [0, 11, 2, 3])
    np.testing.assert_array_equal(rejected, [10, 1, 12, 13])


LOGP_C, LOGP_R = jnp.asarray([-3.0, -5.0]), jnp.asarray([-4.0, -2.0])
REF_C, REF_R = jnp.asarray([-3.5, -4.5]), jnp.asarray([-3.0, -2.5])


def test_dpo_loss_hand_computed():
    # Margins before beta: (0.5 - (-1)) = 1.5 and (-0.5 - 0.5) = -1; with beta = 0.5: 0.75 and -0.5.
    loss, metrics = jax.jit(dpo_loss)(LOGP_C, LOGP_R, REF_C, REF_R, 0.5)
    expected = (math.log1p(math.exp(-0.75)) + math.log1p(math.exp(0.5))) / 2
    assert loss.dtype == jnp.float32 and float(loss) == pytest.approx(expected, rel=1e-6)
    assert float(metrics.margin) == pytest.approx((0.75 - 0.5) / 2)
    assert float(metrics.accuracy) == 0.5
    assert float(metrics.chosen_reward) == pytest.approx(0.5 * (0.5 - 0.5) / 2)
    assert float(metrics.rejected_reward) == pytest.approx(0.5 * (-1.0 + 0.5) / 2)
    # d loss / d lp_c = -beta * sigmoid(-x) / B; the reference gets no gradient.
    grads = jax.grad(lambda *lp: dpo_loss(*lp, 0.5)[0], argnums=(0, 2))(LOGP_C, LOGP_R, REF_C, REF_R)
    sigmoid = [1 / (1 + math.exp(0.75)), 1 / (1 + math.exp(-0.5))]
    np.testing.assert_allclose(grads[0], [-0.5 * s / 2 for s in sigmoid], rtol=1e-6)
    np.testing.assert_array_equal(grads[1], 0.0)


def test_dpo_policy_equal_to_reference_is_log_2_and_beta_scales_the_margin():
    loss, metrics = dpo_loss(LOGP_C, LOGP_R, LOGP_C, LOGP_R, beta=3.0)
    assert loss == np.float32(math.log(2)) and float(metrics.margin) == 0.0   # exact in float32
    # beta multiplies the margin: beta 0.2 on these log-probs equals beta 0.1 on doubled differences.
    doubled = dpo_loss(2 * LOGP_C - REF_C, 2 * LOGP_R - REF_R, REF_C, REF_R, beta=0.1)[0]
    np.testing.assert_allclose(dpo_loss(LOGP_C, LOGP_R, REF_C, REF_R, beta=0.2)[0], doubled, rtol=1e-6)
    expected = (math.log1p(math.exp(-0.2 * 1.5)) + math.log1p(math.exp(0.2 * 1.0))) / 2
    assert float(dpo_loss(LOGP_C, LOGP_R, REF_C, REF_R, beta=0.2)[0]) == pytest.approx(expected, rel=1e-6)


def test_rloo_advantages_and_loss_hand_computed():
    rewards = jnp.asarray([[1.0, 2.0, 6.0], [0.0, 0.0, 3.0]])
    logp = jnp.asarray([[-1.0, -2.0, -3.0], [-0.5, -1.0, -2.0]])
    expected_advantages = [[1 - 4, 2 - 3.5, 6 - 1.5], [0 - 1.5, 0 - 1.5, 3 - 0]]
    np.testing.assert_allclose(rloo_advantages(rewards), expected_advantages)
    loss, advantages = jax.jit(rloo_loss)(logp, rewards)
    np.testing.assert_allclose(advantages, expected_advantages)
    # -(3 + 3 - 13.5 + 0.75 + 1.5 - 6) / 6
    assert float(loss) == pytest.approx(1.875)
    grad_logp, grad_rewards = jax.grad(lambda lp, r: rloo_loss(lp, r)[0], argnums=(0, 1))(logp, rewards)
    np.testing.assert_allclose(grad_logp, -np.asarray(expected_advantages) / 6, rtol=1e-6)
    np.testing.assert_array_equal(grad_rewards, 0.0)


def test_bad_beta_and_k_are_one_line_errors():
    for beta in (0.0, -0.1):
        with pytest.raises(ValueError, match=re.escape(f"invalid dpo.beta={beta}: expected a positive number")):
            dpo_loss(LOGP_C, LOGP_R, REF_C, REF_R, beta=beta)
    with pytest.raises(ValueError, match=re.escape(
            "invalid rloo.k=1: expected at least 2 samples per prompt (rewards.shape[1])")):
        rloo_loss(jnp.zeros((4, 1)), jnp.zeros((4, 1)))


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_sequence_logprobs_divide_logits_by_temperature_before_log_softmax(temperature):
    model = model_config("fox-pro-tiny", d_model=16, num_heads=1, num_layers=1, mlp_multiple_of=8, init_std=0.5,
                         tie_embeddings=True)
    params = init_params(model, jax.random.PRNGKey(0))
    rows = jnp.asarray(encode_rows(make_sft_pairs(3, seed=0), PROMPT_WIDTH, RESPONSE_WIDTH))
    mask = np.asarray(response_mask(rows, PROMPT_WIDTH))
    got = np.asarray(sequence_logprobs(model, params, rows, jnp.asarray(mask), temperature))
    logits = np.asarray(LanguageModel(model).apply({"params": params}, rows[:, :-1]), np.float64)

    def masked_sum(log_probs):
        picked = np.take_along_axis(log_probs, np.asarray(rows)[:, 1:, None], axis=-1)[..., 0]
        return np.where(mask[:, 1:], picked, 0.0).sum(axis=1)

    def log_softmax(x):
        return x - x.max(-1, keepdims=True) - np.log(np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True))

    np.testing.assert_allclose(got, masked_sum(log_softmax(logits / temperature)), rtol=1e-5)
    # Neither the untempered log-probs nor tempering after log-softmax give it.
    assert np.abs(got - masked_sum(log_softmax(logits))).min() > 1e-2
    assert np.abs(got - masked_sum(log_softmax(logits)) / temperature).min() > 1e-2
