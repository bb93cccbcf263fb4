"""Episode bookkeeping every learner needs: the runner's completed-episode sums from an env
step's info, and deterministic-policy evaluation on fresh envs.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.sharding import Mesh

from jaxrl_suite.envs.core import Env, State
from jaxrl_suite.parallel import shard_along
from jaxrl_suite.runner.learner import COMPLETED_COUNT, COMPLETED_LENGTH_SUM, COMPLETED_RETURN_SUM


def completed_episode_sums(env_state: State) -> dict[str, jax.Array]:
    """{completed_return_sum, completed_length_sum, completed_count}: [] float32 sums over the
    episodes that ended at the step producing `env_state` (batched over [num_envs])."""
    completed = env_state.info["completed"]
    return {
        COMPLETED_RETURN_SUM: jnp.where(completed, env_state.info["completed_return"], 0.0).sum(),
        COMPLETED_LENGTH_SUM: jnp.where(completed, env_state.info["completed_length"], 0).sum().astype(jnp.float32),
        COMPLETED_COUNT: completed.sum().astype(jnp.float32),
    }


def evaluate_policy(
    env: Env, act: Callable[[jax.Array], jax.Array], key: jax.Array, num_envs: int, max_steps: int,
    mesh: Mesh | None = None,
) -> dict[str, jax.Array]:
    """Runs `act` (obs [num_envs, *obs_shape] -> action [num_envs, ...]) for one episode on each
    of `num_envs` fresh envs, at most `max_steps` steps, stopping once all have ended (a while
    loop: on a GPU its condition costs one device-to-host read per step). With a `mesh` the eval
    envs are split over its devices like the training batch when num_envs divides evenly (else
    XLA places them).

    Returns {"eval_return": [] mean, "eval_return_std": [], "eval_finished_fraction": []}.
    """
    if mesh is not None and num_envs % mesh.size:
        mesh = None
    env_state = shard_along(jax.vmap(env.reset)(jax.random.split(key, num_envs)), mesh, 0)

    def eval_step(carry):
        steps, env_state, episode_return, running = carry
        next_state = shard_along(jax.vmap(env.step)(env_state, act(env_state.obs)), mesh, 0)
        episode_return = episode_return + jnp.where(running, next_state.reward, 0.0)
        return steps + 1, next_state, episode_return, running & ~next_state.done

    def any_running(carry):
        steps, _, _, running = carry
        return (steps < max_steps) & running.any()

    # Stops once every episode has ended (the steps after that would add nothing).
    initial = (jnp.zeros((), jnp.int32), env_state, jnp.zeros((num_envs,), jnp.float32),
               jnp.ones((num_envs,), jnp.bool_))
    _, _, episode_return, running = jax.lax.while_loop(any_running, eval_step, initial)
    return {
        "eval_return": episode_return.mean(),
        "eval_return_std": episode_return.std(),
        "eval_finished_fraction": 1.0 - running.mean(),
    }
