"""Bias shift P_gen(a) - P_train(a) of thresholded attributes with bootstrap CIs (arXiv 2506.09106),
thresholds at real-data quantiles, a BH-corrected table, and the oracle-vs-classifier decomposition."""

from __future__ import annotations

import dataclasses

import chex
import numpy as np

from jaxrl_suite.stats import benjamini_hochberg, bootstrap_proportion_difference, two_proportion_p_value
from jaxrl_suite.validation import require

DEFAULT_QUANTILES = tuple(range(5, 100, 5))  # percent: 5, 10, ..., 95


@dataclasses.dataclass(frozen=True)
class ShiftEstimate:
    """P of the attribute in each set, the shift P_gen - P_train, its bootstrap CI and p-value."""

    p_train: float
    p_gen: float
    shift: float
    low: float
    high: float
    p_value: float
    num_train: int
    num_gen: int

    @property
    def covers_zero(self) -> bool:
        return self.low <= 0.0 <= self.high


def _values(values, field: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    chex.assert_rank(values, 1)
    require(values.size >= 2, "shift", f"{field}.size", values.size, "at least 2 samples for a CI")
    require(bool(np.all(np.isfinite(values))), "shift", field, "non-finite", "finite attribute values")
    return values


def above(values, threshold: float) -> np.ndarray:
    """0/1 labels `values > threshold`, [n] bool."""
    return np.asarray(values, dtype=np.float64) > threshold


def proportion_above(values, threshold: float) -> float:
    """P(attribute > threshold) in one set."""
    return float(above(values, threshold).mean())


def quantile_thresholds(reference_values, quantiles=DEFAULT_QUANTILES) -> np.ndarray:
    """Decision thresholds at the given percentiles (default 5..95) of a real set's attribute."""
    reference_values = _values(reference_values, "reference_values")
    quantiles = np.asarray(quantiles, dtype=np.float64)
    require(bool(np.all((quantiles > 0) & (quantiles < 100))), "shift", "quantiles", quantiles.tolist(), "percentiles in (0, 100)")
    return np.percentile(reference_values, quantiles)


def check_threshold(threshold: float, reference_values, field: str = "threshold") -> None:
    """A threshold outside the reference attribute's [min, max) would label every item alike."""
    low, high = float(np.min(reference_values)), float(np.max(reference_values))
    require(low <= threshold < high, "shift", field, threshold, f"a value in [{low:.4g}, {high:.4g}) (the attribute's range)")


def shift_from_labels(train_labels, gen_labels, num_resamples: int = 2000, seed: int = 0, paired: bool = False) -> ShiftEstimate:
    """ShiftEstimate of 0/1 labels of the training set and the generated set (both resampled)."""
    train_labels = np.asarray(train_labels).astype(bool)
    gen_labels = np.asarray(gen_labels).astype(bool)
    for field, labels in (("train_labels", train_labels), ("gen_labels", gen_labels)):
        chex.assert_rank(labels, 1)
        require(labels.size >= 2, "shift", f"{field}.size", labels.size, "at least 2 samples for a CI")
    shift, low, high = bootstrap_proportion_difference(gen_labels, train_labels, num_resamples, seed=seed, paired=paired)
    return ShiftEstimate(
        p_train=float(train_labels.mean()),
        p_gen=float(gen_labels.mean()),
        shift=shift,
        low=low,
        high=high,
        p_value=two_proportion_p_value(gen_labels, train_labels),
        num_train=int(train_labels.size),
        num_gen=int(gen_labels.size),
    )


def oracle_shift(train_values, gen_values, threshold: float, num_resamples: int = 2000, seed: int = 0) -> ShiftEstimate:
    """Shift of P(attribute > threshold) labelled by the oracle measurement itself."""
    train_values, gen_values = _values(train_values, "train_values"), _values(gen_values, "gen_values")
    check_threshold(threshold, train_values)
    return shift_from_labels(above(train_values, threshold), above(gen_values, threshold), num_resamples, seed)


def shift_table(
    train_values: dict, gen_values: dict, reference_values: dict, quantiles=DEFAULT_QUANTILES,
    num_resamples: int = 2000, seed: int = 0, alpha: float = 0.05,
) -> list[dict]:
    """One row per attribute x threshold (at reference quantiles): the oracle ShiftEstimate fields
    plus the BH-adjusted p-value and whether it is significant across the whole table."""
    rows = []
    for name in train_values:
        for quantile, threshold in zip(quantiles, quantile_thresholds(reference_values[name], quantiles), strict=True):
            estimate = oracle_shift(train_values[name], gen_values[name], float(threshold), num_resamples, seed)
            rows.append({"attribute": name, "quantile": float(quantile), "threshold": float(threshold), **dataclasses.asdict(estimate)})
    rejected, adjusted = benjamini_hochberg([row["p_value"] for row in rows], alpha)
    for row, reject, p_adjusted in zip(rows, rejected, adjusted, strict=True):
        row["p_adjusted"], row["significant"] = float(p_adjusted), bool(reject)
    return rows


@dataclasses.dataclass(frozen=True)
class ShiftDecomposition:
    """measured = true + classifier_part: the shift a classifier reports, the oracle's shift on the
    same sets, and what the classifier adds (its error rates differing between the two sets)."""

    measured: float
    true: float
    classifier_part: float


def decompose(oracle_train, oracle_gen, classifier_train, classifier_gen) -> ShiftDecomposition:
    """Decomposition of a classifier's shift, each argument the [n] 0/1 labels of one set."""
    labels = [np.asarray(x).astype(bool) for x in (oracle_train, oracle_gen, classifier_train, classifier_gen)]
    chex.assert_equal_shape([labels[0], labels[2]])
    chex.assert_equal_shape([labels[1], labels[3]])
    true = float(labels[1].mean() - labels[0].mean())
    measured = float(labels[3].mean() - labels[2].mean())
    return ShiftDecomposition(measured=measured, true=true, classifier_part=measured - true)
