"""Actor-critic network: torso (MLP or conv + MLP), shared or separate actor/critic trunks, heads.

Separate trunks are the default for on-policy learners (Andrychowicz et al. 2021; arXiv 2506.03404 §4).
"""

from __future__ import annotations

from collections.abc import Sequence

import distrax
import flax.linen as nn
import jax

from jaxrl_suite.envs.spaces import Space
from jaxrl_suite.networks.conv import ConvTorso
from jaxrl_suite.networks.heads import ValueHead, policy_head_for
from jaxrl_suite.networks.mlp import MLP


class Trunk(nn.Module):
    """obs [..., *obs_shape] -> features [..., width]: optional ConvTorso, then an MLP.

    Without a conv torso the trailing `observation_ndim` axes are flattened first.
    """

    hidden_sizes: Sequence[int]
    activation: str = "tanh"
    layer_norm: bool = False
    residual: bool = False
    conv_channels: Sequence[int] = ()
    observation_ndim: int = 1

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        if self.conv_channels:
            features = ConvTorso(tuple(self.conv_channels))(obs)
        else:
            batch_shape = obs.shape[: obs.ndim - self.observation_ndim]
            features = obs.reshape((*batch_shape, -1))
        return MLP(tuple(self.hidden_sizes), self.activation, self.layer_norm, self.residual)(features)


class ActorCritic(nn.Module):
    """obs [..., *obs_shape] -> (action distribution over raw actions [...], value [...]).

    shared_trunk=True: one trunk feeds both heads; False: the actor and the critic each have
    their own trunk (and conv torso).
    """

    action_space: Space
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    layer_norm: bool = False
    residual: bool = False
    shared_trunk: bool = False
    conv_channels: Sequence[int] = ()
    observation_ndim: int = 1
    state_dependent_std: bool = False
    init_log_std: float = 0.0

    def setup(self):
        def make_trunk(name: str) -> Trunk:
            return Trunk(
                self.hidden_sizes, self.activation, self.layer_norm, self.residual,
                self.conv_channels, self.observation_ndim, name=name,
            )

        self.actor_trunk = make_trunk("trunk" if self.shared_trunk else "actor_trunk")
        self.critic_trunk = self.actor_trunk if self.shared_trunk else make_trunk("critic_trunk")
        self.policy_head = policy_head_for(self.action_space, self.state_dependent_std, self.init_log_std)
        self.value_head = ValueHead()

    def __call__(self, obs: jax.Array) -> tuple[distrax.Distribution, jax.Array]:
        actor_features = self.actor_trunk(obs)
        critic_features = actor_features if self.shared_trunk else self.critic_trunk(obs)
        return self.policy_head(actor_features), self.value_head(critic_features)

    def value(self, obs: jax.Array) -> jax.Array:
        """obs [..., *obs_shape] -> value [...] without building the policy."""
        return self.value_head(self.critic_trunk(obs))
