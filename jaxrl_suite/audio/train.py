"""Training and evaluation of the FLAM systems (arXiv 2505.05335) on `audio.batch.Batch`es: encoder
init, Adam, one jitted train step, seeds as a jax.vmap over the init key, and frame scores for `metrics`."""

from __future__ import annotations

import dataclasses
import functools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxrl_suite.audio import batch as batch_lib
from jaxrl_suite.audio import encoders, losses, metrics
from jaxrl_suite.audio import systems as systems_lib
from jaxrl_suite.validation import require


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """A system plus the encoder sizes and Adam's learning rate (defaults: the encoders' own sizes)."""

    system: systems_lib.SystemConfig = systems_lib.SystemConfig()
    learning_rate: float = 1e-3
    hidden: int = 64
    embed_dim: int = 32
    num_heads: int = 4

    def __post_init__(self):
        require(isinstance(self.system, systems_lib.SystemConfig), "TrainConfig", "system", self.system,
                "a SystemConfig (systems.system(name))")
        lr = self.learning_rate
        require(isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0, "TrainConfig", "learning_rate", lr, "a finite positive number")
        for field in ("hidden", "embed_dim", "num_heads"):
            value = getattr(self, field)
            require(isinstance(value, int) and value >= 1, "TrainConfig", field, value, "a positive int")
        require(self.hidden % self.num_heads == 0, "TrainConfig", "num_heads", self.num_heads, f"a divisor of hidden={self.hidden}")

    def audio_net(self) -> encoders.AudioEncoder:
        return encoders.AudioEncoder(self.hidden, self.embed_dim, self.num_heads)

    def text_net(self) -> encoders.TextEncoder:
        return encoders.TextEncoder(self.hidden, self.embed_dim)


@chex.dataclass(frozen=True)
class State:
    """params {audio, text, log_logit_scale, log_siglip_scale, siglip_bias}; opt_state; step (int32 scalar)."""

    params: chex.ArrayTree
    opt_state: chex.ArrayTree
    step: jax.Array


def arrays(data: batch_lib.Batch) -> dict[str, jax.Array]:
    """The array fields of a Batch as a pytree a jitted function can take (captions stay on the host)."""
    fields = ("feats", "texts", "text_mask", "labels", "clip_texts", "clip_mask")
    return {name: jnp.asarray(getattr(data, name)) for name in fields}


def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
    return optax.adam(config.learning_rate)


def init_params(key: jax.Array, config: TrainConfig, data: dict) -> chex.ArrayTree:
    """Encoders (alpha/beta are the text encoder's heads, starting at 10 and -8), the InfoNCE logit scale
    1/0.07 and S0's scalar scale 10 and bias -10; every system holds them all, unused ones get zero gradients."""
    key_audio, key_text = jax.random.split(key)
    return {
        "audio": config.audio_net().init(key_audio, data["feats"]),
        "text": config.text_net().init(key_text, data["texts"], data["text_mask"]),
        "log_logit_scale": jnp.log(jnp.float32(losses.LOGIT_SCALE_INIT)),
        "log_siglip_scale": jnp.log(jnp.float32(losses.SIGLIP_SCALE_INIT)),
        "siglip_bias": jnp.float32(losses.SIGLIP_BIAS_INIT),
    }


def init_state(key: jax.Array, config: TrainConfig, data: dict) -> State:
    return _init_fn(_sizes_only(config), False)(key, data)


def init_states(keys: jax.Array, config: TrainConfig, data: dict) -> State:
    """One state per key [S, 2], stacked on a leading seed axis (a jax.vmap over the init key)."""
    chex.assert_rank(keys, 2)
    return _init_fn(_sizes_only(config), True)(keys, data)


def _sizes_only(config: TrainConfig) -> TrainConfig:
    """The state does not depend on the system (every system holds every parameter): one init per size and lr."""
    return dataclasses.replace(config, system=systems_lib.SystemConfig())


@functools.lru_cache(maxsize=32)
def _init_fn(config: TrainConfig, seeds: bool):
    # jitted: flax init and optax init run op by op otherwise, seconds on a loaded CPU
    def init(key, data):
        params = init_params(key, config, data)
        return State(params=params, opt_state=make_optimizer(config).init(params), step=jnp.zeros((), jnp.int32))

    return jax.jit(jax.vmap(init, in_axes=(0, None)) if seeds else init)


def _encode(params, config: TrainConfig, data: dict):
    frames, audio_global = config.audio_net().apply(params["audio"], data["feats"])
    text, alpha, beta = config.text_net().apply(params["text"], data["texts"], data["text_mask"])
    return frames, audio_global, text, alpha, beta


def system_loss(params, config: TrainConfig, data: dict) -> tuple[jax.Array, dict[str, jax.Array]]:
    """(L, parts {clip, frame, prior}): the system's weighted sum; a part the system does not train is 0."""
    system = config.system
    frames, audio_global, text, alpha, beta = _encode(params, config, data)
    labels = data["labels"]
    valid = jnp.ones(labels.shape[:2], bool)  # make_batch: every text is valid against every clip
    zero = jnp.zeros((), jnp.float32)
    parts = {"clip": zero, "frame": zero, "prior": zero}
    if system.clip_weight > 0:
        clip_text, _, _ = config.text_net().apply(params["text"], data["clip_texts"], data["clip_mask"])
        parts["clip"] = losses.clip_loss(audio_global, clip_text, jnp.exp(params["log_logit_scale"]))
    if system.frame_loss == "scalar":
        parts["frame"] = losses.siglip_s0_loss(frames, text, jnp.exp(params["log_siglip_scale"]), params["siglip_bias"], labels, valid)
    elif system.frame_loss == "per_text":
        parts["frame"] = losses.sed_loss_from_logits(losses.frame_logits(frames, text, alpha, beta), labels, valid)
    elif system.frame_loss == "adjusted":
        parts["frame"] = losses.sed_loss(frames, text, alpha, beta, labels, valid)
        parts["prior"] = losses.prior_loss(beta, losses.positive_rate(labels, valid), valid.any(axis=0))
    total = system.clip_weight * parts["clip"] + system.frame_weight * parts["frame"] + system.prior_weight * parts["prior"]
    return total, parts


@functools.lru_cache(maxsize=32)
def make_train_step(config: TrainConfig):
    """step(state, data) -> (state, {loss, clip, frame, prior}), jitted (one per config, cached); vmap it
    over a seed axis with `jax.vmap(step, in_axes=(0, None))` (or use `make_seeds_step`)."""
    optimizer = make_optimizer(config)
    loss_grad = jax.value_and_grad(functools.partial(system_loss, config=config), has_aux=True)

    def step(state: State, data: dict) -> tuple[State, dict[str, jax.Array]]:
        chex.assert_rank([data["feats"], data["labels"]], [3, 3])
        (loss, parts), grads = loss_grad(state.params, data=data)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return State(params=params, opt_state=opt_state, step=state.step + 1), {"loss": loss, **parts}

    return jax.jit(step)


@functools.lru_cache(maxsize=32)
def make_seeds_step(config: TrainConfig):
    """The train step over states stacked on a seed axis, one shared batch: losses [S] per part."""
    return jax.jit(jax.vmap(make_train_step(config), in_axes=(0, None)))


def fit(state: State, config: TrainConfig, data: dict, num_steps: int, seeds: bool = False):
    """num_steps train steps on one batch as one lax.scan: (state, per-step losses [num_steps] or [num_steps, S])."""
    require(isinstance(num_steps, int) and num_steps >= 1, "fit", "num_steps", num_steps, "a positive int")
    return _scan_steps(config, num_steps, bool(seeds))(state, data)


@functools.lru_cache(maxsize=32)
def _scan_steps(config: TrainConfig, num_steps: int, seeds: bool):
    step = make_seeds_step(config) if seeds else make_train_step(config)
    return jax.jit(lambda state, data: jax.lax.scan(lambda s, _: step(s, data), state, None, length=num_steps))


def frame_scores(params, config: TrainConfig, data: dict, inference: str | None = None) -> jax.Array:
    """[A, K, F] scores in [0, 1] of every batch text on every clip frame. inference (default: the system's):
    "cosine" (1 + cos) / 2; "sigmoid" sigmoid of the system's frame logits; for FLAM systems "raw"
    p = sigmoid(alpha cos + beta) and "unbiased" p / (p + sigmoid(beta))."""
    system = config.system
    inference = system.inference if inference is None else inference
    valid = {"none": ("cosine",), "scalar": ("cosine", "sigmoid"), "per_text": ("cosine", "sigmoid"),
             "adjusted": ("cosine", "raw", "unbiased")}[system.frame_loss]
    require(inference in valid, "frame_scores", "inference", inference, f"one of {list(valid)} for system {system.name!r}")
    frames, _, text, alpha, beta = _encode(params, config, data)
    if inference == "cosine":
        return 0.5 * (1.0 + losses.cosine_maps(frames, text))
    if system.frame_loss == "scalar":
        return jax.nn.sigmoid(jnp.exp(params["log_siglip_scale"]) * losses.cosine_maps(frames, text) + params["siglip_bias"])
    p = jax.nn.sigmoid(losses.frame_logits(frames, text, alpha, beta))
    return losses.unbiased_scores(p, beta) if inference == "unbiased" else p


def clip_similarity(params, config: TrainConfig, data: dict) -> jax.Array:
    """[A, A] cosine of each clip's joined caption (rows) with each clip's global audio embedding (columns)."""
    _, audio_global = config.audio_net().apply(params["audio"], data["feats"])
    clip_text, _, _ = config.text_net().apply(params["text"], data["clip_texts"], data["clip_mask"])
    return losses.l2_normalise(clip_text) @ losses.l2_normalise(audio_global).T


def evaluate(params, config: TrainConfig, data: dict, inference: str | None = None, ks=(1, 5, 10)) -> dict:
    """One model (unstacked params) on one batch: frame scores [A, K, F] (numpy), frame AUROC macro/micro,
    micro F1 at the one threshold 0.5, ECE, and text->audio R@k over the batch's clips (k > A left out)."""
    scores = np.asarray(jax.jit(functools.partial(frame_scores, config=config, inference=inference))(params, data=data))
    similarity = np.asarray(jax.jit(functools.partial(clip_similarity, config=config))(params, data=data))
    labels = np.asarray(data["labels"])
    chex.assert_shape(scores, labels.shape)
    result = {
        "scores": scores,
        "auroc_macro": metrics.frame_auroc(scores, labels, "macro"),
        "auroc_micro": metrics.frame_auroc(scores, labels, "micro"),
        "f1": metrics.frame_f1(scores, labels, 0.5),
        "ece": metrics.expected_calibration_error(scores, labels),
        "recall": metrics.recall_at_k(similarity, [k for k in ks if k <= similarity.shape[1]]),
    }
    return result
