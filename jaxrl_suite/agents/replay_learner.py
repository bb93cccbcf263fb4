"""ReplayLearner: the one collect/store/learn cycle of every replay-based agent (DQN, SAC, TD3),
and the ReplayAgent protocol each of them implements beside the others.

Data flow of `update` (one call = one env step of num_envs envs, for one seed):
    act            agent.explore; continuous agents act uniformly at random until learning_starts
                   (DQN's epsilon schedule does that job) and add the stop rule's extra noise
                   (LEAST's, when early_stop="least")
    env step       vmapped; the stop rule's pending `stop` mask ends episodes as truncations
    replay         (obs, action, reward, next_obs = info["final_obs"], terminated, truncated)
    stop rule      observes the step (LEAST: Q(s, a) and the gradient statistic into its per-step
                   ring buffers once the critic has taken a gradient step) and decides which
                   episodes stop on their next step
    learn          lax.cond(env steps >= learning_starts, scan of config.learn_steps gradient
                   steps: sample a batch (and a churn reference batch), agent.gradient_step)
"""

from __future__ import annotations

from typing import Any, Protocol

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
from jaxrl_suite.early_stop import init_stop_rule, make_stop_rule, step_envs
from jaxrl_suite.envs.core import Env, State, observation_spec
from jaxrl_suite.envs.spaces import Box, Discrete
from jaxrl_suite.envs.task_sequence import current_task
from jaxrl_suite.parallel import check_divisible, replicate, shard_along
from jaxrl_suite.plasticity import PROBE_SIZE
from jaxrl_suite.runner.learner import reduce_stacked_metrics


class ReplayAgent(Protocol):
    """The algorithm-specific half of a ReplayLearner (DQNAgent, SACAgent, TD3Agent).

    Observations reach it normalized (when the config asks for it); continuous actions are in
    [-1, 1]^action_dim, discrete ones int32 indices; batches are Transitions [batch_size, ...]
    with rewards already scaled. q_value and td_error are read only by LEAST, so an agent whose
    config refuses early_stop="least" (DQN) need not have them.
    """

    def init(self, key: jax.Array) -> Any: ...

    def explore(self, params: Any, obs: jax.Array, key: jax.Array, env_steps: jax.Array) -> jax.Array: ...

    def acting_metrics(self, env_steps: jax.Array) -> dict[str, jax.Array]:
        """What the exploration schedule logs (DQN: epsilon); {} for none."""
        ...

    def greedy(self, params: Any, obs: jax.Array) -> jax.Array: ...

    def q_value(self, params: Any, obs: jax.Array, action: jax.Array) -> jax.Array: ...

    def td_error(self, params: Any, batch: Transition, key: jax.Array) -> jax.Array: ...

    def on_task(self, params: Any, task_index: jax.Array) -> Any:
        """Before a learning update: restarts what a task switch invalidates (DQN's C-CHAIN
        statistics); the params unchanged otherwise."""
        ...

    def diagnose(self, params: Any, obs: jax.Array, action: jax.Array) -> dict[str, jax.Array]:
        """Network diagnostics (feature/NTK rank, dormant ratio, weight norm) on a probe batch."""
        ...

    def gradient_step(self, params: Any, batch: Transition, key: jax.Array, step: jax.Array,
                      reference_batch: Transition | None = None) -> tuple[Any, dict[str, jax.Array]]: ...


class AgentDefaults:
    """The optional half of ReplayAgent: no acting metrics, nothing to restart at a task switch."""

    def acting_metrics(self, env_steps: jax.Array) -> dict[str, jax.Array]:
        return {}

    def on_task(self, params: Any, task_index: jax.Array) -> Any:
        return params


@struct.dataclass
class ReplayTrainState:
    """Everything that defines a replay-based run's future (one seed; the runner stacks seeds).

    agent:          the algorithm's params, target params and optimizer states.
    obs_stats:      RunningMeanStd of observations [*obs_shape].
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


def example_action(env: Env) -> jax.ShapeDtypeStruct:
    """Shape and dtype of one stored action: int32 [] for Discrete, float32 [action_dim] for a Box."""
    space = env.action_space
    if isinstance(space, Discrete):
        return jax.ShapeDtypeStruct((), jnp.int32)
    if isinstance(space, Box):
        return jax.ShapeDtypeStruct(tuple(space.shape), jnp.float32)
    raise ValueError(f"replay-based learners need Discrete or Box actions; {env.env_id!r} has {space.describe()}")


class ReplayLearner:
    """A `runner.learner.Learner` for any ReplayAgent: `env_steps_per_update` = num_envs (one
    env step of every env, then config.learn_steps gradient steps)."""

    def __init__(self, config: ReplayConfig, env: Env, agent: ReplayAgent, mesh: Mesh | None = None):
        config.validate()
        check_divisible(config.num_envs, mesh)
        self.config = config
        self.env = env
        self.agent = agent
        self.mesh = mesh
        self.env_steps_per_update = config.num_envs
        self.observation_shape = tuple(observation_spec(env).shape)
        self.action = example_action(env)
        self.continuous = isinstance(env.action_space, Box)
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
        obs = jax.ShapeDtypeStruct(self.observation_shape, jnp.float32)
        flag = jax.ShapeDtypeStruct((), jnp.bool_)
        return Transition(obs=obs, action=self.action, reward=jax.ShapeDtypeStruct((), jnp.float32), next_obs=obs,
                          terminated=flag, truncated=flag)

    def init(self, key: jax.Array) -> ReplayTrainState:
        chex.assert_shape(key, (2,))
        config = self.config
        rng, agent_key, env_key = jax.random.split(key, 3)
        env_state = reset_envs(self.env, env_key, config.num_envs)
        return ReplayTrainState(
            agent=replicate(self.agent.init(agent_key), self.mesh),
            obs_stats=init_running_mean_std(self.observation_shape),
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

    def update(self, state: ReplayTrainState) -> tuple[ReplayTrainState, dict[str, jax.Array]]:
        """One env step of every env, then learn_steps gradient steps (once learning started)."""
        state, metrics, _ = self.traced_update(state)
        return state, metrics

    def _act(self, state: ReplayTrainState, agent_params: Any, acting_obs: jax.Array, keys: jax.Array) -> jax.Array:
        """The exploring action of every env: [num_envs, *action_shape]."""
        explore_key, random_key, noise_key = keys
        action = self.agent.explore(agent_params, acting_obs, explore_key, state.env_steps)
        if not self.continuous:
            return action
        rule = self.stop_rule
        if rule is not None and rule.explores:
            noise_std = rule.action_noise(state.least)
            action = jnp.clip(action + noise_std * jax.random.normal(noise_key, action.shape), -1.0, 1.0)
        random_action = jax.random.uniform(random_key, action.shape, jnp.float32, -1.0, 1.0)
        return jnp.where(state.env_steps < self.config.learning_starts, random_action, action)

    def traced_update(
        self, state: ReplayTrainState
    ) -> tuple[ReplayTrainState, dict[str, jax.Array], dict[str, jax.Array]]:
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
        chex.assert_shape(obs, (config.num_envs, *self.observation_shape))
        acting_obs = self._normalize(state.obs_stats, obs)
        action = self._act(state, agent_params, acting_obs, (explore_key, random_key, noise_key))

        next_env_state, early_stop, rule_metrics, trace = step_envs(
            self.env, env_state, action, self.stop_rule, state.least, state.env_steps,
            place=lambda next_state: shard_along(next_state, self.mesh, 0),
            statistics=lambda next_state: self._stop_statistics(state, agent_params, acting_obs,
                                                                step_transition(obs, action, next_state), td_key),
        )
        transition = step_transition(obs, action, next_env_state)
        replay = add_batch(state.replay, transition)
        obs_stats = update_running_mean_std(state.obs_stats, obs) if config.normalize_observations else state.obs_stats
        env_steps = state.env_steps + config.num_envs
        metrics = {**completed_episode_sums(next_env_state), **rule_metrics, **self.agent.acting_metrics(state.env_steps)}

        agent_params, train_metrics = self._learn(agent_params, replay, obs_stats, env_steps, state.gradient_steps,
                                                  current_task(next_env_state), learn_key)
        learned = env_steps >= config.learning_starts

        def latest(name: str, previous: jax.Array) -> jax.Array:  # LEAST's critic statistics
            return jnp.where(learned, train_metrics[name], previous) if name in train_metrics else previous

        new_state = ReplayTrainState(
            agent=agent_params,
            obs_stats=obs_stats,
            env_state=next_env_state,
            replay=replay,
            least=early_stop,
            critic_loss=latest("critic_loss", state.critic_loss),
            critic_grad_norm=latest("critic_grad_norm", state.critic_grad_norm),
            rng=rng,
            env_steps=env_steps,
            gradient_steps=state.gradient_steps + jnp.where(learned, config.learn_steps, 0),
        )
        metrics.update(train_metrics)
        metrics["replay_size"] = replay.size.astype(jnp.float32)
        return new_state, metrics, trace

    def _stop_statistics(self, state: ReplayTrainState, agent_params: Any, acting_obs: jax.Array,
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
               gradient_steps: jax.Array, task_index: jax.Array, key: jax.Array) -> tuple[Any, dict[str, jax.Array]]:
        """learn_steps gradient steps on fresh replay batches; skipped (zero metrics) before
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

            params = self.agent.on_task(params, task_index)
            steps = gradient_steps + jnp.arange(config.learn_steps)
            params, stacked = jax.lax.scan(one_step, params, (steps, jax.random.split(key, config.learn_steps)))
            return replicate(params, self.mesh), reduce_stacked_metrics(stacked)

        return learn_once_started(env_steps >= config.learning_starts, gradient_steps_fn, agent_params)

    def evaluate(self, state: ReplayTrainState, key: jax.Array) -> dict[str, jax.Array]:
        """The deterministic (greedy) policy for one episode on each of num_eval_envs fresh envs;
        with plasticity.log_unit_activity also the agent's network diagnostics on PROBE_SIZE
        replay samples."""
        agent_params = replicate(state.agent, self.mesh)

        def act(obs):
            return self.agent.greedy(agent_params, self._normalize(state.obs_stats, obs))

        returns = evaluate_policy(self.env, act, key, self.config.num_eval_envs, self.max_episode_steps, self.mesh)
        if not self.config.plasticity.log_unit_activity:
            return returns
        probe = self._learning_batch(state.obs_stats, sample_batch(state.replay, jax.random.fold_in(key, 1),
                                                                   PROBE_SIZE))
        return {**returns, **self.agent.diagnose(agent_params, probe.obs, probe.action)}
