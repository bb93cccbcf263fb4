"""Twin Delayed DDPG: twin critics, target policy smoothing, delayed actor and target updates,
Gaussian exploration noise (Fujimoto et al. 2018, arXiv 1802.09477).

The collect/update cycle (replay, warm-up, UTD ratio, LEAST) is ReplayLearner's; this module
holds TD3's config, losses and one gradient step:
    critic   y = r + gamma (1 - terminated) min_j Q'_j(s', clip(mu'(s') + clip(eps, -c, c), -1, 1)),
             eps ~ N(0, target_noise^2)
    actor    -E[Q_1(s, mu(s))], with the target networks' Polyak update, every policy_delay steps
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
    prefixed,
    probe_actor_critic,
    reset_keys,
    score_and_reset,
)
from jaxrl_suite.agents.replay import Transition
from jaxrl_suite.agents.replay_learner import AgentDefaults, ReplayLearner
from jaxrl_suite.agents.targets import apply_gradients, bootstrap_target, make_optimizer, polyak_update
from jaxrl_suite.envs.core import Env
from jaxrl_suite.networks.off_policy_heads import CriticEnsemble, DeterministicActor
from jaxrl_suite.plasticity import (
    ChurnState,
    advance_reference,
    chain_policy_coefficient,
    churn_mse,
    init_churn_state,
)
from jaxrl_suite.validation import require


@dataclasses.dataclass(frozen=True)
class TD3Config(OffPolicyConfig):
    """TD3 hyperparameters (shared off-policy fields documented on OffPolicyConfig)."""

    owner: ClassVar[str] = "td3"

    exploration_noise: float = 0.1
    """Std of the Gaussian noise added to the actor's actions while collecting (actions in [-1, 1])."""
    target_noise: float = 0.2
    """Std of the target policy smoothing noise."""
    target_noise_clip: float = 0.5
    """The smoothing noise is clipped to [-target_noise_clip, target_noise_clip]."""
    policy_delay: int = 2
    """Critic steps per actor (and target network) step."""

    def validate(self) -> TD3Config:
        super().validate()
        for field in ("exploration_noise", "target_noise", "target_noise_clip"):
            require(getattr(self, field) >= 0, self.owner, field, getattr(self, field), "a std >= 0")
        require(isinstance(self.policy_delay, int) and self.policy_delay >= 1, self.owner, "policy_delay",
                self.policy_delay, "an integer >= 1")
        return self


def default_config(env_id: str, **overrides: Any) -> TD3Config:
    """Per-family defaults, matching SAC's (see sac.default_config) with TD3's own noise settings."""
    return dataclasses.replace(TD3Config(**family_defaults(env_id, least_noise_cap=0.3)), **overrides)


def smoothed_target_action(target_action: jax.Array, key: jax.Array, noise_std: float,
                           noise_clip: float) -> jax.Array:
    """clip(mu'(s') + clip(N(0, noise_std^2), -noise_clip, noise_clip), -1, 1): [B, action_dim]."""
    noise = jnp.clip(noise_std * jax.random.normal(key, target_action.shape), -noise_clip, noise_clip)
    return jnp.clip(target_action + noise, -1.0, 1.0)


def td3_actor_loss(q: jax.Array) -> jax.Array:
    """-mean Q_1(s, mu(s)); q [num_critics, B] -> [] (the first critic only, as in TD3)."""
    chex.assert_rank(q, 2)
    return -jnp.mean(q[0])


@struct.dataclass
class TD3Params:
    """TD3's learned state: actor, critics, their targets and optimizer states."""

    actor: Any
    target_actor: Any
    critic: Any
    target_critic: Any
    actor_opt_state: optax.OptState
    critic_opt_state: optax.OptState
    churn: ChurnState | None = None
    """CHAIN's ChurnState, whose reference is (the actor before its last step, the critic one
    gradient step earlier); None when churn is off."""
    actor_unit_metrics: Any = None
    """The actor's dormant / GraMa-inactive ratios at its latest (delayed) step, logged every
    step; None when plasticity captures nothing."""


class TD3Agent(AgentDefaults):
    """TD3's half of a ReplayLearner (see ReplayAgent)."""

    def __init__(self, config: TD3Config, obs_dim: int, action_dim: int):
        self.config = config
        self.obs_dim = obs_dim
        self.action_dim = action_dim
        self.actor = DeterministicActor(action_dim, config.hidden_sizes, config.activation)
        self.critic = CriticEnsemble(config.num_critics, config.hidden_sizes, config.activation,
                                     config.critic_layer_norm)
        self.actor_optimizer = make_optimizer(config.actor_learning_rate, config.max_grad_norm)
        self.critic_optimizer = make_optimizer(config.critic_learning_rate, config.max_grad_norm)
        self.units = make_actor_critic_units(config.plasticity, self.critic, self.critic_optimizer, self.actor,
                                             self.actor_optimizer, obs_dim, action_dim, config.batch_size)

    def init(self, key: jax.Array) -> TD3Params:
        actor_key, critic_key = jax.random.split(key)
        actor = self.units.actor.init_fn(actor_key)
        critic = self.units.critic.init_fn(critic_key)
        return TD3Params(
            actor=actor, target_actor=actor, critic=critic, target_critic=critic,
            actor_opt_state=self.actor_optimizer.init(actor), critic_opt_state=self.critic_optimizer.init(critic),
            churn=init_churn_state(self.config.churn, (actor, critic)) if self.config.churn.enabled else None,
            actor_unit_metrics=prefixed(ACTOR_PREFIX, self.units.actor.zero_metrics()) or None,
        )

    def greedy(self, params: TD3Params, obs: jax.Array) -> jax.Array:
        """mu(obs): [N, obs_dim] -> [N, action_dim]."""
        return self.actor.apply(params.actor, obs)

    def explore(self, params: TD3Params, obs: jax.Array, key: jax.Array, env_steps: jax.Array) -> jax.Array:
        """clip(mu(obs) + N(0, exploration_noise^2), -1, 1): [N, action_dim]."""
        action = self.greedy(params, obs)
        return jnp.clip(action + self.config.exploration_noise * jax.random.normal(key, action.shape), -1.0, 1.0)

    def diagnose(self, params: TD3Params, obs: jax.Array, action: jax.Array) -> dict[str, jax.Array]:
        """Evaluation-time diagnostics of the critics and the actor on a replay probe batch."""
        return probe_actor_critic(self, params, obs, action)

    def q_value(self, params: TD3Params, obs: jax.Array, action: jax.Array) -> jax.Array:
        """min_j Q_j(obs, action): [N]."""
        return jnp.min(self.critic.apply(params.critic, obs, action), axis=0)

    def critic_target(self, params: TD3Params, batch: Transition, key: jax.Array) -> jax.Array:
        """TD3's clipped double-Q target [B] with target policy smoothing."""
        next_action = smoothed_target_action(self.actor.apply(params.target_actor, batch.next_obs), key,
                                             self.config.target_noise, self.config.target_noise_clip)
        next_q = self.critic.apply(params.target_critic, batch.next_obs, next_action)
        return bootstrap_target(batch.reward, batch.terminated, jnp.min(next_q, axis=0), self.config.gamma)

    def td_error(self, params: TD3Params, batch: Transition, key: jax.Array) -> jax.Array:
        """min_j Q_j(s, a) - y: [B]."""
        return self.q_value(params, batch.obs, batch.action) - self.critic_target(params, batch, key)

    def gradient_step(self, params: TD3Params, batch: Transition, key: jax.Array, step: jax.Array,
                      reference_batch: Transition | None = None) -> tuple[TD3Params, dict[str, jax.Array]]:
        """Critic step; on every policy_delay-th step (by the global gradient step count `step`)
        also an actor step and the Polyak update of both target networks; then ReDo/ReGraMa
        resets when due, copied into the targets: the critic's every `period` gradient steps,
        the actor's every `period` actor steps (on its delayed steps, whose loss scores it). With a
        reference_batch, CHAIN's value churn joins the critic loss and its action churn the actor's."""
        config = self.config
        units = self.units
        target = self.critic_target(params, batch, key)
        critic_reset_key, actor_reset_key = reset_keys(key)

        step_critic = critic_step(self, params, batch, target, reference_batch)
        critic, critic_opt_state, q = step_critic.critic, step_critic.opt_state, step_critic.q
        if reference_batch is not None:
            params = params.replace(churn=advance_reference(params.churn, (params.churn.reference_params[0],
                                                                           params.critic)))
        params = params.replace(critic=critic, critic_opt_state=critic_opt_state)

        def actor_and_targets(params: TD3Params) -> tuple[TD3Params, jax.Array, dict[str, jax.Array]]:
            def actor_loss_fn(actor_params, perturbations):
                action, capture = units.actor.apply(actor_params, perturbations, batch.obs)
                loss = td3_actor_loss(self.critic.apply(params.critic, batch.obs, action))
                if reference_batch is not None:
                    action_churn = churn_mse(self.actor.apply(actor_params, reference_batch.obs),
                                             self.actor.apply(params.churn.reference_params[0], reference_batch.obs))
                    loss = loss + chain_policy_coefficient(config.churn, q, self.action_dim) * action_churn
                return loss, capture

            (actor_loss, actor_capture), (actor_grads, actor_perturbation_grads) = jax.value_and_grad(
                actor_loss_fn, argnums=(0, 1), has_aux=True
            )(params.actor, units.actor.perturbations(params.actor, batch.obs))
            actor, actor_opt_state = apply_gradients(self.actor_optimizer, params.actor, params.actor_opt_state,
                                                     actor_grads)
            actor, actor_opt_state, target_actor, actor_ratios, actor_resets = score_and_reset(
                units.actor, ACTOR_PREFIX, actor, actor_opt_state, polyak_update(params.target_actor, actor, config.tau),
                actor_capture, actor_perturbation_grads, actor_grads, actor_reset_key, step // config.policy_delay + 1,
            )
            churn = None if reference_batch is None else advance_reference(
                params.churn, (params.actor, params.churn.reference_params[1]))
            return params.replace(
                actor=actor, actor_opt_state=actor_opt_state, target_actor=target_actor,
                target_critic=polyak_update(params.target_critic, params.critic, config.tau),
                churn=churn, actor_unit_metrics=actor_ratios or None,
            ), actor_loss, actor_resets

        def critic_only(params: TD3Params) -> tuple[TD3Params, jax.Array, dict[str, jax.Array]]:
            return params, jnp.zeros((), jnp.float32), prefixed(ACTOR_PREFIX, units.actor.no_reset_metrics())

        params, actor_loss, actor_resets = jax.lax.cond(step % config.policy_delay == 0, actor_and_targets,
                                                        critic_only, params)
        critic, critic_opt_state, target_critic, critic_ratios, critic_resets = score_and_reset(
            units.critic, CRITIC_PREFIX, params.critic, params.critic_opt_state, params.target_critic,
            step_critic.capture, step_critic.perturbation_grads, step_critic.grads, critic_reset_key, step + 1,
        )
        params = params.replace(critic=critic, critic_opt_state=critic_opt_state, target_critic=target_critic)
        metrics = {
            **({} if reference_batch is None else {"value_churn": step_critic.value_churn}),
            **critic_ratios, **critic_resets, **(params.actor_unit_metrics or {}), **actor_resets,
            "critic_loss": step_critic.loss,
            "actor_loss": actor_loss,
            "q_mean": q.mean(),
            "critic_grad_norm": optax.global_norm(step_critic.grads),
        }
        return params, metrics


def make_td3(config: TD3Config, env: Env, mesh: Mesh | None = None) -> ReplayLearner:
    """A TD3 Learner on `env` (bounded Box actions); config validated and replay memory checked
    here, before anything compiles."""
    config.validate()
    return ReplayLearner(config, env, TD3Agent(config, observation_dim(env), action_dim(env)), mesh)
