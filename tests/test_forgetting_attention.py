"""Forgetting Attention (FoX) and ACP: every implementation against the dense reference.

Small shapes on CPU; the Pallas kernel runs in interpret mode here and compiled on a GPU.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import checkify
from jax.test_util import check_grads

from jaxrl_suite.ops import acp, acp_stats, fa_tiling, forgetting_attention
from jaxrl_suite.ops.fa_reference import attention_weights, forgetting_attention_reference
from jaxrl_suite.ops.forgetting_attention import _resolve_impl

ON_GPU = jax.default_backend() == "gpu"
# Small blocks so a handful of tokens already spans several tiles (Pallas needs >= 16).
BLOCKS = {
    "xla": dict(block_q=16, block_k=8),
    "pallas": dict(block_q=16, block_k=16, block_q_bwd=16, block_k_bwd=32),
}
# (atol, rtol) on max-abs error, relative to the largest reference entry.
TOLERANCE = {jnp.float32: (2e-5, 2e-5), jnp.bfloat16: (2e-2, 3e-2), jnp.float16: (1e-3, 3e-3)}


def make_inputs(seed, batch, seq_len, heads, kv_heads, head_dim, dtype=jnp.float32, gate_bias=1.0):
    keys = jax.random.split(jax.random.PRNGKey(seed), 5)
    q = jax.random.normal(keys[0], (batch, seq_len, heads, head_dim), dtype)
    k = jax.random.normal(keys[1], (batch, seq_len, kv_heads, head_dim), dtype)
    v = jax.random.normal(keys[2], (batch, seq_len, kv_heads, head_dim), dtype)
    log_fgate = jax.nn.log_sigmoid(jax.random.normal(keys[3], (batch, seq_len, heads)) + gate_bias)
    d_out = jax.random.normal(keys[4], (batch, seq_len, heads, head_dim), jnp.float32)
    return q, k, v, log_fgate, d_out


@functools.partial(jax.jit, static_argnames=("impl", "options"))
def value_and_grads(q, k, v, log_fgate, d_out, start_offset, impl, options=()):
    """Output and the cotangents of <out, d_out> for q, k, v, log_fgate, in one program."""

    def attend(q, k, v, log_fgate):
        out = forgetting_attention(q, k, v, log_fgate, impl=impl, start_offset=start_offset, **dict(options))
        return out

    out, vjp = jax.vjp(attend, q, k, v, log_fgate)
    return out, vjp(d_out.astype(out.dtype))


def run(impl, inputs, start_offset=None, **options):
    q, k, v, log_fgate, d_out = inputs
    if start_offset is None:
        start_offset = jnp.zeros((q.shape[0],), jnp.int32)
    # float32 checks want float32 matmuls; on GPU the default precision would be TF32.
    precision = "highest" if q.dtype == jnp.float32 else None
    with jax.default_matmul_precision(precision):
        return value_and_grads(q, k, v, log_fgate, d_out, start_offset, impl, tuple(sorted(options.items())))


def assert_close(actual, expected, dtype, what):
    atol, rtol = TOLERANCE[dtype]
    actual = np.asarray(jnp.asarray(actual, jnp.float32))
    expected = np.asarray(jnp.asarray(expected, jnp.float32))
    assert np.all(np.isfinite(actual)), f"{what}: non-finite entries"
    error = np.max(np.abs(actual - expected), initial=0.0)
    limit = atol + rtol * np.max(np.abs(expected), initial=0.0)
    assert error <= limit, f"{what}: max abs error {error:.3g} > {limit:.3g}"


def assert_matches_reference(impl, inputs, dtype, start_offset=None, **options):
    out, grads = run(impl, inputs, start_offset, **BLOCKS[impl], **options)
    out_ref, grads_ref = run("reference", inputs, start_offset)
    assert out.dtype == inputs[0].dtype
    assert_close(out, out_ref, dtype, f"{impl} output")
    for name, grad, grad_ref in zip(("q", "k", "v", "log_fgate"), grads, grads_ref, strict=True):
        assert grad.shape == grad_ref.shape
        assert_close(grad, grad_ref, dtype, f"{impl} d{name}")
    return out, out_ref


def test_reference_matches_four_token_formula():
    # o_i = sum_j softmax_j(q_i.k_j / sqrt(d) + sum_{l=j+1..i} log f_l) v_j, written out by hand.
    rng = np.random.default_rng(0)
    q, k, v = (rng.normal(size=(1, 4, 1, 16)).astype(np.float32) for _ in range(3))
    log_f = np.log(np.array([0.3, 0.9, 0.5, 0.7], np.float32))[None, :, None]
    expected = np.zeros((4, 16))
    for i in range(4):
        logits = np.array(
            [q[0, i, 0] @ k[0, j, 0] / 4.0 + log_f[0, j + 1 : i + 1, 0].sum() for j in range(i + 1)]
        )
        weights = np.exp(logits - logits.max())
        expected[i] = (weights / weights.sum()) @ v[0, : i + 1, 0]
    out = forgetting_attention(q, k, v, log_f, impl="reference")
    np.testing.assert_allclose(np.asarray(out)[0, :, 0], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16], ids=["f32", "bf16", "f16"])
@pytest.mark.parametrize("impl", ["xla", "pallas"])
def test_matches_reference_ragged_grouped_offsets(impl, dtype):
    # 37 tokens: not a multiple of any block; 4 query heads over 2 KV heads; head_dim 24 is
    # padded to 32 inside Pallas; the second sequence is left-padded by 5 tokens.
    inputs = make_inputs(1, batch=2, seq_len=37, heads=4, kv_heads=2, head_dim=24, dtype=dtype)
    out, _ = assert_matches_reference(impl, inputs, dtype, start_offset=jnp.array([0, 5], jnp.int32))
    np.testing.assert_array_equal(np.asarray(out[1, :5], np.float32), 0.0)


@pytest.mark.parametrize("impl", ["xla", "pallas"])
def test_extreme_gates(impl):
    # Head 0 forgets everything (log f = -30), head 1 nothing (log f = -1e-6), head 2 mixes them.
    q, k, v, _, d_out = make_inputs(2, batch=1, seq_len=40, heads=3, kv_heads=3, head_dim=16)
    mix = jax.random.bernoulli(jax.random.PRNGKey(3), 0.5, (40,))
    log_fgate = jnp.stack([jnp.full((40,), -30.0), jnp.full((40,), -1e-6), jnp.where(mix, -30.0, -1e-6)], -1)[
        None
    ]
    out, _ = assert_matches_reference(impl, (q, k, v, log_fgate, d_out), jnp.float32)
    np.testing.assert_allclose(np.asarray(out[0, 1:, 0]), np.asarray(v[0, 1:, 0]), atol=1e-6)


@pytest.mark.parametrize("impl", ["xla", "pallas"])
def test_one_token_sequences(impl):
    inputs = make_inputs(4, batch=3, seq_len=1, heads=2, kv_heads=1, head_dim=16)
    out, _ = assert_matches_reference(impl, inputs, jnp.float32)
    np.testing.assert_allclose(np.asarray(out), np.repeat(np.asarray(inputs[2]), 2, axis=2), atol=1e-6)


@pytest.mark.parametrize("impl", ["xla", "pallas"])
def test_largest_head_dim_with_default_blocks(impl):
    # head_dim 256 with the default tiles (smaller ones for Pallas) over a few blocks.
    inputs = make_inputs(9, batch=1, seq_len=130, heads=2, kv_heads=1, head_dim=256, dtype=jnp.bfloat16)
    out, grads = run(impl, inputs)
    out_ref, grads_ref = run("reference", inputs)
    assert_close(out, out_ref, jnp.bfloat16, f"{impl} output")
    for name, grad, grad_ref in zip(("q", "k", "v", "log_fgate"), grads, grads_ref, strict=True):
        assert_close(grad, grad_ref, jnp.bfloat16, f"{impl} d{name}")


def test_xla_check_grads():
    q, k, v, log_fgate, _ = make_inputs(5, batch=1, seq_len=7, heads=2, kv_heads=1, head_dim=16)

    def attend(q, k, v, log_fgate):
        return forgetting_attention(q, k, v, log_fgate, impl="xla", block_q=4, block_k=2)

    with jax.default_matmul_precision("highest"):
        check_grads(
            jax.jit(attend), (q, k, v, log_fgate), order=1, modes=("rev",), eps=1e-2, atol=2e-2, rtol=2e-2
        )


jit_acp_stats = jax.jit(acp_stats, static_argnames=("acp_eps", "block_q", "block_k", "scale"))


def acp_setup(qk_scale, log_f):
    """Constant forgetting and shrunken q, k (a small logit bound U), so far tiles are prunable."""
    q, k, v, _, d_out = make_inputs(6, batch=2, seq_len=64, heads=2, kv_heads=1, head_dim=16)
    log_fgate = jnp.full((2, 64, 2), log_f)
    return (qk_scale * q, qk_scale * k, v, log_fgate, d_out), jnp.array([0, 9], jnp.int32)


def kept_pairs(q, k, log_fgate, start_offset, eps, block):
    """[batch, heads, seq, seq] bool: pairs in the tiles an ACP kernel visits at this block size."""
    seq_len, heads = q.shape[1], q.shape[2]
    grid = fa_tiling.make_grid(seq_len, block, block)
    lam = jnp.cumsum(log_fgate, axis=1).transpose(0, 2, 1)
    lam_padded = fa_tiling.pad_axis(lam, grid.padded_len, axis=2, edge=True)
    pruned = acp.pruned_tiles(q, k, lam_padded, grid, 1 / math.sqrt(q.shape[-1]), eps)
    k_start, _ = fa_tiling.block_ranges(start_offset, grid, heads, pruned)
    blocks = jnp.arange(seq_len) // block
    return blocks[None, None, None, :] >= k_start[:, :, blocks][..., None]


@functools.partial(jax.jit, static_argnames=("eps",))
def acp_reference(q, k, v, log_fgate, d_out, start_offset, eps):
    """Output and cotangents of dense attention restricted to ACP's kept tiles (block 16)."""
    keep = kept_pairs(q, k, log_fgate, start_offset, eps, 16)
    lam = lambda log_fgate: jnp.cumsum(log_fgate, axis=1).transpose(0, 2, 1)  # noqa: E731

    def attend(q, k, v, log_fgate):
        return forgetting_attention_reference(q, k, v, lam(log_fgate), start_offset, scale=0.25, keep=keep)

    out, vjp = jax.vjp(attend, q, k, v, log_fgate)
    return out, vjp(d_out)


@pytest.mark.parametrize("impl", ["xla", "pallas"])
def test_acp_skips_exactly_the_pruned_tiles(impl):
    # A loose eps with tiny logits prunes tiles with visible mass, so the kernels must drop
    # exactly those tiles in both passes: compare with dense attention over the kept tiles.
    inputs, start_offset = acp_setup(qk_scale=0.05, log_f=-0.3)
    blocks = (
        dict(block_q=16, block_k=16, block_q_bwd=16, block_k_bwd=16)
        if impl == "pallas"
        else dict(block_q=16, block_k=16)
    )
    out, grads = run(impl, inputs, start_offset, acp_eps=0.99, **blocks)
    out_kept, grads_kept = acp_reference(*inputs, start_offset, eps=0.99)
    out_full, _ = run("reference", inputs, start_offset)
    assert float(jnp.max(jnp.abs(out_kept - out_full))) > 1e-3  # pruning did change the result
    assert_close(out, out_kept, jnp.float32, f"{impl} ACP output")
    for name, grad, grad_kept in zip(("q", "k", "v", "log_fgate"), grads, grads_kept, strict=True):
        assert_close(grad, grad_kept, jnp.float32, f"{impl} ACP d{name}")


@pytest.mark.parametrize("impl", ["xla", "pallas"])
def test_acp_output_within_bound(impl):
    inputs, start_offset = acp_setup(qk_scale=0.3, log_f=-1.0)
    q, k, v, log_fgate, _ = inputs
    eps = 1e-3
    stats = jit_acp_stats(q, k, log_fgate, acp_eps=eps, start_offset=start_offset, block_q=16, block_k=16)
    assert float(stats.tile_fraction_skipped) > 0.2
    assert 0.0 < float(stats.flop_fraction_skipped) < 1.0
    assert 0.0 < float(stats.mass_bound) <= eps
    # The mass the skipped tiles really carry, from the dense weights, is within the bound.
    lam = jnp.cumsum(log_fgate, axis=1).transpose(0, 2, 1)
    weights = attention_weights(q, k, lam, start_offset, scale=0.25)
    lost = jnp.sum(jnp.where(kept_pairs(q, k, log_fgate, start_offset, eps, 16), 0.0, weights), axis=-1)
    assert 0.0 < float(jnp.max(lost)) <= float(stats.mass_bound)

    out, _ = run(impl, inputs, start_offset, acp_eps=eps, block_q=16, block_k=16)
    out_full, _ = run("reference", inputs, start_offset)
    # Moving mass m off a row changes each output coordinate by at most 2 m max|v|.
    limit = 2.0 * float(stats.mass_bound) * float(jnp.max(jnp.abs(v))) + 1e-6
    assert float(jnp.max(jnp.abs(out - out_full))) <= limit


def test_acp_stats_counts():
    q, k, _, _, _ = make_inputs(7, batch=1, seq_len=64, heads=1, kv_heads=1, head_dim=16)
    none = jit_acp_stats(q, k, jnp.zeros((1, 64, 1)), acp_eps=1e-3, block_q=16, block_k=16)
    assert int(none.tiles_causal) == 10 and int(none.tiles_skipped) == 0
    # log f = -30 prunes every off-diagonal tile; the 4 diagonal tiles hold 4 * 16 * 17 / 2 pairs.
    everything = jit_acp_stats(q, k, jnp.full((1, 64, 1), -30.0), acp_eps=1e-3, block_q=16, block_k=16)
    assert int(everything.tiles_skipped) == 6
    np.testing.assert_allclose(float(everything.flop_fraction_skipped), 1 - 544 / 2080, rtol=1e-6)


def test_auto_resolves_by_backend():
    assert _resolve_impl("auto", None) == ("pallas" if ON_GPU else "xla")


def _bad(**changes):
    q, k, v, log_fgate, _ = make_inputs(8, batch=2, seq_len=5, heads=4, kv_heads=2, head_dim=16)
    arguments = {"q": q, "k": k, "v": v, "log_fgate": log_fgate, **changes}
    return arguments


@pytest.mark.parametrize(
    "changes, options, message",
    [
        (dict(q=jnp.zeros((2, 5, 16))), {}, r"argument 'q' got shape \(2, 5, 16\), expected \[batch, seq"),
        (dict(q=jnp.zeros((2, 5, 4, 8))), {}, r"'q' got head_dim 8, expected 16..256"),
        (dict(q=jnp.zeros((2, 5, 4, 16), jnp.int32)), {}, r"'q' got dtype int32"),
        (
            dict(k=jnp.zeros((2, 6, 2, 16))),
            {},
            r"argument 'k' got shape \(2, 6, 2, 16\), expected \[batch=2, seq=5",
        ),
        (dict(k=jnp.zeros((2, 5, 3, 16)), v=jnp.zeros((2, 5, 3, 16))), {}, r"kv_heads=3, expected a divisor"),
        (
            dict(v=jnp.zeros((2, 5, 2, 16), jnp.bfloat16)),
            {},
            r"'v' got dtype bfloat16, expected q's dtype float32",
        ),
        (dict(log_fgate=jnp.zeros((2, 5, 2))), {}, r"'log_fgate' got shape \(2, 5, 2\), expected"),
        ({}, dict(impl="cuda"), r"argument 'impl' got 'cuda'"),
        ({}, dict(acp_eps=2.0), r"'acp_eps' got 2.0"),
        ({}, dict(impl="reference", acp_eps=1e-3), r"not supported by impl='reference'"),
        ({}, dict(start_offset=jnp.array([0, 9])), r"'start_offset' got values in \[0, 9\], expected 0..5"),
        ({}, dict(start_offset=jnp.array([0.0, 1.0])), r"'start_offset' got shape \(2,\) dtype float32"),
        ({}, dict(impl="pallas", block_q=24), r"'block_q' got 24, expected a power of 2 >= 16"),
        ({}, dict(impl="xla", block_k=0), r"'block_k' got 0, expected a positive int"),
        ({}, dict(scale=-1.0), r"'scale' got -1.0"),
    ],
)
def test_bad_arguments_are_refused(changes, options, message):
    with pytest.raises(ValueError, match=message):
        forgetting_attention(**_bad(**changes), **options)


def test_nan_refused_eagerly_and_under_jit():
    arguments = _bad()
    arguments["v"] = arguments["v"].at[1, 2, 0, 3].set(jnp.nan)
    with pytest.raises(ValueError, match=r"argument 'v' contains NaN or Inf"):
        forgetting_attention(**arguments, check_finite=True)
    with pytest.raises(ValueError, match=r"'log_fgate' has positive entries"):
        forgetting_attention(**_bad(log_fgate=jnp.ones((2, 5, 4))), acp_eps=1e-3, check_finite=True)

    checked = checkify.checkify(
        jax.jit(functools.partial(forgetting_attention, impl="reference", check_finite=True))
    )
    error, _ = checked(**arguments)
    assert "argument 'v' contains NaN or Inf" in str(error.get())
    error, out = checked(**_bad())
    assert error.get() is None and out.shape == (2, 5, 4, 16)
    assert math.isfinite(float(jnp.sum(out)))
