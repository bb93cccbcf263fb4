"""Autoregressive sampling with a KV cache: one prefill over the prompt, then a `lax.scan` of one-token steps.

Works for every LanguageModel variant; greedy when temperature is 0.
"""

from __future__ import annotations

from functools import partial

import chex
import flax.struct
import jax
import jax.numpy as jnp

from jaxrl_suite.models.config import ModelConfig
from jaxrl_suite.models.lm import LanguageModel


class Generation(flax.struct.PyTreeNode):
    """tokens: [batch, num_new_tokens] int32 sampled after the prompt; logits: [batch, num_new_tokens, vocab]."""

    tokens: jax.Array
    logits: jax.Array


def _sample(logits: jax.Array, key: jax.Array, temperature: float) -> jax.Array:
    if temperature == 0.0:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    return jax.random.categorical(key, logits / temperature, axis=-1).astype(jnp.int32)


@partial(jax.jit, static_argnames=("config", "num_new_tokens", "temperature"))
def generate(params: chex.ArrayTree, config: ModelConfig, prompt: jax.Array, num_new_tokens: int,
             key: jax.Array, temperature: float = 0.0) -> Generation:
    """Continues prompt [batch, prompt_len] (same length for every row) by num_new_tokens tokens."""
    chex.assert_rank(prompt, 2)
    if num_new_tokens < 1:
        raise ValueError(f"invalid num_new_tokens={num_new_tokens}: expected an integer >= 1")
    model = LanguageModel(config)
    variables = {"params": params}
    max_length = prompt.shape[1] + num_new_tokens
    prompt_logits, cache = model.apply(variables, prompt, max_length, method=LanguageModel.prefill)
    keys = jax.random.split(key, num_new_tokens)
    first_logits = prompt_logits[:, -1]
    first_token = _sample(first_logits, keys[0], temperature)

    def step(carry, step_key):
        token, cache = carry
        logits, cache = model.apply(variables, token, cache, method=LanguageModel.decode_step)
        next_token = _sample(logits, step_key, temperature)
        return (next_token, cache), (next_token, logits)

    _, (later_tokens, later_logits) = jax.lax.scan(step, (first_token, cache), keys[1:])
    tokens = jnp.concatenate([first_token[:, None], later_tokens.T], axis=1)
    logits = jnp.concatenate([first_logits[:, None], later_logits.transpose(1, 0, 2)], axis=1)
    return Generation(tokens=tokens, logits=logits)
