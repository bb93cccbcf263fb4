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

    Without a conv torso the trailing `observation_ndim` axes are flattened first. With one,
    `image_shape` ([height, width, channels], one entry may be -1) restores images from
    observations an env delivers flattened.
    """

    hidden_sizes: Sequence[int]
    activation: str = "tanh"
    layer_norm: bool = False
    residual: bool = False
    conv_channels: Sequence[int] = ()
    observation_ndim: int = 1
    image_shape: Sequence[int] = ()

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        batch_shape = obs.shape[: obs.ndim - self.observation_ndim]
        if self.conv_channels:
            image = obs.reshape((*batch_shape, *self.image_shape)) if self.image_shape else obs
            features = ConvTorso(tuple(self.conv_channels))(image)
        else:
            features = obs.reshape((*batch_shape, -1))
        return MLP(tuple(self.hidden_sizes), self.activation, self.layer_norm, self.residual)(features)


class ActorCritic(nn.Module):
    """obs [..., *obs_shape] -> (action distribution over raw actions [...], value [...]).

    shared_trunk=True: one trunk feeds both heads; False: the actor and the critic each have
    their own trunk (and conv torso), the critic's MLP of `critic_hidden_sizes` when given.
    """

    action_space: Space
    hidden_sizes: Sequence[int] = (64, 64)
    critic_hidden_sizes: Sequence[int] | None = None
    activation: str = "tanh"
    layer_norm: bool = False
    residual: bool = False
    shared_trunk: bool = False
    conv_channels: Sequence[int] = ()
    observation_ndim: int = 1
    image_shape: Sequence[int] = ()
    state_dependent_std: bool = False
    init_log_std: float = 0.0

    def setup(self):
        if self.shared_trunk and self.critic_hidden_sizes is not None:
            raise ValueError("critic_hidden_sizes needs separate trunks (shared_trunk=False)")

        def make_trunk(hidden_sizes: Sequence[int], name: str) -> Trunk:
            return Trunk(
                tuple(hidden_sizes), self.activation, self.layer_norm, self.residual,
                tuple(self.conv_channels), self.observation_ndim, tuple(self.image_shape), name=name,
            )

        if self.shared_trunk:
            self.actor_trunk = self.critic_trunk = make_trunk(self.hidden_sizes, "trunk")
        else:
            self.actor_trunk = make_trunk(self.hidden_sizes, "actor_trunk")
            critic_sizes = self.hidden_sizes if self.critic_hidden_sizes is None else self.critic_hidden_sizes
            self.critic_trunk = make_trunk(critic_sizes, "critic_trunk")
        self.policy_head = policy_head_for(self.action_space, self.state_dependent_std, self.init_log_std)
        self.value_head = ValueHead()

    def __call__(self, obs: jax.Array) -> tuple[distrax.Distribution, jax.Array]:
        actor_features = self.actor_trunk(obs)
        critic_features = actor_features if self.shared_trunk else self.critic_trunk(obs)
        return self.policy_head(actor_features), self.value_head(critic_features)

    def value(self, obs: jax.Array) -> jax.Array:
        """obs [..., *obs_shape] -> value [...] without building the policy."""
        return self.value_head(self.critic_trunk(obs))

    def policy(self, obs: jax.Array) -> distrax.Distribution:
        """obs [..., *obs_shape] -> action distribution [...] without computing the value."""
        return self.policy_head(self.actor_trunk(obs))
