"""FLAM metrics (issue 26): hand-computed toy cases, scikit-learn cross-checks for AUROC and F1, a
loop-by-loop PSDS reference, and sed_scores_eval's PSDS where that optional package is installed."""

import itertools

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from jaxrl_suite.audio import metrics

# ---------------------------------------------------------------- AUROC


def test_auroc_hand_cases_and_ties():
    assert metrics.binary_auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    # pos {0.5, 0.9} vs neg {0.2, 0.5}: pairs 1, 1/2 (tie), 1, 1 -> 3.5 / 4
    assert metrics.binary_auroc([0.2, 0.5, 0.5, 0.9], [0, 0, 1, 1]) == 0.875
    assert metrics.binary_auroc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]) == 0.5
    assert metrics.binary_auroc([0.9, 0.8, 0.1], [0, 0, 1]) == 0.0


def test_frame_auroc_macro_leaves_out_texts_without_both_labels():
    # text 0: the 0.75 case; text 1: its positive scores highest -> 1.0; text 2: no positives -> left out
    scores = np.array([[[0.1, 0.4, 0.35, 0.8], [0.9, 0.2, 0.3, 0.1], [0.5, 0.5, 0.5, 0.5]]])
    labels = np.array([[[0, 0, 1, 1], [1, 0, 0, 0], [0, 0, 0, 0]]])
    per_text = metrics.auroc_per_text(scores, labels)
    np.testing.assert_array_equal(per_text[:2], [0.75, 1.0])
    assert np.isnan(per_text[2])
    assert metrics.frame_auroc(scores, labels, "macro") == 0.875
    assert metrics.frame_auroc(scores, labels, "micro") == roc_auc_score(labels.ravel(), scores.ravel())


@pytest.mark.parametrize("decimals", [None, 1])  # 1 decimal: many ties
def test_frame_auroc_matches_sklearn_on_random_data(decimals):
    rng = np.random.default_rng(0)
    labels = rng.random((6, 4, 31)) < np.array([0.5, 0.2, 0.05, 0.3])[None, :, None]
    scores = rng.random(labels.shape) + 0.4 * labels
    scores = scores if decimals is None else np.round(scores, decimals)
    micro = roc_auc_score(labels.ravel(), scores.ravel())
    macro = np.mean([roc_auc_score(labels[:, k].ravel(), scores[:, k].ravel()) for k in range(4)])
    assert metrics.frame_auroc(scores, labels, "micro") == pytest.approx(micro, abs=1e-12)
    assert metrics.frame_auroc(scores, labels, "macro") == pytest.approx(macro, abs=1e-12)


# ---------------------------------------------------------------- F1, ECE, spurious false positives


def test_f1_hand_case_and_strict_threshold():
    # predicted (score > 0.5) = [1, 0, 1, 0, 0] (0.5 itself is not above), labels [1, 1, 0, 0, 1]:
    # TP 1, FP 1, FN 2 -> 2 / (2 + 1 + 2)
    scores = np.array([[[0.6, 0.4, 0.7, 0.2, 0.5]]])
    labels = np.array([[[1, 1, 0, 0, 1]]])
    assert metrics.frame_f1(scores, labels) == pytest.approx(0.4)
    # text 0 as above (0.4), text 1 perfect (1.0), text 2 no labels and no predictions: left out
    scores = np.concatenate([scores, [[[0.9, 0.1, 0.1, 0.1, 0.1], [0.1] * 5]]], axis=1)
    labels = np.concatenate([labels, [[[1, 0, 0, 0, 0], [0] * 5]]], axis=1)
    assert metrics.frame_f1(scores, labels, average="macro") == pytest.approx(0.7)
    assert metrics.frame_f1(scores, labels, average="micro") == pytest.approx(2 * 2 / (2 * 2 + 1 + 2))


def test_f1_matches_sklearn_on_random_data():
    rng = np.random.default_rng(1)
    labels = rng.random((5, 3, 31)) < 0.3
    scores = np.clip(rng.random(labels.shape) * 0.8 + 0.3 * labels, 0, 1)
    flat_labels, flat_pred = (
        labels.transpose(0, 2, 1).reshape(-1, 3),
        scores.transpose(0, 2, 1).reshape(-1, 3) > 0.5,
    )
    for average in ("micro", "macro"):
        assert metrics.frame_f1(scores, labels, average=average) == pytest.approx(
            f1_score(flat_labels, flat_pred, average=average), abs=1e-12
        )


def test_ece_hand_cases():
    # 15 bins: 0.1 -> bin 1 (conf 0.1, freq 0.5), 0.9 -> bin 13 (conf 0.9, freq 1): 0.5 * 0.4 + 0.5 * 0.1
    assert metrics.expected_calibration_error([0.1, 0.1, 0.9, 0.9], [0, 1, 1, 1]) == pytest.approx(0.25)
    # one bin: |mean p - mean y| = |0.5 - 0.75|
    assert metrics.expected_calibration_error(
        [0.1, 0.1, 0.9, 0.9], [0, 1, 1, 1], num_bins=1
    ) == pytest.approx(0.25)
    # p = 1.0 falls in the last bin; calibrated bins give 0
    assert metrics.expected_calibration_error([0.0, 1.0, 0.5, 0.5], [0, 1, 0, 1]) == 0.0
    # 2 bins: [0, 0.5) holds 0.2 (y 1): 0.8; [0.5, 1] holds 0.5, 0.7 (y 0, 1): |0.6 - 0.5| -> (0.8 + 2 * 0.1) / 3
    assert metrics.expected_calibration_error([0.2, 0.5, 0.7], [1, 0, 1], num_bins=2) == pytest.approx(
        1.0 / 3
    )


def test_spurious_false_positive_rate_hand_case():
    scores = np.array([0.9, 0.2, 0.6, 0.4, 0.5])
    spurious = np.array([1, 1, 1, 0, 1])
    target = np.array([1, 0, 0, 0, 0])
    mask = metrics.spurious_mask(spurious, target)
    np.testing.assert_array_equal(mask, [False, True, True, False, True])
    # masked scores 0.2, 0.6, 0.5: only 0.6 > 0.5
    assert metrics.spurious_false_positive_rate(scores, mask) == pytest.approx(1.0 / 3)
    assert metrics.spurious_false_positive_rate(scores, mask, threshold=0.1) == 1.0


# ---------------------------------------------------------------- retrieval


def test_recall_at_k_hand_cases():
    similarity = np.array(
        [
            [0.9, 0.1, 0.2],  # match first: rank 0
            [0.8, 0.5, 0.1],  # match second: rank 1
            [0.3, 0.4, 0.2],  # match last: rank 2
        ]
    )
    assert metrics.recall_at_k(similarity, ks=(1, 2, 5)) == {
        1: pytest.approx(1 / 3),
        2: pytest.approx(2 / 3),
        5: 1.0,
    }
    # a tie counts against the match; 2 texts x 4 clips, text i matching clip i
    tied = np.array([[0.5, 0.5, 0.1, 0.1], [0.0, 0.7, 0.2, 0.9]])
    assert metrics.recall_at_k(tied, ks=(1, 2, 10)) == {1: 0.0, 2: 1.0, 10: 1.0}
    assert metrics.recall_at_k(np.eye(12))[1] == 1.0


# ---------------------------------------------------------------- PSDS


def test_psds1_hand_case():
    """PSDS1 (dtc = gtc = 0.7, alpha_st = 1) on 1 clip, 1 text, 10 frames of 7.2 s (72 s = 0.02 h, so
    one false positive is an eFPR of 50 / h).

    labels: 0 1 1 1 0 0 1 1 0 0   -> events G1 = frames 1-3 (3 frames), G2 = frames 6-7 (2 frames)
    scores: 0 .6 .9 .7 .1 .1 .3 .4 .1 .5

    threshold (score > t)  detections           TP            FP   (eFPR, TPR)
    t >= 0.9               none                 0             0    (0, 0)
    [0.7, 0.9)             {2}                  0 (G1 1/3)    0
    [0.6, 0.7)             {2-3}                0 (G1 2/3)    0
    [0.5, 0.6)             {1-3}                G1            0    (0, 0.5)
    [0.4, 0.5)             + {9}: 0/1 on gt     G1            1    (50, 0.5)
    [0.3, 0.4)             + {7}                G1 (G2 1/2)   1
    [0.1, 0.3)             {6-7} replaces {7}   G1, G2        1    (50, 1.0)
    [0, 0.1)               {1-9}: 5/9 < 0.7     0             1
    t < 0                  {0-9}: 5/10 < 0.7    0             1
    Staircase: TPR 0.5 on [0, 50), 1.0 on [50, 100]: area 0.5 * 50 + 1.0 * 50 = 75, / 100 = 0.75.
    One text, so the std across texts is 0 and alpha_st does nothing.
    """
    labels = np.array([0, 1, 1, 1, 0, 0, 1, 1, 0, 0])[None, None]
    scores = np.array([0.0, 0.6, 0.9, 0.7, 0.1, 0.1, 0.3, 0.4, 0.1, 0.5])[None, None]
    etpr, efpr, _ = metrics.psd_roc(scores, labels, metrics.PSDS1, frame_seconds=7.2)
    np.testing.assert_allclose(efpr, [0.0, 50.0])
    np.testing.assert_allclose(etpr, [0.5, 1.0])
    assert metrics.psds(scores, labels, metrics.PSDS1, frame_seconds=7.2) == pytest.approx(0.75)


def _psds2_toy():
    a_labels = np.zeros((2, 20), int)
    a_labels[0] = 1
    b_labels = np.zeros((2, 20), int)
    b_labels[1, [0, 10]] = 1
    a_scores = np.stack([np.full(20, 0.7), np.full(20, 0.2)])
    b_scores = np.zeros((2, 20))
    b_scores[1, 0], b_scores[0, 3], b_scores[1, 10], b_scores[1, 5] = 0.9, 0.8, 0.7, 0.6
    return np.stack([a_scores, b_scores], axis=1), np.stack([a_labels, b_labels], axis=1)


def test_psds2_hand_case():
    """PSDS2 (dtc = gtc = 0.1, cttc = 0.3, alpha_ct = 0.5, alpha_st = 1) on 2 clips x 2 texts x 20 frames
    of 1.8 s. Dataset 72 s = 0.02 h: one FP adds 50 / h. Text A's ground truth is all of clip 0
    (36 s = 0.01 h): a cross-trigger on A adds alpha_ct * 1 / 0.01 h = 50 / h to text B's eFPR.

    Text A: score 0.7 on clip 0 and 0.2 on clip 1; its one event is found at t in [0.2, 0.7) with no FP,
    so TPR_A = 1 from eFPR 0 on (at t < 0.2 clip 1's all-frame detection is an FP, no CT: B covers
    2/20 < 0.3 of it).
    Text B: events at clip 1 frames 0 and 10. Scores 0.9 (clip 1 f0, on B), 0.8 (clip 0 f3, on A),
    0.7 (clip 1 f10, on B), 0.6 (clip 1 f5, on nothing), 0 elsewhere.
      t in [0.85, 0.9): TP 1                              -> (0, 0.5)
      t in [0.75, 0.85): + FP that is a CT on A            -> (50 + 50 = 100, 0.5)
      t in [0.65, 0.75): + TP 2                            -> (100, 1.0)
      t in [0, 0.65): + a plain FP                         -> (150, 1.0), past max_efpr
      t < 0: clip 0 all frames FP + CT; clip 1 all frames 2/20 >= 0.1 on B: both found -> (100, 1.0)
    Two texts: mean - std = min(TPR_A, TPR_B) = TPR_B: 0.5 on [0, 100) -> area 50, PSDS2 = 0.5.
    Without the CT penalty B reaches 1.0 at eFPR 50: 0.5 * 50 + 1.0 * 50 = 75 -> 0.75.
    Without alpha_st (mean of 1 and TPR_B): 0.75 on [0, 100) -> 0.75.
    """
    scores, labels = _psds2_toy()
    assert metrics.psds(scores, labels, metrics.PSDS2, frame_seconds=1.8) == pytest.approx(0.5)
    no_ct = metrics.PsdsParams(dtc=0.1, gtc=0.1, alpha_st=1.0)
    assert metrics.psds(scores, labels, no_ct, frame_seconds=1.8) == pytest.approx(0.75)
    no_st = metrics.PsdsParams(dtc=0.1, gtc=0.1, cttc=0.3, alpha_ct=0.5, alpha_st=0.0)
    assert metrics.psds(scores, labels, no_st, frame_seconds=1.8) == pytest.approx(0.75)
    _, _, per_text = metrics.psd_roc(scores, labels, metrics.PSDS2, frame_seconds=1.8)
    np.testing.assert_allclose(per_text[1][0], [0.5, 1.0])
    np.testing.assert_allclose(per_text[1][1], [0.0, 100.0])


def test_psds_perfect_scores_give_one():
    rng = np.random.default_rng(2)
    labels = _random_runs(rng, (3, 2, 31))
    for params in (metrics.PSDS1, metrics.PSDS2):
        assert metrics.psds(labels.astype(float), labels, params) == pytest.approx(1.0)


def test_psds_separates_scores_one_float_apart():
    # frame 1 (the event) scores one float above frame 0 (their midpoint rounds up to frame 1's score,
    # so a midpoint threshold would lose this state): detecting it alone is TP 1, FP 0 -> PSDS1 = 1
    low = np.nextafter(0.5, 1.0)
    scores = np.array([[[low, np.nextafter(low, 1.0)]]])
    labels = np.array([[[0, 1]]])
    assert metrics.psds(scores, labels, metrics.PSDS1, frame_seconds=3600.0) == 1.0


def _random_runs(rng, shape, rate=0.15):
    """Binary frame labels made of runs: onsets with probability `rate`, each lasting 1-8 frames."""
    labels = np.zeros(shape, bool)
    for index in np.ndindex(shape[:-1]):
        for onset in np.flatnonzero(rng.random(shape[-1]) < rate):
            labels[index][onset : onset + rng.integers(1, 9)] = True
    return labels


def _random_psds_case(seed=3):
    """8 clips x 3 texts x 31 frames, scores on a 0.01 grid (ties); with 1 s frames (248 s of audio)
    one FP is an eFPR of 14.5 / h, so each text's curve has several points below 100 / h."""
    rng = np.random.default_rng(seed)
    labels = _random_runs(rng, (8, 3, 31), rate=0.08)
    scores = np.round(np.clip(0.3 * labels + 0.7 * rng.random(labels.shape) + 0.1, 0, 1), 2)
    return scores, labels


def _runs_as_events(row, frame_seconds):
    """[(onset_s, offset_s)] of the True runs of a 1-D frame array."""
    edges = np.diff(np.r_[0, row.astype(int), 0])
    return [
        (on * frame_seconds, off * frame_seconds)
        for on, off in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True)
    ]


def _reference_psds(scores, labels, params, frame_seconds):
    """PSDS written loop by loop from the definition, on event lists in seconds."""
    num_clips, num_texts, num_frames = scores.shape
    hours = num_clips * num_frames * frame_seconds / 3600.0
    truth = [
        [_runs_as_events(labels[a, k], frame_seconds) for k in range(num_texts)] for a in range(num_clips)
    ]
    ref_hours = [
        sum(off - on for a in range(num_clips) for on, off in truth[a][k]) / 3600.0 for k in range(num_texts)
    ]

    def overlap(event, events):
        return sum(max(0.0, min(event[1], off) - max(event[0], on)) for on, off in events)

    curves = []
    for k in range(num_texts):
        values = np.unique(scores[:, k])
        points = [(0.0, 0.0)]
        for threshold in np.r_[-np.inf, (values[1:] + values[:-1]) / 2]:
            tp = fp = 0
            ct = np.zeros(num_texts)
            for a in range(num_clips):
                detections = _runs_as_events(scores[a, k] > threshold, frame_seconds)
                relevant = [overlap(d, truth[a][k]) >= params.dtc * (d[1] - d[0]) - 1e-9 for d in detections]
                fp += relevant.count(False)
                kept = [d for d, r in zip(detections, relevant, strict=True) if r]
                tp += sum(overlap(g, kept) >= params.gtc * (g[1] - g[0]) - 1e-9 for g in truth[a][k])
                for (d, r), c in itertools.product(zip(detections, relevant, strict=True), range(num_texts)):
                    if params.cttc is not None and c != k and not r:
                        ct[c] += overlap(d, truth[a][c]) >= params.cttc * (d[1] - d[0]) - 1e-9
            others = [c for c in range(num_texts) if c != k]
            ct_rate = np.mean([ct[c] / max(ref_hours[c], 1e-12 / 3600) for c in others]) if others else 0.0
            n_ref = sum(len(truth[a][k]) for a in range(num_clips))
            points.append((fp / hours + params.alpha_ct * ct_rate, tp / max(n_ref, 1)))
        curves.append(points)

    def best_tpr(points, efpr):
        return max(t for e, t in points if e <= efpr)

    grid = sorted({e for points in curves for e, _ in points if e <= params.max_efpr})
    area = 0.0
    for left, right in zip(grid, grid[1:] + [params.max_efpr], strict=True):
        tprs = np.array([best_tpr(points, left) for points in curves])
        area += max(tprs.mean() - params.alpha_st * tprs.std(), 0.0) * (right - left)
    return area / params.max_efpr


@pytest.mark.parametrize("params", [metrics.PSDS1, metrics.PSDS2], ids=["psds1", "psds2"])
@pytest.mark.parametrize("seed", [3, 4])
def test_psds_matches_loop_reference_on_random_data(params, seed):
    scores, labels = _random_psds_case(seed)
    expected = _reference_psds(scores, labels, params, frame_seconds=1.0)
    value = metrics.psds(scores, labels, params, frame_seconds=1.0)
    assert value == pytest.approx(expected, abs=1e-12)
    assert 0.0 < value < 1.0


def test_psds_threshold_grid():
    scores, labels = _random_psds_case(3)
    exact = metrics.psds(scores, labels, metrics.PsdsParams(dtc=0.7, gtc=0.7), frame_seconds=1.0)
    # every midpoint between distinct scores (0.01 apart) is in this grid, so it is exact
    grid = np.arange(-0.005, 1.0, 0.01)
    assert metrics.psds(
        scores, labels, metrics.PsdsParams(dtc=0.7, gtc=0.7), frame_seconds=1.0, thresholds=grid
    ) == pytest.approx(exact, abs=1e-12)
    # a coarser grid sees fewer operating points: with alpha_st = 0 it cannot score higher
    coarse = metrics.psds(
        scores,
        labels,
        metrics.PsdsParams(dtc=0.7, gtc=0.7),
        frame_seconds=1.0,
        thresholds=np.linspace(0.05, 0.95, 5),
    )
    assert coarse <= exact + 1e-12


@pytest.mark.parametrize("params", [metrics.PSDS1, metrics.PSDS2], ids=["psds1", "psds2"])
def test_psds_matches_sed_scores_eval(params):
    sed_scores_eval = pytest.importorskip("sed_scores_eval")
    try:  # 0.0.4 keeps it in base_modules, older releases in utils
        from sed_scores_eval.base_modules.scores import create_score_dataframe
    except ImportError:
        from sed_scores_eval.utils.scores import create_score_dataframe

    scores, labels = _random_psds_case(5)
    frame_seconds = 1.0
    num_clips, num_texts, num_frames = scores.shape
    names = [f"text{k}" for k in range(num_texts)]
    timestamps = np.arange(num_frames + 1) * frame_seconds
    clips = [f"clip{a}" for a in range(num_clips)]
    score_frames = {
        clip: create_score_dataframe(scores[a].T, timestamps, names) for a, clip in enumerate(clips)
    }
    truth = {
        clip: [
            (on, off, names[k])
            for k in range(num_texts)
            for on, off in _runs_as_events(labels[a, k], frame_seconds)
        ]
        for a, clip in enumerate(clips)
    }
    durations = {clip: num_frames * frame_seconds for clip in clips}
    reference = sed_scores_eval.intersection_based.psds(
        scores=score_frames,
        ground_truth=truth,
        audio_durations=durations,
        dtc_threshold=params.dtc,
        gtc_threshold=params.gtc,
        cttc_threshold=params.cttc,
        alpha_ct=params.alpha_ct,
        alpha_st=params.alpha_st,
        max_efpr=params.max_efpr,
    )[0]
    assert metrics.psds(scores, labels, params, frame_seconds=frame_seconds) == pytest.approx(
        reference, abs=1e-6
    )


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "call, field",
    [
        (lambda: metrics.frame_auroc(np.zeros((2, 3)), np.zeros((2, 3))), "scores.shape"),
        (lambda: metrics.frame_auroc(np.zeros((1, 2, 3)), np.zeros((1, 2, 4))), "labels.shape"),
        (lambda: metrics.frame_auroc(np.zeros((1, 1, 2)), np.array([[[0, 2]]])), "labels"),
        (lambda: metrics.frame_auroc(np.zeros((1, 1, 2)), np.array([[[0, 1]]]), "weighted"), "average"),
        (lambda: metrics.frame_auroc(np.zeros((1, 1, 2)), np.zeros((1, 1, 2))), "labels"),
        (lambda: metrics.binary_auroc([0.1, 0.2], [1, 1]), "labels"),
        (lambda: metrics.frame_f1(np.full((1, 1, 2), np.nan), np.zeros((1, 1, 2))), "scores"),
        (lambda: metrics.expected_calibration_error([0.5, 1.2], [0, 1]), "probabilities"),
        (lambda: metrics.expected_calibration_error([0.5], [1], num_bins=0), "num_bins"),
        (lambda: metrics.spurious_false_positive_rate([0.5, 0.6], [0, 0]), "mask"),
        (lambda: metrics.recall_at_k(np.zeros((3, 2))), "similarity.shape"),
        (lambda: metrics.recall_at_k(np.zeros((2, 2)), ks=(0,)), "ks"),
        (lambda: metrics.PsdsParams(dtc=0.0, gtc=0.7), "dtc"),
        (lambda: metrics.PsdsParams(dtc=0.7, gtc=0.7, cttc=0.3), "cttc"),
        (lambda: metrics.psds(np.zeros((1, 1, 4)), np.zeros((1, 1, 4)), metrics.PSDS2), "K"),
        (lambda: metrics.psds(np.zeros((1, 1, 4)), np.zeros((1, 1, 4)), frame_seconds=0.0), "frame_seconds"),
    ],
)
def test_bad_input_is_one_line_naming_the_field(call, field):
    with pytest.raises(ValueError) as error:
        call()
    message = str(error.value)
    assert "\n" not in message
    assert f".{field}=" in message and "expected" in message
