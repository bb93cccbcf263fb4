"""Neural network building blocks shared by the learners: trunks, torsos, heads, distributions.

Flax linen modules; distributions are distrax objects over raw (pre-clip/squash) actions.
"""

from jaxrl_suite.networks.actor_critic import ActorCritic, Trunk
from jaxrl_suite.networks.conv import ConvTorso
from jaxrl_suite.networks.heads import (
    SQUASH_MODES,
    CategoricalHead,
    GaussianHead,
    Squash,
    ValueHead,
    env_action,
    policy_head_for,
    squashed_gaussian_entropy,
)
from jaxrl_suite.networks.mlp import ACTIVATIONS, MLP, activation_by_name, orthogonal_dense

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "SQUASH_MODES",
    "ActorCritic",
    "CategoricalHead",
    "ConvTorso",
    "GaussianHead",
    "Squash",
    "Trunk",
    "ValueHead",
    "activation_by_name",
    "env_action",
    "orthogonal_dense",
    "policy_head_for",
    "squashed_gaussian_entropy",
]
