"""The contract between a learner (PPO, SAC, ...) and the chunked run loop.

A learner is a handful of pure functions over one TrainState pytree; the runner vmaps them
over seeds, scans them into chunks, and does all host work (logs, checkpoints) between chunks.
"""

from __future__ import annotations

from typing import Any, Protocol

import jax

# Metric names with a fixed meaning to the runner. Per-update metrics are scalars; the runner
# stacks a chunk of them and reduces: keys ending in "_sum" or "_count" are summed over the
# chunk, everything else is averaged. `episode_return` in the logs is
# completed_return_sum / completed_count over the chunk (NaN when no episode finished).
COMPLETED_RETURN_SUM = "completed_return_sum"
COMPLETED_LENGTH_SUM = "completed_length_sum"
COMPLETED_COUNT = "completed_count"


def reduce_stacked_metrics(stacked: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """[n, ...] metrics -> one value each: *_sum/*_count summed over the n, others averaged."""
    return {
        name: values.sum(0) if name.endswith(("_sum", "_count")) else values.mean(0)
        for name, values in stacked.items()
    }


class Learner(Protocol):
    """What `jaxrl_suite.runner.run` needs from an algorithm.

    config:                 the algorithm's frozen dataclass config (validated already).
    env_steps_per_update:   env steps one `update` consumes for ONE seed.
    init(key):              the complete TrainState for one seed (params, optimizer state,
                            normalizer, env state, buffers, RNG, counters).
    update(state):          one learner update, pure and jittable: (state, metrics).
    evaluate(state, key):   deterministic-policy evaluation on separate env instances:
                            {"eval_return": [] float32, ...}. Pure and jittable.
    check_memory(n):        optional; raises ValueError before compiling when n seeds' state
                            (e.g. replay buffers) cannot fit in memory.
    """

    config: Any
    env_steps_per_update: int

    def init(self, key: jax.Array) -> Any: ...

    def update(self, state: Any) -> tuple[Any, dict[str, jax.Array]]: ...

    def evaluate(self, state: Any, key: jax.Array) -> dict[str, jax.Array]: ...
