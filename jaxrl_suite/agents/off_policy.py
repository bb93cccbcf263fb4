"""What the replay-based actor-critics (SAC, TD3) share beyond ReplayConfig: their config
fields, per-family defaults and env checks (the cycle itself: replay_learner.py).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal

from jaxrl_suite.agents.replay_config import ReplayConfig
from jaxrl_suite.early_stop import LeastConfig, validate_stop_fields
from jaxrl_suite.envs.core import Env, observation_spec
from jaxrl_suite.envs.spaces import Box
from jaxrl_suite.validation import require


@dataclasses.dataclass(frozen=True)
class OffPolicyConfig(ReplayConfig):
    """Fields every replay-based actor-critic shares (ReplayConfig's, and these); SACConfig and
    TD3Config add their own."""

    owner: ClassVar[str] = "off_policy"

    utd_ratio: int = 1
    """Update-to-data ratio: gradient steps per update, i.e. per step of all num_envs envs."""
    tau: float = 0.005
    """Polyak averaging rate of the target networks."""
    actor_learning_rate: float = 3e-4
    """Adam step size of the actor."""
    critic_learning_rate: float = 3e-4
    """Adam step size of the critics."""
    critic_layer_norm: bool = False
    """LayerNorm after each hidden layer of the critics."""
    num_critics: int = 2
    """Critics in the ensemble; targets and the actor use their minimum."""
    early_stop: Literal["none", "least", "fixed-horizon"] = "none"
    """Early episode termination: "none", "least" (LEAST, arXiv 2506.13672) or "fixed-horizon"
    (each episode stops at a random step H, LEAST's control)."""
    least: LeastConfig = dataclasses.field(default_factory=LeastConfig)
    """LEAST's constants (used when early_stop="least")."""

    @property
    def learn_steps(self) -> int:
        return self.utd_ratio

    def validate(self) -> OffPolicyConfig:
        """Raises ValueError naming the first invalid field, its value and what is valid."""
        owner = self.owner
        self.validate_replay_fields(positive_ints=("utd_ratio", "num_critics"))
        require(0.0 < self.tau <= 1.0, owner, "tau", self.tau, "a Polyak rate in (0, 1]")
        for field in ("actor_learning_rate", "critic_learning_rate"):
            require(getattr(self, field) > 0, owner, field, getattr(self, field), "a number > 0")
        require(len(self.hidden_sizes) >= 1 and all(isinstance(w, int) and w >= 1 for w in self.hidden_sizes),
                owner, "hidden_sizes", self.hidden_sizes, "a non-empty tuple of positive integers")
        validate_stop_fields(self)
        return self


# Per-family defaults of SAC and TD3: gymnax (Pendulum-sized tasks) 4 envs x UTD 4 with lr 1e-3;
# dmc/brax Playground's tuned brax SAC recipe (mujoco_playground.config.dm_control_suite_params):
# 128 envs, batch 512, UTD 8, LayerNorm critics, observation normalization.
GYMNAX_DEFAULTS = dict(num_envs=4, utd_ratio=4, buffer_size=100_000, learning_starts=1_000,
                       actor_learning_rate=1e-3, critic_learning_rate=1e-3)
PHYSICS_DEFAULTS = dict(num_envs=128, batch_size=512, utd_ratio=8, buffer_size=1_048_576, learning_starts=8_192,
                        actor_learning_rate=1e-3, critic_learning_rate=1e-3, critic_layer_norm=True,
                        normalize_observations=True)
FAMILY_DEFAULTS: dict[str, tuple[dict[str, Any], int]] = {  # (fields, LEAST's start_steps)
    "gymnax": (GYMNAX_DEFAULTS, 5_000), "dmc": (PHYSICS_DEFAULTS, 500_000), "brax": (PHYSICS_DEFAULTS, 500_000),
}


def family_defaults(env_id: str, least_noise_cap: float, **algorithm_fields: Any) -> dict[str, Any]:
    """The shared fields of env_id's family, with `algorithm_fields` and LEAST's noise cap added
    ({} for a family without defaults: the config's class defaults)."""
    family = env_id.partition("/")[0]
    if family not in FAMILY_DEFAULTS:
        return {}
    fields, least_start = FAMILY_DEFAULTS[family]
    return dict(fields, **algorithm_fields, least=LeastConfig(start_steps=least_start, noise_cap=least_noise_cap))


def observation_dim(env: Env) -> int:
    """The flat observation size of `env`, which must be a vector."""
    obs = observation_spec(env)
    if len(obs.shape) != 1:
        raise ValueError(f"off-policy learners need vector observations; {env.env_id!r} gives shape {obs.shape}")
    return int(obs.shape[0])


def action_dim(env: Env) -> int:
    """The action size of `env`, which must have a bounded 1-D Box action space."""
    space = env.action_space
    if not isinstance(space, Box) or len(space.shape) != 1 or not space.bounded:
        raise ValueError(
            f"SAC and TD3 need a bounded 1-D Box action space; {env.env_id!r} has {space.describe()}"
        )
    return int(space.shape[0])
