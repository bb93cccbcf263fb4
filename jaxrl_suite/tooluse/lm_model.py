"""A trained LM as an svs.ToolCallModel: calls sampled at temperature T, next states predicted greedily.

Both go through models.generate on the fixed-width rows of tooluse/rows.py (DyMo, arXiv 2506.02918).
"""

from __future__ import annotations

from collections.abc import Sequence

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxrl_suite.lm.finetune import EOS_ID, PAD_ID, encode_prompts
from jaxrl_suite.models import ModelConfig, generate
from jaxrl_suite.tooluse.fields import FIELD_WIDTHS, FieldWidths
from jaxrl_suite.tooluse.rows import (
    fc_prompt_width,
    fc_response_width,
    sp_prompt,
    sp_prompt_width,
    sp_response_width,
)
from jaxrl_suite.validation import require


def decode_field(tokens: np.ndarray, width: int) -> str:
    """Generated tokens [num_new] as text: cut at the first EOS, at most `width` bytes, trailing spaces (the
    padding) dropped; a byte that is no UTF-8 becomes U+FFFD, so a bad sample fails to parse instead of raising."""
    tokens = np.asarray(tokens)
    ends = np.flatnonzero(tokens == EOS_ID)
    kept = tokens[:ends[0] if ends.size else tokens.size][:width]
    return bytes(int(token) for token in kept if token < 256).decode("utf-8", "replace").rstrip(chr(PAD_ID))


class LanguageModelToolCaller:
    """svs.ToolCallModel over a LanguageModel trained on rows.py rows.

    sample_calls(prompt, k): k continuations of the FC prompt (rows.fc_prompt) at `temperature` (0 = greedy),
    each a fresh key folded from `key` and a call counter, so repeated calls draw new samples.
    predict_state(prompt, call): the greedy continuation of rows.sp_prompt(prompt, call).
    """

    def __init__(self, model: ModelConfig, params: chex.ArrayTree, key: jax.Array, temperature: float = 1.0,
                 widths: FieldWidths = FIELD_WIDTHS) -> None:
        is_number = isinstance(temperature, int | float) and not isinstance(temperature, bool)
        require(is_number and temperature >= 0, "LanguageModelToolCaller", "temperature", temperature,
                "a number >= 0 (0 = greedy)")
        self.model, self.params, self.widths = model, params, widths
        self.temperature = float(temperature)
        self._key, self._draws = key, 0

    def _continue(self, prompts: Sequence[str], prompt_width: int, num_new_tokens: int, temperature: float,
                  width: int) -> list[str]:
        tokens = jnp.asarray(encode_prompts(prompts, prompt_width))
        key = jax.random.fold_in(self._key, self._draws)
        self._draws += 1
        generated = generate(self.params, self.model, tokens, num_new_tokens, key, temperature).tokens
        return [decode_field(row, width) for row in np.asarray(generated)]

    def sample_calls(self, prompt: str, k: int) -> list[str]:
        width = fc_prompt_width(self.widths)
        require(isinstance(prompt, str) and len(prompt) == width, "sample_calls", "prompt", prompt,
                f"an FC prompt of {width} characters (rows.fc_prompt)")
        require(type(k) is int and k >= 1, "sample_calls", "k", k, "an integer >= 1")
        return self._continue([prompt] * k, width, fc_response_width(self.widths), self.temperature,
                              self.widths.calls)

    def predict_state(self, prompt: str, call: str) -> str:
        (state,) = self._continue([sp_prompt(prompt, call, self.widths)], sp_prompt_width(self.widths),
                                  sp_response_width(self.widths), 0.0, self.widths.state)
        return state
