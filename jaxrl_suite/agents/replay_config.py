"""ReplayConfig: the fields and checks every replay-based learner's config shares (DQNConfig,
and OffPolicyConfig under SACConfig and TD3Config); each subclass sets its own defaults.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import ClassVar

from jaxrl_suite.early_stop import FixedHorizonConfig
from jaxrl_suite.networks import ACTIVATIONS
from jaxrl_suite.plasticity import ChurnConfig, PlasticityConfig
from jaxrl_suite.validation import added_field, rebuild_nested_configs, require


@dataclasses.dataclass(frozen=True)
class ReplayConfig:
    """Replay, budget and evaluation fields of a replay-based learner (see its subclasses)."""

    owner: ClassVar[str] = "replay"

    num_envs: int = 1
    """Parallel environments per seed; one update steps each of them once."""
    buffer_size: int = 1_000_000
    """Replay capacity in transitions per seed (checked against free memory before compiling)."""
    batch_size: int = 256
    """Transitions per gradient step."""
    learning_starts: int = 5_000
    """Env steps before gradient steps begin (SAC/TD3 act uniformly at random until then)."""
    gamma: float = 0.99
    """Discount factor."""
    max_grad_norm: float | None = None
    """Clip gradients to this global norm, each network's on its own (None: no clipping)."""
    hidden_sizes: tuple[int, ...] = (256, 256)
    """Widths of each network's hidden MLP layers."""
    activation: str = "relu"
    """Hidden activation: tanh, relu, elu, gelu or silu."""
    num_eval_envs: int = 10
    """Environments (one episode each) in every evaluation of the deterministic (greedy) policy."""
    eval_max_steps: int = 1000
    """Evaluation episode length cap, used when the env has no time limit of its own."""
    buffer_memory_fraction: float = 0.5
    """Largest share of the free host/device memory the replay buffer may take."""
    plasticity: PlasticityConfig = PlasticityConfig()
    """ReDo / ReGraMa resets (period counts gradient steps; SAC/TD3 reset each critic of the
    ensemble on its own, and the actor) and unit diagnostics."""
    churn: ChurnConfig = ChurnConfig()
    """C-CHAIN (DQN) or CHAIN (SAC/TD3) churn reduction on a second replay batch."""
    normalize_observations: bool = added_field("2026-12-03", default=False)
    """Normalize observations by running mean and std (statistics live in the TrainState)."""
    reward_scale: float = added_field("2026-12-03", default=1.0)
    """Multiply rewards by this before learning (episode returns stay unscaled)."""
    horizon: FixedHorizonConfig = added_field("2026-12-03", default_factory=FixedHorizonConfig)
    """The fixed-horizon rule's constants (used when early_stop="fixed-horizon")."""

    @property
    def learn_steps(self) -> int:
        """Gradient steps after each env step of all num_envs envs (the subclass's field)."""
        raise NotImplementedError

    def __post_init__(self):  # rebuilt from config.json
        rebuild_nested_configs(self)

    def validate_replay_fields(self, positive_ints: Sequence[str] = (), chain_weights: bool = True) -> None:
        """Raises ValueError naming the first invalid shared field (and of `positive_ints`, the
        subclass's integer fields that must be >= 1), its value and what is valid."""
        owner = self.owner
        for field in ("num_envs", "buffer_size", "batch_size", *positive_ints, "num_eval_envs", "eval_max_steps"):
            value = getattr(self, field)
            require(isinstance(value, int) and not isinstance(value, bool) and value >= 1, owner, field, value,
                    "an integer >= 1")
        require(self.buffer_size >= self.num_envs, owner, "buffer_size", self.buffer_size,
                f"at least num_envs={self.num_envs} (one env step must fit)")
        require(self.reward_scale > 0, owner, "reward_scale", self.reward_scale, "a number > 0")
        require(self.learning_starts >= 0, owner, "learning_starts", self.learning_starts, "an env step count >= 0")
        require(0.0 < self.gamma <= 1.0, owner, "gamma", self.gamma, "a discount in (0, 1]")
        require(self.max_grad_norm is None or self.max_grad_norm > 0, owner, "max_grad_norm", self.max_grad_norm,
                "a norm > 0, or None for no clipping")
        require(self.activation in ACTIVATIONS, owner, "activation", self.activation, f"one of {sorted(ACTIVATIONS)}")
        require(0.0 < self.buffer_memory_fraction <= 1.0, owner, "buffer_memory_fraction",
                self.buffer_memory_fraction, "a fraction in (0, 1]")
        self.plasticity.validate(f"{owner}.plasticity")
        self.churn.validate(f"{owner}.churn", chain_weights=chain_weights,
                            defaults=type(self).__dataclass_fields__["churn"].default)
