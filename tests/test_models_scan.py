"""Scanned blocks (params stacked per layer) against the looped blocks on the same, converted parameters.

Forward logits, loss, gradients, ACP per layer, sown intermediates and cached decoding, on small CPU models.
"""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_suite.models import LanguageModel, generate, init_params, model_config, model_config_from_dict
from jaxrl_suite.models.layout import stack_layer_params, unstack_layer_params

TOKENS = jax.random.randint(jax.random.PRNGKey(1), (2, 17), 0, 257)


def layouts(family: str, **overrides):
    """(looped config, scanned config, looped params, the same params stacked)."""
    fields = dict(d_model=64, num_heads=2, num_layers=3, mlp_multiple_of=16) | overrides
    scanned = model_config(f"{family}-tiny", **fields)
    looped = dataclasses.replace(scanned, scan_layers=False)
    looped_params = init_params(looped, jax.random.PRNGKey(0))
    return looped, scanned, looped_params, stack_layer_params(looped_params, scanned.num_layers)


def next_token_loss(config, params, tokens):
    logits = LanguageModel(config).apply({"params": params}, tokens[:, :-1])
    picked = jnp.take_along_axis(jax.nn.log_softmax(logits), tokens[:, 1:, None], axis=-1)
    return -picked.mean()


@pytest.mark.parametrize("family", ["fox", "fox-pro", "transformer"])
def test_scanned_equals_looped_in_logits_loss_and_gradients(family):
    looped, scanned, looped_params, stacked_params = layouts(family)
    chex.assert_shape(stacked_params["blocks"]["attention"]["query"]["kernel"], (3, 64, 2, 32))
    logits = [jax.jit(LanguageModel(config).apply)({"params": params}, TOKENS[:, :-1])
              for config, params in ((looped, looped_params), (scanned, stacked_params))]
    np.testing.assert_allclose(logits[1], logits[0], atol=1e-6, rtol=1e-6)
    loss_and_grad = [jax.jit(jax.value_and_grad(lambda p, c=config: next_token_loss(c, p, TOKENS)))(params)
                     for config, params in ((looped, looped_params), (scanned, stacked_params))]
    np.testing.assert_allclose(loss_and_grad[1][0], loss_and_grad[0][0], atol=1e-6, rtol=1e-6)
    looped_grads = stack_layer_params(loss_and_grad[0][1], 3)
    for wanted, actual in zip(jax.tree.leaves(looped_grads), jax.tree.leaves(loss_and_grad[1][1]), strict=True):
        np.testing.assert_allclose(actual, wanted, atol=1e-6, rtol=1e-5)


def test_acp_per_layer_and_sown_inputs_match_the_looped_layout():
    looped, scanned, looped_params, stacked_params = layouts("fox", attention_impl="xla", attention_block_size=8)
    eps = (0.5, None, 0.5)  # three runs: the scan splits into one per run of equal eps
    results = [LanguageModel(config).apply({"params": params}, TOKENS, eps, mutable=["intermediates"])
               for config, params in ((looped, looped_params), (scanned, stacked_params))]
    np.testing.assert_allclose(results[1][0], results[0][0], atol=1e-6, rtol=1e-6)
    assert not np.allclose(results[1][0], LanguageModel(scanned).apply({"params": stacked_params}, TOKENS))
    sown = [variables["intermediates"] for _, variables in results]
    assert jax.tree.structure(sown[1]) == jax.tree.structure(sown[0])
    for wanted, actual in zip(jax.tree.leaves(sown[0]), jax.tree.leaves(sown[1]), strict=True):
        np.testing.assert_allclose(actual, wanted, atol=1e-6, rtol=1e-6)


def test_looped_layout_still_decodes_like_the_full_forward():
    looped, _, looped_params, _ = layouts("fox-pro")
    generated = generate(looped_params, looped, TOKENS[:, :5], 8, jax.random.PRNGKey(2))
    full = LanguageModel(looped).apply({"params": looped_params}, jnp.concatenate([TOKENS[:, :5], generated.tokens], 1))
    np.testing.assert_allclose(generated.logits, full[:, 4:-1], atol=2e-5, rtol=2e-5)


def test_conversion_round_trips_and_wrong_layouts_are_refused():
    looped, scanned, looped_params, stacked_params = layouts("fox")
    unstacked = unstack_layer_params(stacked_params)
    assert jax.tree.structure(unstacked) == jax.tree.structure(looped_params)
    for wanted, actual in zip(jax.tree.leaves(looped_params), jax.tree.leaves(unstacked), strict=True):
        np.testing.assert_array_equal(actual, wanted)
    with pytest.raises(ValueError, match=r"params have blocks \['block_0', 'block_1', 'block_2'\], expected"):
        stack_layer_params(looped_params, 2)
    with pytest.raises(ValueError, match=r"expected 'blocks' \(the scanned layout\)"):
        unstack_layer_params(looped_params)
    with pytest.raises(ValueError, match=r"params have 'block_0' but model.scan_layers=True"):
        LanguageModel(scanned).apply({"params": looped_params}, TOKENS)
    with pytest.raises(ValueError, match=r"params have 'blocks' but model.scan_layers=False"):
        LanguageModel(looped).apply({"params": stacked_params}, TOKENS)


def test_scanned_init_draws_every_layer_independently():
    params = init_params(model_config("fox-tiny", num_layers=3), jax.random.PRNGKey(0))
    kernels = np.asarray(params["blocks"]["mlp"]["up"]["kernel"])
    assert kernels.shape[0] == 3 and not np.allclose(kernels[0], kernels[1])
    assert abs(float(kernels.std()) - 0.02) < 0.002


def test_stored_configs_without_the_field_read_back_looped():
    fields = dataclasses.asdict(model_config("fox-tiny"))
    assert model_config_from_dict(fields).scan_layers is True
    del fields["scan_layers"]
    assert model_config_from_dict(fields).scan_layers is False
    with pytest.raises(ValueError, match=r"invalid model.scan_layers='yes': expected True or False"):
        model_config("fox-tiny", scan_layers="yes")
