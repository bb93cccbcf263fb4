"""Learning tests over vmapped seeds: train a learner's seeds as one program, evaluate each, and
require a solved count sized from a measured success rate (jaxrl_suite.stats.min_solved_for)."""

from __future__ import annotations

from typing import Any

import chex
import jax
import numpy as np

from jaxrl_suite.runner.chunks import init_seeds, make_chunk_fn, seed_keys
from jaxrl_suite.stats import failure_probability, min_solved_for, summarize_seeds


def train_seeds(learner: Any, num_updates: int, first_seed: int, num_seeds: int,
                num_chunks: int = 4) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Seeds first_seed.. trained for num_updates updates in num_chunks compiled chunks; returns
    (last chunk's metrics, deterministic evaluation), each {name: [num_seeds]}."""
    per_chunk, rest = divmod(num_updates, num_chunks)
    state = init_seeds(learner, first_seed, num_seeds)
    chunk = make_chunk_fn(learner, per_chunk)
    for _ in range(num_chunks):
        state, metrics = chunk(state)
    if rest:
        state, metrics = make_chunk_fn(learner, rest)(state)
    eval_keys = seed_keys([seed + 100 for seed in range(first_seed, first_seed + num_seeds)])
    evaluation = jax.jit(jax.vmap(learner.evaluate))(state, eval_keys)
    metrics, evaluation = jax.device_get((metrics, evaluation))
    chex.assert_shape(evaluation["eval_return"], (num_seeds,))
    return metrics, evaluation


def assert_solved(values: np.ndarray, threshold: float, min_solved: int, success_rate: float) -> None:
    """At least min_solved of the per-seed values reach threshold; the message carries every
    seed's value and the chance a learner solving at success_rate would have failed."""
    summary = summarize_seeds(values, threshold)
    chance = failure_probability(summary.num_seeds, min_solved, success_rate)
    assert summary.solved >= min_solved, (
        f"{summary.describe()}: fewer than {min_solved} solved (a learner solving {success_rate:.3f} of "
        f"seeds fails this with probability {chance:.1e}); per seed {np.round(values, 1).tolist()}"
    )


def assert_learner_solves(learner: Any, total_steps: int, num_seeds: int, threshold: float, success_rate: float,
                          expected_min_solved: int) -> None:
    """Seeds 0..num_seeds-1 of `learner`, trained for total_steps env steps each, solve on >=
    min_solved_for(num_seeds, success_rate) seeds; that count is checked against the calling
    test's docstring figure expected_min_solved."""
    min_solved = min_solved_for(num_seeds, success_rate)
    assert min_solved == expected_min_solved
    _, evaluation = train_seeds(learner, total_steps // learner.env_steps_per_update, 0, num_seeds)
    assert_solved(evaluation["eval_return"], threshold, min_solved, success_rate)
