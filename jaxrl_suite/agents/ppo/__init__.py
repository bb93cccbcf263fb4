"""Proximal Policy Optimization (Schulman et al. 2017, arXiv 1707.06347) in three modules:
config (PPOConfig, per-family defaults), losses (pure loss pieces), learner (PPO, make_ppo).
"""

from jaxrl_suite.agents.ppo.config import PPOConfig, default_config
from jaxrl_suite.agents.ppo.learner import (
    PPO,
    Batch,
    PPOTrainState,
    Trajectory,
    bootstrap_values,
    make_ppo,
    with_learning_rate,
)
from jaxrl_suite.agents.ppo.losses import (
    clipped_surrogate_loss,
    explained_variance,
    standardize,
    value_loss,
)

__all__ = [
    "PPO",
    "Batch",
    "PPOConfig",
    "PPOTrainState",
    "Trajectory",
    "bootstrap_values",
    "clipped_surrogate_loss",
    "default_config",
    "explained_variance",
    "make_ppo",
    "standardize",
    "value_loss",
    "with_learning_rate",
]
