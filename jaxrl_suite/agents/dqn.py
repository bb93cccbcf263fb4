"""Double DQN with a target network, a replay buffer in the TrainState and vmapped envs.

Mnih et al. 2015 (DQN), van Hasselt et al. 2016 (Double DQN); the MinAtar network follows
Young & Tian 2019. ReDo/ReGraMa resets and C-CHAIN plug in through jaxrl_suite.plasticity.

Data flow of `update` (one call = one step of each of num_envs envs, for one seed):
    act        epsilon-greedy on the online Q network (epsilon decays linearly with env steps)
    env step   vmapped; stored as (obs, action, reward, next_obs = info["final_obs"], terminated)
    learn x G  G = gradient_steps_per_update, skipped before learning_starts:
                 batch -> Double-DQN target from the target network -> Huber/MSE TD loss
                 (+ C-CHAIN churn on a second replay batch) -> Adam -> ReDo/ReGraMa when due
                 -> target network update when due
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

from jaxrl_suite.agents.episodes import completed_episode_sums, evaluate_policy
from jaxrl_suite.agents.replay import (
    ReplayBuffer,
    Transition,
    add_batch,
    check_replay_fits,
    init_replay,
    sample_batch,
)
from jaxrl_suite.agents.replay_config import ReplayConfig
from jaxrl_suite.agents.replay_cycle import learn_once_started, reset_envs, step_transition
from jaxrl_suite.agents.targets import apply_gradients, bootstrap_target, polyak_update
from jaxrl_suite.early_stop import (
    FixedHorizonConfig,
    init_stop_rule,
    make_stop_rule,
    step_envs,
    validate_stop_fields,
)
from jaxrl_suite.envs.core import Env, State
from jaxrl_suite.envs.spaces import Discrete
from jaxrl_suite.networks import Trunk, orthogonal_dense
from jaxrl_suite.parallel import check_divisible, replicate, shard_along
from jaxrl_suite.plasticity import (
    PROBE_SIZE,
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
from jaxrl_suite.runner.learner import reduce_stacked_metrics
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
    horizon: FixedHorizonConfig = added_field("2026-12-03", default_factory=FixedHorizonConfig)
    """The fixed-horizon rule's constants (used when early_stop="fixed-horizon")."""

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
class DQNTrainState:
    """Everything that defines a DQN run's future (one seed; the runner stacks seeds in front).

    params, target_params: Q network variables ({"params": ...}), online and target.
    opt_state:      optax state of (clipping +) Adam.
    env_state:      envs.State batched over [num_envs].
    replay:         ReplayBuffer of Transitions [buffer_size, ...].
    churn:          C-CHAIN's ChurnState (None when churn is off).
    rng:            uint32[2] raw PRNG key.
    env_steps:      [] int32 env steps taken by this seed.
    gradient_steps: [] int32 gradient steps taken.
    early_stop:     the stop rule's state (None when early_stop="none").
    """

    params: Any
    target_params: Any
    opt_state: optax.OptState
    env_state: State
    replay: ReplayBuffer
    churn: ChurnState | None
    rng: jax.Array
    env_steps: jax.Array
    gradient_steps: jax.Array
    early_stop: Any = None


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


class DQN:
    """A `runner.learner.Learner` for Double DQN; build it with `make_dqn`."""

    def __init__(self, config: DQNConfig, env: Env, mesh: Mesh | None = None):
        config.validate()
        check_divisible(config.num_envs, mesh)
        if not isinstance(env.action_space, Discrete):
            raise ValueError(f"DQN needs a Discrete action space; {env.env_id!r} has {env.action_space.describe()}")
        self.config = config
        self.env = env
        self.mesh = mesh
        self.env_steps_per_update = config.num_envs
        self.num_actions = env.action_space.n
        self.max_episode_steps = env.max_episode_steps or config.eval_max_steps
        self.stop_rule = make_stop_rule(config, env.env_id, env.max_episode_steps)
        obs = jax.eval_shape(env.reset, jax.ShapeDtypeStruct((2,), jnp.uint32)).obs
        self.observation_shape = tuple(obs.shape)
        if config.conv_channels and len(self.observation_shape) != 3 and not config.conv_input_shape:
            raise ValueError(
                f"invalid dqn.conv_input_shape=(): {env.env_id!r} gives observations of shape "
                f"{self.observation_shape}, so the conv torso needs (height, width, channels) to reshape them to"
            )
        self.network = DiscreteQNetwork(
            self.num_actions, config.hidden_sizes, config.activation, config.layer_norm, config.conv_channels,
            len(self.observation_shape), config.conv_input_shape,
        )
        adam = optax.adam(config.learning_rate, eps=config.adam_eps)
        self.optimizer = adam if config.max_grad_norm is None else optax.chain(
            optax.clip_by_global_norm(config.max_grad_norm), adam
        )
        example_obs = jnp.zeros((1, *self.observation_shape), jnp.float32)
        self.init_network = lambda key: self.network.init(key, example_obs)
        self.plasticity = UnitPlasticity(
            config.plasticity, self.network.apply, jax.eval_shape(self.init_network, jax.random.PRNGKey(0)),
            (jax.ShapeDtypeStruct((config.batch_size, *self.observation_shape), jnp.float32),),
            self.init_network, self.optimizer,
        )
        self.replay_bytes = self.check_memory(1)

    def check_memory(self, num_seeds: int) -> int:
        """Raises ValueError (size in GiB, how to shrink it) unless `num_seeds` replay buffers fit
        in buffer_memory_fraction of the free host or device memory; returns their bytes. Runs
        at construction for one seed; callers that vmap several seeds call it with their count."""
        return check_replay_fits(
            self.config.buffer_size, self.example_transition(), copies=num_seeds,
            memory_fraction=self.config.buffer_memory_fraction, capacity_field=f"{self.config.owner}.buffer_size",
        )

    def example_transition(self) -> Transition:
        """Shapes and dtypes of one stored transition."""
        obs = jax.ShapeDtypeStruct(self.observation_shape, jnp.float32)
        scalar = jax.ShapeDtypeStruct((), jnp.float32)
        flag = jax.ShapeDtypeStruct((), jnp.bool_)
        return Transition(obs, jax.ShapeDtypeStruct((), jnp.int32), scalar, obs, flag, flag)

    def q_values(self, params: Any, obs: jax.Array) -> jax.Array:
        """obs [B, *obs_shape] -> Q [B, num_actions]."""
        return self.network.apply(params, obs.astype(jnp.float32))

    # --------------------------------------------------------------------------- protocol

    def init(self, key: jax.Array) -> DQNTrainState:
        """A fresh TrainState for one seed from a raw uint32[2] key."""
        chex.assert_shape(key, (2,))
        network_key, env_key, rng = jax.random.split(key, 3)
        env_state = reset_envs(self.env, env_key, self.config.num_envs)
        params = self.init_network(network_key)
        return DQNTrainState(
            params=replicate(params, self.mesh),
            target_params=replicate(params, self.mesh),
            opt_state=replicate(self.optimizer.init(params), self.mesh),
            env_state=shard_along(env_state, self.mesh, 0),
            replay=init_replay(self.config.buffer_size, self.example_transition()),
            churn=init_churn_state(self.config.churn, params) if self.config.churn.enabled else None,
            rng=rng,
            env_steps=jnp.zeros((), jnp.int32),
            gradient_steps=jnp.zeros((), jnp.int32),
            early_stop=init_stop_rule(self.stop_rule, self.config.num_envs, key),
        )

    def update(self, state: DQNTrainState) -> tuple[DQNTrainState, dict[str, jax.Array]]:
        """One epsilon-greedy step of every env, then gradient_steps_per_update gradient steps."""
        config = self.config
        rng, act_key, learn_key = jax.random.split(state.rng, 3)
        params = replicate(state.params, self.mesh)
        env_state = state.env_state
        chex.assert_shape(env_state.obs, (config.num_envs, *self.observation_shape))
        epsilon = epsilon_at(config, state.env_steps)
        action = self.epsilon_greedy(params, env_state.obs, epsilon, act_key)
        next_env_state, early_stop, rule_metrics, _ = step_envs(
            self.env, env_state, action, self.stop_rule, state.early_stop, state.env_steps,
            place=lambda next_state: shard_along(next_state, self.mesh, 0))
        transition = step_transition(env_state.obs, action, next_env_state)
        replay = add_batch(state.replay, transition)
        env_steps = state.env_steps + config.num_envs
        learner_state = state.replace(replay=replay, env_steps=env_steps, params=params)
        learner_state, train_metrics = self.learn(learner_state, self._task_index(next_env_state), learn_key)
        new_state = learner_state.replace(env_state=next_env_state, rng=rng, early_stop=early_stop)
        metrics = {**completed_episode_sums(next_env_state), **rule_metrics, **train_metrics, "epsilon": epsilon,
                   "replay_size": replay.size.astype(jnp.float32)}
        return new_state, metrics

    def evaluate(self, state: DQNTrainState, key: jax.Array) -> dict[str, jax.Array]:
        """The greedy policy for one episode on each of num_eval_envs fresh envs, plus the
        network diagnostics of `diagnose` on a replay probe batch."""
        eval_key, probe_key = jax.random.split(key)
        params = replicate(state.params, self.mesh)
        returns = evaluate_policy(
            self.env, lambda obs: jnp.argmax(self.q_values(params, obs), -1).astype(jnp.int32), eval_key,
            self.config.num_eval_envs, self.max_episode_steps, self.mesh,
        )
        return {**returns, **self.diagnose(state, probe_key)}

    def diagnose(self, state: DQNTrainState, key: jax.Array) -> dict[str, jax.Array]:
        """On PROBE_SIZE replay observations: dormant ratio, feature rank of the last hidden
        layer, empirical-NTK rank of the Q values, and the weight norm."""
        probe_obs = sample_batch(state.replay, key, PROBE_SIZE).obs
        return network_probe(self.plasticity.probe(state.params, probe_obs), self.q_values, state.params, probe_obs)

    # ------------------------------------------------------------------------ update steps

    def epsilon_greedy(self, params: Any, obs: jax.Array, epsilon: jax.Array, key: jax.Array) -> jax.Array:
        """obs [N, *obs_shape] -> int32 actions [N]: uniform with probability epsilon, else argmax Q."""
        explore_key, random_key = jax.random.split(key)
        greedy = jnp.argmax(self.q_values(params, obs), -1).astype(jnp.int32)
        random_action = jax.random.randint(random_key, greedy.shape, 0, self.num_actions, jnp.int32)
        return jnp.where(jax.random.uniform(explore_key, greedy.shape) < epsilon, random_action, greedy)

    @staticmethod
    def _task_index(env_state: State) -> jax.Array:
        """Task of a TaskSequence env (all envs switch together), 0 for ordinary envs."""
        if "task_index" in env_state.info:
            return env_state.info["task_index"][0]
        return jnp.zeros((), jnp.int32)

    def learn(self, state: DQNTrainState, task_index: jax.Array, key: jax.Array) -> tuple[DQNTrainState, dict]:
        """gradient_steps_per_update gradient steps on fresh replay batches, skipped (zero
        metrics) before learning_starts. Metrics are averaged over the steps (*_sum: summed)."""
        config = self.config

        def learn_steps(state: DQNTrainState):
            if config.churn.enabled:
                state = state.replace(churn=restart_on_task_switch(config.churn, state.churn, state.params, task_index))
            state, stacked = jax.lax.scan(
                self.gradient_step, state, jax.random.split(key, config.gradient_steps_per_update)
            )
            return state, reduce_stacked_metrics(stacked)

        return learn_once_started(state.env_steps >= config.learning_starts, learn_steps, state)

    def gradient_step(self, state: DQNTrainState, key: jax.Array) -> tuple[DQNTrainState, dict[str, jax.Array]]:
        """One Double-DQN step (+ churn term, resets and target update when due)."""
        config = self.config
        batch_key, reference_key, reset_key = jax.random.split(key, 3)
        batch = sample_batch(state.replay, batch_key, config.batch_size)
        params = state.params
        next_value = double_dqn_next_value(
            self.q_values(params, batch.next_obs), self.q_values(state.target_params, batch.next_obs), config.double_dqn
        )
        target = bootstrap_target(batch.reward, batch.terminated, next_value, config.gamma)
        reference_obs = sample_batch(state.replay, reference_key, config.batch_size).obs if config.churn.enabled else None

        def loss_fn(params, perturbations):
            q_all, capture = self.plasticity.apply(params, perturbations, batch.obs)
            q = jnp.take_along_axis(q_all, batch.action[:, None], -1)[:, 0]
            rl_loss = td_loss(q - target, config.td_loss)
            loss, churn_loss = rl_loss, jnp.zeros(())
            if config.churn.enabled:
                churn_loss = churn_mse(self.q_values(params, reference_obs),
                                       self.q_values(state.churn.reference_params, reference_obs))
                loss = rl_loss + state.churn.coefficient * churn_loss
            return loss, (rl_loss, churn_loss, q, capture)

        perturbations = self.plasticity.perturbations(params, batch.obs)
        (loss, (rl_loss, churn_loss, q, capture)), (grads, perturbation_grads) = jax.value_and_grad(
            loss_fn, argnums=(0, 1), has_aux=True
        )(params, perturbations)
        grads = replicate(grads, self.mesh)
        new_params, opt_state = apply_gradients(self.optimizer, params, state.opt_state, grads)
        gradient_steps = state.gradient_steps + 1
        scores = self.plasticity.scores(capture, perturbation_grads, grads)
        new_params, opt_state, reset_metrics = self.plasticity.maybe_reset(
            new_params, opt_state, scores, reset_key, gradient_steps
        )
        target_due = gradient_steps % config.target_update_period == 0
        target_params = jax.tree.map(
            lambda updated, kept: jnp.where(target_due, updated, kept),
            polyak_update(state.target_params, new_params, config.target_update_rate), state.target_params,
        )
        metrics = {"loss": loss, "td_loss": rl_loss, "q_mean": q.mean(), "grad_norm": optax.global_norm(grads),
                   **self.plasticity.metrics(scores), **reset_metrics}
        churn = state.churn
        if config.churn.enabled:
            churn = advance_reference(record_losses(config.churn, churn, rl_loss, churn_loss), params)
            metrics.update(churn_metrics(churn, churn_loss))
        new_state = state.replace(params=new_params, target_params=target_params, opt_state=opt_state, churn=churn,
                                  gradient_steps=gradient_steps)
        return new_state, metrics


def make_dqn(config: DQNConfig, env: Env, mesh: Mesh | None = None) -> DQN:
    """A DQN Learner on `env` (a single auto-resetting env with discrete actions).

    config is validated here, before anything compiles. With a `mesh` the env batch is split
    over its devices and parameters are replicated.
    """
    return DQN(config, env, mesh)


__all__ = ["DQN", "DQNConfig", "DQNTrainState", "DiscreteQNetwork", "default_config", "make_dqn"]
