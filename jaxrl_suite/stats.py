"""Statistics over seeds shared by the CLI, tests and studies: mean with a t-interval, solved
counts with a Wilson interval, and the binomial tail used to size learning tests."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import stats as scipy_stats


@dataclasses.dataclass(frozen=True)
class SeedSummary:
    """A per-seed result reduced to what a reader needs: mean, 95% CI half-width, solved count."""

    mean: float
    ci_half_width: float
    num_seeds: int
    solved: int | None = None
    threshold: float | None = None

    def describe(self, name: str = "eval_return") -> str:
        """e.g. `eval_return 496.3 +- 3.1 (8/8 seeds >= 475)`; the +- is a 95% t-interval."""
        text = f"{name} {self.mean:.1f} +- {self.ci_half_width:.1f}"
        if self.solved is not None:
            text += f" ({self.solved}/{self.num_seeds} seeds >= {self.threshold:g})"
        return text


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float]:
    """(mean, half-width of the Student-t confidence interval); half-width 0 for one value or
    identical values."""
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("mean_ci needs at least one value")
    mean = float(values.mean())
    if values.size == 1:
        return mean, 0.0
    sem = float(values.std(ddof=1)) / math.sqrt(values.size)
    return mean, float(scipy_stats.t.ppf(0.5 + confidence / 2, values.size - 1)) * sem


def summarize_seeds(values, threshold: float | None = None) -> SeedSummary:
    """SeedSummary of per-seed values, counting values >= threshold as solved when one is given."""
    values = np.asarray(values, dtype=np.float64).ravel()
    mean, half = mean_ci(values)
    solved = None if threshold is None else int((values >= threshold).sum())
    return SeedSummary(mean, half, int(values.size), solved, threshold)


def solved_rate_interval(solved: int, num_seeds: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a success rate from `solved` of `num_seeds`."""
    interval = scipy_stats.binomtest(solved, num_seeds).proportion_ci(confidence, method="wilson")
    return float(interval.low), float(interval.high)


def failure_probability(num_seeds: int, min_solved: int, success_rate: float) -> float:
    """P(fewer than min_solved of num_seeds seeds solve) when each solves with success_rate:
    the chance that a correct learner fails a test asserting `solved >= min_solved`."""
    return float(scipy_stats.binom.cdf(min_solved - 1, num_seeds, success_rate))


def min_solved_for(num_seeds: int, success_rate: float, max_failure: float = 1e-3) -> int:
    """The largest `min_solved` whose failure_probability stays below max_failure."""
    for min_solved in range(num_seeds, -1, -1):
        if failure_probability(num_seeds, min_solved, success_rate) < max_failure:
            return min_solved
    return 0
