"""ModelConfig for the decoder-only language models, and the named size presets.

Sizes and block options follow the Forgetting Transformer paper (arXiv 2503.02130): 125M, 360M, 760M.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from jaxrl_suite.validation import require

ATTENTION_KINDS = ("forgetting", "softmax")
COMPUTE_DTYPES = ("float32", "bfloat16")
ATTENTION_IMPLS = ("auto", "reference", "xla", "pallas")
BYTE_VOCAB_SIZE = 257  # 256 byte values + one end-of-document token


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture of one decoder-only LM: pre-norm residual blocks of attention and SwiGLU MLP."""

    vocab_size: int = BYTE_VOCAB_SIZE
    """Number of token ids (bytes 0..255 plus the end-of-document token)."""
    d_model: int = 128
    """Width of the residual stream."""
    num_layers: int = 2
    """Number of blocks."""
    num_heads: int = 4
    """Query heads; head_dim = d_model // num_heads."""
    num_kv_heads: int = 0
    """Key/value heads (grouped-query attention); 0 = num_heads."""
    attention: str = "forgetting"
    """'forgetting' (a per-head forget gate f_t = sigmoid(w.x_t + b)) or 'softmax' (plain causal)."""
    rope: bool = False
    """Rotary position embedding on queries and keys (the Transformer baseline uses it; FoX does not)."""
    rope_base: float = 500_000.0
    """RoPE theta."""
    output_gate: bool = False
    """Pro: multiply the attention output by sigmoid(W_g x) before the output projection."""
    output_norm: bool = False
    """Pro: per-head RMSNorm of the attention output (applied before the output gate)."""
    qk_norm: bool = False
    """Pro: per-head RMSNorm of queries and keys (separate scales for every head)."""
    kv_shift: bool = False
    """Pro: k'_t = a_t k_{t-1} + (1 - a_t) k_t with a_t = sigmoid(w.x_t) per head; the same for v."""
    mlp_hidden_ratio: float = 4.0
    """SwiGLU hidden width = round_up(d_model * ratio * 2/3, mlp_multiple_of): 4.0 LLaMA, 3.5 Pro."""
    mlp_multiple_of: int = 256
    """The SwiGLU hidden width is rounded up to a multiple of this."""
    norm_eps: float = 1e-6
    """Epsilon of every RMSNorm."""
    init_std: float = 0.02
    """Standard deviation of the N(0, std) initialization of every Linear and the embedding."""
    forget_gate_bias_init: tuple[float, float] | None = None
    """Optional (T_min, T_max): gate biases b = -log(expm1(1/T)), T log-spaced over heads; None = zero."""
    tie_embeddings: bool = False
    """Use the input embedding as the output projection."""
    compute_dtype: str = "float32"
    """Activation/matmul dtype ('float32' or 'bfloat16'); params, gates and logits stay float32."""
    attention_impl: str = "auto"
    """Implementation passed to `jaxrl_suite.ops.forgetting_attention` ('auto', 'reference', 'xla', 'pallas')."""
    attention_block_size: int = 0
    """Query and key tile size of the blockwise kernels (also the ACP tile); 0 = the kernel's default."""
    scan_layers: bool = True
    """Blocks under one `lax.scan` with parameters stacked per layer (params['blocks'], leading axis = layer),
    so a block is traced and compiled once; False = a Python loop over params['block_0'], ... (the layout of
    runs stored before this field existed; `jaxrl_suite.models.layout` converts between the two)."""

    @property
    def kv_heads(self) -> int:
        return self.num_kv_heads or self.num_heads

    @property
    def head_dim(self) -> int:
        return self.d_model // self.num_heads

    @property
    def mlp_hidden(self) -> int:
        width = int(self.d_model * self.mlp_hidden_ratio * 2 / 3)
        return self.mlp_multiple_of * -(-width // self.mlp_multiple_of)

    @property
    def pro(self) -> bool:
        return self.output_gate or self.output_norm or self.qk_norm or self.kv_shift

    def validate(self) -> ModelConfig:
        require(self.vocab_size >= 2, "model", "vocab_size", self.vocab_size, "an integer >= 2")
        require(self.num_layers >= 1, "model", "num_layers", self.num_layers, "an integer >= 1")
        require(self.num_heads >= 1, "model", "num_heads", self.num_heads, "an integer >= 1")
        require(self.d_model >= 1 and self.d_model % self.num_heads == 0, "model", "d_model", self.d_model,
                f"a positive multiple of num_heads={self.num_heads}")
        require(self.num_kv_heads >= 0 and self.num_heads % self.kv_heads == 0, "model", "num_kv_heads",
                self.num_kv_heads, f"0 or a divisor of num_heads={self.num_heads}")
        require(not self.rope or self.head_dim % 2 == 0, "model", "rope", self.rope,
                f"False when head_dim={self.head_dim} is odd (RoPE rotates pairs of dimensions)")
        require(self.rope_base > 1.0, "model", "rope_base", self.rope_base, "a number > 1")
        require(self.attention in ATTENTION_KINDS, "model", "attention", self.attention, f"one of {ATTENTION_KINDS}")
        require(self.mlp_hidden_ratio > 0, "model", "mlp_hidden_ratio", self.mlp_hidden_ratio, "a positive number")
        require(self.mlp_multiple_of >= 1, "model", "mlp_multiple_of", self.mlp_multiple_of, "an integer >= 1")
        require(self.norm_eps > 0, "model", "norm_eps", self.norm_eps, "a positive number")
        require(self.init_std > 0, "model", "init_std", self.init_std, "a positive number")
        bias_range = self.forget_gate_bias_init
        require(bias_range is None or (len(bias_range) == 2 and 0 < bias_range[0] <= bias_range[1]),
                "model", "forget_gate_bias_init", bias_range, "None or (T_min, T_max) with 0 < T_min <= T_max")
        require(bias_range is None or self.attention == "forgetting", "model", "forget_gate_bias_init", bias_range,
                "None unless attention='forgetting'")
        require(self.compute_dtype in COMPUTE_DTYPES, "model", "compute_dtype", self.compute_dtype,
                f"one of {COMPUTE_DTYPES}")
        require(self.attention_block_size >= 0, "model", "attention_block_size", self.attention_block_size,
                "0 (kernel default) or a positive tile size (a power of 2 >= 16 for 'pallas')")
        require(self.attention_impl in ATTENTION_IMPLS, "model", "attention_impl", self.attention_impl,
                f"one of {ATTENTION_IMPLS}")
        require(isinstance(self.scan_layers, bool), "model", "scan_layers", self.scan_layers, "True or False")
        return self


PRO_FLAGS = dict(output_gate=True, output_norm=True, qk_norm=True, kv_shift=True, mlp_hidden_ratio=3.5)
SIZES: dict[str, dict[str, Any]] = {
    # CPU tests and the cpu experiment preset: a few hundred thousand parameters.
    "tiny": dict(d_model=128, num_layers=2, num_heads=4, mlp_multiple_of=32),
    # The paper's sizes (head_dim 64). With a 257-token byte vocabulary the embedding is far smaller
    # than with the paper's 50k BPE vocabulary, so counts are below the names' (see docs/lm.md).
    "125m": dict(d_model=768, num_layers=12, num_heads=12),
    "360m": dict(d_model=1024, num_layers=24, num_heads=16),
    "760m": dict(d_model=1536, num_layers=24, num_heads=24),
}
FAMILIES: dict[str, dict[str, Any]] = {
    "fox": dict(attention="forgetting", rope=False),
    "fox-pro": dict(attention="forgetting", rope=False, **PRO_FLAGS),
    "transformer": dict(attention="softmax", rope=True),
    "transformer-pro": dict(attention="softmax", rope=True, **PRO_FLAGS),
}
PRESETS: dict[str, ModelConfig] = {
    f"{family}-{size}": ModelConfig(**family_fields, **size_fields)
    for family, family_fields in FAMILIES.items()
    for size, size_fields in SIZES.items()
}


def model_config(name: str, **overrides: Any) -> ModelConfig:
    """The validated preset `name` (e.g. 'fox-pro-tiny', 'transformer-125m') with fields replaced."""
    if name not in PRESETS:
        raise ValueError(f"invalid model={name!r}: expected one of {sorted(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides).validate()


def model_config_from_dict(fields: dict[str, Any]) -> ModelConfig:
    """Inverse of dataclasses.asdict (JSON turns tuples into lists).

    Fields stored before `scan_layers` existed describe looped parameters, so a missing one means False.
    """
    fields = {"scan_layers": False} | dict(fields)
    if fields.get("forget_gate_bias_init") is not None:
        fields["forget_gate_bias_init"] = tuple(fields["forget_gate_bias_init"])
    return ModelConfig(**fields).validate()
