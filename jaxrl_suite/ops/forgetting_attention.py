"""Public entry point for Forgetting Attention (FoX, arXiv 2503.02130) with optional ACP (arXiv 2504.06949).

Validates shapes, dtypes and options, forms Lambda = cumsum(log f) in float32 and dispatches to the
dense reference, the blockwise plain-JAX kernel or the Pallas GPU kernel.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

from jaxrl_suite.ops import fa_tiling
from jaxrl_suite.ops.fa_pallas import forgetting_attention_pallas
from jaxrl_suite.ops.fa_reference import forgetting_attention_reference
from jaxrl_suite.ops.fa_xla import forgetting_attention_xla

IMPLEMENTATIONS = ("auto", "reference", "xla", "pallas")
INPUT_DTYPES = (jnp.float32, jnp.bfloat16, jnp.float16)
HEAD_DIM_RANGE = (16, 256)
# (block_q, block_k) forward; the Pallas backward has its own pair.
DEFAULT_BLOCKS = {"xla": (128, 128), "pallas": (128, 64)}
DEFAULT_PALLAS_BWD_BLOCKS = (64, 64)
# Above head_dim 128 the default Pallas tiles are halved to stay within GPU shared memory.
LARGE_HEAD_DIM_PALLAS_BLOCKS = ((64, 32), (32, 32))

_NAME = "forgetting_attention"


def forgetting_attention(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    log_fgate: jax.Array,
    *,
    impl: str = "auto",
    block_q: int | None = None,
    block_k: int | None = None,
    block_q_bwd: int | None = None,
    block_k_bwd: int | None = None,
    scale: float | None = None,
    acp_eps: float | None = None,
    start_offset: jax.Array | None = None,
    segment_ids: jax.Array | None = None,
    check_finite: bool = False,
    interpret: bool | None = None,
    num_warps: int | None = None,
    num_stages: int | None = None,
) -> jax.Array:
    """Causal softmax attention with forget-gate bias D_ij = Lambda_i - Lambda_j.

    o_i = sum_{offset <= j <= i} softmax_j(q_i . k_j * scale + Lambda_i - Lambda_j) v_j, where
    Lambda = cumsum_t(log_fgate) in float32. With `segment_ids`, f = 0 at a segment's first
    step: j also runs only over i's segment, as if every segment were its own sequence.

    Args:
      q: [batch, seq, heads, head_dim], float32 / bfloat16 / float16, head_dim in [16, 256].
      k, v: [batch, seq, kv_heads, head_dim], q's dtype; heads % kv_heads == 0 (grouped KV).
      log_fgate: [batch, seq, heads] log forget gate (<= 0), any float dtype.
      impl: "reference" (dense, materialises D), "xla" (blockwise plain JAX, linear memory),
        "pallas" (GPU kernel; `interpret=True` on CPU) or "auto" (pallas on GPU, xla elsewhere).
      block_q, block_k: tile sizes (xla and pallas forward); clamped to the sequence length.
      block_q_bwd, block_k_bwd: Pallas backward tile sizes. Pallas blocks are powers of 2 >= 16.
      scale: logit scale, default 1 / sqrt(head_dim).
      acp_eps: enable ACP: skip tiles whose attention mass is provably below eps per row
        (xla and pallas only; needs log_fgate <= 0).
      start_offset: optional [batch] int, left padding: keys before it are masked, and query rows
        before it (which then see no key) output 0.
      segment_ids: optional [batch, seq] int, episode/document ids: query i attends key j <= i
        only if segment_ids[i] == segment_ids[j] (a new segment starts wherever the id changes).
        log_fgate at a segment's first step is ignored (it may be -inf; its gradient is 0).
        The output and gradients equal running each segment separately. Reference and xla only.
      check_finite: refuse non-finite inputs (and, with ACP, positive log_fgate). On concrete
        inputs this raises ValueError at once; under jit it stages `checkify.check`s, so wrap
        the caller in `jax.experimental.checkify.checkify` to get the error.
      interpret: run the Pallas kernels in interpret mode; default: when not on GPU.
      num_warps, num_stages: Triton launch settings for all Pallas kernels (default: warps by block
        size, 2 stages).

    Matmuls follow JAX's default precision: float32 inputs on GPU use TF32 unless the caller
    sets `jax.default_matmul_precision("highest")`.

    Returns:
      [batch, seq, heads, head_dim] in q's dtype.
    """
    q, k, v, log_fgate = (jnp.asarray(x) for x in (q, k, v, log_fgate))
    batch, seq_len, heads, head_dim = _validate_shapes(q, k, v, log_fgate)
    impl = _resolve_impl(impl, acp_eps)
    if scale is None:
        scale = 1.0 / math.sqrt(head_dim)
    elif not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"{_NAME}: argument 'scale' got {scale!r}, expected a positive finite float")
    start_offset = _validate_offset(start_offset, batch, seq_len)
    if segment_ids is not None:
        segment_ids = _validate_segments(segment_ids, batch, seq_len, impl)
        # f = 0 at a segment's first step (t = 0 included): log f there is replaced by 0 before the
        # cumsum, so a -inf written there is never summed; the mask keeps decay from crossing.
        starts = jnp.pad(segment_ids[:, 1:] != segment_ids[:, :-1], ((0, 0), (1, 0)), constant_values=True)
        log_fgate = jnp.where(starts[..., None], jnp.zeros((), log_fgate.dtype), log_fgate)
    if check_finite:
        arguments = {"q": q, "k": k, "v": v, "log_fgate": log_fgate}
        for name, value in arguments.items():
            _check(jnp.all(jnp.isfinite(value)), f"argument '{name}' contains NaN or Inf")
        if acp_eps is not None:
            _check(
                jnp.all(log_fgate <= 0), "argument 'log_fgate' has positive entries; ACP needs log_fgate <= 0"
            )

    lam = jnp.cumsum(log_fgate.astype(jnp.float32), axis=1).transpose(0, 2, 1)  # [batch, heads, seq]
    if impl == "reference":
        return forgetting_attention_reference(q, k, v, lam, start_offset, scale=scale, segment_ids=segment_ids)
    fwd_defaults, bwd_defaults = DEFAULT_BLOCKS[impl], DEFAULT_PALLAS_BWD_BLOCKS
    if impl == "pallas" and head_dim > 128:
        fwd_defaults, bwd_defaults = LARGE_HEAD_DIM_PALLAS_BLOCKS
    block_q, block_k = _blocks(impl, seq_len, block_q, block_k, fwd_defaults, "")
    if impl == "xla":
        return forgetting_attention_xla(
            q, k, v, lam, start_offset, scale=scale, block_q=block_q, block_k=block_k, acp_eps=acp_eps,
            segment_ids=segment_ids,
        )
    block_q_bwd, block_k_bwd = _blocks(impl, seq_len, block_q_bwd, block_k_bwd, bwd_defaults, "_bwd")
    if interpret is None:
        interpret = jax.default_backend() != "gpu"
    for name, value in (("num_warps", num_warps), ("num_stages", num_stages)):
        if value is not None and (not isinstance(value, (int, np.integer)) or value < 1):
            raise ValueError(f"{_NAME}: argument '{name}' got {value!r}, expected None or a positive int")
    return forgetting_attention_pallas(
        q, k, v, lam, start_offset, scale=scale, block_q=block_q, block_k=block_k,
        block_q_bwd=block_q_bwd, block_k_bwd=block_k_bwd, acp_eps=acp_eps, interpret=bool(interpret),
        num_warps=num_warps, num_stages=None if num_stages is None else int(num_stages),
    )  # fmt: skip


def _validate_shapes(q, k, v, log_fgate) -> tuple[int, int, int, int]:
    if q.ndim != 4:
        raise ValueError(f"{_NAME}: argument 'q' got shape {q.shape}, expected [batch, seq, heads, head_dim]")
    batch, seq_len, heads, head_dim = q.shape
    if q.dtype not in INPUT_DTYPES:
        raise ValueError(f"{_NAME}: argument 'q' got dtype {q.dtype}, expected float32, bfloat16 or float16")
    if not HEAD_DIM_RANGE[0] <= head_dim <= HEAD_DIM_RANGE[1]:
        raise ValueError(
            f"{_NAME}: argument 'q' got head_dim {head_dim}, expected {HEAD_DIM_RANGE[0]}..{HEAD_DIM_RANGE[1]}"
        )
    if seq_len < 1 or batch < 1 or heads < 1:
        raise ValueError(
            f"{_NAME}: argument 'q' got shape {q.shape}, expected non-empty batch, seq and heads"
        )
    for name, x in (("k", k), ("v", v)):
        if x.ndim != 4 or x.shape[:2] != (batch, seq_len) or x.shape[3] != head_dim or x.shape[2] < 1:
            raise ValueError(
                f"{_NAME}: argument '{name}' got shape {x.shape}, expected "
                f"[batch={batch}, seq={seq_len}, kv_heads, head_dim={head_dim}] to match q {q.shape}"
            )
        if x.dtype != q.dtype:
            raise ValueError(f"{_NAME}: argument '{name}' got dtype {x.dtype}, expected q's dtype {q.dtype}")
    if v.shape != k.shape:
        raise ValueError(f"{_NAME}: argument 'v' got shape {v.shape}, expected k's shape {k.shape}")
    kv_heads = k.shape[2]
    if heads % kv_heads:
        raise ValueError(
            f"{_NAME}: argument 'k' got kv_heads={kv_heads}, expected a divisor of q's heads={heads} (grouped KV)"
        )
    if log_fgate.shape != (batch, seq_len, heads):
        raise ValueError(
            f"{_NAME}: argument 'log_fgate' got shape {log_fgate.shape}, "
            f"expected [batch, seq, heads] = {(batch, seq_len, heads)}"
        )
    if not jnp.issubdtype(log_fgate.dtype, jnp.floating):
        raise ValueError(f"{_NAME}: argument 'log_fgate' got dtype {log_fgate.dtype}, expected a float dtype")
    return batch, seq_len, heads, head_dim


def _resolve_impl(impl: str, acp_eps: float | None) -> str:
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"{_NAME}: argument 'impl' got {impl!r}, expected one of {IMPLEMENTATIONS}")
    if impl == "auto":
        impl = "pallas" if jax.default_backend() == "gpu" else "xla"
    if acp_eps is not None:
        if not (isinstance(acp_eps, (int, float)) and 0.0 < acp_eps < 1.0):
            raise ValueError(
                f"{_NAME}: argument 'acp_eps' got {acp_eps!r}, expected None or a float in (0, 1)"
            )
        if impl == "reference":
            raise ValueError(
                f"{_NAME}: argument 'acp_eps' is not supported by impl='reference' (use 'xla' or 'pallas')"
            )
    return impl


def _validate_offset(start_offset, batch: int, seq_len: int) -> jax.Array:
    if start_offset is None:
        return jnp.zeros((batch,), jnp.int32)
    start_offset = jnp.asarray(start_offset)
    if start_offset.shape != (batch,) or not jnp.issubdtype(start_offset.dtype, jnp.integer):
        raise ValueError(
            f"{_NAME}: argument 'start_offset' got shape {start_offset.shape} dtype {start_offset.dtype}, "
            f"expected [batch={batch}] integers"
        )
    if not isinstance(start_offset, jax.core.Tracer):
        values = np.asarray(start_offset)
        if values.min() < 0 or values.max() > seq_len:
            raise ValueError(
                f"{_NAME}: argument 'start_offset' got values in [{values.min()}, {values.max()}], expected 0..{seq_len}"
            )
    return start_offset.astype(jnp.int32)


def _validate_segments(segment_ids, batch: int, seq_len: int, impl: str) -> jax.Array:
    if impl == "pallas":
        raise ValueError(
            f"{_NAME}: argument 'segment_ids' is not supported by impl='pallas' (use 'xla' or 'reference')"
        )
    segment_ids = jnp.asarray(segment_ids)
    if segment_ids.shape != (batch, seq_len) or not jnp.issubdtype(segment_ids.dtype, jnp.integer):
        raise ValueError(
            f"{_NAME}: argument 'segment_ids' got shape {segment_ids.shape} dtype {segment_ids.dtype}, "
            f"expected [batch={batch}, seq={seq_len}] integers"
        )
    return segment_ids.astype(jnp.int32)


def _blocks(impl, seq_len, block_q, block_k, defaults, suffix) -> tuple[int, int]:
    sizes = []
    for name, value, default in (("block_q", block_q, defaults[0]), ("block_k", block_k, defaults[1])):
        value = default if value is None else value
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{_NAME}: argument '{name}{suffix}' got {value!r}, expected a positive int")
        if impl == "pallas":
            if value < 16 or value & (value - 1):
                raise ValueError(
                    f"{_NAME}: argument '{name}{suffix}' got {value}, expected a power of 2 >= 16 for impl='pallas'"
                )
            sizes.append(min(int(value), max(16, 1 << (seq_len - 1).bit_length())))
        else:
            sizes.append(min(int(value), fa_tiling.round_up(seq_len, 8)))
    return sizes[0], sizes[1]


def _check(ok: jax.Array, message: str) -> None:
    """Raises at once on concrete inputs; stages a checkify check under tracing."""
    if isinstance(ok, jax.core.Tracer):
        checkify.check(ok, f"{_NAME}: {message}")
    elif not bool(ok):
        raise ValueError(f"{_NAME}: {message}")
