"""Fine-tuning pieces: fixed-width row encoding, response masks, sequence log-probabilities and the masked SFT loss.

Log-probabilities are checked against a per-token Python loop over a full-row forward pass of a ~7k-parameter model.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_suite.lm.finetune import (
    EOS_ID,
    PAD_ID,
    encode_prompts,
    encode_rows,
    masked_sft_loss,
    response_mask,
    sequence_logprobs,
)
from jaxrl_suite.models import LanguageModel, count_parameters, init_params, model_config

# A large init_std makes the next-token distributions far from uniform, so a misaligned target shows.
MODEL = model_config("fox-pro-tiny", d_model=16, num_heads=1, num_layers=1, mlp_multiple_of=8, init_std=0.5,
                     tie_embeddings=True)
PROMPT_WIDTH, RESPONSE_WIDTH = 6, 7
PAIRS = [("ab", "xyz"), ("hello", ""), ("q?", "abcdef"), ("", "z")]
E, S = EOS_ID, PAD_ID

logprobs_jit = jax.jit(sequence_logprobs, static_argnames="model")
sft_jit = jax.jit(masked_sft_loss, static_argnames="model")


@pytest.fixture(scope="module")
def params():
    return init_params(MODEL, jax.random.PRNGKey(0))


@pytest.fixture(scope="module")
def rows():
    """The encoded PAIRS with runs past EOS in two rows (random bytes after EOS, as sampling would give)."""
    tokens = encode_rows(PAIRS, PROMPT_WIDTH, RESPONSE_WIDTH)
    tokens[0, PROMPT_WIDTH + 4:] = [7, 8, 9]
    tokens[1, PROMPT_WIDTH + 1:] = np.arange(65, 71)
    return jnp.asarray(tokens)


def full_row_logprobs(params, tokens, mask, temperature, lag=1):
    """Reference: logits of the full rows, then log_softmax(logits[t - lag] / T)[token t] summed in a loop
    (lag=1 is right; lag=0 is the misalignment the test must be able to see)."""
    logits = np.asarray(jax.jit(LanguageModel(MODEL).apply)({"params": params}, tokens), np.float64)
    tokens, mask = np.asarray(tokens), np.asarray(mask)
    totals = []
    for b in range(tokens.shape[0]):
        total = 0.0
        for t in range(1, tokens.shape[1]):
            if mask[b, t]:
                scaled = logits[b, t - lag] / temperature
                log_softmax = scaled - scaled.max() - np.log(np.exp(scaled - scaled.max()).sum())
                total += log_softmax[tokens[b, t]]
        totals.append(total)
    return np.asarray(totals)


def test_encode_rows_token_by_token():
    tokens = encode_rows([("ab", "xyz"), ("hello", "")], prompt_width=5, response_width=4)
    assert tokens.dtype == np.int32 and tokens.shape == (2, 9)
    np.testing.assert_array_equal(tokens[0], [97, 98, S, S, S, 120, 121, 122, E])
    np.testing.assert_array_equal(tokens[1], [104, 101, 108, 108, 111, E, S, S, S])
    np.testing.assert_array_equal(encode_prompts(["ab", "hello"], 5), tokens[:, :5])
    # UTF-8: 'é' is two bytes.
    np.testing.assert_array_equal(encode_rows([("é", "")], 2, 1)[0], [0xC3, 0xA9, E])


def test_width_refusals():
    with pytest.raises(ValueError, match=re.escape(
            "invalid finetune.prompt_width=8: expected an integer >= 12 for the longest prompt")):
        encode_rows([("short", "a"), ("twelve chars", "b")], prompt_width=8, response_width=4)
    with pytest.raises(ValueError, match=re.escape(
            "invalid finetune.response_width=3: expected an integer >= 4 for the longest response plus EOS")):
        encode_rows([("p", "abc")], prompt_width=4, response_width=3)
    with pytest.raises(ValueError, match=re.escape("invalid finetune.prompt_width=2: expected an integer >= 3")):
        encode_prompts(["éa"], 2)
    with pytest.raises(ValueError, match=re.escape("invalid finetune.prompt_width=0: expected an integer >= 1")):
        encode_prompts([""], 0)
    with pytest.raises(ValueError, match="invalid finetune.prompt_width=5: expected an integer in"):
        response_mask(jnp.zeros((1, 5), jnp.int32), 5)


def test_response_mask_hand_rows():
    tokens = jnp.asarray([
        [1, E, 2, 3, 4, E, 5, 6],   # EOS in the middle of the response (and one in the prompt, ignored)
        [1, 2, 3, 4, 5, 6, 7, 8],   # no EOS: the whole response
        [1, 2, 3, E, E, 9, 9, 9],   # EOS as the first response token
        [1, 2, 3, 4, 5, 6, 7, E],   # EOS as the last token
    ], jnp.int32)
    F, T = False, True
    expected = [
        [F, F, F, T, T, T, F, F],
        [F, F, F, T, T, T, T, T],
        [F, F, F, T, F, F, F, F],
        [F, F, F, T, T, T, T, T],
    ]
    mask = response_mask(tokens, 3)
    assert mask.dtype == jnp.bool_
    np.testing.assert_array_equal(mask, expected)
    np.testing.assert_array_equal(jax.jit(response_mask, static_argnums=1)(tokens, 3), expected)
    np.testing.assert_array_equal(response_mask(tokens, 3, eos_id=9)[2], [F, F, F, T, T, T, F, F])


def test_response_mask_of_encoded_rows(rows):
    mask = np.asarray(response_mask(rows, PROMPT_WIDTH))
    response_lengths = [len(response) + 1 for _, response in PAIRS]
    np.testing.assert_array_equal(mask.sum(axis=1), response_lengths)
    assert not mask[:, :PROMPT_WIDTH].any()


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_sequence_logprobs_match_full_row_reference(params, rows, temperature):
    assert count_parameters(params) < 20_000
    mask = response_mask(rows, PROMPT_WIDTH)
    got = logprobs_jit(MODEL, params, rows, mask, jnp.float32(temperature))
    assert got.shape == (len(PAIRS),) and got.dtype == jnp.float32
    expected = full_row_logprobs(params, rows, mask, temperature)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    # The reference is sharp enough to see an off-by-one: scoring token t with the logits of t itself differs.
    shifted = full_row_logprobs(params, rows, mask, temperature, lag=0)
    assert np.abs(shifted - expected).max() > 1e-2
    # A prompt-only mask scores nothing; position 0 is never scored.
    nothing = jnp.zeros_like(mask).at[:, 0].set(True)
    np.testing.assert_array_equal(logprobs_jit(MODEL, params, rows, nothing, temperature), 0.0)


def test_masked_sft_loss_is_mean_of_sequence_logprobs(params, rows):
    mask = response_mask(rows, PROMPT_WIDTH)
    loss, count = sft_jit(MODEL, params, rows, mask)
    assert loss.shape == () and loss.dtype == jnp.float32 and count.dtype == jnp.int32
    assert int(count) == sum(len(response) + 1 for _, response in PAIRS)
    logprobs = logprobs_jit(MODEL, params, rows, mask, 1.0)
    np.testing.assert_allclose(loss, -logprobs.sum() / int(count), rtol=1e-6)
    assert 0.0 < float(loss) < 50.0


def test_masked_sft_loss_gradients_and_padding_after_eos(params, rows):
    mask = response_mask(rows, PROMPT_WIDTH)
    value_and_grad = jax.jit(jax.value_and_grad(lambda p, t, m: masked_sft_loss(MODEL, p, t, m)[0]))
    loss, grads = value_and_grad(params, rows, mask)
    leaves = jax.tree.leaves(grads)
    assert all(bool(jnp.isfinite(leaf).all()) for leaf in leaves)
    assert sum(float(jnp.abs(leaf).sum()) for leaf in leaves) > 0.0
    # New bytes after every row's first response EOS: the mask is unchanged and so is the loss.
    after_eos = ~mask & (jnp.arange(rows.shape[1]) >= PROMPT_WIDTH)
    noise = jax.random.randint(jax.random.PRNGKey(1), rows.shape, 0, EOS_ID, jnp.int32)
    repadded = jnp.where(after_eos, noise, rows)
    assert bool((repadded != rows).any())
    np.testing.assert_array_equal(response_mask(repadded, PROMPT_WIDTH), mask)
    repadded_loss, repadded_grads = value_and_grad(params, repadded, mask)
    np.testing.assert_allclose(repadded_loss, loss, rtol=1e-6)
    for leaf, repadded_leaf in zip(leaves, jax.tree.leaves(repadded_grads), strict=True):
        np.testing.assert_allclose(repadded_leaf, leaf, atol=1e-6)
    # A prompt byte does change it (the prompt is context, not target).
    changed_prompt = rows.at[:, 0].set(rows[:, 0] + 1)
    assert abs(float(value_and_grad(params, changed_prompt, mask)[0]) - float(loss)) > 1e-6
