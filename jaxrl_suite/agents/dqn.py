"""Double DQN with a target network (Mnih et al. 2015; van Hasselt et al. 2016): config, Q
network and DQNAgent, the ReplayAgent that ReplayLearner drives beside SAC's and TD3's.

The MinAtar network follows Young & Tian 2019. ReDo/ReGraMa resets and C-CHAIN plug in through
jaxrl_suite.plasticity. One call of `DQNAgent.gradient_step`:
    batch -> Double-DQN target from the target network -> Huber/MSE TD loss (+ C-CHAIN churn on
    the reference batch) -> Adam -> ReDo/ReGraMa when due -> target network update when due
Acting is epsilon-greedy on the online network, epsilon decaying linearly with env steps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax.sharding import Mesh

from jaxrl_suite.agents.replay import Transition
from jaxrl_suite.agents.replay_config import ReplayConfig
from jaxrl_suite.agents.replay_learner import AgentDefaults, ReplayLearner
from jaxrl_suite.agents.targets import apply_gradients, bootstrap_target, polyak_update
from jaxrl_suite.early_stop import validate_stop_fields
from jaxrl_suite.envs.core import Env, observation_spec
from jaxrl_suite.envs.spaces import Discrete
from jaxrl_suite.networks import Trunk, orthogonal_dense
from jaxrl_suite.plasticity import (
    ChurnConfig,
    ChurnState,
    UnitPlasticity,
    advance_reference,
    churn_metrics,
    churn_mse,
    init_churn_state,
    network_probe,
    record_losses,
    restart_on_task_switch,
)
from jaxrl_suite.validation import added_field, require

TD_LOSSES = ("huber", "mse")


@dataclasses.dataclass(frozen=True)
class DQNConfig(ReplayConfig):
    """DQN hyperparameters (shared replay fields documented on ReplayConfig); defaults suit
    gymnax classic control (see default_config)."""

    owner: ClassVar[str] = "dqn"

    num_envs: int = 10
    buffer_size: int = 10_000
    batch_size: int = 128
    learning_starts: int = 1_000
    max_grad_norm: float | None = 10.0
    hidden_sizes: tuple[int, ...] = (120, 84)
    """Widths of the MLP after the (optional) conv torso."""
    churn: ChurnConfig = ChurnConfig(initial_coefficient=50.0, kappa=0.01)
    """C-CHAIN on Q values against a fresh replay batch (the paper's DQN values: 50, 0.01)."""
    gradient_steps_per_update: int = 1
    """Gradient steps after each env step of all envs (1 with 10 envs: one step per 10 env steps)."""
    learning_rate: float = 1e-3
    """Adam step size."""
    adam_eps: float = 1e-8
    """Adam epsilon (1.5e-4 in the Atari/MinAtar DQN recipes)."""
    td_loss: Literal["huber", "mse"] = "huber"
    """Loss on the TD error: Huber (delta 1) or 0.5 * squared error."""
    double_dqn: bool = True
    """Pick the bootstrap action with the online network, value it with the target network."""
    target_update_period: int = 100
    """Gradient steps between target network updates."""
    target_update_rate: float = 1.0
    """Polyak rate of a target update (1: copy the online network)."""
    epsilon_start: float = 1.0
    """Exploration rate at step 0."""
    epsilon_end: float = 0.05
    """Exploration rate after epsilon_decay_steps env steps."""
    epsilon_decay_steps: int = 10_000
    """Env steps over which epsilon decays linearly."""
    layer_norm: bool = False
    """LayerNorm after each hidden Dense layer."""
    conv_channels: tuple[int, ...] = ()
    """Channels of 3x3 conv layers for image observations [H, W, C] (empty: MLP only)."""
    conv_input_shape: tuple[int, ...] = ()
    """[height, width, channels] to reshape flat observations to before the conv (-1 infers one; empty: as given)."""
    early_stop: Literal["none", "fixed-horizon"] = added_field("2026-12-03", default="none")
    """Early episode termination: "none", or "fixed-horizon" (each episode stops at a random step H)."""

    @property
    def learn_steps(self) -> int:
        return self.gradient_steps_per_update

    def validate(self) -> DQNConfig:
        """Raises ValueError naming the first invalid field, its value and what is valid."""
        owner = self.owner
        self.validate_replay_fields(positive_ints=("gradient_steps_per_update", "target_update_period"),
                                    chain_weights=False)
        require(self.epsilon_decay_steps >= 1, owner, "epsilon_decay_steps", self.epsilon_decay_steps, "an integer >= 1")
        for field in ("learning_rate", "adam_eps"):
            require(getattr(self, field) > 0, owner, field, getattr(self, field), "a number > 0")
        require(0.0 < self.target_update_rate <= 1.0, owner, "target_update_rate", self.target_update_rate,
                "a Polyak rate in (0, 1]")
        for field in ("epsilon_start", "epsilon_end"):
            require(0.0 <= getattr(self, field) <= 1.0, owner, field, getattr(self, field), "a probability in [0, 1]")
        require(self.td_loss in TD_LOSSES, owner, "td_loss", self.td_loss, f"one of {TD_LOSSES}")
        for field in ("hidden_sizes", "conv_channels"):
            require(all(isinstance(w, int) and w >= 1 for w in getattr(self, field)), owner, field,
                    getattr(self, field), "a tuple of positive integers")
        require(not self.conv_input_shape or (
            len(self.conv_input_shape) == 3 and bool(self.conv_channels) and list(self.conv_input_shape).count(-1) <= 1
            and all(isinstance(d, int) and (d >= 1 or d == -1) for d in self.conv_input_shape)
        ), owner, "conv_input_shape", self.conv_input_shape,
            "empty, or (height, width, channels) of positive ints with at most one -1, with conv_channels set")
        require(len(self.hidden_sizes) >= 1 or len(self.conv_channels) >= 1, owner, "hidden_sizes",
                self.hidden_sizes, "at least one hidden layer (or conv_channels)")
        validate_stop_fields(self, ("none", "fixed-horizon"))
        return self


MINATAR_DEFAULTS = dict(
    num_envs=8, gradient_steps_per_update=2, buffer_size=100_000, batch_size=32, learning_starts=5_000,
    learning_rate=2.5e-4, adam_eps=1.5e-4, target_update_period=1_000, epsilon_end=0.01,
    epsilon_decay_steps=100_000, conv_channels=(16,), conv_input_shape=(10, 10, -1), hidden_sizes=(128,),
)


def default_config(env_id: str, **overrides: Any) -> DQNConfig:
    """Per-family defaults; `overrides` replace fields.

    gymnax classic control: CleanRL's CartPole layout (10 envs, one gradient step per 10 env
    steps, batch 128, 120-84 MLP) with a faster schedule checked in tests: lr 1e-3, target copy
    every 100 gradient steps, epsilon 1 -> 0.05 over 10k steps. gymnax MinAtar: the MinAtar DQN
    network (16 3x3 filters, 128 units), batch 32, 100k replay, one gradient step per 4 env
    steps, lr 2.5e-4 (not tuned here); flat observations are reshaped to [10, 10, C].
    """
    family, _, name = env_id.partition("/")
    fields = MINATAR_DEFAULTS if family == "gymnax" and name.endswith("MinAtar") else {}
    return dataclasses.replace(DQNConfig(**fields), **overrides)


class DiscreteQNetwork(nn.Module):
    """obs [..., *obs_shape] -> Q values [..., num_actions]: Trunk (optional conv torso + MLP), then a linear head."""

    num_actions: int
    hidden_sizes: Sequence[int]
    activation: str = "relu"
    layer_norm: bool = False
    conv_channels: Sequence[int] = ()
    observation_ndim: int = 1
    image_shape: Sequence[int] = ()

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        features = Trunk(tuple(self.hidden_sizes), self.activation, self.layer_norm, False,
                         tuple(self.conv_channels), self.observation_ndim, tuple(self.image_shape))(obs)
        return orthogonal_dense(self.num_actions, 1.0, name="q_values")(features)


@struct.dataclass
class DQNParams:
    """DQN's learned state (one seed).

    network, target_network: Q network variables ({"params": ...}), online and target.
    opt_state: optax state of (clipping +) Adam.
    churn:     C-CHAIN's ChurnState (None when churn is off).
    """

    network: Any
    target_network: Any
    opt_state: optax.OptState
    churn: ChurnState | None


def td_loss(td_error: jax.Array, kind: str) -> jax.Array:
    """Mean Huber (delta 1) or 0.5 * squared TD error: [B] -> []."""
    if kind == "huber":
        return optax.huber_loss(td_error).mean()
    return 0.5 * jnp.square(td_error).mean()


def double_dqn_next_value(online_next_q: jax.Array, target_next_q: jax.Array, double: bool) -> jax.Array:
    """Q_target(s', argmax_a Q_online(s', a)) with double=True, else max_a Q_target(s', a).
    [B, num_actions] x 2 -> [B]."""
    chex.assert_equal_shape([online_next_q, target_next_q])
    if not double:
        return target_next_q.max(-1)
    next_action = jnp.argmax(online_next_q, -1)
    return jnp.take_along_axis(target_next_q, next_action[:, None], -1)[:, 0]


def epsilon_at(config: DQNConfig, env_steps: jax.Array) -> jax.Array:
    """Linear decay from epsilon_start to epsilon_end over epsilon_decay_steps env steps: [] float32."""
    progress = jnp.clip(env_steps.astype(jnp.float32) / config.epsilon_decay_steps, 0.0, 1.0)
    return config.epsilon_start + progress * (config.epsilon_end - config.epsilon_start)


class DQNAgent(AgentDefaults):
    """Double DQN's half of a ReplayLearner (see ReplayAgent; no q_value / td_error, since DQN
    refuses LEAST); build the learner with `make_dqn`."""

    def __init__(self, config: DQNConfig, env: Env):
        if not isinstance(env.action_space, Discrete):
            raise ValueError(f"DQN needs a Discrete action space; {env.env_id!r} has {env.action_space.describe()}")
        self.config = config
        self.num_actions = env.action_space.n
        observation_shape = tuple(observation_spec(env).shape)
        if config.conv_channels and len(observation_shape) != 3 and not config.conv_input_shape:
            raise ValueError(
                f"invalid dqn.conv_input_shape=(): {env.env_id!r} gives observations of shape "
                f"{observation_shape}, so the conv torso needs (height, width, channels) to reshape them to"
            )
        self.network = DiscreteQNetwork(
            self.num_actions, config.hidden_sizes, config.activation, config.layer_norm, config.conv_channels,
            len(observation_shape), config.conv_input_shape,
        )
        adam = optax.adam(config.learning_rate, eps=config.adam_eps)
        self.optimizer = adam if config.max_grad_norm is None else optax.chain(
            optax.clip_by_global_norm(config.max_grad_norm), adam
        )
        example_obs = jnp.zeros((1, *observation_shape), jnp.float32)
        self.init_network = lambda key: self.network.init(key, example_obs)
        self.plasticity = UnitPlasticity(
            config.plasticity, self.network.apply, jax.eval_shape(self.init_network, jax.random.PRNGKey(0)),
            (jax.ShapeDtypeStruct((config.batch_size, *observation_shape), jnp.float32),),
            self.init_network, self.optimizer,
        )

    def q_values(self, network: Any, obs: jax.Array) -> jax.Array:
        """obs [B, *obs_shape] -> Q [B, num_actions]."""
        return self.network.apply(network, obs.astype(jnp.float32))

    def init(self, key: jax.Array) -> DQNParams:
        network = self.init_network(key)
        return DQNParams(
            network=network, target_network=network, opt_state=self.optimizer.init(network),
            churn=init_churn_state(self.config.churn, network) if self.config.churn.enabled else None,
        )

    def explore(self, params: DQNParams, obs: jax.Array, key: jax.Array, env_steps: jax.Array) -> jax.Array:
        """Epsilon-greedy: obs [N, *obs_shape] -> int32 actions [N], uniform with probability
        epsilon_at(env_steps), else argmax Q."""
        explore_key, random_key = jax.random.split(key)
        greedy = self.greedy(params, obs)
        random_action = jax.random.randint(random_key, greedy.shape, 0, self.num_actions, jnp.int32)
        explores = jax.random.uniform(explore_key, greedy.shape) < epsilon_at(self.config, env_steps)
        return jnp.where(explores, random_action, greedy)

    def acting_metrics(self, env_steps: jax.Array) -> dict[str, jax.Array]:
        return {"epsilon": epsilon_at(self.config, env_steps)}

    def greedy(self, params: DQNParams, obs: jax.Array) -> jax.Array:
        """argmax_a Q(obs, a): [N, *obs_shape] -> int32 [N]."""
        return jnp.argmax(self.q_values(params.network, obs), -1).astype(jnp.int32)

    def on_task(self, params: DQNParams, task_index: jax.Array) -> DQNParams:
        """C-CHAIN's statistics restart when a TaskSequence env switches task."""
        if params.churn is None:
            return params
        return params.replace(churn=restart_on_task_switch(self.config.churn, params.churn, params.network,
                                                           task_index))

    def diagnose(self, params: DQNParams, obs: jax.Array, action: jax.Array) -> dict[str, jax.Array]:
        """Dormant ratio, feature rank of the last hidden layer, empirical-NTK rank of the Q values
        and the weight norm on a probe batch of observations."""
        return network_probe(self.plasticity.probe(params.network, obs), self.q_values, params.network, obs)

    def gradient_step(self, params: DQNParams, batch: Transition, key: jax.Array, step: jax.Array,
                      reference_batch: Transition | None = None) -> tuple[DQNParams, dict[str, jax.Array]]:
        """One Double-DQN step (+ C-CHAIN's churn on reference_batch when given), then resets and
        the target update when due (`step` + 1 gradient steps done)."""
        config = self.config
        network = params.network
        next_value = double_dqn_next_value(self.q_values(network, batch.next_obs),
                                           self.q_values(params.target_network, batch.next_obs), config.double_dqn)
        target = bootstrap_target(batch.reward, batch.terminated, next_value, config.gamma)

        def loss_fn(network, perturbations):
            q_all, capture = self.plasticity.apply(network, perturbations, batch.obs)
            q = jnp.take_along_axis(q_all, batch.action[:, None], -1)[:, 0]
            rl_loss = td_loss(q - target, config.td_loss)
            loss, churn_loss = rl_loss, jnp.zeros(())
            if reference_batch is not None:
                churn_loss = churn_mse(self.q_values(network, reference_batch.obs),
                                       self.q_values(params.churn.reference_params, reference_batch.obs))
                loss = rl_loss + params.churn.coefficient * churn_loss
            return loss, (rl_loss, churn_loss, q, capture)

        perturbations = self.plasticity.perturbations(network, batch.obs)
        (loss, (rl_loss, churn_loss, q, capture)), (grads, perturbation_grads) = jax.value_and_grad(
            loss_fn, argnums=(0, 1), has_aux=True
        )(network, perturbations)
        new_network, opt_state = apply_gradients(self.optimizer, network, params.opt_state, grads)
        gradient_steps = step + 1
        scores = self.plasticity.scores(capture, perturbation_grads, grads)
        new_network, opt_state, reset_metrics = self.plasticity.maybe_reset(
            new_network, opt_state, scores, key, gradient_steps
        )
        target_due = gradient_steps % config.target_update_period == 0
        target_network = jax.tree.map(
            lambda updated, kept: jnp.where(target_due, updated, kept),
            polyak_update(params.target_network, new_network, config.target_update_rate), params.target_network,
        )
        metrics = {"loss": loss, "td_loss": rl_loss, "q_mean": q.mean(), "grad_norm": optax.global_norm(grads),
                   **self.plasticity.metrics(scores), **reset_metrics}
        churn = params.churn
        if reference_batch is not None:
            churn = advance_reference(record_losses(config.churn, churn, rl_loss, churn_loss), network)
            metrics.update(churn_metrics(churn, churn_loss))
        return DQNParams(network=new_network, target_network=target_network, opt_state=opt_state,
                         churn=churn), metrics


def make_dqn(config: DQNConfig, env: Env, mesh: Mesh | None = None) -> ReplayLearner:
    """A Double-DQN Learner on `env` (a single auto-resetting env with discrete actions).

    config is validated here, before anything compiles. With a `mesh` the env batch is split
    over its devices and parameters are replicated.
    """
    config.validate()
    return ReplayLearner(config, env, DQNAgent(config, env), mesh)


__all__ = ["DQNAgent", "DQNConfig", "DQNParams", "DiscreteQNetwork", "default_config", "make_dqn"]
