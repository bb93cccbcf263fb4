"""Statistics shared by the CLI, tests and studies: mean with a t-interval, solved counts with a
Wilson interval, the binomial tail used to size learning tests, and bootstrap intervals of a
difference of proportions with a two-proportion test and Benjamini-Hochberg (bias shift)."""

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


def bootstrap_proportion_difference(
    first, second, num_resamples: int = 2000, confidence: float = 0.95, seed: int = 0, paired: bool = False
) -> tuple[float, float, float]:
    """(mean(first) - mean(second), low, high): a percentile bootstrap CI of a difference of two
    proportions of 0/1 labels. Unpaired, both sets are resampled independently; resampling n 0/1
    labels with replacement gives exactly Binomial(n, p_hat) ones, so that is drawn instead. With
    paired=True (the same items labelled twice, so len(first) == len(second)) the items are
    resampled jointly via the multinomial counts of the four (first, second) label cells; a set
    against itself then gives a CI of width 0."""
    first = np.asarray(first).ravel().astype(bool)
    second = np.asarray(second).ravel().astype(bool)
    for name, labels in (("first", first), ("second", second)):
        if labels.size < 2:
            raise ValueError(f"invalid bootstrap_proportion_difference.{name} size={labels.size}: expected at least 2 labels")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"invalid bootstrap_proportion_difference.confidence={confidence!r}: expected a value in (0, 1)")
    if num_resamples < 1:
        raise ValueError(f"invalid bootstrap_proportion_difference.num_resamples={num_resamples!r}: expected >= 1")
    rng = np.random.default_rng(seed)
    difference = float(first.mean() - second.mean())
    if paired:
        if first.size != second.size:
            raise ValueError(
                f"invalid bootstrap_proportion_difference.second size={second.size}: expected {first.size} "
                "(paired labels need one per item of first)"
            )
        only_first = float(np.mean(first & ~second))
        only_second = float(np.mean(~first & second))
        cells = rng.multinomial(first.size, [only_first, only_second, max(0.0, 1.0 - only_first - only_second)], num_resamples)
        resampled = (cells[:, 0] - cells[:, 1]) / first.size
    else:
        resampled = (
            rng.binomial(first.size, first.mean(), num_resamples) / first.size
            - rng.binomial(second.size, second.mean(), num_resamples) / second.size
        )
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(resampled, [tail, 100.0 - tail])
    return difference, float(low), float(high)


def two_proportion_p_value(first, second) -> float:
    """Two-sided p-value of the pooled two-proportion z-test that 0/1 labels first and second share
    one rate (1.0 when the pooled rate is 0 or 1, as then the sets cannot differ)."""
    first = np.asarray(first).ravel().astype(bool)
    second = np.asarray(second).ravel().astype(bool)
    pooled = (first.sum() + second.sum()) / (first.size + second.size)
    variance = pooled * (1.0 - pooled) * (1.0 / first.size + 1.0 / second.size)
    if variance <= 0.0:
        return 1.0
    z = (first.mean() - second.mean()) / math.sqrt(variance)
    return float(2.0 * scipy_stats.norm.sf(abs(z)))


def benjamini_hochberg(p_values, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """(rejected, adjusted): Benjamini-Hochberg step-up over a family of p-values, any shape;
    adjusted[i] = min over ranks j >= rank(i) of p_(j) * m / j, clipped to 1 (scipy's
    false_discovery_control), and rejected = adjusted <= alpha."""
    p_values = np.asarray(p_values, dtype=np.float64)
    if p_values.size == 0 or np.any((p_values < 0) | (p_values > 1)) or np.any(np.isnan(p_values)):
        raise ValueError(f"invalid benjamini_hochberg.p_values={p_values.ravel()[:5].tolist()}: expected a non-empty array in [0, 1]")
    adjusted = scipy_stats.false_discovery_control(p_values.ravel(), method="bh").reshape(p_values.shape)
    return adjusted <= alpha, adjusted
