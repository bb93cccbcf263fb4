"""Bias-shift quality check and classifier sensitivity: W1, KS and MMD^2 against hand values and
scipy, their bootstrap CIs, the Gaussian KDE and its bandwidth rules, the threshold / calibration
sensitivity of the shift against closed forms, and one-line bad-input messages."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from jaxrl_suite.bias_shift import distances, sensitivity, shift
from tests.conftest import assert_one_line_error


# --- W1 and KS: hand values and scipy ------------------------------------------------------------
def test_wasserstein1_hand_values():
    # Equal sizes: the sorted values pair up, |0 - 1| and |1 - 2| -> mean 1.
    assert distances.wasserstein1([0.0, 1.0], [1.0, 2.0]) == pytest.approx(1.0)
    # Unequal sizes: Q1 = 0, 1, 2 on thirds of (0, 1], Q2 = 0, 5 on halves. Merged intervals:
    # (0, 1/3] |0-0| = 0; (1/3, 1/2] |1-0| x 1/6; (1/2, 2/3] |1-5| x 1/6; (2/3, 1] |2-5| x 1/3 -> 11/6.
    assert distances.wasserstein1([2.0, 0.0, 1.0], [5.0, 0.0]) == pytest.approx(11 / 6)
    # A shift by c moves every quantile by c.
    assert distances.wasserstein1([0.0, 3.0, 7.0], [2.5, 5.5, 9.5]) == pytest.approx(2.5)
    assert distances.wasserstein1([1.0, 2.0], [1.0, 2.0]) == 0.0


def test_ks_statistic_hand_values():
    assert distances.ks_statistic([0.0, 1.0, 2.0], [3.0, 4.0, 5.0]) == 1.0
    # F1 - F2 at 0, 1, 2, 3: 1/3, 1/3, 1/3, 0 -> 1/3.
    assert distances.ks_statistic([0.0, 1.0, 2.0], [1.0, 2.0, 3.0]) == pytest.approx(1 / 3)
    assert distances.ks_statistic([1.0, 1.0, 2.0], [1.0, 2.0, 1.0]) == 0.0


@pytest.mark.parametrize("sizes", [(50, 50), (37, 101), (1, 7), (400, 13)])
def test_w1_and_ks_match_scipy(sizes):
    rng = np.random.default_rng(sum(sizes))
    first = rng.normal(0.0, 1.0, sizes[0])
    second = np.round(rng.gamma(2.0, 0.7, sizes[1]), 1)  # rounded: ties within and across sets
    first[: sizes[0] // 3] = np.round(first[: sizes[0] // 3], 1)
    assert distances.wasserstein1(first, second) == pytest.approx(
        scipy_stats.wasserstein_distance(first, second), rel=1e-12, abs=1e-12
    )
    assert distances.ks_statistic(first, second) == pytest.approx(
        scipy_stats.ks_2samp(first, second).statistic, abs=1e-12
    )


# --- MMD^2 ---------------------------------------------------------------------------------------
def test_mmd_squared_hand_values():
    # sigma = 1, k(x, y) = exp(-(x - y)^2 / 2). X = {0, 1}, Y = {3, 4}:
    #   within X: k(0, 1) = e^-0.5 = 0.606531; within Y: k(3, 4) = e^-0.5;
    #   across: (k(0,3) + k(0,4) + k(1,3) + k(1,4)) / 4 = (e^-4.5 + e^-8 + e^-2 + e^-4.5) / 4 = 0.039472;
    #   MMD^2 = 2 x 0.606531 - 2 x 0.039472 = 1.134117.
    assert distances.mmd_squared([0.0, 1.0], [3.0, 4.0], bandwidth=1.0) == pytest.approx(1.134117, abs=1e-6)
    # X = {0, 1}, Y = {0, 2}: e^-0.5 + e^-2 - 2 (1 + e^-2 + 2 e^-0.5) / 4 = -0.432332 (unbiased: < 0 is allowed).
    assert distances.mmd_squared([0.0, 1.0], [0.0, 2.0], bandwidth=1.0) == pytest.approx(-0.432332, abs=1e-6)
    # In 2-D with sigma = 2: X = {(0,0), (0,2)}, Y = {(2,0), (2,2)}: within e^-0.5 each; across pairs at
    # squared distances 4, 8, 8, 4 -> (2 e^-0.5 + 2 e^-1) / 4; MMD^2 = 2 e^-0.5 - (e^-0.5 + e^-1) = 0.238651.
    square = distances.mmd_squared([[0.0, 0.0], [0.0, 2.0]], [[2.0, 0.0], [2.0, 2.0]], bandwidth=2.0)
    assert square == pytest.approx(math.exp(-0.5) - math.exp(-1.0), abs=1e-12)


def test_mmd_squared_of_identical_samples_is_about_zero():
    # A set against itself: 2 (S - n^2) / (n^2 (n - 1)) in [-2 / (n - 1), 0] with S the kernel sum.
    features = np.random.default_rng(0).normal(size=(200, 3))
    value = distances.mmd_squared(features, features)
    assert -2.0 / 199 <= value <= 0.0
    bandwidth = distances.median_bandwidth(features, features)
    kernel_sum = np.exp(-distances._squared_distances(features, features) / (2 * bandwidth**2)).sum()
    assert value == pytest.approx(2 * (kernel_sum - 200**2) / (200**2 * 199), abs=1e-12)


def test_mmd_median_heuristic_and_separation():
    # Median of the pooled pairwise distances of {0, 1, 3}: |0-1|, |0-3|, |1-3| = 1, 3, 2 -> 2.
    assert distances.median_bandwidth([0.0, 1.0], [3.0]) == 2.0
    rng = np.random.default_rng(1)
    same = distances.mmd_squared(rng.normal(size=(300, 2)), rng.normal(size=(300, 2)))
    apart = distances.mmd_squared(rng.normal(size=(300, 2)), rng.normal(size=(300, 2)) + [1.0, 0.0])
    assert abs(same) < 0.02 < 0.1 < apart


# --- bootstrap CIs -------------------------------------------------------------------------------
def test_distance_ci_brackets_the_estimate_and_is_seeded():
    rng = np.random.default_rng(2)
    first, second = rng.normal(0.0, 1.0, 400), rng.normal(0.5, 1.0, 300)
    for name in ("w1", "ks"):
        estimate = distances.distance_ci(name, first, second, num_resamples=300, seed=3)
        assert estimate.low <= estimate.value <= estimate.high and estimate.high > estimate.low
        assert estimate == distances.distance_ci(name, first, second, num_resamples=300, seed=3)
        assert (estimate.num_first, estimate.num_second) == (400, 300)
    # W1 of N(0,1) vs N(0.5,1) is exactly 0.5; the CI (sd ~ 0.08 here) covers it.
    w1 = distances.distance_ci("w1", first, second, num_resamples=300, seed=3)
    assert w1.low <= 0.5 <= w1.high
    mmd = distances.distance_ci("mmd2", first, second, num_resamples=200, seed=3)
    assert mmd.value == pytest.approx(distances.mmd_squared(first, second, mmd.bandwidth))
    assert mmd.low <= mmd.value <= mmd.high and mmd.bandwidth == distances.median_bandwidth(first, second, 3)


def test_basic_interval_reflects_the_percentile_one():
    # Two draws of one distribution: resampled W1 is biased upward, so the percentile CI may sit
    # above the estimate; the basic CI is (2 value - q_high, 2 value - q_low) from the same resamples.
    rng = np.random.default_rng(7)
    first, second = rng.normal(size=250), rng.normal(size=247)
    percentile = distances.distance_ci("w1", first, second, num_resamples=200, seed=1)
    basic = distances.distance_ci("w1", first, second, num_resamples=200, seed=1, method="basic")
    assert basic.value == percentile.value and basic.method == "basic"
    assert basic.low == pytest.approx(2 * basic.value - percentile.high)
    assert basic.high == pytest.approx(2 * basic.value - percentile.low)


def test_ks_is_the_largest_oracle_shift_over_thresholds():
    # shift(tau) = P_gen(> tau) - P_train(> tau) = F_train(tau) - F_gen(tau); its sup over tau is KS.
    rng = np.random.default_rng(8)
    train, generated = rng.normal(0.0, 1.0, 300), rng.normal(0.3, 1.2, 200)
    largest = max(
        abs(shift.proportion_above(generated, tau) - shift.proportion_above(train, tau))
        for tau in np.concatenate([train, generated])
    )
    assert distances.ks_statistic(train, generated) == pytest.approx(largest, abs=1e-12)


def test_bootstrap_of_a_set_against_itself_gives_w1_zero():
    values = np.arange(10.0)
    estimate = distances.distance_ci("w1", values, values, num_resamples=50)
    assert estimate.value == 0.0 and estimate.low >= 0.0


def test_attribute_distances_table():
    rng = np.random.default_rng(4)
    first = {"size": rng.normal(4.0, 0.5, 300), "thickness": rng.normal(1.5, 0.3, 300)}
    second = {"size": rng.normal(4.5, 0.5, 200), "thickness": rng.normal(1.5, 0.3, 200)}
    table = distances.attribute_distances(first, second, num_resamples=50)
    assert table["size"]["w1"]["value"] == pytest.approx(
        distances.wasserstein1(first["size"], second["size"])
    )
    assert table["size"]["ks"]["value"] > table["thickness"]["ks"]["value"]
    assert table["mmd2_joint"]["attributes"] == ["size", "thickness"] and table["mmd2_joint"]["value"] > 0.05
    assert table["mmd2_joint"]["low"] is None  # no MMD CI unless mmd_resamples > 0


# --- KDE and bandwidth rules ---------------------------------------------------------------------
def test_kde_hand_values():
    # Values {0, 2}, h = 1: f(1) = (phi(1) + phi(1)) / 2 = 0.241971; f(0) = (phi(0) + phi(2)) / 2 = 0.226467.
    np.testing.assert_allclose(
        sensitivity.kde_density([0.0, 2.0], [1.0, 0.0], 1.0), [0.241971, 0.226467], atol=1e-6
    )


def test_bandwidth_rules_hand_values():
    # {0, 1, 2, 3, 4}: sd (ddof 1) = sqrt(2.5) = 1.581139, n^-1/5 = 0.724780, IQR = 3 - 1 = 2.
    # Scott: 1.581139 x 0.724780 = 1.145977. Silverman: 0.9 x min(1.581139, 2 / 1.34 = 1.492537) x 0.724780 = 0.973585.
    values = np.arange(5.0)
    assert sensitivity.kde_bandwidth(values, "scott") == pytest.approx(1.145977, abs=1e-6)
    assert sensitivity.kde_bandwidth(values, "silverman") == pytest.approx(0.973585, abs=1e-6)
    assert sensitivity.kde_bandwidth(values, 0.3) == 0.3


def test_kde_matches_scipy_and_sklearn():
    from sklearn.neighbors import KernelDensity

    values = np.random.default_rng(5).gamma(2.0, 1.0, 500)
    points = np.linspace(0.1, 8.0, 9)
    ours = sensitivity.kde_density(values, points, "scott")
    np.testing.assert_allclose(ours, scipy_stats.gaussian_kde(values)(points), rtol=1e-10)
    h = sensitivity.kde_bandwidth(values, "silverman")
    fitted = KernelDensity(kernel="gaussian", bandwidth=h).fit(values[:, None])
    np.testing.assert_allclose(
        sensitivity.kde_density(values, points, "silverman"),
        np.exp(fitted.score_samples(points[:, None])),
        rtol=1e-8,
    )


# --- threshold and calibration sensitivity -------------------------------------------------------
@pytest.fixture(scope="module")
def gaussian_scores():
    """Reference N(0, 1) and generated N(0.5, 1), 50k each (seed 0)."""
    rng = np.random.default_rng(0)
    return rng.normal(0.0, 1.0, 50_000), rng.normal(0.5, 1.0, 50_000)


def test_threshold_sensitivity_matches_closed_form(gaussian_scores):
    # s(tau) = Phi(d - tau) - Phi(-tau), ds/dtau = phi(tau) - phi(tau - d). Hand values, d = 0.5:
    # tau = 1: phi(1) - phi(0.5) = 0.241971 - 0.352065 = -0.110094; tau = 0.25 (the crossing): 0;
    # tau = -1: phi(1) - phi(1.5) = 0.241971 - 0.129518 = 0.112453.
    # The KDE (h = 50000^-1/5 = 0.115) has sd ~ 0.004 per density here and bias ~ 0.002; 0.02 is > 3.5 sd.
    train, generated = gaussian_scores
    rows = sensitivity.threshold_sensitivity(train, generated, [1.0, 0.25, -1.0], delta=0.1)
    for row, slope in zip(rows, (-0.110094, 0.0, 0.112453), strict=True):
        assert row.shift_slope == pytest.approx(slope, abs=0.02)
        assert row.finite_difference_slope == pytest.approx(slope, abs=0.03)
        assert row.shift == pytest.approx(
            scipy_stats.norm.cdf(0.5 - row.threshold) - scipy_stats.norm.cdf(-row.threshold), abs=0.01
        )
    # boundary mass +-0.1 around tau = 1: 2 x 0.1 x phi(1) ~ 0.0484 (exact Phi(1.1) - Phi(0.9) = 0.0484).
    assert rows[0].boundary_mass == pytest.approx(0.0484, abs=0.004)
    # Standardised density at 0.25 ~ phi(0.25) = 0.3867 (sd of N(0, 1) is 1).
    assert rows[1].standardised_density == pytest.approx(0.3867, abs=0.01)


def test_recalibrated_threshold_hand_values():
    assert (
        sensitivity.recalibrated_threshold(0.5, scale=3.0) == 0.0
    )  # a temperature keeps the 0.5 cut at logit 0
    assert sensitivity.recalibrated_threshold(0.5, offset=1.0) == -1.0
    # cut 0.8: logit = log 4 = 1.386294; with scale 2 and offset 0.5: (1.386294 - 0.5) / 2 = 0.443147.
    assert sensitivity.recalibrated_threshold(0.8, scale=2.0, offset=0.5) == pytest.approx(0.443147, abs=1e-6)


def test_calibration_sensitivity_is_threshold_sensitivity_on_the_logit(gaussian_scores):
    train, generated = gaussian_scores
    rows = sensitivity.calibration_sensitivity(train[:2000], generated[:2000], offsets=[0.0, -1.0], delta=0.2)
    direct = sensitivity.threshold_sensitivity(train[:2000], generated[:2000], [0.0, 1.0], delta=0.2)
    assert [row["threshold"] for row in rows] == [0.0, 1.0]
    assert [row["shift"] for row in rows] == [row.shift for row in direct]


def test_classifier_part_follows_density_at_threshold():
    # Claim 2's mechanism, in closed form: a classifier whose boundary sits delta = 0.1 higher on
    # generated images than on real ones adds -(F-mass in [tau, tau + delta]) ~ -f(tau) delta to the
    # shift. Spectrum attribute N(0, 1) at tau = 0: Phi(0.1) - 0.5 = 0.039828 (~ phi(0) x 0.1 = 0.039894).
    # Binary-like attribute, modes +-3 with sd 0.3, at tau = 0 (in the gap): density ~ 1e-22, part 0.
    rng = np.random.default_rng(6)
    spectrum = rng.normal(0.0, 1.0, (2, 40_000))
    binary = rng.choice([-3.0, 3.0], (2, 40_000)) + rng.normal(0.0, 0.3, (2, 40_000))
    rows, reference = [], {}
    for name, (train, generated) in (("spectrum", spectrum), ("binary", binary)):
        reference[name] = train
        parts = shift.decompose(train > 0.0, generated > 0.0, train > 0.0, generated > 0.1)
        assert parts.classifier_part == pytest.approx(-0.039828 if name == "spectrum" else 0.0, abs=0.006)
        for kind, measured in (("oracle", parts.true), ("displaced", parts.measured)):
            rows.append(
                {
                    "attribute": name,
                    "threshold": 0.0,
                    "classifier": kind,
                    "measured": measured,
                    "classifier_part": measured - parts.true,
                }
            )
    table = {
        row["attribute"]: row for row in sensitivity.sensitivity_vs_density(rows, reference, "silverman")
    }
    # The KDE's mean at the mode is 1 / sqrt(2 pi (1 + h^2)) = 0.3966 (h = 0.108), its sd ~ 0.005 here.
    assert table["spectrum"]["standardised_density"] == pytest.approx(0.3966, abs=0.02)
    assert table["binary"]["standardised_density"] < 1e-3
    assert table["spectrum"]["classifier_spread"] > 0.03 > 0.006 > table["binary"]["classifier_spread"]
    assert table["spectrum"]["classifiers"] == ["oracle", "displaced"]


def test_rank_correlation():
    rows = [
        {"standardised_density": d, "classifier_spread": s}
        for d, s in ((0.1, 0.01), (0.2, 0.03), (0.3, 0.02), (0.4, 0.05))
    ]
    rho, p_value = sensitivity.rank_correlation(rows)
    assert rho == pytest.approx(0.8) and 0.0 < p_value < 1.0  # ranks 1,2,3,4 vs 1,3,2,4: 1 - 6 x 2 / 60
    assert all(math.isnan(v) for v in sensitivity.rank_correlation(rows[:2]))


# --- bad input: one line naming the argument, the value and what is valid ------------------------
@pytest.mark.parametrize(
    "call, pieces",
    [
        (lambda: distances.wasserstein1([], [1.0]), ["distances.first.size=0", "at least 1"]),
        (lambda: distances.ks_statistic([1.0], [[1.0]]), ["distances.second.shape=(1, 1)", "1-D sample"]),
        (lambda: distances.wasserstein1([1.0, np.nan], [1.0]), ["distances.first='non-finite'", "finite"]),
        (lambda: distances.mmd_squared([1.0], [1.0, 2.0]), ["distances.first.size=1", "at least 2"]),
        (
            lambda: distances.mmd_squared(np.zeros((3, 2)), np.zeros((3, 3))),
            ["distances.second.shape=(3, 3)", "[m, 2]"],
        ),
        (
            lambda: distances.mmd_squared([0.0, 1.0], [2.0, 3.0], bandwidth=0.0),
            ["distances.bandwidth=0.0", "positive"],
        ),
        (lambda: distances.median_bandwidth([1.0, 1.0], [1.0]), ["distances.bandwidth=", "coincide"]),
        (
            lambda: distances.distance_ci("emd", [0.0, 1.0], [0.0, 1.0]),
            ["distances.name='emd'", "w1, ks, mmd2"],
        ),
        (lambda: distances.distance_ci("w1", [0.0], [0.0, 1.0]), ["distances.first.size=1", "at least 2"]),
        (
            lambda: distances.distance_ci("ks", [0.0, 1.0], [0.0, 1.0], num_resamples=0),
            ["distances.num_resamples=0", ">= 1"],
        ),
        (
            lambda: distances.distance_ci("ks", [0.0, 1.0], [0.0, 1.0], confidence=95),
            ["distances.confidence=95", "(0, 1)"],
        ),
        (
            lambda: distances.distance_ci("w1", [0.0, 1.0], [0.0, 1.0], bandwidth=1.0),
            ["distances.bandwidth=1.0", "only mmd2"],
        ),
        (
            lambda: sensitivity.kde_bandwidth([0.0, 1.0], "scot"),
            ["sensitivity.bandwidth='scot'", "scott, silverman"],
        ),
        (
            lambda: sensitivity.kde_bandwidth([0.0, 1.0], -1.0),
            ["sensitivity.bandwidth=-1.0", "positive float"],
        ),
        (lambda: sensitivity.kde_bandwidth([2.0, 2.0]), ["sensitivity.values='constant'", "spread"]),
        (lambda: sensitivity.kde_density([1.0], [0.0]), ["sensitivity.values.size=1", "at least 2"]),
        (
            lambda: sensitivity.threshold_sensitivity([0.0, 1.0], [0.0, 1.0], [0.5, 3.0]),
            ["sensitivity.thresholds[1]=3.0", "[0, 1)"],
        ),
        (
            lambda: sensitivity.threshold_sensitivity([0.0, 1.0], [0.0, 1.0], [0.5], delta=0.0),
            ["sensitivity.delta=0.0", "positive"],
        ),
        (lambda: sensitivity.recalibrated_threshold(1.0), ["sensitivity.cut=1.0", "(0, 1)"]),
        (lambda: sensitivity.recalibrated_threshold(0.5, scale=-1.0), ["sensitivity.scale=-1.0", "positive"]),
        (
            lambda: sensitivity.sensitivity_vs_density([], {}),
            ["sensitivity.classifier_rows='[]'", "at least one row"],
        ),
        (
            lambda: sensitivity.sensitivity_vs_density(
                [
                    {
                        "attribute": "size",
                        "threshold": 1.0,
                        "classifier": "knn",
                        "measured": 0.0,
                        "classifier_part": 0.0,
                    }
                ],
                {},
            ),
            ["sensitivity.reference_values=[]", "missing ['size']"],
        ),
    ],
)
def test_bad_input_names_argument_value_and_valid(call, pieces):
    assert_one_line_error(call, pieces)
