"""The FLAM objective as pure JAX functions (arXiv 2505.05335; openflam's constants as defaults):
frame logits, L_SED with beta detached, the logit-adjustment prior, global InfoNCE, unbiased scores, SigLIP S0."""

from __future__ import annotations

import dataclasses

import chex
import jax
import jax.numpy as jnp
import optax

from jaxrl_suite.validation import require

ALPHA_INIT = 10.0  # alpha = exp(MLP(text)), initialised at 10
BETA_INIT = -8.0  # beta = MLP(text), last bias initialised at -8
SED_WEIGHT = 200.0
CLIP_WEIGHT = 1.0
PRIOR_WEIGHT = 1.0
LOGIT_SCALE_INIT = 1.0 / 0.07  # CLIP/CLAP InfoNCE temperature 0.07
SIGLIP_SCALE_INIT = 10.0  # SigLIP's initial t' = log 10, i.e. scale 10
SIGLIP_BIAS_INIT = -10.0


@dataclasses.dataclass(frozen=True)
class FlamLossConfig:
    """L = clip_weight * L_CLIP + sed_weight * L_SED + prior_weight * L_prior (defaults 1, 200, 1)."""

    clip_weight: float = CLIP_WEIGHT
    sed_weight: float = SED_WEIGHT
    prior_weight: float = PRIOR_WEIGHT

    def __post_init__(self):
        for name in ("clip_weight", "sed_weight", "prior_weight"):
            value = getattr(self, name)
            require(value >= 0, "FlamLossConfig", name, value, "a non-negative loss weight")


def l2_normalise(x: jax.Array, eps: float = 1e-8) -> jax.Array:
    return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), eps)


def cosine_maps(audio_frames: jax.Array, text: jax.Array) -> jax.Array:
    """[A, K, F] <e_af, e_tk> of unit-normed audio frames [A, F, D] and texts [K, D]."""
    chex.assert_rank([audio_frames, text], [3, 2])
    chex.assert_equal(audio_frames.shape[-1], text.shape[-1])
    return jnp.einsum("afd,kd->akf", l2_normalise(audio_frames), l2_normalise(text))


def frame_logits(audio_frames, text, alpha, beta) -> jax.Array:
    """h[a, k, f] = alpha[k] * <e_af, e_tk> + beta[k], [A, K, F]."""
    chex.assert_shape([alpha, beta], [(text.shape[0],), (text.shape[0],)])
    return alpha[None, :, None] * cosine_maps(audio_frames, text) + beta[None, :, None]


def _check_labels(logits, labels, valid):
    chex.assert_rank(logits, 3)
    chex.assert_shape(labels, logits.shape)
    chex.assert_shape(valid, logits.shape[:2])


def sed_loss_from_logits(logits, labels, valid) -> jax.Array:
    """Mean over valid (a, k) pairs and all frames of -log sigmoid(z * h), z = +1 on positive frames, -1 else."""
    _check_labels(logits, labels, valid)
    z = 2.0 * labels.astype(logits.dtype) - 1.0
    mask = valid.astype(logits.dtype)[:, :, None]
    count = jnp.maximum(mask.sum() * logits.shape[2], 1.0)
    return jnp.sum(-jax.nn.log_sigmoid(z * logits) * mask) / count


def sed_loss(audio_frames, text, alpha, beta, labels, valid) -> jax.Array:
    """L_SED with beta DETACHED: beta gets no gradient here, only from prior_loss."""
    return sed_loss_from_logits(frame_logits(audio_frames, text, alpha, jax.lax.stop_gradient(beta)), labels, valid)


def positive_rate(labels, valid) -> jax.Array:
    """[K] r_k: text k's fraction of positive frames over its valid clips in the batch (0 with none)."""
    chex.assert_rank(labels, 3)
    chex.assert_shape(valid, labels.shape[:2])
    mask = valid.astype(jnp.float32)[:, :, None]
    positives = jnp.sum(labels.astype(jnp.float32) * mask, axis=(0, 2))
    frames = jnp.sum(mask, axis=(0, 2)) * labels.shape[2]
    return jnp.where(frames > 0, positives / jnp.maximum(frames, 1.0), 0.0)


def prior_loss(beta, rate, text_mask=None) -> jax.Array:
    """L_prior = mean over texts (with text_mask) of BCE(sigmoid(beta_k), r_k)."""
    chex.assert_rank(beta, 1)
    chex.assert_shape(rate, beta.shape)
    bce = optax.sigmoid_binary_cross_entropy(beta, rate)
    mask = jnp.ones_like(beta) if text_mask is None else text_mask.astype(beta.dtype)
    return jnp.sum(bce * mask) / jnp.maximum(mask.sum(), 1.0)


def clip_loss(audio_global, text_global, logit_scale=LOGIT_SCALE_INIT) -> jax.Array:
    """Symmetric InfoNCE over N (audio, text) pairs, pair i positive with i: (CE(rows) + CE(cols)) / 2."""
    chex.assert_rank([audio_global, text_global], [2, 2])
    chex.assert_equal_shape([audio_global, text_global])
    n = audio_global.shape[0]
    require(n >= 2, "losses", "K", n, "at least 2 (audio, text) pairs for InfoNCE")
    logits = logit_scale * l2_normalise(audio_global) @ l2_normalise(text_global).T
    pairs = jnp.arange(n)
    rows = optax.softmax_cross_entropy_with_integer_labels(logits, pairs).mean()
    cols = optax.softmax_cross_entropy_with_integer_labels(logits.T, pairs).mean()
    return 0.5 * (rows + cols)


def flam_loss(audio_frames, text, alpha, beta, labels, valid, clip_audio, clip_text,
              logit_scale=LOGIT_SCALE_INIT, config: FlamLossConfig = FlamLossConfig()):
    """(L, parts): L = L_CLIP(clip_audio, clip_text) + 200 L_SED + L_prior(beta, r from labels)."""
    parts = {
        "clip": clip_loss(clip_audio, clip_text, logit_scale),
        "sed": sed_loss(audio_frames, text, alpha, beta, labels, valid),
        "prior": prior_loss(beta, positive_rate(labels, valid), valid.any(axis=0)),
    }
    total = config.clip_weight * parts["clip"] + config.sed_weight * parts["sed"] + config.prior_weight * parts["prior"]
    return total, parts


def unbiased_scores(p, beta) -> jax.Array:
    """s = p / (p + sigmoid(beta)), p [A, K, F] frame probabilities, beta [K]; s = 0.5 where p = sigmoid(beta)."""
    chex.assert_rank([p, beta], [3, 1])
    chex.assert_equal(p.shape[1], beta.shape[0])
    prior = jax.nn.sigmoid(beta)[None, :, None]
    return p / (p + prior)


def siglip_s0_loss(audio_frames, text, scale, bias, labels, valid) -> jax.Array:
    """System S0: the same frame loss with one scalar scale and bias for all texts (bias not detached)."""
    chex.assert_rank([scale, bias], [0, 0])
    logits = scale * cosine_maps(audio_frames, text) + bias
    return sed_loss_from_logits(logits, labels, valid)
