"""PPO's hyperparameters (PPOConfig, validated before anything compiles) and the per-family
defaults that make `--env` alone train well (default_config).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal

from jaxrl_suite.early_stop import FixedHorizonConfig, validate_stop_fields
from jaxrl_suite.envs.registry import make_raw
from jaxrl_suite.envs.spaces import Box
from jaxrl_suite.networks import ACTIVATIONS, SQUASH_MODES
from jaxrl_suite.plasticity import ChurnConfig, PlasticityConfig
from jaxrl_suite.validation import added_field, rebuild_nested_configs, require


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """PPO hyperparameters; the defaults are PureJaxRL's CartPole settings (see default_config)."""

    num_envs: int = 4
    """Parallel environments per seed (vmapped; split over devices when a mesh is given)."""
    rollout_length: int = 128
    """Env steps each environment takes per update; one batch is num_envs * rollout_length."""
    total_steps: int = 500_000
    """Env steps per seed the run is planned for: the horizon of learning-rate annealing."""
    num_epochs: int = 4
    """Passes over each batch."""
    num_minibatches: int = 4
    """Minibatches per epoch; must divide num_envs * rollout_length."""
    learning_rate: float = 2.5e-4
    """Adam step size (the starting value when annealed)."""
    anneal_lr: bool = True
    """Decay the learning rate linearly to 0 over total_steps."""
    adam_eps: float = 1e-5
    """Adam epsilon."""
    max_grad_norm: float | None = 0.5
    """Clip gradients to this global norm (None: no clipping)."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE lambda: 0 is one-step TD, 1 is Monte Carlo."""
    clip_eps: float = 0.2
    """PPO ratio clipping: the surrogate ignores ratios outside [1 - clip_eps, 1 + clip_eps]."""
    value_clip_eps: float | None = None
    """Clip value predictions to old value +- this (None: unclipped value loss)."""
    entropy_coef: float = 0.01
    """Weight of the entropy bonus."""
    value_coef: float = 0.5
    """Weight of the value loss."""
    normalize_advantages: bool = True
    """Standardize advantages within each minibatch."""
    target_kl: float | None = None
    """Stop the iteration's remaining minibatch updates once approx KL exceeds this (None: never)."""
    normalize_observations: bool = False
    """Normalize observations by running mean and std (statistics live in the TrainState)."""
    reward_scale: float = 1.0
    """Multiply rewards by this before learning (evaluation returns stay unscaled)."""
    normalize_rewards: bool = False
    """Divide rewards by the running std of the discounted return."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Widths of the MLP trunk (the actor's, when the critic has its own sizes)."""
    critic_hidden_sizes: tuple[int, ...] | None = None
    """Widths of the critic's MLP trunk (None: same as hidden_sizes); needs shared_trunk=False."""
    activation: str = "tanh"
    """Trunk activation: tanh, relu, elu, gelu or silu."""
    layer_norm: bool = False
    """LayerNorm after each hidden Dense layer."""
    residual: bool = False
    """Residual connections between hidden layers of equal width."""
    shared_trunk: bool = False
    """One trunk for actor and critic (False: separate trunks)."""
    conv_channels: tuple[int, ...] = ()
    """Channels of 3x3 conv layers before the MLP, for image observations (empty: no conv)."""
    conv_input_shape: tuple[int, ...] = ()
    """[height, width, channels] to reshape flat observations to before the conv (-1 infers one; empty: as given)."""
    action_squash: Literal["clip", "tanh", "none"] = "clip"
    """Continuous actions: clip the Gaussian sample to the bounds, or tanh-squash it onto them
    ("tanh" on a discrete action space is refused when the learner is built)."""
    state_dependent_std: bool = False
    """Continuous actions: Gaussian std from the network (False: one learned vector)."""
    init_log_std: float = 0.0
    """Continuous actions: initial log std of the Gaussian policy."""
    squashed_entropy: bool = False
    """With action_squash="tanh": the entropy bonus is that of the squashed action (as in
    brax.training), which falls when actions saturate; False: the raw Gaussian's entropy."""
    num_eval_envs: int = 16
    """Environments (one episode each) in every evaluation of the deterministic policy."""
    eval_max_steps: int = 1000
    """Evaluation episode length cap, used when the env has no time limit of its own."""
    plasticity: PlasticityConfig = PlasticityConfig()
    """ReDo / ReGraMa resets (period counts PPO iterations) and unit diagnostics."""
    churn: ChurnConfig = ChurnConfig()
    """C-CHAIN: policy churn on a reshuffled minibatch (Gaussian mean MSE, or KL for discrete actions)."""
    early_stop: Literal["none", "fixed-horizon"] = added_field("2026-12-03", default="none")
    """Early episode termination: "none", or "fixed-horizon" (each episode stops at a random step
    H, as a truncation); LEAST needs a Q critic and is the off-policy learners'."""
    horizon: FixedHorizonConfig = added_field("2026-12-03", default_factory=FixedHorizonConfig)
    """The fixed-horizon rule's constants (used when early_stop="fixed-horizon")."""

    owner: ClassVar[str] = "ppo"

    def __post_init__(self):  # rebuilt from config.json
        rebuild_nested_configs(self)

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.rollout_length

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    @property
    def num_updates(self) -> int:
        """PPO iterations in total_steps (at least 1): the annealing horizon."""
        return max(1, self.total_steps // self.batch_size)

    def validate(self) -> PPOConfig:
        """Raises ValueError naming the first invalid field, its value and what is valid."""

        def check(ok: bool, field: str, valid: str) -> None:
            require(ok, "ppo", field, getattr(self, field), valid)

        def positive_ints(values: tuple[int, ...]) -> bool:
            return all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values)

        for field in ("num_envs", "rollout_length", "total_steps", "num_epochs", "num_minibatches",
                      "num_eval_envs", "eval_max_steps"):
            check(positive_ints((getattr(self, field),)), field, "an integer >= 1")
        check(self.batch_size % self.num_minibatches == 0, "num_minibatches",
              f"a divisor of num_envs * rollout_length = {self.batch_size}")
        for field in ("learning_rate", "adam_eps", "clip_eps", "reward_scale"):
            check(getattr(self, field) > 0, field, "a number > 0")
        for field in ("entropy_coef", "value_coef"):
            check(getattr(self, field) >= 0, field, "a number >= 0")
        for field in ("max_grad_norm", "value_clip_eps", "target_kl"):
            check(getattr(self, field) is None or getattr(self, field) > 0, field, "a number > 0, or None to disable")
        check(0.0 < self.gamma <= 1.0, "gamma", "a discount in (0, 1]")
        check(0.0 <= self.gae_lambda <= 1.0, "gae_lambda", "a number in [0, 1]")
        check(positive_ints(self.hidden_sizes), "hidden_sizes", "a tuple of positive integers")
        check(positive_ints(self.conv_channels), "conv_channels", "a tuple of positive integers (empty: no conv)")
        if self.conv_input_shape:
            check(len(self.conv_input_shape) == 3 and bool(self.conv_channels)
                  and all(isinstance(d, int) and (d >= 1 or d == -1) for d in self.conv_input_shape)
                  and list(self.conv_input_shape).count(-1) <= 1,
                  "conv_input_shape", "empty, or (height, width, channels) of positive ints with at most one -1, "
                  "together with conv_channels")
        if self.critic_hidden_sizes is not None:
            check(not self.shared_trunk, "critic_hidden_sizes", "None when shared_trunk=True")
            check(positive_ints(self.critic_hidden_sizes), "critic_hidden_sizes",
                  "a tuple of positive integers, or None")
        check(self.activation in ACTIVATIONS, "activation", f"one of {sorted(ACTIVATIONS)}")
        check(self.action_squash in SQUASH_MODES, "action_squash", f"one of {list(SQUASH_MODES)}")
        check(not self.squashed_entropy or self.action_squash == "tanh", "squashed_entropy",
              'False unless action_squash="tanh"')
        self.plasticity.validate("ppo.plasticity")
        self.churn.validate("ppo.churn", chain_weights=False)
        validate_stop_fields(self, PPO_STOP_MODES)
        return self


PPO_STOP_MODES = ("none", "fixed-horizon")

MINATAR_DEFAULTS = dict(
    num_envs=64, rollout_length=128, num_minibatches=8, learning_rate=5e-4, total_steps=10_000_000,
    conv_channels=(16,), conv_input_shape=(10, 10, -1), hidden_sizes=(128,), activation="relu",
)
CONTINUOUS_CONTROL_DEFAULTS = dict(
    num_envs=16, rollout_length=128, num_epochs=10, num_minibatches=8, learning_rate=1e-3,
    total_steps=500_000, gamma=0.95, entropy_coef=0.0, normalize_observations=True,
    normalize_rewards=True, init_log_std=-0.5,
)
# The physics families follow brax/Playground's PPO recipes: many envs, obs normalization,
# a small tanh-Gaussian actor with a wide critic, and no gradient clipping: with reward scale 10
# the value gradient is large, and a joint global-norm clip shrinks the policy's share of it
# below adam_eps (1e-5), which then shrinks the policy's Adam steps too (docs/benchmarks.md).
PHYSICS_DEFAULTS = dict(
    num_epochs=4, learning_rate=1e-3, anneal_lr=False, max_grad_norm=None, gamma=0.995,
    entropy_coef=1e-2, normalize_observations=True, reward_scale=10.0, hidden_sizes=(32, 32, 32, 32),
    critic_hidden_sizes=(256, 256, 256, 256, 256), activation="silu", action_squash="tanh",
    state_dependent_std=True, num_eval_envs=16,
)
FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    "gymnax": dict(learning_rate=5e-4),
    # gamma 0.98 rather than brax's 0.995: CartpoleBalance solved on 32/32 seeds at 1M env steps
    # instead of 28/32 (docs/seed_robustness.md; the failing seeds had learned the fallen pole's regime)
    "dmc": dict(PHYSICS_DEFAULTS, num_envs=256, rollout_length=32, num_minibatches=8, gamma=0.98,
                total_steps=10_000_000),
    "brax": dict(PHYSICS_DEFAULTS, num_envs=1024, rollout_length=16, num_minibatches=32,
                 learning_rate=3e-4, gamma=0.97, total_steps=50_000_000),
}


def default_config(env_id: str, **overrides: Any) -> PPOConfig:
    """Per-family defaults so that `--env` alone trains well; `overrides` replace fields.

    gymnax discrete control: PureJaxRL's CartPole settings, 4 envs x 128 steps, with lr 5e-4
        (CartPole, 500k steps, `jaxrl train ppo --num-seeds 12 --seed 0|12|24`: eval return
        >= 475 on 34 of 36 seeds, the other two 449.5 and 439.8; with jax.random.permutation's
        shuffles PureJaxRL's 2.5e-4 had left seed 3 of seeds 0-5 at 421.9).
    gymnax continuous control (Pendulum, MountainCarContinuous): normalized obs and rewards,
        gamma 0.95, 10 epochs.
    gymnax MinAtar: 3x3 conv torso with 16 channels and a 128-unit layer, 64 envs.
    dmc / brax: brax-style recipes (obs normalization, reward scale 10, tanh-Gaussian policy); dmc
        discounts by 0.98 (a 50-step horizon, about the time the balanced pole takes to fall).
    """
    family, _, name = env_id.partition("/")
    if family == "gymnax" and name.endswith("MinAtar"):
        fields = MINATAR_DEFAULTS
    elif family == "gymnax" and isinstance(make_raw(env_id).action_space, Box):
        fields = CONTINUOUS_CONTROL_DEFAULTS
    else:
        fields = FAMILY_DEFAULTS.get(family, {})
    return dataclasses.replace(PPOConfig(**fields), **overrides)
