"""Soft Actor-Critic: twin critics with Polyak-averaged targets, a tanh-Gaussian actor and a
learned temperature (Haarnoja et al. 2018, arXiv 1801.01290 and 1812.05905).

The collect/update cycle (replay, warm-up, UTD ratio, LEAST) is ReplayLearner's; this module
holds SAC's config, losses and one gradient step:
    critic       y = r + gamma (1 - terminated) (min_j Q'_j(s', a') - alpha log pi(a'|s')), a' ~ pi(s')
    actor        E[alpha log pi(a|s) - min_j Q_j(s, a)], a ~ pi(s) reparameterized
    temperature  E[alpha * stop_grad(-log pi(a|s) - target_entropy)], target_entropy = -scale * action_dim
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import chex
import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax.sharding import Mesh

from jaxrl_suite.agents.critic_step import critic_step
from jaxrl_suite.agents.off_policy import OffPolicyConfig, action_dim, family_defaults, observation_dim
from jaxrl_suite.agents.off_policy_units import (
    ACTOR_PREFIX,
    CRITIC_PREFIX,
    make_actor_critic_units,
    probe_actor_critic,
    reset_keys,
    score_and_reset,
)
from jaxrl_suite.agents.replay import Transition
from jaxrl_suite.agents.replay_learner import AgentDefaults, ReplayLearner
from jaxrl_suite.agents.targets import apply_gradients, bootstrap_target, make_optimizer, polyak_update
from jaxrl_suite.envs.core import Env
from jaxrl_suite.networks.off_policy_heads import CriticEnsemble, TanhGaussianActor, sample_tanh_gaussian
from jaxrl_suite.plasticity import (
    ChurnState,
    advance_reference,
    chain_policy_coefficient,
    churn_gaussian_kl,
    init_churn_state,
)
from jaxrl_suite.validation import require


@dataclasses.dataclass(frozen=True)
class SACConfig(OffPolicyConfig):
    """SAC hyperparameters (shared off-policy fields documented on OffPolicyConfig)."""

    owner: ClassVar[str] = "sac"

    initial_temperature: float = 1.0
    """Entropy temperature alpha at the start."""
    temperature_learning_rate: float = 3e-4
    """Adam step size of log alpha."""
    target_entropy_scale: float = 1.0
    """Target entropy = -target_entropy_scale * action_dim (brax.training uses 0.5)."""
    actor_on_updated_critic: bool = True
    """The actor's loss uses the critic after this gradient step's update (False: the critic
    before it, as brax.training does, which leaves the critic and actor updates independent)."""

    def validate(self) -> SACConfig:
        super().validate()
        for field in ("initial_temperature", "temperature_learning_rate", "target_entropy_scale"):
            require(getattr(self, field) > 0, self.owner, field, getattr(self, field), "a number > 0")
        return self


def default_config(env_id: str, **overrides: Any) -> SACConfig:
    """Per-family defaults: gymnax (Pendulum-sized tasks) 4 envs x UTD 4 with lr 1e-3; dmc/brax
    Playground's SAC recipe (128 envs, batch 512, UTD 8, LayerNorm critics, obs normalization)."""
    fields = family_defaults(env_id, least_noise_cap=0.2, temperature_learning_rate=1e-3)
    return dataclasses.replace(SACConfig(**fields), **overrides)


# ---------------------------------------------------------------------------- losses


def soft_critic_target(reward: jax.Array, terminated: jax.Array, next_q: jax.Array, next_log_prob: jax.Array,
                       alpha: jax.Array, gamma: float) -> jax.Array:
    """y = r + gamma (1 - terminated) (min_j next_q_j - alpha * next_log_prob).

    reward, terminated, next_log_prob: [B]; next_q: [num_critics, B] target-critic values at
    (s', a' ~ pi(s')); alpha: []. Returns [B] with the gradient stopped.
    """
    chex.assert_rank(next_q, 2)
    next_value = jnp.min(next_q, axis=0) - alpha * next_log_prob
    return bootstrap_target(reward, terminated, next_value, gamma)


def sac_actor_loss(log_prob: jax.Array, q: jax.Array, alpha: jax.Array) -> jax.Array:
    """mean(alpha * log pi(a|s) - min_j Q_j(s, a)); log_prob [B], q [num_critics, B] -> []."""
    chex.assert_rank([log_prob, q], [1, 2])
    return jnp.mean(alpha * log_prob - jnp.min(q, axis=0))


def temperature_loss(log_alpha: jax.Array, log_prob: jax.Array, target_entropy: float) -> jax.Array:
    """mean(alpha * stop_grad(-log_prob - target_entropy)), alpha = exp(log_alpha): lowers alpha
    while the policy's entropy exceeds the target. log_alpha [], log_prob [B] -> []."""
    return jnp.mean(jnp.exp(log_alpha) * jax.lax.stop_gradient(-log_prob - target_entropy))


# ---------------------------------------------------------------------------- agent


@struct.dataclass
class SACParams:
    """SAC's learned state: actor/critic/target-critic params, log alpha [], optimizer states,
    and CHAIN's ChurnState, whose reference is (actor, critic) one gradient step earlier (None
    when churn is off)."""

    actor: Any
    critic: Any
    target_critic: Any
    log_alpha: jax.Array
    actor_opt_state: optax.OptState
    critic_opt_state: optax.OptState
    temperature_opt_state: optax.OptState
    churn: ChurnState | None = None


class SACAgent(AgentDefaults):
    """SAC's half of a ReplayLearner (see ReplayAgent)."""

    def __init__(self, config: SACConfig, obs_dim: int, action_dim: int):
        self.config = config
        self.obs_dim = obs_dim
        self.action_dim = action_dim
        self.target_entropy = -config.target_entropy_scale * action_dim
        self.actor = TanhGaussianActor(action_dim, config.hidden_sizes, config.activation)
        self.critic = CriticEnsemble(config.num_critics, config.hidden_sizes, config.activation,
                                     config.critic_layer_norm)
        self.actor_optimizer = make_optimizer(config.actor_learning_rate, config.max_grad_norm)
        self.critic_optimizer = make_optimizer(config.critic_learning_rate, config.max_grad_norm)
        self.temperature_optimizer = optax.adam(config.temperature_learning_rate)
        self.units = make_actor_critic_units(config.plasticity, self.critic, self.critic_optimizer, self.actor,
                                             self.actor_optimizer, obs_dim, action_dim, config.batch_size)

    def init(self, key: jax.Array) -> SACParams:
        actor_key, critic_key = jax.random.split(key)
        actor = self.units.actor.init_fn(actor_key)
        critic = self.units.critic.init_fn(critic_key)
        log_alpha = jnp.log(jnp.asarray(self.config.initial_temperature, jnp.float32))
        return SACParams(
            actor=actor, critic=critic, target_critic=critic, log_alpha=log_alpha,
            actor_opt_state=self.actor_optimizer.init(actor),
            critic_opt_state=self.critic_optimizer.init(critic),
            temperature_opt_state=self.temperature_optimizer.init(log_alpha),
            churn=init_churn_state(self.config.churn, (actor, critic)) if self.config.churn.enabled else None,
        )

    def _sample(self, actor_params: Any, obs: jax.Array, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        mean, log_std = self.actor.apply(actor_params, obs)
        return sample_tanh_gaussian(key, mean, log_std)

    def explore(self, params: SACParams, obs: jax.Array, key: jax.Array, env_steps: jax.Array) -> jax.Array:
        """A policy sample per observation: obs [N, obs_dim] -> [N, action_dim]."""
        return self._sample(params.actor, obs, key)[0]

    def greedy(self, params: SACParams, obs: jax.Array) -> jax.Array:
        """tanh of the Gaussian's mean: obs [N, obs_dim] -> [N, action_dim]."""
        return jnp.tanh(self.actor.apply(params.actor, obs)[0])

    def diagnose(self, params: SACParams, obs: jax.Array, action: jax.Array) -> dict[str, jax.Array]:
        """Evaluation-time diagnostics of the critics and the actor on a replay probe batch."""
        return probe_actor_critic(self, params, obs, action)

    def q_value(self, params: SACParams, obs: jax.Array, action: jax.Array) -> jax.Array:
        """min_j Q_j(obs, action): [N]."""
        return jnp.min(self.critic.apply(params.critic, obs, action), axis=0)

    def critic_target(self, params: SACParams, batch: Transition, key: jax.Array) -> jax.Array:
        """The soft TD target [B] of a batch, with a' ~ pi(s')."""
        next_action, next_log_prob = self._sample(params.actor, batch.next_obs, key)
        next_q = self.critic.apply(params.target_critic, batch.next_obs, next_action)
        return soft_critic_target(batch.reward, batch.terminated, next_q, next_log_prob,
                                  jnp.exp(params.log_alpha), self.config.gamma)

    def td_error(self, params: SACParams, batch: Transition, key: jax.Array) -> jax.Array:
        """min_j Q_j(s, a) - y: [B]."""
        return self.q_value(params, batch.obs, batch.action) - self.critic_target(params, batch, key)

    def gradient_step(self, params: SACParams, batch: Transition, key: jax.Array, step: jax.Array,
                      reference_batch: Transition | None = None) -> tuple[SACParams, dict[str, jax.Array]]:
        """Critic step, then actor and temperature steps on the updated critic (or on the critic
        before its step, with actor_on_updated_critic=False), then the
        target critics' Polyak update, then ReDo/ReGraMa resets of critic and actor when due
        (`step` + 1 gradient steps done; reset critic units are copied into the target critics).
        With a reference_batch, CHAIN's value and policy churn terms join the two losses."""
        target_key, actor_key = jax.random.split(key)
        target = self.critic_target(params, batch, target_key)
        churn = self.config.churn
        units = self.units

        step_critic = critic_step(self, params, batch, target, reference_batch)
        critic, critic_opt_state, q = step_critic.critic, step_critic.opt_state, step_critic.q
        alpha = jnp.exp(params.log_alpha)
        actor_critic = critic if self.config.actor_on_updated_critic else params.critic

        def actor_loss_fn(actor_params, perturbations):
            (mean, log_std), capture = units.actor.apply(actor_params, perturbations, batch.obs)
            action, log_prob = sample_tanh_gaussian(actor_key, mean, log_std)
            loss = sac_actor_loss(log_prob, self.critic.apply(actor_critic, batch.obs, action), alpha)
            policy_churn = jnp.zeros(())
            if reference_batch is not None:
                policy_churn = churn_gaussian_kl(*self.actor.apply(actor_params, reference_batch.obs),
                                                 *self.actor.apply(params.churn.reference_params[0], reference_batch.obs))
            return (loss + chain_policy_coefficient(churn, q, self.action_dim) * policy_churn,
                    (log_prob, policy_churn, capture))

        (actor_loss, (log_prob, policy_churn, actor_capture)), (actor_grads, actor_perturbation_grads) = (
            jax.value_and_grad(actor_loss_fn, argnums=(0, 1), has_aux=True)(
                params.actor, units.actor.perturbations(params.actor, batch.obs)
            )
        )
        actor, actor_opt_state = apply_gradients(self.actor_optimizer, params.actor, params.actor_opt_state,
                                                 actor_grads)
        alpha_loss, log_alpha_grad = jax.value_and_grad(temperature_loss)(params.log_alpha, log_prob,
                                                                          self.target_entropy)
        log_alpha, temperature_opt_state = apply_gradients(self.temperature_optimizer, params.log_alpha,
                                                           params.temperature_opt_state, log_alpha_grad)
        critic_reset_key, actor_reset_key = reset_keys(key)
        critic, critic_opt_state, target_critic, critic_ratios, critic_resets = score_and_reset(
            units.critic, CRITIC_PREFIX, critic, critic_opt_state,
            polyak_update(params.target_critic, critic, self.config.tau), step_critic.capture,
            step_critic.perturbation_grads, step_critic.grads, critic_reset_key, step + 1,
        )
        actor, actor_opt_state, _, actor_ratios, actor_resets = score_and_reset(
            units.actor, ACTOR_PREFIX, actor, actor_opt_state, None, actor_capture, actor_perturbation_grads,
            actor_grads, actor_reset_key, step + 1,
        )
        new_params = SACParams(
            actor=actor, critic=critic, target_critic=target_critic,
            log_alpha=log_alpha, actor_opt_state=actor_opt_state, critic_opt_state=critic_opt_state,
            temperature_opt_state=temperature_opt_state,
            churn=None if reference_batch is None else advance_reference(params.churn, (params.actor, params.critic)),
        )
        churn_metrics = ({} if reference_batch is None
                         else {"value_churn": step_critic.value_churn, "policy_churn": policy_churn})
        metrics = {**churn_metrics, **critic_ratios, **critic_resets, **actor_ratios, **actor_resets,
            "critic_loss": step_critic.loss,
            "actor_loss": actor_loss,
            "temperature_loss": alpha_loss,
            "alpha": alpha,
            "entropy": -log_prob.mean(),
            "q_mean": q.mean(),
            "critic_grad_norm": optax.global_norm(step_critic.grads),
            "actor_grad_norm": optax.global_norm(actor_grads),
        }
        return new_params, metrics


def make_sac(config: SACConfig, env: Env, mesh: Mesh | None = None) -> ReplayLearner:
    """A SAC Learner on `env` (a single auto-resetting env from `jaxrl_suite.envs.make` with a
    bounded Box action space). The config is validated and the replay buffer's memory checked
    here, before anything compiles."""
    config.validate()
    return ReplayLearner(config, env, SACAgent(config, observation_dim(env), action_dim(env)), mesh)
