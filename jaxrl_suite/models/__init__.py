"""Decoder-only language models: FoX (LLaMA-style and Pro blocks) and the RoPE Transformer baseline.

Forgetting Transformer, arXiv 2503.02130; attention goes through `jaxrl_suite.ops.forgetting_attention`.
"""

from jaxrl_suite.models.attention import AttentionState
from jaxrl_suite.models.config import PRESETS, ModelConfig, model_config, model_config_from_dict
from jaxrl_suite.models.generate import Generation, generate
from jaxrl_suite.models.layout import stack_layer_params, unstack_layer_params
from jaxrl_suite.models.lm import DecodeCache, LanguageModel, count_parameters, init_params

__all__ = [
    "PRESETS", "AttentionState", "DecodeCache", "Generation", "LanguageModel", "ModelConfig", "count_parameters",
    "generate", "init_params", "model_config", "model_config_from_dict", "stack_layer_params", "unstack_layer_params",
]
