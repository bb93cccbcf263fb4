"""ReDo / ReGraMa for the replay-based actor-critics (SAC, TD3): unit tools for the critic ensemble
(every member's neurons scored and reset on their own) and for the actor (arXiv 2505.24061).

Resets happen at the end of a gradient step, after the Polyak update, and are copied into the
target networks (see `UnitPlasticity.maybe_reset_with_target`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxrl_suite.networks.off_policy_heads import CRITIC_MEMBERS, CriticEnsemble, critic_member
from jaxrl_suite.plasticity import (
    PlasticityConfig,
    StackedMembers,
    UnitCapture,
    UnitPlasticity,
    network_probe,
)

CRITIC_PREFIX = "critic_"
ACTOR_PREFIX = "actor_"
# fold_in stream of a gradient step's key that draws reset weights (the step's other keys are
# unchanged, so runs without resets stay bit-identical).
RESET_KEY_STREAM = 0x5E5E7


@dataclasses.dataclass(frozen=True)
class ActorCriticUnits:
    """UnitPlasticity for the critic ensemble and for the actor of one off-policy agent."""

    critic: UnitPlasticity
    actor: UnitPlasticity


def make_actor_critic_units(
    config: PlasticityConfig,
    critic: CriticEnsemble,
    critic_optimizer: optax.GradientTransformation,
    actor: nn.Module,
    actor_optimizer: optax.GradientTransformation,
    obs_dim: int,
    action_dim: int,
    batch_size: int,
) -> ActorCriticUnits:
    """Binds `config` to the critic (called as critic(obs, action)) and actor (actor(obs)).
    Their `init_fn`s are the agents' initializers (one-sample example inputs); layouts are
    traced on first use with [batch_size, ...] inputs."""

    def init_critic(key: jax.Array) -> Any:
        return critic.init(key, jnp.zeros((1, obs_dim), jnp.float32), jnp.zeros((1, action_dim), jnp.float32))

    def init_actor(key: jax.Array) -> Any:
        return actor.init(key, jnp.zeros((1, obs_dim), jnp.float32))

    obs = jax.ShapeDtypeStruct((batch_size, obs_dim), jnp.float32)
    action = jax.ShapeDtypeStruct((batch_size, action_dim), jnp.float32)
    example_key = jax.random.PRNGKey(0)
    members = StackedMembers((CRITIC_MEMBERS,), critic.num_critics, critic_member(critic).apply)
    return ActorCriticUnits(
        critic=UnitPlasticity(config, critic.apply, jax.eval_shape(init_critic, example_key), (obs, action),
                              init_critic, critic_optimizer, ensemble=members),
        actor=UnitPlasticity(config, actor.apply, jax.eval_shape(init_actor, example_key), (obs,), init_actor,
                             actor_optimizer),
    )


def reset_keys(step_key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(critic reset key, actor reset key) of a gradient step's key."""
    critic_key, actor_key = jax.random.split(jax.random.fold_in(step_key, RESET_KEY_STREAM))
    return critic_key, actor_key


def prefixed(prefix: str, metrics: dict[str, jax.Array]) -> dict[str, jax.Array]:
    return {prefix + name: value for name, value in metrics.items()}


def score_and_reset(
    units: UnitPlasticity,
    prefix: str,
    variables: Any,
    opt_state: Any,
    target_variables: Any,
    capture: UnitCapture | None,
    perturbation_grads: Any,
    param_grads: Any,
    key: jax.Array,
    updates_done: jax.Array,
) -> tuple[Any, Any, Any, dict[str, jax.Array], dict[str, jax.Array]]:
    """Scores one network from its loss's capture and gradients and resets it when due.

    variables, opt_state: the network after this step's optimizer update.
    target_variables:     its Polyak target after this step's update, or None.
    updates_done:         this network's updates counting this one (the reset period's clock).
    Returns (variables, opt_state, target_variables, ratio metrics, reset metrics), metric names
    prefixed; all dicts are empty when plasticity is off.
    """
    scores = units.scores(capture, perturbation_grads, param_grads)
    variables, opt_state, target_variables, reset_metrics = units.maybe_reset_with_target(
        variables, opt_state, target_variables, scores, key, updates_done
    )
    return variables, opt_state, target_variables, prefixed(prefix, units.metrics(scores)), prefixed(
        prefix, reset_metrics
    )


def probe_actor_critic(agent: Any, params: Any, obs: jax.Array, action: jax.Array) -> dict[str, jax.Array]:
    """Evaluation-time diagnostics of an actor-critic agent (SAC, TD3: `units`, `critic`, `greedy`,
    params with `actor` and `critic`) on a replay probe batch (obs [N, obs_dim], action [N, action_dim]):
    dormant ratio and feature rank (`UnitPlasticity.probe`; the critics' averaged over members),
    empirical-NTK rank of all critics' Q values and of the greedy action, and weight norms; names
    prefixed critic_/actor_."""
    obs_dim = obs.shape[-1]

    def q_values(variables: Any, inputs: jax.Array) -> jax.Array:  # [N, obs_dim + action_dim] -> [N, critics]
        return agent.critic.apply(variables, inputs[:, :obs_dim], inputs[:, obs_dim:]).T

    def greedy_action(actor_variables: Any, obs: jax.Array) -> jax.Array:
        return agent.greedy(params.replace(actor=actor_variables), obs)

    critic_metrics = network_probe(agent.units.critic.probe(params.critic, obs, action), q_values, params.critic,
                                   jnp.concatenate([obs, action], axis=-1))
    actor_metrics = network_probe(agent.units.actor.probe(params.actor, obs), greedy_action, params.actor, obs)
    return {**prefixed(CRITIC_PREFIX, critic_metrics), **prefixed(ACTOR_PREFIX, actor_metrics)}
