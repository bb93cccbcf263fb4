"""Reference tasks: the return at which an environment counts as solved, and the (algorithm,
env, budget) pairs whose defaults must solve it on most seeds (docs/seed_robustness.md)."""

from __future__ import annotations

import dataclasses

SOLVED_RETURN: dict[str, float] = {
    "gymnax/CartPole-v1": 475.0,
    "gymnax/Acrobot-v1": -100.0,
    "gymnax/Pendulum-v1": -300.0,
    "dmc/CartpoleBalance": 800.0,
}
"""Deterministic-policy evaluation return that counts as solving each env."""


def solved_return(env_id: str) -> float | None:
    """The solved threshold of env_id, or None where the suite defines none."""
    return SOLVED_RETURN.get(env_id)


@dataclasses.dataclass(frozen=True)
class ReferenceTask:
    """The default config of `algo` must reach solved_return(env_id) within total_steps env
    steps on at least min_solved_rate of seeds, measured over num_seeds vmapped seeds."""

    algo: str
    env_id: str
    total_steps: int
    num_seeds: int
    min_solved_rate: float = 0.95

    @property
    def name(self) -> str:
        return f"{self.algo}-{self.env_id.replace('/', '-')}"

    @property
    def threshold(self) -> float:
        return SOLVED_RETURN[self.env_id]


REFERENCE_TASKS: tuple[ReferenceTask, ...] = (
    ReferenceTask("ppo", "gymnax/CartPole-v1", 500_000, 64),
    ReferenceTask("ppo", "gymnax/Acrobot-v1", 500_000, 64),
    ReferenceTask("ppo", "gymnax/Pendulum-v1", 500_000, 32, min_solved_rate=0.90),
    ReferenceTask("sac", "gymnax/Pendulum-v1", 20_000, 32),
    ReferenceTask("td3", "gymnax/Pendulum-v1", 20_000, 32),
    ReferenceTask("ppo", "dmc/CartpoleBalance", 1_000_000, 32),
)


def reference_task(name: str) -> ReferenceTask:
    """The task called `name` (e.g. ppo-gymnax-CartPole-v1); ValueError lists the valid names."""
    for task in REFERENCE_TASKS:
        if task.name == name:
            return task
    raise ValueError(f"unknown reference task {name!r}; valid: {', '.join(t.name for t in REFERENCE_TASKS)}")
