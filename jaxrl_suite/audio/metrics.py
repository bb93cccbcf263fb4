"""FLAM evaluation metrics in numpy (issue 26): frame AUROC, PSDS1/PSDS2 (Bilen et al. 2020, computed as
in Ebbers et al. 2022), F1 at one threshold, ECE, spurious-co-occurrence false positives, retrieval R@k.

Frame tensors are `scores, labels: [A, K, F]` (clips x texts x frames), every text scored against every
clip, as `batch.make_batch` lays them out. Inputs may be numpy or JAX arrays; scores come back as floats.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxrl_suite.audio import framing
from jaxrl_suite.validation import require

FRAME_SECONDS = framing.HOP / framing.SAMPLE_RATE  # 0.16 s
SECONDS_PER_HOUR = 3600.0
_TOLERANCE = 1e-9  # frames; a detection exactly on a criterion passes it (the reference rounds to 1e-6 s)


# ---------------------------------------------------------------- input checks


def _frame_arrays(scores, labels, owner: str) -> tuple[np.ndarray, np.ndarray]:
    """scores, labels -> (float64 [A, K, F], bool [A, K, F]); one ValueError line on a bad input."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    require(scores.ndim == 3, owner, "scores.shape", scores.shape, "[A, K, F] (clips, texts, frames)")
    require(
        labels.shape == scores.shape,
        owner,
        "labels.shape",
        labels.shape,
        f"the shape of scores {scores.shape}",
    )
    require(scores.size > 0, owner, "scores.shape", scores.shape, "at least one clip, text and frame")
    require(bool(np.isfinite(scores).all()), owner, "scores", "non-finite values", "finite scores")
    require(bool(np.isin(labels, (0, 1)).all()), owner, "labels", "values other than 0/1", "binary labels")
    return scores, labels.astype(bool)


def _is_count(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _threshold(value: float, owner: str, field: str = "threshold") -> float:
    require(bool(np.isfinite(value)), owner, field, value, "a finite number")
    return float(value)


# ---------------------------------------------------------------- AUROC


def binary_auroc(scores, labels) -> float:
    """Mann-Whitney AUROC of 1-D `scores` against binary `labels`: P(score_pos > score_neg) + 1/2
    P(score_pos == score_neg), from average ranks. Refuses labels without both classes."""
    owner = "metrics.binary_auroc"
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel()
    require(labels.shape == scores.shape, owner, "labels.size", labels.size, f"scores.size = {scores.size}")
    require(bool(np.isfinite(scores).all()), owner, "scores", "non-finite values", "finite scores")
    require(bool(np.isin(labels, (0, 1)).all()), owner, "labels", "values other than 0/1", "binary labels")
    auc = _auroc_or_nan(scores, labels.astype(bool))
    positives = f"{int(labels.sum())} of {labels.size} positive"
    require(not np.isnan(auc), owner, "labels", positives, "at least one positive and one negative label")
    return auc


def _auroc_or_nan(scores: np.ndarray, labels: np.ndarray) -> float:
    num_pos = int(labels.sum())
    num_neg = labels.size - num_pos
    if num_pos == 0 or num_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    # average 1-based rank of each group of tied scores: ties count 1/2, as in the Mann-Whitney U
    first = np.r_[True, sorted_scores[1:] != sorted_scores[:-1]]
    group = np.cumsum(first) - 1
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], scores.size]
    ranks = np.empty(scores.size)
    ranks[order] = ((starts + 1 + ends) / 2.0)[group]
    u_statistic = ranks[labels].sum() - num_pos * (num_pos + 1) / 2.0
    return float(u_statistic / (num_pos * num_neg))


def auroc_per_text(scores, labels) -> np.ndarray:
    """[K] frame AUROC of each text over all its clips' frames; NaN where a text lacks either label."""
    scores, labels = _frame_arrays(scores, labels, "metrics.auroc")
    return np.array(
        [_auroc_or_nan(scores[:, k].ravel(), labels[:, k].ravel()) for k in range(scores.shape[1])]
    )


def frame_auroc(scores, labels, average: str = "macro") -> float:
    """Frame AUROC of scores/labels [A, K, F]. "macro": the mean over texts that have both positive and
    negative frames (the others are left out); "micro": one AUROC over all (clip, text, frame) cells pooled."""
    require(average in ("macro", "micro"), "metrics.frame_auroc", "average", average, "'macro' or 'micro'")
    scores, labels = _frame_arrays(scores, labels, "metrics.frame_auroc")
    if average == "micro":
        return binary_auroc(scores, labels)
    per_text = auroc_per_text(scores, labels)
    require(
        bool(np.isfinite(per_text).any()),
        "metrics.frame_auroc",
        "labels",
        "no text with both labels",
        "at least one text with positive and negative frames",
    )
    return float(np.nanmean(per_text))


# ---------------------------------------------------------------- F1, ECE, spurious false positives


def frame_f1(scores, labels, threshold: float = 0.5, average: str = "micro") -> float:
    """Frame F1 with one shared threshold (a frame is predicted positive when score > threshold).
    "micro": 2TP / (2TP + FP + FN) over all cells pooled; "macro": the mean of each text's F1 over texts
    with at least one positive label or prediction (a text with neither has no F1 and is left out; scikit-
    learn's `f1_score` would count it as 0)."""
    require(average in ("macro", "micro"), "metrics.frame_f1", "average", average, "'macro' or 'micro'")
    scores, labels = _frame_arrays(scores, labels, "metrics.frame_f1")
    predicted = scores > _threshold(threshold, "metrics.frame_f1")
    axes = (0, 2) if average == "macro" else None
    tp = np.sum(predicted & labels, axis=axes)
    fp = np.sum(predicted & ~labels, axis=axes)
    fn = np.sum(~predicted & labels, axis=axes)
    denominator = 2 * tp + fp + fn
    if average == "micro":
        require(
            denominator > 0,
            "metrics.frame_f1",
            "labels",
            "no positive label or prediction",
            "at least one positive label or prediction",
        )
        return float(2 * tp / denominator)
    require(
        bool((denominator > 0).any()),
        "metrics.frame_f1",
        "labels",
        "no positive label or prediction",
        "at least one text with a positive label or prediction",
    )
    return float(np.mean(2 * tp[denominator > 0] / denominator[denominator > 0]))


def expected_calibration_error(probabilities, labels, num_bins: int = 15) -> float:
    """ECE = sum_b (n_b / N) |mean(p in b) - mean(y in b)| over `num_bins` equal-width bins of [0, 1]
    (bin b = [b/B, (b+1)/B), the last closed at 1), each frame probability a binary prediction of its
    own label. Any shape; probabilities must lie in [0, 1]."""
    require(_is_count(num_bins) and num_bins >= 1, "metrics.ece", "num_bins", num_bins, "an integer >= 1")
    probabilities = np.asarray(probabilities, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel()
    require(probabilities.size > 0, "metrics.ece", "probabilities.size", 0, "at least one probability")
    require(
        labels.shape == probabilities.shape,
        "metrics.ece",
        "labels.size",
        labels.size,
        f"probabilities.size = {probabilities.size}",
    )
    require(
        bool(((probabilities >= 0) & (probabilities <= 1)).all()),
        "metrics.ece",
        "probabilities",
        f"range [{probabilities.min()}, {probabilities.max()}]",
        "values in [0, 1]",
    )
    require(
        bool(np.isin(labels, (0, 1)).all()), "metrics.ece", "labels", "values other than 0/1", "binary labels"
    )
    bins = np.minimum((probabilities * num_bins).astype(np.int64), num_bins - 1)
    # sum_b (n_b / N) |mean p - mean y| = sum_b |sum p - sum y| / N
    confidence = np.bincount(bins, weights=probabilities, minlength=num_bins)
    frequency = np.bincount(bins, weights=labels.astype(np.float64), minlength=num_bins)
    return float(np.sum(np.abs(confidence - frequency)) / probabilities.size)


def spurious_mask(spurious_labels, target_labels) -> np.ndarray:
    """Frames where the spurious event is present and the target is absent (same-shape binary arrays)."""
    spurious_labels, target_labels = np.asarray(spurious_labels), np.asarray(target_labels)
    require(
        spurious_labels.shape == target_labels.shape,
        "metrics.spurious_mask",
        "target_labels.shape",
        target_labels.shape,
        f"the shape of spurious_labels {spurious_labels.shape}",
    )
    return spurious_labels.astype(bool) & ~target_labels.astype(bool)


def spurious_false_positive_rate(scores, mask, threshold: float = 0.5) -> float:
    """Fraction of the frames selected by `mask` (spurious event present, target absent; see
    `spurious_mask`) where the target text's score > threshold. scores and mask: the same shape."""
    scores, mask = np.asarray(scores, dtype=np.float64), np.asarray(mask)
    require(
        mask.shape == scores.shape,
        "metrics.spurious_fp",
        "mask.shape",
        mask.shape,
        f"the shape of scores {scores.shape}",
    )
    require(
        bool(np.isin(mask, (0, 1)).all()),
        "metrics.spurious_fp",
        "mask",
        "values other than 0/1",
        "a binary mask",
    )
    mask = mask.astype(bool)
    require(
        bool(mask.any()), "metrics.spurious_fp", "mask", "no frame selected", "at least one selected frame"
    )
    return float(np.mean(scores[mask] > _threshold(threshold, "metrics.spurious_fp")))


# ---------------------------------------------------------------- retrieval


def recall_at_k(similarity, ks=(1, 5, 10)) -> dict[int, float]:
    """{k: R@k} from similarity [num_queries, num_items] (num_queries <= num_items), query i matching
    item i. The match's rank counts the other items scoring >= it, so a tie counts against the match.
    Text-to-audio: pass [num_texts, num_clips]; audio-to-text: pass its transpose (square)."""
    similarity = np.asarray(similarity, dtype=np.float64)
    require(
        similarity.ndim == 2,
        "metrics.recall_at_k",
        "similarity.shape",
        similarity.shape,
        "[num_queries, num_items]",
    )
    num_queries, num_items = similarity.shape
    require(
        1 <= num_queries <= num_items,
        "metrics.recall_at_k",
        "similarity.shape",
        similarity.shape,
        "1 <= num_queries <= num_items (query i matches item i)",
    )
    require(
        bool(np.isfinite(similarity).all()),
        "metrics.recall_at_k",
        "similarity",
        "non-finite values",
        "finite similarities",
    )
    for k in ks:
        require(_is_count(k) and k >= 1, "metrics.recall_at_k", "ks", tuple(ks), "positive integers")
    match = similarity[np.arange(num_queries), np.arange(num_queries)]
    rank = np.sum(similarity >= match[:, None], axis=1) - 1  # 0 = the match is first
    return {int(k): float(np.mean(rank < k)) for k in ks}


# ---------------------------------------------------------------- PSDS


@dataclasses.dataclass(frozen=True)
class PsdsParams:
    """The PSDS criteria (Bilen et al. 2020): a detection is relevant when >= dtc of it lies on the
    target's ground truth; a ground-truth event is found when >= gtc of it is covered by relevant
    detections; an irrelevant detection is a cross-trigger on class c when >= cttc of it lies on c."""

    dtc: float
    gtc: float
    cttc: float | None = None
    alpha_ct: float = 0.0
    alpha_st: float = 0.0
    max_efpr: float = 100.0  # per hour

    def __post_init__(self):
        for name in ("dtc", "gtc"):
            value = getattr(self, name)
            require(0 < value <= 1, "PsdsParams", name, value, "a fraction in (0, 1]")
        require(
            self.cttc is None or 0 < self.cttc <= 1,
            "PsdsParams",
            "cttc",
            self.cttc,
            "None or a fraction in (0, 1]",
        )
        require(self.alpha_ct >= 0, "PsdsParams", "alpha_ct", self.alpha_ct, "a non-negative weight")
        require(self.alpha_st >= 0, "PsdsParams", "alpha_st", self.alpha_st, "a non-negative weight")
        require(self.max_efpr > 0, "PsdsParams", "max_efpr", self.max_efpr, "a positive rate per hour")
        require(
            (self.alpha_ct == 0) == (self.cttc is None),
            "PsdsParams",
            "cttc",
            self.cttc,
            "None exactly when alpha_ct == 0 (the reference refuses the other combinations)",
        )


# DCASE 2021-2023 task 4 scenarios.
PSDS1 = PsdsParams(dtc=0.7, gtc=0.7, cttc=None, alpha_ct=0.0, alpha_st=1.0, max_efpr=100.0)
PSDS2 = PsdsParams(dtc=0.1, gtc=0.1, cttc=0.3, alpha_ct=0.5, alpha_st=1.0, max_efpr=100.0)


def _runs(active: np.ndarray) -> np.ndarray:
    """Run ids (1, 2, ... within each row; 0 = inactive) of the True runs of each row of [R, M]."""
    starts = active & ~np.pad(active, ((0, 0), (1, 0)))[:, :-1]
    return np.cumsum(starts, axis=1) * active


def _detection_counts(detected, target, others, params: PsdsParams):
    """Per row of [R, F] frame masks (one clip at one detection state): (TP [R], FP [R], CT [R, C],
    ground-truth events [R]). Detections are the runs of `detected`, ground-truth events the runs of
    `target` [R, F]; others [R, C, F] are the other texts' labels (read only when cttc is set)."""
    num_rows, num_frames = detected.shape
    cells = num_rows * num_frames
    det_run, gt_run = _runs(detected), _runs(target)
    row, col = np.nonzero(detected)
    run = row * num_frames + det_run[row, col] - 1  # one id per (row, detection)
    length = np.bincount(run, minlength=cells)
    on_target = np.bincount(run, weights=target[row, col], minlength=cells)
    exists = length > 0
    relevant = exists & (on_target >= params.dtc * length - _TOLERANCE)
    false = exists & ~relevant
    fp = false.reshape(num_rows, num_frames).sum(axis=1)
    gt_row, gt_col = np.nonzero(target)
    gt_id = gt_row * num_frames + gt_run[gt_row, gt_col] - 1
    gt_length = np.bincount(gt_id, minlength=cells)
    hit = relevant[run] & target[row, col]  # target frames inside relevant detections
    cover = np.bincount(row[hit] * num_frames + gt_run[row[hit], col[hit]] - 1, minlength=cells)
    found = (gt_length > 0) & (cover >= params.gtc * gt_length - _TOLERANCE)
    tp = found.reshape(num_rows, num_frames).sum(axis=1)
    num_events = (gt_length > 0).reshape(num_rows, num_frames).sum(axis=1)
    ct = np.zeros((num_rows, others.shape[1]))
    if params.cttc is not None:
        for c in range(others.shape[1]):
            on_other = np.bincount(run, weights=others[row, c, col], minlength=cells)
            cross = false & (on_other >= params.cttc * length - _TOLERANCE)
            ct[:, c] = cross.reshape(num_rows, num_frames).sum(axis=1)
    return tp, fp, ct, num_events


def _text_counts(scores_k, labels_k, others, thresholds, params: PsdsParams):
    """(TP [U], FP [U], CT [U, C], ground-truth events) of one text, summed over clips, at each of U
    thresholds.

    scores_k, labels_k: [A, F]; others: [A, C, F]. At threshold t clip a detects its n = #(score > t)
    highest frames, so a clip has only F + 1 detection states (n = 0..F): count each state once, then the
    totals at t are the sum of every clip's change from state j to j + 1 over the steps whose score
    (the clip's (j + 1)-th highest) is above t. Tied scores enter together, so the sums stay exact."""
    num_clips, num_frames = scores_k.shape
    states = num_frames + 1
    others = others if params.cttc is not None else others[:, :0]
    order = np.argsort(-scores_k, axis=1, kind="stable")
    rank = np.argsort(order, axis=1)
    detected = (rank[:, None, :] < np.arange(states)[None, :, None]).reshape(-1, num_frames)
    target = np.broadcast_to(labels_k[:, None], (num_clips, states, num_frames)).reshape(-1, num_frames)
    other = np.broadcast_to(others[:, None], (num_clips, states, *others.shape[1:]))
    tp, fp, ct, num_events = _detection_counts(
        detected, target, other.reshape(num_clips * states, *others.shape[1:]), params
    )
    columns = [x.reshape(num_clips, states, x.shape[1]) for x in (tp[:, None], fp[:, None], ct)]
    steps = [np.diff(x, axis=1).reshape(num_clips * num_frames, x.shape[2]) for x in columns]
    step_score = np.take_along_axis(scores_k, order, axis=1).ravel()
    by_score = np.argsort(-step_score, kind="stable")
    applied = np.searchsorted(-step_score[by_score], -thresholds, side="left")  # steps with score > t
    totals = [
        np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x[by_score], axis=0)])[applied] for x in steps
    ]
    return totals[0][:, 0], totals[1][:, 0], totals[2], int(num_events.reshape(num_clips, states)[:, 0].sum())


def _sweep(scores_k: np.ndarray, thresholds) -> np.ndarray:
    """Thresholds for one text: the given ones, or the float just below each distinct score (score > it
    iff score >= that distinct score: every distinct detection set), plus +inf (nothing detected)."""
    if thresholds is not None:
        return np.r_[thresholds, np.inf]
    return np.r_[np.nextafter(np.unique(scores_k), -np.inf), np.inf]


def _roc_staircase(tpr: np.ndarray, efpr: np.ndarray, max_efpr: float) -> tuple[np.ndarray, np.ndarray]:
    """The ROC's upper staircase: at each distinct eFPR <= max_efpr, the best TPR at that eFPR or below."""
    order = np.lexsort((tpr, efpr))
    tpr, efpr = np.maximum.accumulate(tpr[order]), efpr[order]
    distinct, last = np.unique(efpr[::-1], return_index=True)
    tpr = tpr[::-1][last]
    keep = distinct <= max_efpr
    return tpr[keep], distinct[keep]


def psd_roc(
    scores,
    labels,
    params: PsdsParams,
    frame_seconds: float = FRAME_SECONDS,
    clip_seconds: float | None = None,
    thresholds=None,
):
    """(etpr, efpr, per_text): the PSD-ROC of scores/labels [A, K, F] (see `psds`); per_text is a list of
    each text's (tpr, efpr) staircase."""
    scores, labels = _frame_arrays(scores, labels, "metrics.psds")
    require(isinstance(params, PsdsParams), "metrics.psds", "params", type(params).__name__, "a PsdsParams")
    require(frame_seconds > 0, "metrics.psds", "frame_seconds", frame_seconds, "a positive duration")
    num_clips, num_texts, num_frames = scores.shape
    clip_seconds = num_frames * frame_seconds if clip_seconds is None else clip_seconds
    require(clip_seconds > 0, "metrics.psds", "clip_seconds", clip_seconds, "a positive duration")
    if thresholds is not None:
        thresholds = np.asarray(thresholds, dtype=np.float64)
        require(
            thresholds.ndim == 1 and thresholds.size > 0 and bool(np.isfinite(thresholds).all()),
            "metrics.psds",
            "thresholds",
            thresholds.shape,
            "None or a non-empty 1-D array of finite values",
        )
    require(
        params.alpha_ct == 0 or num_texts >= 2,
        "metrics.psds",
        "K",
        num_texts,
        "at least 2 texts when alpha_ct > 0 (cross-triggers need another class)",
    )
    duration_hours = num_clips * clip_seconds / SECONDS_PER_HOUR
    ref_hours = labels.sum(axis=(0, 2)) * frame_seconds / SECONDS_PER_HOUR
    per_text = []
    for k in range(num_texts):
        others = [c for c in range(num_texts) if c != k]
        tps, fps, cts, num_gt = _text_counts(
            scores[:, k], labels[:, k], labels[:, others], _sweep(scores[:, k], thresholds), params
        )
        efpr = fps / duration_hours
        if params.alpha_ct > 0:
            efpr = efpr + params.alpha_ct * np.mean(
                cts / np.maximum(ref_hours[others], 1e-12 / SECONDS_PER_HOUR), axis=1
            )
        per_text.append(_roc_staircase(tps / max(num_gt, 1), efpr, params.max_efpr))
    grid = np.unique(np.concatenate([efpr for _, efpr in per_text]))
    # each text's TPR at each grid eFPR: its staircase's value at the last point <= it (0 before the first)
    tpr_on_grid = np.stack(
        [np.r_[0.0, tpr][np.searchsorted(efpr, grid, side="right")] for tpr, efpr in per_text]
    )
    etpr = np.maximum(tpr_on_grid.mean(axis=0) - params.alpha_st * tpr_on_grid.std(axis=0), 0.0)
    return etpr, grid, per_text


def psds(
    scores,
    labels,
    params: PsdsParams = PSDS1,
    frame_seconds: float = FRAME_SECONDS,
    clip_seconds: float | None = None,
    thresholds=None,
) -> float:
    """Polyphonic Sound Detection Score of frame scores/labels [A, K, F] (each text a class).

    Intersection-based (Bilen et al. 2020), evaluated at every distinct operating point as in the
    threshold-independent computation of Ebbers et al. 2022 (`sed_scores_eval.intersection_based.psds`,
    which this matches on random cases; see docs/flam.md):
      1. at each threshold, a text's detections are the runs of consecutive frames with score > threshold;
         its ground-truth events are the runs of consecutive positive frames;
      2. TP = ground-truth events covered >= gtc by detections that lie >= dtc on the ground truth;
         FP = the other detections; CT_c = FPs lying >= cttc on class c's ground truth;
      3. TPR = TP / events; eFPR = FP / hours + alpha_ct * mean over the K - 1 other texts c of CT_c /
         (c's positive hours);
         each text's ROC is its upper staircase, cut at max_efpr;
      4. eTPR(e) = max(mean_k TPR_k(e) - alpha_st * std_k TPR_k(e), 0), texts' staircases read at every
         eFPR any of them reaches; PSDS = area under eTPR up to max_efpr, / max_efpr.

    Simplifications against the reference, all stated: ground-truth events come from frame labels, so
    onsets and offsets sit on the frame grid and two overlapping events of one text are one event;
    intersections are counted in whole frames (a detection exactly on a criterion passes it); the
    audio duration is clip_seconds per clip (default F * frame_seconds, i.e. without the 40 ms tail
    that belongs to no frame -- pass framing.CLIP_S to count it). `thresholds=None` sweeps every
    distinct score of each text (exact, O(distinct scores x frames) per text); a given 1-D grid
    evaluates only those operating points (with alpha_st = 0 that can only lower the score).
    """
    etpr, efpr, _ = psd_roc(scores, labels, params, frame_seconds, clip_seconds, thresholds)
    widths = np.diff(np.r_[efpr, params.max_efpr])
    return float(np.sum(etpr * widths) / params.max_efpr)
