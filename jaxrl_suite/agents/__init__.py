"""Learners: each a Config dataclass, a TrainState pytree and pure init/update/evaluate.

`make_ppo(config, env)` returns a `runner.learner.Learner`; `default_config(env_id)` picks
per-family hyperparameters.
"""

from jaxrl_suite.agents.gae import compute_gae
from jaxrl_suite.agents.normalizer import RunningMeanStd, normalize, update_running_mean_std
from jaxrl_suite.agents.ppo import PPO, PPOConfig, PPOTrainState, default_config, make_ppo

__all__ = [
    "PPO",
    "PPOConfig",
    "PPOTrainState",
    "RunningMeanStd",
    "compute_gae",
    "default_config",
    "make_ppo",
    "normalize",
    "update_running_mean_std",
]
