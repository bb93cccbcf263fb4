"""A tiny unconditional flow-matching image generator for the bias-shift study (arXiv 2506.09106):
an MLP in Flax linen predicting the clean image or the velocity, logit-normal training times, Euler sampling."""

from __future__ import annotations

import dataclasses

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxrl_suite.validation import require

PREDICTIONS = ("x", "v")


@dataclasses.dataclass(frozen=True)
class FlowConfig:
    """Rectified flow x_t = (1 - t) noise + t data with t = sigmoid(N(0, 1)). prediction="x": the MLP
    predicts the data x_hat (loss |x_hat - data|^2) and the velocity is (x_hat - x_t) / (1 - t), so the
    last Euler step lands on x_hat; "v": it predicts the velocity data - noise directly. "x" is our
    default because the "v" MLP left background speckle in the smoke run (docs/bias_shift.md)."""

    width: int = 256
    depth: int = 3
    train_steps: int = 2000
    batch_size: int = 128
    learning_rate: float = 1e-3
    sample_steps: int = 50
    time_features: int = 16
    prediction: str = "x"
    seed: int = 0

    def validate(self) -> FlowConfig:
        for name in ("width", "depth", "train_steps", "batch_size", "sample_steps", "time_features"):
            value = getattr(self, name)
            require(isinstance(value, int) and value > 0, "FlowConfig", name, value, "a positive int")
        require(self.time_features % 2 == 0, "FlowConfig", "time_features", self.time_features, "an even int (sin and cos pairs)")
        require(self.prediction in PREDICTIONS, "FlowConfig", "prediction", self.prediction, f"one of {', '.join(PREDICTIONS)}")
        require(self.learning_rate > 0, "FlowConfig", "learning_rate", self.learning_rate, "a positive float")
        return self


class FlowMLP(nn.Module):
    """f(x_t, t): x [batch, dim], t [batch] -> [batch, dim] (clean image or velocity, per `prediction`);
    t enters as sin/cos features."""

    dim: int
    width: int
    depth: int
    time_features: int
    prediction: str = "x"

    @nn.compact
    def __call__(self, x, t):
        frequencies = jnp.exp(jnp.linspace(0.0, jnp.log(100.0), self.time_features // 2))
        angles = t[:, None] * frequencies[None, :]
        hidden = jnp.concatenate([x, jnp.sin(angles), jnp.cos(angles)], axis=-1)
        for _ in range(self.depth):
            hidden = nn.silu(nn.Dense(self.width)(hidden))
        return nn.Dense(self.dim)(hidden)


def _to_model(images: np.ndarray) -> jnp.ndarray:
    return jnp.asarray(images.reshape(images.shape[0], -1) * 2.0 - 1.0, jnp.float32)


def flow_velocity(model: FlowMLP, params, x, t):
    """dx/dt at (x [batch, dim], t [batch]) from either parameterisation of `model`."""
    output = model.apply(params, x, t)
    return (output - x) / (1.0 - t[:, None]) if model.prediction == "x" else output


def train_flow(images, config: FlowConfig = FlowConfig(), seeds: tuple[int, ...] | None = None) -> tuple[FlowMLP, dict, np.ndarray]:
    """Fits the flow MLP to images [n, h, w] in [0, 1] -> (model, params, per-step loss [train_steps]).
    With `seeds`, one fit per seed in a single vmapped program: params gain a leading [num_seeds]
    axis and the loss is [num_seeds, train_steps] (pick one with `seed_params`)."""
    config.validate()
    images = np.asarray(images, np.float32)
    chex.assert_rank(images, 3)
    require(images.shape[0] >= 2, "train_flow", "images.shape[0]", images.shape[0], "at least 2 images")
    if seeds is not None:
        require(len(seeds) > 0, "train_flow", "seeds", seeds, "a non-empty tuple of ints")
    data = _to_model(images)
    model = FlowMLP(data.shape[1], config.width, config.depth, config.time_features, config.prediction)
    optimizer = optax.adam(config.learning_rate)

    def loss_fn(params, key):
        index_key, noise_key, time_key = jax.random.split(key, 3)
        batch = data[jax.random.randint(index_key, (config.batch_size,), 0, data.shape[0])]
        noise = jax.random.normal(noise_key, batch.shape)
        t = jax.nn.sigmoid(jax.random.normal(time_key, (config.batch_size,)))  # logit-normal(0, 1)
        x_t = (1.0 - t[:, None]) * noise + t[:, None] * batch
        target = batch if config.prediction == "x" else batch - noise
        return jnp.mean((model.apply(params, x_t, t) - target) ** 2)

    def train_step(carry, key):
        params, opt_state = carry
        loss, grads = jax.value_and_grad(loss_fn)(params, key)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    def fit(seed_key):
        key, init_key = jax.random.split(seed_key)
        params = model.init(init_key, data[:1], jnp.zeros((1,)))
        (params, _), losses = jax.lax.scan(train_step, (params, optimizer.init(params)), jax.random.split(key, config.train_steps))
        return params, losses

    if seeds is None:
        params, losses = jax.jit(fit)(jax.random.PRNGKey(config.seed))
    else:
        keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds))
        params, losses = jax.jit(jax.vmap(fit))(keys)
    return model, params, np.asarray(losses)


def seed_params(params, index: int):
    """The params of the index-th seed of a `train_flow(..., seeds=...)` fit."""
    return jax.tree.map(lambda leaf: leaf[index], params)


def sample_flow(model: FlowMLP, params, num_samples: int, side: int, sample_steps: int = 50, seed: int = 0) -> np.ndarray:
    """Euler integration of dx/dt = v(x, t) from noise at t = 0 to t = 1 (last step from
    t = 1 - 1/sample_steps, so 1 - t never reaches 0) -> [num_samples, side, side] float32, mapped
    back to [0, 1] and clipped."""
    require(isinstance(num_samples, int) and num_samples > 0, "sample_flow", "num_samples", num_samples, "a positive int")
    require(side * side == model.dim, "sample_flow", "side", side, f"sqrt of the model's dim {model.dim}")

    @jax.jit
    def integrate(noise):
        def euler_step(x, step):
            t = jnp.full((x.shape[0],), step / sample_steps)
            return x + flow_velocity(model, params, x, t) / sample_steps, None

        x, _ = jax.lax.scan(euler_step, noise, jnp.arange(sample_steps))
        return x

    x = integrate(jax.random.normal(jax.random.PRNGKey(seed), (num_samples, model.dim)))
    images = np.clip((np.asarray(x) + 1.0) / 2.0, 0.0, 1.0).reshape(num_samples, side, side).astype(np.float32)
    chex.assert_shape(images, (num_samples, side, side))
    return images
