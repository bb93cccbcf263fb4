"""Distances between a real and a generated sample for the bias-shift study's quality check (arXiv
2506.09106, issue 27): 1-D Wasserstein-1 and Kolmogorov-Smirnov, Gaussian-kernel MMD^2, bootstrap CIs.

All three are computed exactly on numpy float64 arrays (no JAX: they are host-side analysis of
measured attributes). The percentile bootstrap resamples both sets independently, like
`jaxrl_suite.stats.bootstrap_proportion_difference` does for proportions; that helper draws
binomial counts of 0/1 labels and does not apply to a general statistic, hence `bootstrap_distance`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from jaxrl_suite.validation import require

OWNER = "distances"
DISTANCES = ("w1", "ks", "mmd2")
BOOTSTRAP_METHODS = ("percentile", "basic")
# Pooled points used for the median-heuristic bandwidth; above it a seeded subset is used, so that
# the pairwise-distance matrix stays at most 2000 x 2000.
MAX_MEDIAN_POINTS = 2000


@dataclasses.dataclass(frozen=True)
class DistanceEstimate:
    """A distance between two samples with its bootstrap CI (both sets resampled).

    A distance is >= 0 (MMD^2's unbiased estimate can dip below 0) and a resampled set repeats
    items, so resampled distances are biased upward: near 0 the "percentile" CI can lie wholly
    above the estimate itself, even for two draws of one distribution. The "basic" CI, (2 value -
    q_high, 2 value - q_low), is centred near the bias-corrected 2 value - median(resampled), so it
    may reach below 0, and near 0 lie below the estimate. Neither is a test of equality; compare a
    distance with the noise floor (B' vs B) instead."""

    name: str
    value: float
    low: float
    high: float
    num_first: int
    num_second: int
    bandwidth: float | None = None
    method: str = "percentile"


def finite_sample(values, owner: str, field: str, min_size: int = 1) -> np.ndarray:
    """A 1-D finite float64 sample of at least min_size values; one ValueError line naming
    `owner.field` otherwise."""
    values = np.asarray(values, dtype=np.float64)
    require(values.ndim == 1, owner, f"{field}.shape", values.shape, "a 1-D sample [n]")
    require(values.size >= min_size, owner, f"{field}.size", values.size, f"at least {min_size} values")
    require(bool(np.all(np.isfinite(values))), owner, field, "non-finite", "finite values")
    return values


def _sample(values, field: str, min_size: int = 1) -> np.ndarray:
    return finite_sample(values, OWNER, field, min_size)


def _features(values, field: str, min_size: int = 2) -> np.ndarray:
    """Feature vectors [n, d] float64 (a 1-D sample [n] is read as d = 1)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    require(
        values.ndim == 2, OWNER, f"{field}.shape", values.shape, "feature vectors [n, d] or a 1-D sample [n]"
    )
    require(
        values.shape[0] >= min_size, OWNER, f"{field}.size", values.shape[0], f"at least {min_size} samples"
    )
    require(bool(np.all(np.isfinite(values))), OWNER, field, "non-finite", "finite values")
    return values


def _check_same_dimension(first: np.ndarray, second: np.ndarray) -> None:
    require(
        second.shape[1] == first.shape[1],
        OWNER,
        "second.shape",
        second.shape,
        f"[m, {first.shape[1]}] (the feature dimension of first)",
    )


# --- 1-D distances -------------------------------------------------------------------------------
def wasserstein1(first, second) -> float:
    """W1 between two 1-D empirical samples, first: [n], second: [m] (n != m allowed).

    W1 = integral over u in (0, 1) of |Q1(u) - Q2(u)|, with Q the empirical quantile function,
    Q(u) = x_(ceil(u n)) of the sorted sample. Both Q are step functions with jumps at i/n and j/m,
    so the integral is a sum over the merged jump points: each interval's width times the gap
    between the two sorted values in force there. Exact (equal to scipy.stats.wasserstein_distance)."""
    first, second = np.sort(_sample(first, "first")), np.sort(_sample(second, "second"))
    jumps = np.union1d(np.arange(1, first.size + 1) / first.size, np.arange(1, second.size + 1) / second.size)
    jumps[-1] = 1.0
    starts = np.concatenate([[0.0], jumps[:-1]])
    middles = (starts + jumps) / 2
    # Q(u) = x[k] with k the first index whose (k + 1) / n >= u; at an interval's middle no tie occurs.
    first_index = np.minimum(np.floor(middles * first.size).astype(int), first.size - 1)
    second_index = np.minimum(np.floor(middles * second.size).astype(int), second.size - 1)
    return float(np.sum((jumps - starts) * np.abs(first[first_index] - second[second_index])))


def ks_statistic(first, second) -> float:
    """Two-sample Kolmogorov-Smirnov statistic sup_x |F1(x) - F2(x)| of 1-D samples [n] and [m].

    The empirical CDFs only jump at sample points, so the sup is a max over the pooled sample with
    F(x) = #{x_i <= x} / n (equal to scipy.stats.ks_2samp's statistic)."""
    first, second = np.sort(_sample(first, "first")), np.sort(_sample(second, "second"))
    pooled = np.concatenate([first, second])
    cdf_first = np.searchsorted(first, pooled, side="right") / first.size
    cdf_second = np.searchsorted(second, pooled, side="right") / second.size
    return float(np.max(np.abs(cdf_first - cdf_second)))


# --- MMD -----------------------------------------------------------------------------------------
def _squared_distances(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Pairwise squared Euclidean distances [n, m], clipped at 0 against rounding."""
    squared = (first**2).sum(1)[:, None] + (second**2).sum(1)[None, :] - 2.0 * first @ second.T
    return np.maximum(squared, 0.0)


def median_bandwidth(first, second, seed: int = 0) -> float:
    """The median heuristic: sigma = median Euclidean distance over pairs i < j of the pooled sample
    (Gretton et al., JMLR 2012), over a seeded subset of MAX_MEDIAN_POINTS if larger. When over
    half the pairs coincide (the median is 0), the mean pairwise distance is used instead."""
    first, second = _features(first, "first", 1), _features(second, "second", 1)
    _check_same_dimension(first, second)
    pooled = np.concatenate([first, second])
    if pooled.shape[0] > MAX_MEDIAN_POINTS:
        pooled = pooled[np.random.default_rng(seed).choice(pooled.shape[0], MAX_MEDIAN_POINTS, replace=False)]
    upper = np.triu_indices(pooled.shape[0], k=1)
    distances = np.sqrt(_squared_distances(pooled, pooled)[upper])
    sigma = float(np.median(distances))
    if sigma <= 0.0:
        sigma = float(distances.mean())
    require(
        sigma > 0.0, OWNER, "bandwidth", sigma, "a positive median distance (the pooled points all coincide)"
    )
    return sigma


def _check_bandwidth(bandwidth) -> float:
    ok = isinstance(bandwidth, int | float) and not isinstance(bandwidth, bool) and np.isfinite(bandwidth)
    require(
        ok and bandwidth > 0,
        OWNER,
        "bandwidth",
        bandwidth,
        "a positive finite float, or None for the median heuristic",
    )
    return float(bandwidth)


def _mmd_from_kernel(kernel: np.ndarray, first_index: np.ndarray, second_index: np.ndarray) -> float:
    """Unbiased MMD^2 from a pooled kernel matrix with unit diagonal and the rows of each set.

    Off-diagonal means are taken over index positions i != j, so a resampled set's repeated items
    count as distinct pairs (k = 1)."""
    n, m = first_index.size, second_index.size
    within_first = (kernel[np.ix_(first_index, first_index)].sum() - n) / (n * (n - 1))
    within_second = (kernel[np.ix_(second_index, second_index)].sum() - m) / (m * (m - 1))
    across = kernel[np.ix_(first_index, second_index)].mean()
    return float(within_first + within_second - 2.0 * across)


def _pooled_kernel(first: np.ndarray, second: np.ndarray, bandwidth: float) -> np.ndarray:
    pooled = np.concatenate([first, second])
    return np.exp(-_squared_distances(pooled, pooled) / (2.0 * bandwidth**2))


def mmd_squared(first, second, bandwidth: float | None = None) -> float:
    """Unbiased MMD^2 between feature vectors first: [n, d] and second: [m, d] (or 1-D [n], [m]),
    with the Gaussian kernel k(x, y) = exp(-|x - y|^2 / (2 sigma^2)), sigma = bandwidth, or the
    median heuristic (`median_bandwidth`) when None:

        MMD^2_u = sum_{i != j} k(x_i, x_j) / (n (n - 1)) + sum_{i != j} k(y_i, y_j) / (m (m - 1))
                  - 2 sum_{i, j} k(x_i, y_j) / (n m)

    (Gretton et al. 2012, eq. 3). It is unbiased, so it can be slightly negative, and of a set
    against itself it is (S - n^2) / (n^2 (n - 1)) * 2 <= 0 with S the full kernel sum: about
    -2 (1 - mean k) / (n - 1). Features on different scales should be standardised first. Memory is
    the pooled (n + m)^2 kernel matrix."""
    first, second = _features(first, "first"), _features(second, "second")
    _check_same_dimension(first, second)
    bandwidth = median_bandwidth(first, second) if bandwidth is None else _check_bandwidth(bandwidth)
    kernel = _pooled_kernel(first, second, bandwidth)
    n = first.shape[0]
    return _mmd_from_kernel(kernel, np.arange(n), np.arange(n, n + second.shape[0]))


# --- bootstrap CIs -------------------------------------------------------------------------------
def _check_bootstrap(num_resamples, confidence, method) -> None:
    require(
        isinstance(num_resamples, int | np.integer) and num_resamples >= 1,
        OWNER,
        "num_resamples",
        num_resamples,
        "an int >= 1",
    )
    require(0.0 < confidence < 1.0, OWNER, "confidence", confidence, "a value in (0, 1)")
    require(method in BOOTSTRAP_METHODS, OWNER, "method", method, f"one of {', '.join(BOOTSTRAP_METHODS)}")


def _interval(value: float, resampled, confidence: float, method: str) -> tuple[float, float, float]:
    """(value, low, high) from resampled statistics: their percentiles, or reflected about value."""
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(np.asarray(resampled, dtype=np.float64), [tail, 100.0 - tail])
    if method == "basic":
        low, high = 2.0 * value - high, 2.0 * value - low
    return value, float(low), float(high)


def bootstrap_distance(
    statistic: Callable[[np.ndarray, np.ndarray], float],
    first,
    second,
    num_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    method: str = "percentile",
) -> tuple[float, float, float]:
    """(statistic(first, second), low, high): bootstrap CI ("percentile" or "basic", see
    DistanceEstimate) with both sets resampled independently with replacement (rows of [n, d]
    arrays). Each set needs >= 2 items."""
    first, second = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    for field, values in (("first", first), ("second", second)):
        require(
            values.ndim >= 1 and values.shape[0] >= 2,
            OWNER,
            f"{field}.size",
            values.shape[0] if values.ndim else 0,
            "at least 2 samples for a CI",
        )
    _check_bootstrap(num_resamples, confidence, method)
    rng = np.random.default_rng(seed)
    value = float(statistic(first, second))
    resampled = np.array(
        [
            statistic(
                first[rng.integers(0, first.shape[0], first.shape[0])],
                second[rng.integers(0, second.shape[0], second.shape[0])],
            )
            for _ in range(num_resamples)
        ]
    )
    return _interval(value, resampled, confidence, method)


def _mmd_bootstrap(
    first, second, bandwidth, num_resamples, confidence, seed, method
) -> tuple[float, float, float]:
    """bootstrap_distance for MMD^2, reading each resample off one pooled kernel matrix."""
    n, m = first.shape[0], second.shape[0]
    kernel = _pooled_kernel(first, second, bandwidth)
    rng = np.random.default_rng(seed)
    value = _mmd_from_kernel(kernel, np.arange(n), np.arange(n, n + m))
    resampled = [
        _mmd_from_kernel(kernel, rng.integers(0, n, n), n + rng.integers(0, m, m))
        for _ in range(num_resamples)
    ]
    return _interval(value, resampled, confidence, method)


def distance_ci(
    name: str,
    first,
    second,
    num_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    bandwidth: float | None = None,
    method: str = "percentile",
) -> DistanceEstimate:
    """DistanceEstimate of `name` in DISTANCES ("w1", "ks": 1-D samples; "mmd2": feature vectors).
    MMD^2 fixes its bandwidth once on the full samples (median heuristic unless given), so every
    resample measures the same kernel distance."""
    require(name in DISTANCES, OWNER, "name", name, f"one of {', '.join(DISTANCES)}")
    _check_bootstrap(num_resamples, confidence, method)
    if name == "mmd2":
        first, second = _features(first, "first"), _features(second, "second")
        _check_same_dimension(first, second)
        bandwidth = (
            median_bandwidth(first, second, seed) if bandwidth is None else _check_bandwidth(bandwidth)
        )
        value, low, high = _mmd_bootstrap(first, second, bandwidth, num_resamples, confidence, seed, method)
        return DistanceEstimate(name, value, low, high, first.shape[0], second.shape[0], bandwidth, method)
    require(bandwidth is None, OWNER, "bandwidth", bandwidth, f"None (only mmd2 has a bandwidth, not {name})")
    first, second = _sample(first, "first", 2), _sample(second, "second", 2)
    statistic = wasserstein1 if name == "w1" else ks_statistic
    value, low, high = bootstrap_distance(statistic, first, second, num_resamples, confidence, seed, method)
    return DistanceEstimate(name, value, low, high, first.size, second.size, method=method)


def attribute_distances(
    first: dict,
    second: dict,
    num_resamples: int = 200,
    seed: int = 0,
    mmd_resamples: int = 0,
    method: str = "percentile",
) -> dict:
    """The sample-quality check on oracle attributes, each dict {attribute: [n] values}: W1 and KS
    per attribute with CIs, and MMD^2 over the joint attribute vectors, each attribute standardised
    by first's mean and std (median-heuristic bandwidth; a CI only when mmd_resamples > 0, else its
    low, high and method are None). Each attribute's KS is also the largest |oracle shift| over all
    thresholds, since shift(tau) = F_first(tau) - F_second(tau)."""
    require(
        set(second) == set(first),
        OWNER,
        "second.keys",
        sorted(second),
        f"the attributes of first, {sorted(first)}",
    )
    table = {}
    for name in first:
        table[name] = {
            kind: dataclasses.asdict(
                distance_ci(kind, first[name], second[name], num_resamples, seed=seed, method=method)
            )
            for kind in ("w1", "ks")
        }
    names = list(first)
    first_features = np.stack([np.asarray(first[k], np.float64) for k in names], axis=1)
    second_features = np.stack([np.asarray(second[k], np.float64) for k in names], axis=1)
    mean, std = first_features.mean(0), first_features.std(0)
    std = np.where(std > 0, std, 1.0)
    first_features, second_features = (first_features - mean) / std, (second_features - mean) / std
    if mmd_resamples > 0:
        estimate = dataclasses.asdict(
            distance_ci("mmd2", first_features, second_features, mmd_resamples, seed=seed, method=method)
        )
    else:
        bandwidth = median_bandwidth(first_features, second_features, seed)
        value = mmd_squared(first_features, second_features, bandwidth)
        estimate = dataclasses.asdict(
            DistanceEstimate(
                "mmd2", value, value, value, first_features.shape[0], second_features.shape[0], bandwidth
            )
        )
        estimate.update(low=None, high=None, method=None)
    table["mmd2_joint"] = {"attributes": names, **estimate}
    return table
