"""The collect/update cycle shared by the replay-based actor-critics (SAC, TD3), and their common
pieces: config fields, per-family defaults, the stop-rule hook-up (TD targets: targets.py).

Data flow of `update` (one call = one env step of num_envs envs, for one seed):
    act            uniform random actions during warm-up, then the agent's exploration policy
                   (+ the stop rule's extra noise: LEAST's, when early_stop="least")
    env step       vmapped; the stop rule's pending `stop` mask ends episodes as truncations
    replay         (obs, action, reward, next_obs = info["final_obs"], terminated, truncated)
    stop rule      observes the step (LEAST: Q(s, a) and the gradient statistic into its per-step
                   ring buffers once the critic has taken a gradient step) and decides which
                   episodes stop on their next step
    learn x UTD    sample a batch, agent.gradient_step (skipped before learning_starts)
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal, Protocol

import chex
import jax
import jax.numpy as jnp
from flax import struct
from jax.sharding import Mesh

from jaxrl_suite.agents.episodes import completed_episode_sums, evaluate_policy
from jaxrl_suite.agents.normalizer import (
    RunningMeanStd,
    init_running_mean_std,
    normalize,
    update_running_mean_std,
)
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
from jaxrl_suite.early_stop import (
    FixedHorizonConfig,
    LeastConfig,
    init_stop_rule,
    make_stop_rule,
    step_envs,
    validate_stop_fields,
)
from jaxrl_suite.envs.core import Env, State
from jaxrl_suite.envs.spaces import Box
from jaxrl_suite.parallel import check_divisible, replicate, shard_along
from jaxrl_suite.plasticity import PROBE_SIZE
from jaxrl_suite.runner.learner import reduce_stacked_metrics
from jaxrl_suite.validation import added_field, require


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
    normalize_observations: bool = False
    """Normalize observations by running mean and std (statistics live in the TrainState)."""
    reward_scale: float = 1.0
    """Multiply rewards by this before learning (episode returns stay unscaled)."""
    early_stop: Literal["none", "least", "fixed-horizon"] = "none"
    """Early episode termination: "none", "least" (LEAST, arXiv 2506.13672) or "fixed-horizon"
    (each episode stops at a random step H, LEAST's control)."""
    least: LeastConfig = dataclasses.field(default_factory=LeastConfig)
    """LEAST's constants (used when early_stop="least")."""
    horizon: FixedHorizonConfig = added_field("2026-12-03", default_factory=FixedHorizonConfig)
    """The fixed-horizon rule's constants (used when early_stop="fixed-horizon")."""

    def validate(self) -> OffPolicyConfig:
        """Raises ValueError naming the first invalid field, its value and what is valid."""
        owner = self.owner
        self.validate_replay_fields(positive_ints=("utd_ratio", "num_critics"))
        require(0.0 < self.tau <= 1.0, owner, "tau", self.tau, "a Polyak rate in (0, 1]")
        for field in ("actor_learning_rate", "critic_learning_rate", "reward_scale"):
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


class OffPolicyAgent(Protocol):
    """The algorithm-specific half of an off-policy learner (see SACAgent, TD3Agent).

    Observations reach it normalized; actions are in [-1, 1]^action_dim; batches are
    Transitions [batch_size, ...] with rewards already scaled.
    """

    def init(self, key: jax.Array) -> Any: ...

    def explore(self, params: Any, obs: jax.Array, key: jax.Array) -> jax.Array: ...

    def greedy(self, params: Any, obs: jax.Array) -> jax.Array: ...

    def q_value(self, params: Any, obs: jax.Array, action: jax.Array) -> jax.Array: ...

    def td_error(self, params: Any, batch: Transition, key: jax.Array) -> jax.Array: ...

    def diagnose(self, params: Any, obs: jax.Array, action: jax.Array) -> dict[str, jax.Array]:
        """Network diagnostics (feature/NTK rank, dormant ratio, weight norm) on a probe batch."""
        ...

    def gradient_step(self, params: Any, batch: Transition, key: jax.Array, step: jax.Array,
                      reference_batch: Transition | None = None) -> tuple[Any, dict[str, jax.Array]]: ...


# ---------------------------------------------------------------------------- shared pieces


# ---------------------------------------------------------------------------- the learner


@struct.dataclass
class OffPolicyTrainState:
    """Everything that defines an off-policy run's future (one seed; the runner stacks seeds).

    agent:          the algorithm's params, target params and optimizer states.
    obs_stats:      RunningMeanStd of observations [obs_dim].
    env_state:      envs.State batched over [num_envs].
    replay:         ReplayBuffer of Transitions [buffer_size, ...].
    least:          the stop rule's state (LeastState, FixedHorizonState), or None when
                    early_stop="none" (named for the first rule, so that older checkpoints load).
    critic_loss:    [] float32 critic TD loss of the latest gradient steps (LEAST's td_loss).
    critic_grad_norm: [] float32 their critic gradient norm (LEAST's grad_norm).
    rng:            uint32[2] raw PRNG key.
    env_steps:      [] int32 env steps taken by this seed.
    gradient_steps: [] int32 gradient steps taken.
    """

    agent: Any
    obs_stats: RunningMeanStd
    env_state: State
    replay: ReplayBuffer
    least: Any
    critic_loss: jax.Array
    critic_grad_norm: jax.Array
    rng: jax.Array
    env_steps: jax.Array
    gradient_steps: jax.Array


def observation_dim(env: Env) -> int:
    """The flat observation size of `env`, which must be a vector."""
    obs = jax.eval_shape(env.reset, jax.ShapeDtypeStruct((2,), jnp.uint32)).obs
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


class OffPolicyLearner:
    """A `runner.learner.Learner` for any OffPolicyAgent: `env_steps_per_update` = num_envs
    (one env step of every env, then utd_ratio gradient steps)."""

    def __init__(self, config: OffPolicyConfig, env: Env, agent: OffPolicyAgent, mesh: Mesh | None = None):
        config.validate()
        check_divisible(config.num_envs, mesh)
        self.config = config
        self.env = env
        self.agent = agent
        self.mesh = mesh
        self.env_steps_per_update = config.num_envs
        self.obs_dim = observation_dim(env)
        self.action_dim = action_dim(env)
        self.stop_rule = make_stop_rule(config, env.env_id, env.max_episode_steps)
        self.max_episode_steps = env.max_episode_steps or config.eval_max_steps
        self.replay_bytes = self.check_memory(num_seeds=1)

    def check_memory(self, num_seeds: int) -> int:
        """Raises ValueError (size in GiB, how to shrink it) unless `num_seeds` replay buffers
        and stop-rule states fit in buffer_memory_fraction of the free host or device memory;
        returns the bytes they need. Runs at construction for one seed; callers that vmap
        several seeds call it again with their count before compiling."""
        config = self.config
        rule_bytes = self.stop_rule.state_bytes(config.num_envs) if self.stop_rule is not None else 0
        return check_replay_fits(
            config.buffer_size, self.example_transition(), copies=num_seeds, extra_bytes=num_seeds * rule_bytes,
            memory_fraction=config.buffer_memory_fraction, capacity_field=f"{config.owner}.buffer_size",
        )

    def example_transition(self) -> Transition:
        """Shapes and dtypes of one stored transition."""
        return Transition(
            obs=jax.ShapeDtypeStruct((self.obs_dim,), jnp.float32),
            action=jax.ShapeDtypeStruct((self.action_dim,), jnp.float32),
            reward=jax.ShapeDtypeStruct((), jnp.float32),
            next_obs=jax.ShapeDtypeStruct((self.obs_dim,), jnp.float32),
            terminated=jax.ShapeDtypeStruct((), jnp.bool_),
            truncated=jax.ShapeDtypeStruct((), jnp.bool_),
        )

    def init(self, key: jax.Array) -> OffPolicyTrainState:
        config = self.config
        rng, agent_key, env_key = jax.random.split(key, 3)
        env_state = reset_envs(self.env, env_key, config.num_envs)
        return OffPolicyTrainState(
            agent=self.agent.init(agent_key),
            obs_stats=init_running_mean_std((self.obs_dim,)),
            env_state=shard_along(env_state, self.mesh, 0),
            replay=init_replay(config.buffer_size, self.example_transition()),
            least=init_stop_rule(self.stop_rule, config.num_envs, key),
            critic_loss=jnp.zeros((), jnp.float32),
            critic_grad_norm=jnp.zeros((), jnp.float32),
            rng=rng,
            env_steps=jnp.zeros((), jnp.int32),
            gradient_steps=jnp.zeros((), jnp.int32),
        )

    def _normalize(self, obs_stats: RunningMeanStd, obs: jax.Array) -> jax.Array:
        return normalize(obs_stats, obs) if self.config.normalize_observations else obs

    def _learning_batch(self, obs_stats: RunningMeanStd, transition: Transition) -> Transition:
        """Normalized observations and scaled rewards, as the agent learns from them."""
        return transition.replace(
            obs=self._normalize(obs_stats, transition.obs),
            next_obs=self._normalize(obs_stats, transition.next_obs),
            reward=transition.reward * self.config.reward_scale,
        )

    def update(self, state: OffPolicyTrainState) -> tuple[OffPolicyTrainState, dict[str, jax.Array]]:
        """One env step of every env, then utd_ratio gradient steps (once learning started)."""
        state, metrics, _ = self.traced_update(state)
        return state, metrics

    def traced_update(
        self, state: OffPolicyTrainState
    ) -> tuple[OffPolicyTrainState, dict[str, jax.Array], dict[str, jax.Array]]:
        """`update`, plus the stop rule's per-env view of this step ({} without one), each
        [num_envs]: the rule's trace (LEAST: q (Q_i), q_threshold (eps_i), omega, margin, active
        and rule_stop, the rule's decision before `patience`), stop (the next step's stop mask),
        step_index and done. Under `update`'s jit the unused trace costs nothing;
        experiments/least_trace.py reads it."""
        config = self.config
        rng, explore_key, random_key, noise_key, td_key, learn_key = jax.random.split(state.rng, 6)
        agent_params = replicate(state.agent, self.mesh)
        env_state = state.env_state
        obs = env_state.obs
        chex.assert_shape(obs, (config.num_envs, self.obs_dim))
        acting_obs = self._normalize(state.obs_stats, obs)

        action = self.agent.explore(agent_params, acting_obs, explore_key)
        rule = self.stop_rule
        if rule is not None and rule.explores:
            noise_std = rule.action_noise(state.least)
            action = jnp.clip(action + noise_std * jax.random.normal(noise_key, action.shape), -1.0, 1.0)
        random_action = jax.random.uniform(random_key, action.shape, jnp.float32, -1.0, 1.0)
        action = jnp.where(state.env_steps < config.learning_starts, random_action, action)

        next_env_state, early_stop, rule_metrics, trace = step_envs(
            self.env, env_state, action, rule, state.least, state.env_steps,
            place=lambda next_state: shard_along(next_state, self.mesh, 0),
            statistics=lambda next_state: self._stop_statistics(state, agent_params, acting_obs,
                                                                step_transition(obs, action, next_state), td_key),
        )
        transition = step_transition(obs, action, next_env_state)
        replay = add_batch(state.replay, transition)
        obs_stats = update_running_mean_std(state.obs_stats, obs) if config.normalize_observations else state.obs_stats
        env_steps = state.env_steps + config.num_envs
        metrics = {**completed_episode_sums(next_env_state), **rule_metrics}

        agent_params, train_metrics = self._learn(agent_params, replay, obs_stats, env_steps,
                                                  state.gradient_steps, learn_key)
        learned = env_steps >= config.learning_starts
        new_state = OffPolicyTrainState(
            agent=agent_params,
            obs_stats=obs_stats,
            env_state=next_env_state,
            replay=replay,
            least=early_stop,
            critic_loss=jnp.where(learned, train_metrics["critic_loss"], state.critic_loss),
            critic_grad_norm=jnp.where(learned, train_metrics["critic_grad_norm"], state.critic_grad_norm),
            rng=rng,
            env_steps=env_steps,
            gradient_steps=state.gradient_steps + jnp.where(learned, config.utd_ratio, 0),
        )
        metrics.update(train_metrics)
        metrics["replay_size"] = replay.size.astype(jnp.float32)
        return new_state, metrics, trace

    def _stop_statistics(self, state: OffPolicyTrainState, agent_params: Any, acting_obs: jax.Array,
                         transition: Transition, td_key: jax.Array) -> dict[str, jax.Array]:
        """What the stop rule reads besides the env's statistics: for LEAST, Q(s, a) [num_envs] of
        the step just taken, the configured gradient statistic and whether the critic has learned
        yet; {} for a rule that reads none of them."""
        if "q" not in self.stop_rule.reads:
            return {}
        config = self.config
        statistic = config.least.gradient_statistic
        if statistic == "td_error":
            gradient = jnp.abs(self.agent.td_error(agent_params, self._learning_batch(state.obs_stats, transition),
                                                   td_key))
        else:
            gradient = jnp.full((config.num_envs,), state.critic_loss if statistic == "td_loss"
                                else state.critic_grad_norm)
        return {"q": self.agent.q_value(agent_params, acting_obs, transition.action), "gradient": gradient,
                "recording": state.gradient_steps > 0}

    def _learn(self, agent_params: Any, replay: ReplayBuffer, obs_stats: RunningMeanStd, env_steps: jax.Array,
               gradient_steps: jax.Array, key: jax.Array) -> tuple[Any, dict[str, jax.Array]]:
        """utd_ratio gradient steps on fresh replay batches; skipped (zero metrics) before
        learning_starts. Metrics are averaged over the steps (*_sum ones summed)."""
        config = self.config

        def gradient_steps_fn(params):
            def one_step(params, step_and_key):
                step, step_key = step_and_key
                sample_key, agent_key = jax.random.split(step_key)
                batch = self._learning_batch(obs_stats, sample_batch(replay, sample_key, config.batch_size))
                if not config.churn.enabled:
                    return self.agent.gradient_step(params, batch, agent_key, step)
                reference = sample_batch(replay, jax.random.fold_in(sample_key, 1), config.batch_size)
                return self.agent.gradient_step(params, batch, agent_key, step,
                                                reference_batch=self._learning_batch(obs_stats, reference))

            steps = gradient_steps + jnp.arange(config.utd_ratio)
            params, stacked = jax.lax.scan(one_step, params, (steps, jax.random.split(key, config.utd_ratio)))
            return replicate(params, self.mesh), reduce_stacked_metrics(stacked)

        return learn_once_started(env_steps >= config.learning_starts, gradient_steps_fn, agent_params)

    def evaluate(self, state: OffPolicyTrainState, key: jax.Array) -> dict[str, jax.Array]:
        """The deterministic policy for one episode on each of num_eval_envs fresh envs; with
        plasticity.log_unit_activity also the agent's network diagnostics on PROBE_SIZE replay samples."""
        agent_params = replicate(state.agent, self.mesh)

        def act(obs):
            return self.agent.greedy(agent_params, self._normalize(state.obs_stats, obs))

        returns = evaluate_policy(self.env, act, key, self.config.num_eval_envs, self.max_episode_steps, self.mesh)
        if not self.config.plasticity.log_unit_activity:
            return returns
        probe = self._learning_batch(state.obs_stats, sample_batch(state.replay, jax.random.fold_in(key, 1),
                                                                   PROBE_SIZE))
        return {**returns, **self.agent.diagnose(agent_params, probe.obs, probe.action)}
