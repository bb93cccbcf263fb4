"""Forgetting Attention with segment_ids (f = 0 at a segment's first step), on CPU.

Every segmented run is checked against running each segment on its own, in values and gradients.
"""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_suite.ops import forgetting_attention

BLOCKS = {"reference": {}, "xla": dict(block_q=16, block_k=8)}
ATOL, RTOL = 2e-5, 2e-5


def make_inputs(seed, batch, seq_len, heads=4, kv_heads=2, head_dim=16):
    keys = jax.random.split(jax.random.PRNGKey(seed), 5)
    q = jax.random.normal(keys[0], (batch, seq_len, heads, head_dim))
    k = jax.random.normal(keys[1], (batch, seq_len, kv_heads, head_dim))
    v = jax.random.normal(keys[2], (batch, seq_len, kv_heads, head_dim))
    log_fgate = jax.nn.log_sigmoid(jax.random.normal(keys[3], (batch, seq_len, heads)) + 1.0)
    d_out = jax.random.normal(keys[4], (batch, seq_len, heads, head_dim))
    return q, k, v, log_fgate, d_out


def ids_from_lengths(lengths):
    return np.repeat(np.arange(len(lengths)), lengths).astype(np.int32)


@functools.partial(jax.jit, static_argnames=("impl",))
def value_and_grads(q, k, v, log_fgate, d_out, segment_ids, impl):
    """Output and the cotangents of <out, d_out> for q, k, v, log_fgate."""

    def attend(q, k, v, log_fgate):
        return forgetting_attention(q, k, v, log_fgate, impl=impl, segment_ids=segment_ids, **BLOCKS[impl])

    out, vjp = jax.vjp(attend, q, k, v, log_fgate)
    return out, vjp(d_out)


def run_each_segment_alone(impl, inputs, segment_ids):
    """The same five arrays as value_and_grads, assembled from one op call per segment."""
    q, k, v, log_fgate, d_out = inputs
    results = [np.zeros(x.shape, np.float32) for x in (q, q, k, v, log_fgate)]
    for row, ids in enumerate(np.asarray(segment_ids)):
        starts = np.flatnonzero(np.diff(ids, prepend=ids[0] - 1))
        for start, end in zip(starts, [*starts[1:], len(ids)], strict=True):
            piece = [x[row : row + 1, start:end] for x in inputs]
            out, grads = value_and_grads(*piece, None, impl)
            for result, value in zip(results, (out, *grads), strict=True):
                result[row, start:end] = np.asarray(value[0])
    return results


def assert_close(actual, expected, what):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert np.all(np.isfinite(actual)), f"{what}: non-finite entries"
    error = np.max(np.abs(actual - expected))
    limit = ATOL + RTOL * np.max(np.abs(expected))
    assert error <= limit, f"{what}: max abs error {error:.3g} > {limit:.3g}"


@pytest.mark.parametrize("impl", ["reference", "xla"])
def test_segments_equal_separate_runs_with_minus_inf_at_starts(impl):
    # Row 0 has segments of length 1 (at the start and in the middle); row 1 random ragged ones.
    lengths_0 = [1, 12, 1, 23]
    lengths_1 = list(np.random.default_rng(5).multinomial(37 - 5, np.ones(5) / 5) + 1)
    segment_ids = jnp.asarray(np.stack([ids_from_lengths(lengths_0), ids_from_lengths(lengths_1)]))
    q, k, v, log_fgate, d_out = make_inputs(0, batch=2, seq_len=37)
    expected = run_each_segment_alone(impl, (q, k, v, log_fgate, d_out), segment_ids)
    # The episode-boundary convention log f = -inf at a first step must not leak NaN.
    starts = jnp.diff(segment_ids, axis=1, prepend=-1) != 0
    log_fgate = jnp.where(starts[..., None], -jnp.inf, log_fgate)
    out, grads = value_and_grads(q, k, v, log_fgate, d_out, segment_ids, impl)
    chex.assert_shape(out, q.shape)
    chex.assert_type(out, jnp.float32)
    for name, actual, wanted in zip(("out", "dq", "dk", "dv", "dlog_fgate"), (out, *grads), expected, strict=True):
        assert_close(actual, wanted, f"{impl} {name}")
    # A segment's first query sees only its own key: the output is that value (head 1 reads kv head 0).
    first_steps = np.flatnonzero(np.asarray(starts[0]))
    np.testing.assert_allclose(np.asarray(out[0, first_steps, 1]), np.asarray(v[0, first_steps, 0]), atol=1e-6)
    # log f at a first step is ignored, so its gradient is exactly zero.
    np.testing.assert_array_equal(np.asarray(grads[3])[np.asarray(starts)], 0.0)


@pytest.mark.parametrize("impl", ["reference", "xla"])
def test_one_segment_gives_exactly_the_unsegmented_output(impl):
    # log f at t = 0 is a first step: ignored with segments; without them it cancels in every
    # Lambda_i - Lambda_j. With it set to 0 both paths do the same arithmetic.
    q, k, v, log_fgate, d_out = make_inputs(1, batch=2, seq_len=29)
    log_fgate = log_fgate.at[:, 0].set(0.0)
    same = jnp.full((2, 29), 7, jnp.int32)
    with_segments = value_and_grads(q, k, v, log_fgate, d_out, same, impl)
    without = value_and_grads(q, k, v, log_fgate, d_out, None, impl)
    # Only d log f at t = 0 differs: exactly 0 when ignored, rounding noise when it cancels.
    gate_grads = np.asarray(with_segments[1][3]), np.asarray(without[1][3])
    np.testing.assert_array_equal(gate_grads[0][:, 0], 0.0)
    np.testing.assert_allclose(gate_grads[1][:, 0], 0.0, atol=1e-5)
    np.testing.assert_array_equal(gate_grads[0][:, 1:], gate_grads[1][:, 1:])
    for actual, wanted in zip(jax.tree.leaves(with_segments)[:-1], jax.tree.leaves(without)[:-1], strict=True):
        np.testing.assert_array_equal(np.asarray(actual), np.asarray(wanted))


def test_segments_and_left_padding_combine():
    # Offset 4 masks keys 0..3; the segment boundary at 10 masks the rest of segment 0 for later rows.
    q, k, v, log_fgate, _ = make_inputs(2, batch=1, seq_len=20)
    segment_ids = jnp.asarray(ids_from_lengths([10, 10]))[None]
    offset = jnp.array([4], jnp.int32)
    outs = [
        forgetting_attention(q, k, v, log_fgate, impl=impl, start_offset=offset, segment_ids=segment_ids,
                             **BLOCKS[impl])
        for impl in ("reference", "xla")
    ]  # fmt: skip
    alone = forgetting_attention(q[:, 10:], k[:, 10:], v[:, 10:], log_fgate[:, 10:], impl="reference")
    np.testing.assert_array_equal(np.asarray(outs[0][0, :4]), 0.0)
    assert_close(outs[0][:, 10:], alone, "second segment")
    assert_close(outs[1], outs[0], "xla against reference")


@pytest.mark.parametrize(
    ("impl", "segment_ids", "message"),
    [
        ("pallas", np.zeros((1, 8), np.int32), r"'segment_ids' is not supported by impl='pallas'"),
        ("xla", np.zeros((1, 7), np.int32), r"'segment_ids' got shape \(1, 7\) dtype int32, expected \[batch=1, seq=8\]"),
        ("reference", np.zeros((1, 8), np.float32), r"'segment_ids' got shape \(1, 8\) dtype float32"),
    ],
)
def test_bad_segment_ids_are_refused(impl, segment_ids, message):
    q, k, v, log_fgate, _ = make_inputs(3, batch=1, seq_len=8)
    with pytest.raises(ValueError, match=message):
        forgetting_attention(q, k, v, log_fgate, impl=impl, segment_ids=segment_ids)
