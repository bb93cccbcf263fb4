"""Actors and critics for off-policy continuous control: a critic ensemble, a tanh-Gaussian actor
(SAC, Haarnoja et al. 2018) and a deterministic tanh actor (TD3, Fujimoto et al. 2018).

Actions live in [-1, 1]^action_dim (the envs' ActionRescale maps them onto the true bounds).
"""

from __future__ import annotations

from collections.abc import Sequence

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxrl_suite.networks.mlp import MLP, orthogonal_dense

# log std of the tanh-Gaussian actor is squashed into this range (the usual SAC choice).
MIN_LOG_STD = -5.0
MAX_LOG_STD = 2.0


class QNetwork(nn.Module):
    """(obs [..., obs_dim], action [..., action_dim]) -> Q [...]."""

    hidden_sizes: Sequence[int] = (256, 256)
    activation: str = "relu"
    layer_norm: bool = False

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        features = MLP(tuple(self.hidden_sizes), self.activation, self.layer_norm)(
            jnp.concatenate([obs, action], axis=-1)
        )
        return orthogonal_dense(1, 1.0, name="q")(features)[..., 0]


# The nn.vmap holding the critics: params["critics"] stacks every leaf on a leading [num_critics] axis.
CRITIC_MEMBERS = "critics"


class CriticEnsemble(nn.Module):
    """`num_critics` independent QNetworks: (obs, action) -> Q [num_critics, ...]."""

    num_critics: int = 2
    hidden_sizes: Sequence[int] = (256, 256)
    activation: str = "relu"
    layer_norm: bool = False

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        ensemble = nn.vmap(
            QNetwork,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=None,
            out_axes=0,
            axis_size=self.num_critics,
        )
        return ensemble(tuple(self.hidden_sizes), self.activation, self.layer_norm, name=CRITIC_MEMBERS)(obs, action)


def critic_member(critics: CriticEnsemble) -> QNetwork:
    """One critic of the ensemble, unbound: its params are row i of every leaf of params["critics"]."""
    return QNetwork(tuple(critics.hidden_sizes), critics.activation, critics.layer_norm, parent=None)


class TanhGaussianActor(nn.Module):
    """obs [..., obs_dim] -> (mean, log_std) [..., action_dim] of the Gaussian BEFORE the tanh;
    log_std is squashed smoothly into [MIN_LOG_STD, MAX_LOG_STD]."""

    action_dim: int
    hidden_sizes: Sequence[int] = (256, 256)
    activation: str = "relu"
    layer_norm: bool = False

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        features = MLP(tuple(self.hidden_sizes), self.activation, self.layer_norm)(obs)
        mean = orthogonal_dense(self.action_dim, 0.01, name="mean")(features)
        raw_log_std = orthogonal_dense(self.action_dim, 0.01, name="log_std")(features)
        log_std = MIN_LOG_STD + 0.5 * (MAX_LOG_STD - MIN_LOG_STD) * (jnp.tanh(raw_log_std) + 1.0)
        return mean, log_std


class DeterministicActor(nn.Module):
    """obs [..., obs_dim] -> action tanh(MLP(obs)) [..., action_dim] in [-1, 1]."""

    action_dim: int
    hidden_sizes: Sequence[int] = (256, 256)
    activation: str = "relu"
    layer_norm: bool = False

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        features = MLP(tuple(self.hidden_sizes), self.activation, self.layer_norm)(obs)
        return jnp.tanh(orthogonal_dense(self.action_dim, 0.01, name="action")(features))


def tanh_log_det_jacobian(pre_tanh: jax.Array) -> jax.Array:
    """log |d tanh(u) / du| = 2 (log 2 - u - softplus(-2u)), summed over the last axis: [...]."""
    return jnp.sum(2.0 * (jnp.log(2.0) - pre_tanh - jax.nn.softplus(-2.0 * pre_tanh)), axis=-1)


def tanh_gaussian_log_prob(pre_tanh: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """log density of a = tanh(u) where u ~ N(mean, exp(log_std)^2), given u: [..., d] -> [...]."""
    chex.assert_equal_shape([pre_tanh, mean, log_std])
    normal_log_prob = -0.5 * jnp.square((pre_tanh - mean) / jnp.exp(log_std)) - log_std - 0.5 * jnp.log(2.0 * jnp.pi)
    return jnp.sum(normal_log_prob, axis=-1) - tanh_log_det_jacobian(pre_tanh)


def sample_tanh_gaussian(key: jax.Array, mean: jax.Array, log_std: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Reparameterized sample a = tanh(mean + std * noise) [..., d] and its log density [...]."""
    pre_tanh = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape, mean.dtype)
    return jnp.tanh(pre_tanh), tanh_gaussian_log_prob(pre_tanh, mean, log_std)
