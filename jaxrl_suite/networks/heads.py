"""Policy and value heads, and the map from a policy's raw actions to environment actions.

Categorical for discrete actions; diagonal Gaussian (state-independent or state-dependent std)
for continuous ones, made env-valid by clipping or tanh-squashing to the action bounds.
"""

from __future__ import annotations

from typing import Literal

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxrl_suite.envs.spaces import Box, Discrete, Space
from jaxrl_suite.networks.mlp import orthogonal_dense
from jaxrl_suite.networks.off_policy_heads import tanh_log_det_jacobian

Squash = Literal["clip", "tanh", "none"]
SQUASH_MODES: tuple[str, ...] = ("clip", "tanh", "none")

# Small initial policy weights keep the first policy near uniform / near zero-mean
# (Andrychowicz et al. 2021, "What Matters in On-Policy RL").
POLICY_HEAD_SCALE = 0.01
VALUE_HEAD_SCALE = 1.0


class CategoricalHead(nn.Module):
    """features [..., width] -> Categorical over `num_actions` (logits [..., num_actions])."""

    num_actions: int

    @nn.compact
    def __call__(self, features: jax.Array) -> distrax.Categorical:
        logits = orthogonal_dense(self.num_actions, POLICY_HEAD_SCALE, name="logits")(features)
        return distrax.Categorical(logits=logits)


class GaussianHead(nn.Module):
    """features [..., width] -> diagonal Gaussian over raw actions [..., action_dim].

    state_dependent_std=False: log std is one learned vector shared by all states (PPO's usual
    choice); True: a second linear output. log std starts at `init_log_std` and is clipped to
    [min_log_std, max_log_std].
    """

    action_dim: int
    state_dependent_std: bool = False
    init_log_std: float = 0.0
    min_log_std: float = -5.0
    max_log_std: float = 2.0

    @nn.compact
    def __call__(self, features: jax.Array) -> distrax.MultivariateNormalDiag:
        mean = orthogonal_dense(self.action_dim, POLICY_HEAD_SCALE, name="mean")(features)
        if self.state_dependent_std:
            log_std = orthogonal_dense(self.action_dim, POLICY_HEAD_SCALE, name="log_std")(features)
            log_std = log_std + self.init_log_std
        else:
            log_std = self.param(
                "log_std", nn.initializers.constant(self.init_log_std), (self.action_dim,)
            )
            log_std = jnp.broadcast_to(log_std, mean.shape)
        log_std = jnp.clip(log_std, self.min_log_std, self.max_log_std)
        return distrax.MultivariateNormalDiag(mean, jnp.exp(log_std))


# Gauss-Hermite rule for E[f(u)], u ~ N(m, s^2): sum_n w_n f(m + sqrt(2) s x_n) / sqrt(pi).
QUADRATURE_NODES, QUADRATURE_WEIGHTS = np.polynomial.hermite.hermgauss(32)


def squashed_gaussian_entropy(policy: distrax.MultivariateNormalDiag) -> jax.Array:
    """Entropy of a = tanh(u), u ~ policy: [...] (the same for any affine map of `a`, up to a constant).

    H(tanh(u)) = H(u) + E[log |d tanh(u) / du|]. The expectation is a 32-point Gauss-Hermite
    rule per action dimension (deterministic; brax.training uses one reparameterized sample).
    Unlike H(u), it falls when the mean or std pushes actions into tanh's flat tails.
    """
    nodes = jnp.asarray(QUADRATURE_NODES, jnp.float32).reshape((-1,) + (1,) * policy.loc.ndim)
    weights = jnp.asarray(QUADRATURE_WEIGHTS / np.sqrt(np.pi), jnp.float32)
    pre_tanh = policy.loc + np.sqrt(2.0) * policy.scale_diag * nodes  # [num_nodes, ..., action_dim]
    expected_log_det = jnp.tensordot(weights, tanh_log_det_jacobian(pre_tanh), axes=1)
    return policy.entropy() + expected_log_det


class ValueHead(nn.Module):
    """features [..., width] -> state value [...]."""

    @nn.compact
    def __call__(self, features: jax.Array) -> jax.Array:
        return orthogonal_dense(1, VALUE_HEAD_SCALE, name="value")(features)[..., 0]


def policy_head_for(
    action_space: Space, state_dependent_std: bool = False, init_log_std: float = 0.0
) -> nn.Module:
    """The head matching an action space: CategoricalHead for Discrete, GaussianHead for a 1-D Box."""
    if isinstance(action_space, Discrete):
        return CategoricalHead(action_space.n)
    if isinstance(action_space, Box):
        if len(action_space.shape) != 1:
            raise ValueError(f"continuous actions must be a 1-D Box, got shape {action_space.shape}")
        return GaussianHead(action_space.shape[0], state_dependent_std, init_log_std)
    raise ValueError(f"unsupported action space {action_space!r}; valid: Discrete or 1-D Box")


def env_action(raw_action: jax.Array, action_space: Space, squash: Squash = "clip") -> jax.Array:
    """Maps a raw policy action to a valid env action: [..., action_dim] -> [..., action_dim].

    Discrete actions and unbounded boxes pass through. For a bounded Box, "clip" clips to
    [low, high], "tanh" maps tanh(raw) affinely onto [low, high], "none" passes through.
    Learners keep the RAW action for log-probabilities: clipping and squashing happen only on
    the way into the env (for tanh the Jacobian term cancels in PPO's probability ratio).
    """
    if squash not in SQUASH_MODES:
        raise ValueError(f"squash={squash!r} is not known; valid: {SQUASH_MODES}")
    if isinstance(action_space, Discrete) or not action_space.bounded or squash == "none":
        return raw_action
    low = jnp.asarray(np.broadcast_to(action_space.low, action_space.shape), jnp.float32)
    high = jnp.asarray(np.broadcast_to(action_space.high, action_space.shape), jnp.float32)
    if squash == "clip":
        return jnp.clip(raw_action, low, high)
    return low + 0.5 * (jnp.tanh(raw_action) + 1.0) * (high - low)
