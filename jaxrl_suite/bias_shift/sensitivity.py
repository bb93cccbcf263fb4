"""Classifier sensitivity of the bias shift (arXiv 2506.09106, claim 2; issue 27): how the measured
shift moves with the decision threshold or calibration, against a Gaussian KDE of the density there.

Why the density: with labels `score > tau`, the shift is s(tau) = P_gen(score > tau) - P_train(score
> tau) = F_train(tau) - F_gen(tau), so ds/dtau = f_train(tau) - f_gen(tau), and moving a boundary by
delta relabels a fraction ~ f(tau) |delta| of each set. A classifier whose boundary sits delta
higher on generated images than on real ones adds ~ -f_gen(tau) delta to the measured shift, and
two classifiers whose boundaries differ by delta on both sets report shifts differing by
~ (f_train(tau) - f_gen(tau)) delta: both are large where the boundary lies in a high-density region
(an attribute on a spectrum) and vanish in a gap (a binary-like attribute).

The KDE is a Gaussian kernel sum, f(x) = sum_i phi((x - x_i) / h) / (n h), computed exactly in numpy
(scikit-learn's KernelDensity and scipy's gaussian_kde give the same values; the tests compare).
Bandwidth rules (1-D, n values, sample sd sigma with ddof=1):
  - "scott" (default): h = sigma n^(-1/5) (Scott 1992; scipy.stats.gaussian_kde's default);
  - "silverman": h = 0.9 min(sigma, IQR / 1.34) n^(-1/5) (Silverman 1986, eq. 3.31); the IQR term
    guards against heavy tails. Neither rule adapts to two well-separated modes: both are set by
    the spread between them and over-smooth each mode, so a KDE raises the density inside a gap
    (the tests use a bimodal sample whose gap density stays < 1e-3 all the same);
  - or a positive float, used as h.
"""

from __future__ import annotations

import dataclasses
import math

import chex
import numpy as np
from scipy import stats as scipy_stats

from jaxrl_suite.bias_shift.distances import finite_sample
from jaxrl_suite.validation import require

OWNER = "sensitivity"
BANDWIDTH_RULES = ("scott", "silverman")


def _scores(values, field: str, min_size: int = 2) -> np.ndarray:
    return finite_sample(values, OWNER, field, min_size)


def kde_bandwidth(values, bandwidth: str | float = "scott") -> float:
    """h for a Gaussian KDE of values [n]: a rule in BANDWIDTH_RULES (see the module docstring) or
    a positive float returned as is."""
    if not isinstance(bandwidth, str):
        ok = (
            isinstance(bandwidth, int | float)
            and not isinstance(bandwidth, bool)
            and math.isfinite(bandwidth)
        )
        require(
            ok and bandwidth > 0,
            OWNER,
            "bandwidth",
            bandwidth,
            f"one of {', '.join(BANDWIDTH_RULES)} or a positive float",
        )
        return float(bandwidth)
    require(
        bandwidth in BANDWIDTH_RULES,
        OWNER,
        "bandwidth",
        bandwidth,
        f"one of {', '.join(BANDWIDTH_RULES)} or a positive float",
    )
    values = _scores(values, "values")
    sigma = float(values.std(ddof=1))
    if bandwidth == "silverman":
        q75, q25 = np.percentile(values, [75, 25])
        spread = min(sigma, (q75 - q25) / 1.34) if q75 > q25 else sigma
        h = 0.9 * spread * values.size ** (-0.2)
    else:
        h = sigma * values.size ** (-0.2)
    require(h > 0, OWNER, "values", "constant", "a sample with some spread (its bandwidth would be 0)")
    return float(h)


def kde_density(values, points, bandwidth: str | float = "scott", chunk: int = 256) -> np.ndarray:
    """Gaussian KDE of values [n] evaluated at points [p] -> [p] densities (chunks of `chunk`
    points keep memory at chunk x n)."""
    values = _scores(values, "values")
    points = np.atleast_1d(np.asarray(points, dtype=np.float64))
    chex.assert_rank(points, 1)
    h = kde_bandwidth(values, bandwidth)
    density = np.empty(points.size)
    for start in range(0, points.size, chunk):
        u = (points[start : start + chunk, None] - values[None, :]) / h
        density[start : start + chunk] = np.exp(-0.5 * u**2).sum(1) / (
            values.size * h * math.sqrt(2 * math.pi)
        )
    return density


@dataclasses.dataclass(frozen=True)
class ThresholdSensitivity:
    """The shift at one threshold tau and how fast it moves with tau.

    shift: P_gen(score > tau) - P_train(score > tau), empirical.
    density_train, density_gen: KDE densities at tau; density_reference the real set's (train
        unless another reference was given) and standardised_density = density_reference x its sd,
        which is scale-free (the standard normal's peak is 0.399), so attributes can be compared.
    shift_slope: ds/dtau by KDE, density_train - density_gen.
    finite_difference_slope: (s(tau + delta) - s(tau - delta)) / (2 delta) from the samples alone.
    boundary_mass: fraction of the reference within |score - tau| <= delta, ~ 2 delta f(tau): the
        share of items whose label depends on where within +-delta the boundary is put."""

    threshold: float
    shift: float
    density_train: float
    density_gen: float
    density_reference: float
    standardised_density: float
    shift_slope: float
    finite_difference_slope: float
    boundary_mass: float
    delta: float
    bandwidth: float


def _shift_at(train: np.ndarray, gen: np.ndarray, tau) -> np.ndarray:
    tau = np.asarray(tau, dtype=np.float64)
    return (gen[:, None] > tau).mean(0) - (train[:, None] > tau).mean(0)


def threshold_sensitivity(
    train_scores,
    gen_scores,
    thresholds,
    delta: float | None = None,
    bandwidth: str | float = "scott",
    reference_scores=None,
) -> list[ThresholdSensitivity]:
    """One ThresholdSensitivity per threshold for scores [n] (train) and [m] (generated): oracle
    attribute values or classifier logits. delta defaults to the reference KDE's bandwidth h; each
    set's own KDE uses `bandwidth`'s rule on that set. Thresholds must lie inside the reference range."""
    train, gen = _scores(train_scores, "train_scores"), _scores(gen_scores, "gen_scores")
    reference = train if reference_scores is None else _scores(reference_scores, "reference_scores")
    thresholds = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
    chex.assert_rank(thresholds, 1)
    low, high = float(reference.min()), float(reference.max())
    for index, tau in enumerate(thresholds):
        require(
            low <= tau < high,
            OWNER,
            f"thresholds[{index}]",
            float(tau),
            f"a value in [{low:.4g}, {high:.4g}) (the reference range)",
        )
    h_reference = kde_bandwidth(reference, bandwidth)
    delta = h_reference if delta is None else delta
    require(
        isinstance(delta, int | float) and math.isfinite(delta) and delta > 0,
        OWNER,
        "delta",
        delta,
        "a positive float",
    )
    density_train = kde_density(train, thresholds, bandwidth)
    density_gen = kde_density(gen, thresholds, bandwidth)
    density_reference = (
        density_train if reference is train else kde_density(reference, thresholds, h_reference)
    )
    sd = float(reference.std(ddof=1))
    shifts = _shift_at(train, gen, thresholds)
    slopes = (_shift_at(train, gen, thresholds + delta) - _shift_at(train, gen, thresholds - delta)) / (
        2 * delta
    )
    band = (np.abs(reference[:, None] - thresholds[None, :]) <= delta).mean(0)
    return [
        ThresholdSensitivity(
            threshold=float(tau),
            shift=float(shifts[i]),
            density_train=float(density_train[i]),
            density_gen=float(density_gen[i]),
            density_reference=float(density_reference[i]),
            standardised_density=float(density_reference[i] * sd),
            shift_slope=float(density_train[i] - density_gen[i]),
            finite_difference_slope=float(slopes[i]),
            boundary_mass=float(band[i]),
            delta=float(delta),
            bandwidth=h_reference,
        )
        for i, tau in enumerate(thresholds)
    ]


def recalibrated_threshold(cut: float = 0.5, scale: float = 1.0, offset: float = 0.0) -> float:
    """The logit threshold that a recalibration p = sigmoid(scale x logit + offset) with the decision
    p > cut amounts to: (log(cut / (1 - cut)) - offset) / scale. A temperature (scale) alone leaves
    the default cut 0.5 where it is; an offset or another cut moves the boundary, which is why
    calibration sensitivity is threshold sensitivity on the logit."""
    require(0.0 < cut < 1.0, OWNER, "cut", cut, "a probability in (0, 1)")
    require(
        math.isfinite(scale) and scale > 0,
        OWNER,
        "scale",
        scale,
        "a positive float (a negative one flips the classes)",
    )
    require(math.isfinite(offset), OWNER, "offset", offset, "a finite float")
    return (math.log(cut / (1.0 - cut)) - offset) / scale


def calibration_sensitivity(
    train_logits,
    gen_logits,
    offsets,
    scale: float = 1.0,
    cut: float = 0.5,
    delta: float | None = None,
    bandwidth: str | float = "scott",
) -> list[dict]:
    """threshold_sensitivity of classifier logits [n], [m] at the boundaries that recalibrations
    sigmoid(scale x logit + offset) > cut put them at, one row per offset (with `offset` and `scale`)."""
    thresholds = [recalibrated_threshold(cut, scale, float(offset)) for offset in offsets]
    rows = threshold_sensitivity(train_logits, gen_logits, thresholds, delta, bandwidth)
    return [
        {"offset": float(offset), "scale": float(scale), "cut": float(cut), **dataclasses.asdict(row)}
        for offset, row in zip(offsets, rows, strict=True)
    ]


def sensitivity_vs_density(
    classifier_rows: list[dict], reference_values: dict, bandwidth: str | float = "scott"
) -> list[dict]:
    """Claim 2's table: per attribute x threshold, how much the measured shift depends on the
    classifier, next to the real data's density at the threshold.

    classifier_rows: dicts with "attribute", "threshold", "classifier", "measured" (the shift that
    classifier reports) and "classifier_part" (measured minus the oracle's shift), as
    experiments/bias_shift.py writes them; reference_values: {attribute: [n] oracle values of a
    real set (B)}. Each output row has the density and standardised density (density x sd) at the
    threshold, classifier_spread (max - min measured over classifiers) and max_abs_classifier_part."""
    groups: dict[tuple[str, float], list[dict]] = {}
    for row in classifier_rows:
        groups.setdefault((row["attribute"], float(row["threshold"])), []).append(row)
    require(len(groups) > 0, OWNER, "classifier_rows", "[]", "at least one row")
    missing = sorted({name for name, _ in groups} - set(reference_values))
    require(
        not missing,
        OWNER,
        "reference_values",
        sorted(reference_values),
        f"values for every attribute in the rows (missing {missing})",
    )
    table = []
    for (name, threshold), rows in groups.items():
        reference = _scores(reference_values[name], f"reference_values[{name!r}]")
        density = float(kde_density(reference, [threshold], bandwidth)[0])
        measured = [row["measured"] for row in rows]
        table.append(
            {
                "attribute": name,
                "quantile": rows[0].get("quantile"),
                "threshold": threshold,
                "density": density,
                "standardised_density": density * float(reference.std(ddof=1)),
                "classifier_spread": float(max(measured) - min(measured)),
                "max_abs_classifier_part": float(max(abs(row["classifier_part"]) for row in rows)),
                "classifiers": [row["classifier"] for row in rows],
            }
        )
    return table


def rank_correlation(
    rows: list[dict], x: str = "standardised_density", y: str = "classifier_spread"
) -> tuple[float, float]:
    """(Spearman rho, two-sided p-value) of rows[x] against rows[y]; (nan, nan) below 3 rows or when
    either column is constant."""
    first = np.array([row[x] for row in rows], dtype=np.float64)
    second = np.array([row[y] for row in rows], dtype=np.float64)
    if first.size < 3 or np.ptp(first) == 0 or np.ptp(second) == 0:
        return math.nan, math.nan
    result = scipy_stats.spearmanr(first, second)
    return float(result.statistic), float(result.pvalue)
