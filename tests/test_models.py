"""Model tests: block shapes and dtypes, causality, KV-cached decoding, FoX with unit gates, presets and config errors.

Small widths (d_model 64, two heads of 32) keep every compile to a few seconds on CPU.
"""

import dataclasses
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_suite.models import LanguageModel, count_parameters, generate, init_params, model_config
from jaxrl_suite.models.attention import Attention
from jaxrl_suite.models.lm import Block

FAMILIES = ("fox", "fox-pro", "transformer", "transformer-pro")


def small(family: str, **overrides):
    fields = dict(d_model=64, num_heads=2, num_layers=2, mlp_multiple_of=16)
    fields.update(overrides)
    return model_config(f"{family}-tiny", **fields)


@pytest.mark.parametrize("family,dtype", [("fox", "float32"), ("fox-pro", "bfloat16"), ("transformer", "bfloat16"),
                                          ("transformer-pro", "float32")])
def test_block_keeps_shape_and_compute_dtype(family, dtype):
    config = small(family, compute_dtype=dtype, attention_impl="reference")
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 64)).astype(dtype)
    block = Block(config)
    variables = jax.jit(block.init)(jax.random.PRNGKey(1), x)
    out, state = jax.jit(block.apply)(variables, x)
    chex.assert_shape(out, (2, 8, 64))
    assert out.dtype == jnp.dtype(dtype)
    chex.assert_shape(state.keys, (2, 8, config.kv_heads, config.head_dim))
    assert state.log_lambda.dtype == jnp.float32
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(variables["params"]))


@pytest.mark.parametrize("family", FAMILIES)
def test_future_tokens_never_change_earlier_outputs_and_cached_decoding_matches(family):
    config = small(family)
    params = init_params(config, jax.random.PRNGKey(0))
    forward = jax.jit(lambda p, t: LanguageModel(config).apply({"params": p}, t))
    tokens = jax.random.randint(jax.random.PRNGKey(1), (2, 16), 0, config.vocab_size)
    changed_at = 9
    altered = tokens.at[:, changed_at].set((tokens[:, changed_at] + 1) % config.vocab_size)
    logits, altered_logits = forward(params, tokens), forward(params, altered)
    np.testing.assert_array_equal(logits[:, :changed_at], altered_logits[:, :changed_at])
    assert not np.allclose(logits[:, changed_at:], altered_logits[:, changed_at:])

    prompt_length = 6
    generated = generate(params, config, tokens[:, :prompt_length], 16 - prompt_length, jax.random.PRNGKey(2))
    continued = jnp.concatenate([tokens[:, :prompt_length], generated.tokens], axis=1)
    full = forward(params, continued)
    np.testing.assert_allclose(generated.logits, full[:, prompt_length - 1:-1], atol=2e-5, rtol=2e-5)
    np.testing.assert_array_equal(generated.tokens, jnp.argmax(full[:, prompt_length - 1:-1], axis=-1))


def test_cached_decoding_matches_with_grouped_kv_heads():
    config = small("fox-pro", num_heads=4, d_model=64, num_kv_heads=2)  # head_dim 16, two query heads per kv head
    params = init_params(config, jax.random.PRNGKey(3))
    prompt = jax.random.randint(jax.random.PRNGKey(4), (3, 5), 0, config.vocab_size)
    generated = generate(params, config, prompt, 7, jax.random.PRNGKey(5), temperature=1.0)
    forward = jax.jit(lambda p, t: LanguageModel(config).apply({"params": p}, t))
    full = forward(params, jnp.concatenate([prompt, generated.tokens], axis=1))
    np.testing.assert_allclose(generated.logits, full[:, 4:-1], atol=2e-5, rtol=2e-5)


def test_fox_with_unit_forget_gates_is_plain_causal_attention_without_positions():
    config = small("fox", attention_impl="reference")
    layer = Attention(config)
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 12, 64))
    params = jax.jit(layer.init)(jax.random.PRNGKey(1), x)["params"]
    # log f = log_sigmoid(1e4) is exactly 0 in float32: every gate is 1, so D_ij = 0.
    params["forget_gate"] = {"kernel": jnp.zeros_like(params["forget_gate"]["kernel"]),
                             "bias": jnp.full_like(params["forget_gate"]["bias"], 1e4)}
    out, state = jax.jit(layer.apply)({"params": params}, x)
    np.testing.assert_array_equal(state.log_lambda, 0.0)

    q = jnp.einsum("btd,dhk->bthk", x, params["query"]["kernel"])
    k = jnp.einsum("btd,dhk->bthk", x, params["key"]["kernel"])
    v = jnp.einsum("btd,dhk->bthk", x, params["value"]["kernel"])
    attended = jax.nn.dot_product_attention(q, k, v, is_causal=True)
    expected = jnp.einsum("bthk,hkd->btd", attended, params["output"]["kernel"])
    np.testing.assert_allclose(out, expected, atol=1e-5, rtol=1e-5)


def test_forget_gate_bias_init_gives_log_spaced_decay_times():
    config = small("fox", forget_gate_bias_init=(2.0, 200.0), num_heads=4, attention_impl="reference")
    params = init_params(config, jax.random.PRNGKey(0))
    bias = params["blocks"]["attention"]["forget_gate"]["bias"][0]  # scanned layout: layer axis first
    decay_times = -1.0 / np.asarray(jax.nn.log_sigmoid(bias))
    np.testing.assert_allclose(decay_times, np.geomspace(2.0, 200.0, 4), rtol=1e-4)


def test_init_is_normal_with_paper_std_and_zero_gate_bias():
    config = model_config("fox-pro-tiny", attention_impl="reference")
    params = init_params(config, jax.random.PRNGKey(0))
    embedding = params["embedding"]["embedding"]
    assert abs(float(embedding.std()) - 0.02) < 0.002 and abs(float(embedding.mean())) < 0.002
    attention = params["blocks"]["attention"]  # scanned layout: [layer, ...]
    np.testing.assert_array_equal(attention["forget_gate"]["bias"], 0.0)
    np.testing.assert_array_equal(attention["query_norm"]["scale"], 1.0)
    chex.assert_shape(attention["query_norm"]["scale"], (config.num_layers, 4, 32))  # one scale per head


def _parameter_count(name):
    config = model_config(name)
    shapes = jax.eval_shape(LanguageModel(config).init, jax.random.PRNGKey(0), jnp.zeros((1, 8), jnp.int32))
    return count_parameters(shapes["params"])


def test_presets_follow_the_paper_sizes_and_pro_keeps_the_parameter_count():
    assert math.isclose(_parameter_count("fox-125m"), _parameter_count("transformer-125m"), rel_tol=0.01)
    assert math.isclose(_parameter_count("fox-pro-125m"), _parameter_count("fox-125m"), rel_tol=0.02)
    assert 80e6 < _parameter_count("fox-125m") < 90e6  # byte vocabulary: no 50k-token embedding
    assert 680e6 < _parameter_count("fox-760m") < 700e6
    config = model_config("fox-pro-760m")
    assert (config.d_model, config.num_layers, config.num_heads, config.head_dim) == (1536, 24, 24, 64)
    assert config.mlp_hidden == 3584 and model_config("fox-760m").mlp_hidden == 4096


@pytest.mark.parametrize("field,value,message", [
    ("d_model", 130, "model.d_model=130: expected a positive multiple of num_heads=4"),
    ("num_kv_heads", 3, "model.num_kv_heads=3"),
    ("attention", "linear", "model.attention='linear'"),
    ("forget_gate_bias_init", (5.0, 1.0), "model.forget_gate_bias_init"),
    ("compute_dtype", "float16", "model.compute_dtype='float16'"),
])
def test_bad_model_config_names_field_value_and_valid_choices(field, value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        model_config("fox-tiny", **{field: value})


def test_unknown_preset_lists_the_valid_names():
    with pytest.raises(ValueError, match="fox-pro-tiny"):
        model_config("fox-huge")


def test_acp_eps_per_layer_must_match_the_layer_count():
    config = small("fox", attention_impl="reference")
    params = init_params(config, jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="3 entries for 2 layers"):
        LanguageModel(config).apply({"params": params}, jnp.zeros((1, 8), jnp.int32), (0.1, None, None))


def test_config_round_trips_through_json_fields():
    from jaxrl_suite.models import model_config_from_dict

    config = small("fox", forget_gate_bias_init=(1.0, 10.0))
    assert model_config_from_dict(dataclasses.asdict(config) | {"forget_gate_bias_init": [1.0, 10.0]}) == config
