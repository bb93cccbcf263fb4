"""Continual-RL task sequences: one env that switches task every `steps_per_task` steps of a run.

The task sequences of C-CHAIN (arXiv 2506.00592): e.g. walker stand -> walk -> run. Each task
is a fully wrapped env with the same spaces; the active task index lives in the state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import chex
import jax
import jax.numpy as jnp
from flax import struct

from jaxrl_suite.envs.core import Env, State, Wrapper
from jaxrl_suite.envs.registry import make, make_raw
from jaxrl_suite.envs.spaces import Box, Discrete
from jaxrl_suite.envs.wrappers import wrap

TASK_INDEX = "task_index"
TASK_SWITCHED = "task_switched"

SEQUENCES: dict[str, tuple[str, ...]] = {
    "dmc-walker": ("dmc/WalkerStand", "dmc/WalkerWalk", "dmc/WalkerRun"),
    "dmc-hopper": ("dmc/HopperStand", "dmc/HopperHop", "dmc/HopperStand"),
    "dmc-cartpole": ("dmc/CartpoleBalance", "dmc/CartpoleSwingup", "dmc/CartpoleBalance"),
    "minatar": ("gymnax/Breakout-MinAtar", "gymnax/Asterix-MinAtar", "gymnax/SpaceInvaders-MinAtar"),
}
UNAVAILABLE = {
    "dmc-quadruped": "MuJoCo Playground's DeepMind Control suite has no Quadruped; dmc-hopper "
                     "(stand -> hop -> stand) has the same return-to-an-earlier-task shape",
}


def current_task(env_state: State) -> jax.Array:
    """Task of a batch of envs [num_envs] (a TaskSequence's envs switch together): [] int32, 0
    for ordinary envs."""
    if "task_index" in env_state.info:
        return env_state.info["task_index"][0]
    return jnp.zeros((), jnp.int32)


def _strong_types(tree: Any) -> Any:
    """Every leaf as an array of its own dtype without weak typing, so that the task states
    keep one type through reset and step (lax.switch needs identical branch types)."""
    return jax.tree.map(lambda leaf: jnp.asarray(leaf, jnp.asarray(leaf).dtype), tree)


@struct.dataclass
class TaskSequenceBackend:
    """task_states: one State per task (each task keeps its own episode); task_index: [] int32
    task acted in next; steps: [] int32 steps this env instance has taken."""

    task_states: tuple[State, ...]
    task_index: jax.Array
    steps: jax.Array


class TaskSequence(Env):
    """Acts in tasks[k] during steps [k * steps_per_task, (k + 1) * steps_per_task) of this env
    instance, then stays in the last task. With N vmapped envs the switch happens at run step
    N * steps_per_task.

    At a switch the running episode of the old task is cut like a time limit (truncated, its
    last observation in info["final_obs"]) and `obs` is the new task's current observation.
    info["task_index"] is the task of `obs`; info["task_switched"] marks the switching step.
    Every task is stepped and the active one kept (under vmap the index is per env, so a
    switch would do the same): a step costs the sum of the tasks' step costs.
    """

    def __init__(self, tasks: Sequence[Env], steps_per_task: int, name: str = ""):
        if not tasks:
            raise ValueError("a task sequence needs at least one task")
        if not isinstance(steps_per_task, int) or steps_per_task < 1:
            raise ValueError(f"steps_per_task must be a positive int, got {steps_per_task!r}")
        first = tasks[0]
        for task in tasks[1:]:
            if task.observation_space != first.observation_space or task.action_space != first.action_space:
                raise ValueError(
                    f"tasks must share spaces: {first.env_id} has {first.observation_space.describe()} / "
                    f"{first.action_space.describe()}, {task.env_id} has {task.observation_space.describe()} / "
                    f"{task.action_space.describe()}"
                )
        self.tasks = tuple(tasks)
        self.steps_per_task = steps_per_task
        self.env_id = f"sequence/{name or '+'.join(task.env_id for task in tasks)}"
        self.observation_space = first.observation_space
        self.action_space = first.action_space
        limits = [task.max_episode_steps for task in tasks]
        self.max_episode_steps = None if None in limits else max(limits)
        self._shared_info_keys = self._common_info_keys()

    def _common_info_keys(self) -> tuple[str, ...]:
        abstract = [jax.eval_shape(task.reset, jax.ShapeDtypeStruct((2,), jnp.uint32)).info for task in self.tasks]
        first = abstract[0]
        return tuple(
            key for key in first
            if all(key in info and jax.tree.structure(info[key]) == jax.tree.structure(first[key])
                   and jax.tree.leaves(info[key]) == jax.tree.leaves(first[key]) for info in abstract)
        )

    def task_at(self, steps: jax.Array) -> jax.Array:
        """[] int32 task acted in after `steps` steps."""
        return jnp.minimum(steps // self.steps_per_task, len(self.tasks) - 1).astype(jnp.int32)

    def _public(self, state: State) -> tuple:
        return state.obs, state.reward, state.terminated, state.truncated, {
            key: state.info[key] for key in self._shared_info_keys
        }

    def _select(self, index: jax.Array, per_task: Sequence[Any]) -> Any:
        """per_task[index] for a traced index: a `where` over the tasks' pytrees."""
        chosen = per_task[0]
        for i, candidate in enumerate(per_task[1:], start=1):
            chosen = jax.tree.map(lambda new, old, i=i: jnp.where(index == i, new, old), candidate, chosen)
        return chosen

    def reset(self, key: jax.Array) -> State:
        keys = jax.random.split(key, len(self.tasks))
        task_states = _strong_types(
            tuple(task.reset(task_key) for task, task_key in zip(self.tasks, keys, strict=True))
        )
        zero = jnp.zeros((), jnp.int32)
        obs, reward, terminated, truncated, info = self._public(task_states[0])
        info = {**info, TASK_INDEX: zero, TASK_SWITCHED: jnp.zeros((), jnp.bool_)}
        return State(obs, reward, terminated, truncated, TaskSequenceBackend(task_states, zero, zero), info)

    def step(self, state: State, action: jax.Array, stop: jax.Array | None = None) -> State:
        backend = state.backend
        index = backend.task_index

        # Every task is stepped and the active one's result kept: what vmap makes of a switch
        # on a batched index anyway; inactive tasks keep their state unchanged.
        stepped = [
            _strong_types(task.step(task_state, action, stop))
            for task, task_state in zip(self.tasks, backend.task_states, strict=True)
        ]
        task_states = tuple(
            jax.tree.map(lambda new, old, i=i: jnp.where(index == i, new, old), new_state, old_state)
            for i, (new_state, old_state) in enumerate(zip(stepped, backend.task_states, strict=True))
        )
        obs, reward, terminated, truncated, info = self._select(index, [self._public(state) for state in stepped])
        steps = backend.steps + 1
        next_index = self.task_at(steps)
        switched = next_index != index
        next_obs = self._select(next_index, [task_state.obs for task_state in task_states])
        chex.assert_equal_shape([obs, next_obs])
        # The cut episode's last observation is already info["final_obs"]: the inner AutoReset
        # writes the stepped observation there whenever no episode ended.
        info = {**info, TASK_INDEX: next_index, TASK_SWITCHED: switched}
        return State(
            obs=jnp.where(switched, next_obs, obs),
            reward=reward,
            terminated=terminated,
            truncated=truncated | (switched & ~terminated),
            backend=TaskSequenceBackend(task_states, next_index, steps),
            info=info,
        )


class PadSpaces(Wrapper):
    """Makes MinAtar games share spaces: observation channels zero-padded to `num_channels`,
    `num_actions` discrete actions of which those beyond the game's own act as action 0."""

    def __init__(self, env: Env, num_channels: int, num_actions: int):
        super().__init__(env)
        space = env.observation_space
        if len(space.shape) != 3 or not isinstance(env.action_space, Discrete):
            raise ValueError(f"PadSpaces needs [H, W, C] observations and discrete actions, got {env!r}")
        self._pad = num_channels - space.shape[-1]
        self._num_actions = num_actions
        if self._pad < 0 or num_actions < env.action_space.n:
            raise ValueError(f"{env.env_id} does not fit in {num_channels} channels and {num_actions} actions")

    @property
    def observation_space(self) -> Box:  # type: ignore[override]
        space = self.env.observation_space
        return Box((*space.shape[:-1], space.shape[-1] + self._pad), 0.0, 1.0)

    @property
    def action_space(self) -> Discrete:  # type: ignore[override]
        return Discrete(self._num_actions)

    def _padded(self, state: State) -> State:
        return state.replace(obs=jnp.pad(state.obs, [(0, 0), (0, 0), (0, self._pad)]))

    def reset(self, key: jax.Array) -> State:
        return self._padded(self.env.reset(key))

    def step(self, state: State, action: jax.Array, stop: jax.Array | None = None) -> State:
        own_action = jnp.where(action < self.env.action_space.n, action, 0)
        return self._padded(self.env.step(state, own_action, stop))


def _minatar_tasks(env_ids: Sequence[str]) -> list[Env]:
    raw = [make_raw(env_id, flatten_obs=False) for env_id in env_ids]
    num_channels = max(env.observation_space.shape[-1] for env in raw)
    num_actions = max(env.action_space.n for env in raw)
    return [wrap(PadSpaces(env, num_channels, num_actions)) for env in raw]


def make_task_sequence(name: str, steps_per_task: int, **options: Any) -> TaskSequence:
    """A named sequence of SEQUENCES; `steps_per_task` counts steps of ONE env instance
    (divide the run steps per task by the number of vmapped envs). `options` go to `make`."""
    if name in UNAVAILABLE:
        raise ValueError(f"task sequence {name!r} is not available: {UNAVAILABLE[name]}")
    if name not in SEQUENCES:
        raise ValueError(f"unknown task sequence {name!r}; valid: {sorted(SEQUENCES)}")
    env_ids = SEQUENCES[name]
    if name == "minatar":
        tasks = _minatar_tasks(env_ids)
    else:
        built: dict[str, Env] = {}
        tasks = [built.setdefault(env_id, make(env_id, **options)) for env_id in env_ids]
    return TaskSequence(tasks, steps_per_task, name)


__all__ = ["PadSpaces", "SEQUENCES", "TaskSequence", "TaskSequenceBackend", "make_task_sequence"]
