"""segment_ids through the language models: each segment is modelled as if it were its own sequence.

FoX, FoX-Pro (KV-shift restarts at a segment start) and the RoPE Transformer, on small CPU models.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_suite.models import LanguageModel, init_params, model_config

LENGTHS = ((1, 6, 1, 8), (5, 9, 2))  # per batch row, 16 tokens each; segments of length 1 included


def segment_ids():
    return jnp.asarray(np.stack([np.repeat(np.arange(len(row)), row) for row in LENGTHS]).astype(np.int32))


@pytest.mark.parametrize("family,impl", [("fox", "xla"), ("fox-pro", "reference"), ("transformer-pro", "xla")])
def test_segmented_logits_equal_each_segment_alone(family, impl):
    config = model_config(f"{family}-tiny", d_model=64, num_heads=2, num_layers=2, mlp_multiple_of=16,
                          attention_impl=impl, attention_block_size=8 if impl == "xla" else 0)
    params = init_params(config, jax.random.PRNGKey(0))
    model = LanguageModel(config)
    tokens = jax.random.randint(jax.random.PRNGKey(1), (2, 16), 0, config.vocab_size)
    logits = jax.jit(lambda p, t, s: model.apply({"params": p}, t, None, s))(params, tokens, segment_ids())
    chex.assert_shape(logits, (2, 16, config.vocab_size))
    for row, lengths in enumerate(LENGTHS):
        start = 0
        for length in lengths:
            alone = model.apply({"params": params}, tokens[row:row + 1, start:start + length])
            # RoPE sees global positions: same angles' differences, other rounding.
            np.testing.assert_allclose(logits[row, start:start + length], alone[0], atol=2e-5, rtol=2e-5)
            start += length


def test_one_segment_is_the_unsegmented_model_and_gradients_stay_finite():
    config = model_config("fox-pro-tiny", d_model=64, num_heads=2, num_layers=2, mlp_multiple_of=16)
    params = init_params(config, jax.random.PRNGKey(0))
    model = LanguageModel(config)
    tokens = jax.random.randint(jax.random.PRNGKey(2), (2, 16), 0, config.vocab_size)
    same = jnp.zeros((2, 16), jnp.int32)
    np.testing.assert_allclose(model.apply({"params": params}, tokens, None, same),
                               model.apply({"params": params}, tokens), atol=1e-6, rtol=1e-6)

    def loss(params):
        return model.apply({"params": params}, tokens, None, segment_ids()).mean()

    grads = jax.grad(loss)(params)
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(grads))
