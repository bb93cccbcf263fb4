"""The PPO learner: vmapped parallel actors, GAE and clipped minibatch epochs, as one pure
`update` per iteration.

Schulman et al. 2017 (arXiv 1707.06347), with the details of Andrychowicz et al. 2021 and the
parallel-actor study arXiv 2506.03404.

Data flow of `update` (one PPO iteration for one seed):
    rollout        rollout_length steps of num_envs envs -> Trajectory [T, num_envs, ...]
                   (with separate trunks the actor acts alone; the critic's values of all
                   T x num_envs observations follow in one product)
    compute_gae    advantages, returns (truncations bootstrap from info["final_obs"];
                   elsewhere the next step's value from the rollout)
    epoch x E      shuffle the batch into minibatches
      minibatch x M  ppo_loss -> grads -> clipped Adam step (masked after a KL early stop)
"""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax.sharding import Mesh

from jaxrl_suite.agents.episodes import completed_episode_sums, evaluate_policy
from jaxrl_suite.agents.gae import compute_gae
from jaxrl_suite.agents.normalizer import (
    ReturnScaler,
    RunningMeanStd,
    init_return_scaler,
    init_running_mean_std,
    normalize,
    scale_rewards,
    update_return_scaler,
    update_running_mean_std,
)
from jaxrl_suite.agents.ppo.config import PPOConfig
from jaxrl_suite.agents.ppo.losses import (
    clipped_surrogate_loss,
    explained_variance,
    standardize,
    value_loss,
)
from jaxrl_suite.early_stop import init_stop_rule, make_stop_rule, step_envs
from jaxrl_suite.envs.core import Env, State, observation_spec
from jaxrl_suite.envs.spaces import Box, Discrete
from jaxrl_suite.envs.task_sequence import current_task
from jaxrl_suite.networks import ActorCritic, env_action, squashed_gaussian_entropy
from jaxrl_suite.optim import clip_by_global_norm, global_norm
from jaxrl_suite.parallel import check_divisible, replicate, shard_along
from jaxrl_suite.plasticity import (
    PROBE_SIZE,
    ChurnState,
    UnitPlasticity,
    churn_categorical_kl,
    churn_mse,
    init_churn_state,
    network_probe,
    record_losses,
    restart_on_task_switch,
)
from jaxrl_suite.validation import require, require_defaults
from jaxrl_suite.xla_cpu import shuffle
from jaxrl_suite.xla_cpu.masked_map import gathered_map_where


def with_learning_rate(opt_state: Any, learning_rate: jax.Array) -> Any:
    """PPO's optimizer state with the step size of the next Adam steps set to `learning_rate`."""
    return opt_state._replace(hyperparams={**opt_state.hyperparams, "learning_rate": learning_rate})


@struct.dataclass
class PPOTrainState:
    """Everything that defines a PPO run's future (one seed; the runner stacks seeds in front).

    params:        network parameters (replicated over devices).
    opt_state:     optax state: inject_hyperparams (the learning rate) around global-norm clipping + Adam.
    env_state:     envs.State batched over [num_envs] (split over devices).
    obs_stats:     RunningMeanStd of observations, [*obs_shape].
    return_scaler: ReturnScaler, discounted returns [num_envs] and their statistics.
    rng:           uint32[2] raw PRNG key.
    update_count:  [] int32 PPO iterations done (drives learning-rate annealing).
    churn:         C-CHAIN's ChurnState (None when churn is off).
    early_stop:    the stop rule's state (None when early_stop="none").
    """

    params: Any
    opt_state: optax.OptState
    env_state: State
    obs_stats: RunningMeanStd
    return_scaler: ReturnScaler
    rng: jax.Array
    update_count: jax.Array
    churn: ChurnState | None = None
    early_stop: Any = None


@struct.dataclass
class Trajectory:
    """One rollout, time-major: every field is [rollout_length, num_envs, ...].

    obs [T, N, *obs_shape] raw observations acted on; raw_action [T, N, *action_shape] policy
    samples before clipping/squashing; log_prob and value [T, N] under the acting policy;
    reward [T, N] (scaled for learning); terminated, done [T, N] bool; bootstrap_value [T, N]
    V(s'_t) of the state step t led to (pre-reset when the episode ended), where GAE cannot
    take value[t + 1]: at truncated steps and at the last step (elsewhere it may be 0, see
    PPO.rollout).
    """

    obs: jax.Array
    raw_action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    reward: jax.Array
    terminated: jax.Array
    done: jax.Array
    bootstrap_value: jax.Array


@struct.dataclass
class Batch:
    """Learning data, flat over samples: obs [B, *obs_shape], raw_action [B, *action_shape],
    old_log_prob, old_value, advantage, target_return [B]."""

    obs: jax.Array
    raw_action: jax.Array
    old_log_prob: jax.Array
    old_value: jax.Array
    advantage: jax.Array
    target_return: jax.Array


def bootstrap_values(trajectory: Trajectory) -> jax.Array:
    """V(s'_t) [T, num_envs] for GAE: the trajectory's bootstrap_value at truncated steps and at
    the last step; elsewhere the episode went on, so s'_t is the next step's state, whose value
    the rollout has (at terminated steps GAE ignores V(s'_t))."""
    truncated = trajectory.done & ~trajectory.terminated
    following = jnp.concatenate([trajectory.value[1:], trajectory.bootstrap_value[-1:]])
    return jnp.where(truncated, trajectory.bootstrap_value, following)




class PPO:
    """A `runner.learner.Learner` for PPO; build it with `make_ppo`."""

    def __init__(self, config: PPOConfig, env: Env, mesh: Mesh | None = None):
        config.validate()
        check_divisible(config.num_envs, mesh)
        if not isinstance(env.action_space, (Discrete, Box)):
            raise ValueError(f"PPO supports Discrete or Box action spaces, got {env.action_space!r}")
        if isinstance(env.action_space, Discrete):
            # Squashing acts on Gaussian actions only; refuse it instead of ignoring it.
            require(config.action_squash != "tanh", "ppo", "action_squash", config.action_squash,
                    f'"clip" or "none" on a discrete action space ({env.action_space!r})')
            require_defaults(config, ("state_dependent_std", "init_log_std"), "ppo",
                             f"on a discrete action space ({env.action_space!r}): only Gaussian policies have a std")
        self.config = config
        self.env = env
        self.mesh = mesh
        self.env_steps_per_update = config.batch_size
        self.eval_max_steps = env.max_episode_steps or config.eval_max_steps
        self.stop_rule = make_stop_rule(config, env.env_id, env.max_episode_steps)
        # Where a data-dependent loop is free (CPU), the rollout runs the critic only on the
        # final observations of truncated episodes (see rollout); on an accelerator the loop's
        # condition would make every step wait for the host.
        self.critic_on_truncations_only = jax.default_backend() == "cpu"
        # With separate trunks the critic's values of the acted-on observations are computed
        # after the rollout, as one product over all [T, num_envs] of them instead of T small
        # ones; with a shared trunk the acting pass has the critic's features already.
        self.values_while_acting = config.shared_trunk
        self.observation_shape = tuple(observation_spec(env).shape)
        self.network = ActorCritic(
            action_space=env.action_space,
            hidden_sizes=config.hidden_sizes,
            critic_hidden_sizes=config.critic_hidden_sizes,
            activation=config.activation,
            layer_norm=config.layer_norm,
            residual=config.residual,
            shared_trunk=config.shared_trunk,
            conv_channels=config.conv_channels,
            observation_ndim=len(self.observation_shape),
            image_shape=config.conv_input_shape,
            state_dependent_std=config.state_dependent_std,
            init_log_std=config.init_log_std,
        )
        # The learning rate is a hyperparameter in the optimizer's state (optax.inject_hyperparams),
        # set from `learning_rate(update_count)` at each iteration: annealing follows PPO iterations
        # even when a KL early stop skips steps, and a sweep's traced value reaches Adam.
        self.optimizer = optax.inject_hyperparams(self._optimizer)(learning_rate=config.learning_rate)
        example_obs = jnp.zeros((1, *self.observation_shape), jnp.float32)
        init_network = lambda key: self.network.init(key, example_obs)  # noqa: E731
        self.plasticity = UnitPlasticity(
            config.plasticity, self.network.apply, jax.eval_shape(init_network, jax.random.PRNGKey(0)),
            (jax.ShapeDtypeStruct((config.minibatch_size, *self.observation_shape), jnp.float32),),
            init_network, self.optimizer,
        )

    # ----------------------------------------------------------------------------- helpers

    def _shard_envs(self, tree: Any, axis: int = 0) -> Any:
        return shard_along(tree, self.mesh, axis)

    def _shard_return_scaler(self, scaler: ReturnScaler) -> ReturnScaler:
        return scaler.replace(discounted_return=self._shard_envs(scaler.discounted_return))

    def _network_input(self, obs_stats: RunningMeanStd, obs: jax.Array) -> jax.Array:
        if self.config.normalize_observations:
            return normalize(obs_stats, obs)
        return obs.astype(jnp.float32)

    def _policy_and_value(self, params: Any, obs_stats: RunningMeanStd, obs: jax.Array):
        return self.network.apply(params, self._network_input(obs_stats, obs))

    def _value(self, params: Any, obs_stats: RunningMeanStd, obs: jax.Array) -> jax.Array:
        return self.network.apply(params, self._network_input(obs_stats, obs), method=ActorCritic.value)

    def _policy(self, params: Any, obs_stats: RunningMeanStd, obs: jax.Array):
        return self.network.apply(params, self._network_input(obs_stats, obs), method=ActorCritic.policy)

    def _env_action(self, raw_action: jax.Array) -> jax.Array:
        return env_action(raw_action, self.env.action_space, self.config.action_squash)

    def _optimizer(self, learning_rate: jax.Array) -> optax.GradientTransformation:
        clip = clip_by_global_norm(self.config.max_grad_norm) if self.config.max_grad_norm else optax.identity()
        return optax.chain(clip, optax.scale_by_adam(eps=self.config.adam_eps), optax.scale(-learning_rate))

    def learning_rate(self, update_count: jax.Array) -> jax.Array:
        """The step size of PPO iteration `update_count` (0-based): linear decay to 0 if annealed."""
        if not self.config.anneal_lr:
            return jnp.asarray(self.config.learning_rate, jnp.float32)
        remaining = 1.0 - update_count.astype(jnp.float32) / self.config.num_updates
        return self.config.learning_rate * jnp.clip(remaining, 0.0, 1.0)

    # --------------------------------------------------------------------------- protocol

    def init(self, key: jax.Array) -> PPOTrainState:
        """A fresh TrainState for one seed from a raw uint32[2] key."""
        chex.assert_shape(key, (2,))
        network_key, env_key, rng = jax.random.split(key, 3)
        env_state = jax.vmap(self.env.reset)(jax.random.split(env_key, self.config.num_envs))
        params = self.network.init(network_key, env_state.obs[:1].astype(jnp.float32))
        return PPOTrainState(
            params=replicate(params, self.mesh),
            opt_state=replicate(self.optimizer.init(params), self.mesh),
            env_state=self._shard_envs(env_state),
            obs_stats=init_running_mean_std(self.observation_shape),
            return_scaler=self._shard_return_scaler(init_return_scaler(self.config.num_envs)),
            rng=rng,
            update_count=jnp.zeros((), jnp.int32),
            churn=init_churn_state(self.config.churn, params) if self.config.churn.enabled else None,
            early_stop=init_stop_rule(self.stop_rule, self.config.num_envs, key),
        )

    def update(self, state: PPOTrainState) -> tuple[PPOTrainState, dict[str, jax.Array]]:
        """One PPO iteration: rollout, GAE, num_epochs x num_minibatches Adam steps."""
        config = self.config
        rng, rollout_key, epochs_key = jax.random.split(state.rng, 3)
        params = replicate(state.params, self.mesh)
        env_state, early_stop, trajectory, episode_metrics = self.rollout_with_stop_rule(
            params, state.obs_stats, self._shard_envs(state.env_state), state.early_stop,
            state.update_count * self.env_steps_per_update, rollout_key,
        )
        return_scaler = state.return_scaler
        if config.normalize_rewards:
            return_scaler = update_return_scaler(
                self._shard_return_scaler(return_scaler), trajectory.reward, trajectory.done, config.gamma
            )
            trajectory = trajectory.replace(reward=scale_rewards(return_scaler, trajectory.reward))
        batch, gae_metrics = self.make_batch(trajectory)
        learning_rate = self.learning_rate(state.update_count)
        churn = state.churn
        if config.churn.enabled:
            churn = restart_on_task_switch(config.churn, churn, params, current_task(env_state))
        opt_state = with_learning_rate(state.opt_state, learning_rate)
        (params, opt_state, _, churn_reference), train_metrics, scores = self.run_epochs(
            params, opt_state, state.obs_stats, batch, epochs_key, churn=churn
        )
        if config.churn.enabled:
            churn = record_losses(config.churn, churn.replace(reference_params=churn_reference),
                                  train_metrics["policy_loss"], train_metrics["churn_loss"],
                                  learning_rate / config.learning_rate)
            train_metrics["churn_coefficient"] = churn.coefficient
        params, opt_state, reset_metrics = self.plasticity.maybe_reset(
            params, opt_state, scores, jax.random.fold_in(epochs_key, 1), state.update_count + 1
        )
        train_metrics.update(reset_metrics)
        obs_stats = state.obs_stats
        if config.normalize_observations:
            obs_stats = update_running_mean_std(obs_stats, trajectory.obs)
        new_state = PPOTrainState(
            params=params,
            opt_state=opt_state,
            env_state=env_state,
            obs_stats=obs_stats,
            return_scaler=return_scaler,
            rng=rng,
            update_count=state.update_count + 1,
            churn=churn,
            early_stop=early_stop,
        )
        metrics = {**episode_metrics, **gae_metrics, **train_metrics, "learning_rate": learning_rate}
        return new_state, metrics

    def evaluate(self, state: PPOTrainState, key: jax.Array) -> dict[str, jax.Array]:
        """Deterministic policy (distribution mode) for one episode on each of num_eval_envs fresh
        envs, capped at the env's time limit (or eval_max_steps): {"eval_return": [] mean, ...};
        with plasticity.log_unit_activity also `diagnose` on the training envs' current observations."""
        params = replicate(state.params, self.mesh)

        def act(obs: jax.Array) -> jax.Array:
            return self._env_action(self._policy(params, state.obs_stats, obs).mode())

        returns = evaluate_policy(self.env, act, key, self.config.num_eval_envs, self.eval_max_steps, self.mesh)
        if not self.config.plasticity.log_unit_activity:
            return returns
        return {**returns, **self.diagnose(params, state.obs_stats, state.env_state.obs[:PROBE_SIZE])}

    def diagnose(self, params: Any, obs_stats: RunningMeanStd, obs: jax.Array) -> dict[str, jax.Array]:
        """On a probe batch of raw observations: dormant ratio, feature rank of each head's input,
        empirical-NTK rank of the policy outputs (logits or Gaussian means), weight norm."""
        return network_probe(self.plasticity.probe(params, self._network_input(obs_stats, obs)),
                             lambda p, o: self.policy_outputs(p, obs_stats, o), params, obs)

    # ------------------------------------------------------------------------ update steps

    def rollout(
        self, params: Any, obs_stats: RunningMeanStd, env_state: State, key: jax.Array
    ) -> tuple[State, Trajectory, dict[str, jax.Array]]:
        """`rollout_with_stop_rule` of a learner without a stop rule: (env state, Trajectory, sums)."""
        if self.stop_rule is not None:
            raise ValueError("this PPO has a stop rule; call rollout_with_stop_rule with its state")
        env_state, _, trajectory, metrics = self.rollout_with_stop_rule(params, obs_stats, env_state, None, 0, key)
        return env_state, trajectory, metrics

    def rollout_with_stop_rule(
        self, params: Any, obs_stats: RunningMeanStd, env_state: State, early_stop: Any, first_env_step: jax.Array,
        key: jax.Array,
    ) -> tuple[State, Any, Trajectory, dict[str, jax.Array]]:
        """rollout_length steps of the stochastic policy on every env; the stop rule (if any, with
        state `early_stop`; `first_env_step` this seed's env steps before the rollout) observes
        every step and its mask ends episodes as truncations.

        Returns the next env state, the rule's state, the Trajectory [T, num_envs, ...] and the
        sums over episodes that finished during the rollout (completed_return_sum, ..., and the
        rule's counts).

        Bootstrap values: with `critic_on_truncations_only` (CPU) the critic runs at each step
        only on the final observations of envs truncated there (a gather loop, `masked_map`;
        no iteration in most steps; under vmap over seeds it runs while any seed has some),
        and after the rollout on the last state, so that final observations need not be kept;
        otherwise every step's info["final_obs"] is kept and the critic runs on all of them in
        one product. Both agree to float rounding where GAE reads them (tested).
        """
        num_envs = self.config.num_envs
        rule = self.stop_rule
        value_of_one = lambda obs: self._value(params, obs_stats, obs)  # noqa: E731

        def env_step(carry: tuple[State, Any], step_key_and_index: tuple[jax.Array, jax.Array]):
            env_state, early_stop = carry
            step_key, step_index = step_key_and_index
            chex.assert_shape(env_state.obs, (num_envs, *self.observation_shape))
            if self.values_while_acting:
                policy, value = self._policy_and_value(params, obs_stats, env_state.obs)
            else:
                policy, value = self._policy(params, obs_stats, env_state.obs), None
            raw_action = policy.sample(seed=step_key)
            next_state, early_stop, rule_metrics, _ = step_envs(
                self.env, env_state, self._env_action(raw_action), rule, early_stop,
                first_env_step + step_index * num_envs, place=self._shard_envs)
            episode_sums = {**completed_episode_sums(next_state), **rule_metrics}
            transition = Trajectory(
                obs=env_state.obs,
                raw_action=raw_action,
                log_prob=policy.log_prob(raw_action),
                value=value,
                reward=next_state.reward * self.config.reward_scale,
                terminated=next_state.terminated,
                done=next_state.done,
                bootstrap_value=None,
            )
            final_obs = next_state.info["final_obs"]
            if self.critic_on_truncations_only:
                after_step = gathered_map_where(value_of_one, next_state.truncated, final_obs, jnp.zeros(num_envs))
            else:
                after_step = final_obs
            return (next_state, early_stop), (transition, after_step, episode_sums)

        step_keys = jax.random.split(key, self.config.rollout_length)
        (env_state, early_stop), (trajectory, after_steps, episode_sums) = jax.lax.scan(
            env_step, (env_state, early_stop), (step_keys, jnp.arange(self.config.rollout_length)))
        if self.critic_on_truncations_only:
            truncated_last = trajectory.done[-1] & ~trajectory.terminated[-1]
            last = jnp.where(truncated_last, after_steps[-1], self._value(params, obs_stats, env_state.obs))
            bootstrap_value = after_steps.at[-1].set(last)
        else:
            bootstrap_value = self._value(params, obs_stats, after_steps)
        trajectory = trajectory.replace(bootstrap_value=bootstrap_value)
        if not self.values_while_acting:
            trajectory = trajectory.replace(value=self._value(params, obs_stats, trajectory.obs))
        trajectory = self._shard_envs(trajectory, axis=1)
        episode_metrics = {name: sums.sum() for name, sums in episode_sums.items()}
        return env_state, early_stop, trajectory, episode_metrics

    def make_batch(self, trajectory: Trajectory) -> tuple[Batch, dict[str, jax.Array]]:
        """GAE over the trajectory, then flatten [T, num_envs] to [T * num_envs] samples."""
        next_value = bootstrap_values(trajectory)
        advantage, target_return = compute_gae(
            trajectory.reward, trajectory.value, next_value, trajectory.terminated, trajectory.done,
            self.config.gamma, self.config.gae_lambda,
        )
        batch = Batch(
            obs=trajectory.obs,
            raw_action=trajectory.raw_action,
            old_log_prob=trajectory.log_prob,
            old_value=trajectory.value,
            advantage=advantage,
            target_return=target_return,
        )
        batch = jax.tree.map(lambda x: x.reshape((self.config.batch_size, *x.shape[2:])), batch)
        metrics = {"explained_variance": explained_variance(trajectory.value, target_return)}
        return batch, metrics

    def ppo_loss(
        self, params: Any, obs_stats: RunningMeanStd, minibatch: Batch
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Clipped surrogate + value_coef * value loss - entropy_coef * entropy on [minibatch_size].

        Log-probabilities and entropy are those of the raw (pre-clip/squash) action distribution.
        """
        config = self.config
        policy, value = self._policy_and_value(params, obs_stats, minibatch.obs)
        log_ratio = policy.log_prob(minibatch.raw_action) - minibatch.old_log_prob
        ratio = jnp.exp(log_ratio)
        advantage = standardize(minibatch.advantage) if config.normalize_advantages else minibatch.advantage
        policy_loss = clipped_surrogate_loss(ratio, advantage, config.clip_eps)
        critic_loss = value_loss(value, minibatch.old_value, minibatch.target_return, config.value_clip_eps)
        entropy = (squashed_gaussian_entropy(policy) if config.squashed_entropy else policy.entropy()).mean()
        total_loss = policy_loss + config.value_coef * critic_loss - config.entropy_coef * entropy
        metrics = {
            "loss": total_loss,
            "policy_loss": policy_loss,
            "value_loss": critic_loss,
            "entropy": entropy,
            # Schulman's low-variance estimator of KL(old || new): E[(r - 1) - log r].
            "approx_kl": ((ratio - 1.0) - log_ratio).mean(),
            "clip_fraction": (jnp.abs(ratio - 1.0) > config.clip_eps).mean(),
        }
        return total_loss, metrics

    def policy_outputs(self, params: Any, obs_stats: RunningMeanStd, obs: jax.Array) -> jax.Array:
        """obs [B, *obs_shape] -> the policy's logits [B, num_actions] (discrete actions) or
        Gaussian means [B, action_dim] (raw actions)."""
        policy = self._policy(params, obs_stats, obs)
        return policy.logits if isinstance(self.env.action_space, Discrete) else policy.mean()

    def policy_churn(self, params: Any, reference_params: Any, obs_stats: RunningMeanStd, obs: jax.Array) -> jax.Array:
        """C-CHAIN's churn of the policy on reference observations [B, *obs_shape] -> []: KL of
        the categorical policies, or the MSE of the Gaussian means."""
        current = self.policy_outputs(params, obs_stats, obs)
        reference = self.policy_outputs(reference_params, obs_stats, obs)
        if isinstance(self.env.action_space, Discrete):
            return churn_categorical_kl(current, reference)
        return churn_mse(current, reference)

    def minibatch_step(self, carry, minibatches: tuple[Batch, Batch | None], *, obs_stats: RunningMeanStd,
                       churn_coefficient: jax.Array | None = None):
        """One Adam step on a minibatch, skipped (params kept) once the KL early stop fired.

        carry: (params, opt_state, kl_stopped [] bool, churn reference params or None). The KL is
        measured before the step, on this minibatch; exceeding target_kl skips this and every
        later step of the iteration. minibatches: (minibatch, reference minibatch for C-CHAIN or
        None). Returns (carry, (metrics, plasticity scores)).
        """
        params, opt_state, kl_stopped, churn_reference = carry
        minibatch, reference_minibatch = minibatches

        def loss_fn(params, perturbations):
            with self.plasticity.recording(perturbations) as recorder:
                loss, metrics = self.ppo_loss(params, obs_stats, minibatch)
            if churn_reference is not None:
                churn_loss = self.policy_churn(params, churn_reference, obs_stats, reference_minibatch.obs)
                loss = loss + churn_coefficient * churn_loss
                metrics = {**metrics, "loss": loss, "churn_loss": churn_loss}
            return loss, (metrics, recorder.capture())

        perturbations = self.plasticity.perturbations(params, self._network_input(obs_stats, minibatch.obs))
        (_, (metrics, capture)), (grads, perturbation_grads) = jax.value_and_grad(
            loss_fn, argnums=(0, 1), has_aux=True
        )(params, perturbations)
        scores = self.plasticity.scores(capture, perturbation_grads, grads)
        metrics.update(self.plasticity.metrics(scores))
        params_before = params
        grads = replicate(grads, self.mesh)
        updates, new_opt_state = self.optimizer.update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        evaluated = ~kl_stopped
        if self.config.target_kl is None:
            # No early stop: a per-leaf select would only cost copies of params and moments.
            params, opt_state = new_params, new_opt_state
        else:
            kl_stopped = kl_stopped | (metrics["approx_kl"] > self.config.target_kl)
            params, opt_state = jax.tree.map(
                lambda old, new: jnp.where(kl_stopped, old, new), (params, opt_state), (new_params, new_opt_state)
            )
        metrics = {**metrics, "grad_norm": global_norm(grads), "evaluated": evaluated,
                   "applied": ~kl_stopped}
        if churn_reference is not None:  # the reference trails the parameters by one applied step
            churn_reference = jax.tree.map(lambda kept, before: jnp.where(kl_stopped, kept, before),
                                           churn_reference, params_before)
        return (params, opt_state, kl_stopped, churn_reference), (metrics, scores)

    def epoch(self, carry, epoch_key: jax.Array, *, batch: Batch, obs_stats: RunningMeanStd,
              churn_coefficient: jax.Array | None = None):
        """Shuffles the batch into [num_minibatches, minibatch_size, ...] and steps on each
        (with C-CHAIN, next to an independent reshuffle as reference minibatches)."""
        config = self.config

        def shuffled(key: jax.Array) -> Batch:
            permutation = shuffle.permutation(key, config.batch_size)
            minibatches = jax.tree.map(
                lambda x: x[permutation].reshape((config.num_minibatches, config.minibatch_size, *x.shape[1:])),
                batch,
            )
            return self._shard_envs(minibatches, axis=1)

        references = shuffled(jax.random.fold_in(epoch_key, 1)) if churn_coefficient is not None else None
        step = lambda carry, minibatches: self.minibatch_step(  # noqa: E731
            carry, minibatches, obs_stats=obs_stats, churn_coefficient=churn_coefficient
        )
        return jax.lax.scan(step, carry, (shuffled(epoch_key), references))

    def run_epochs(self, params, opt_state, obs_stats, batch: Batch, key, churn: ChurnState | None = None):
        """num_epochs epochs; metrics averaged over the minibatches evaluated before a KL stop.

        Returns (carry (params, opt_state, kl_stopped, churn reference), metrics, plasticity
        scores averaged over all minibatches ({} when plasticity is off)).
        """
        churn_coefficient = None if churn is None else churn.coefficient
        epoch = lambda carry, epoch_key: self.epoch(  # noqa: E731
            carry, epoch_key, batch=batch, obs_stats=obs_stats, churn_coefficient=churn_coefficient,
        )
        carry = (params, opt_state, jnp.zeros((), bool), None if churn is None else churn.reference_params)
        carry, (stacked, stacked_scores) = jax.lax.scan(epoch, carry, jax.random.split(key, self.config.num_epochs))
        scores = jax.tree.map(lambda s: s.reshape(-1, s.shape[-1]).mean(0), stacked_scores)
        evaluated = stacked.pop("evaluated").astype(jnp.float32)
        applied = stacked.pop("applied").astype(jnp.float32)
        num_evaluated = jnp.maximum(evaluated.sum(), 1.0)
        metrics = {name: (values * evaluated).sum() / num_evaluated for name, values in stacked.items()}
        metrics["update_fraction"] = applied.mean()
        return carry, metrics, scores


def make_ppo(config: PPOConfig, env: Env, mesh: Mesh | None = None) -> PPO:
    """A PPO Learner on `env` (a single auto-resetting env from `jaxrl_suite.envs.make`).

    config is validated here, before anything compiles. With a `mesh` (see
    jaxrl_suite.parallel.make_mesh) the env batch is split over its devices and parameters
    are replicated; num_envs must be divisible by the number of devices.
    """
    return PPO(config, env, mesh)
