"""Evaluation metrics for ``cmrsearch evaluate`` (DESIGN.md, "Evaluation protocol").

Pure numpy on purpose: evaluation runs on stored embeddings, so it needs neither torch
nor scipy (a dev-only dependency). Scores are "higher means positive" throughout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

# Rows of the similarity matrix built at once in retrieval_metrics: bounds memory to
# about _CHUNK * N floats however many held-out pairs there are.
_CHUNK = 1024


class EpisodeSummary(TypedDict):
    mean: float
    low: float
    high: float
    values: FloatArray


def _scores(scores: ArrayLike) -> FloatArray:
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1:
        raise ValueError(f"scores must be 1-D, got shape {s.shape}")
    if not np.all(np.isfinite(s)):
        # NaN would sort arbitrarily and silently corrupt ranks.
        raise ValueError("scores must be finite")
    return s


def _scores_labels(scores: ArrayLike, labels: ArrayLike) -> tuple[FloatArray, BoolArray]:
    s = _scores(scores)
    y = np.asarray(labels).astype(bool)
    if y.shape != s.shape:
        raise ValueError(f"scores {s.shape} and labels {y.shape} differ in shape")
    return s, y


def _normalise(x: ArrayLike) -> FloatArray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (rows, dim), got shape {a.shape}")
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    # A zero vector has no direction: it stays zero, i.e. cosine 0 to everything.
    out: FloatArray = a / np.maximum(norms, np.finfo(np.float64).tiny)
    return out


def roc_auc(scores: ArrayLike, labels: ArrayLike) -> float:
    """Exact ROC AUC (Mann-Whitney U), cross-class ties counting 1/2; NaN if a class is absent."""
    s, y = _scores_labels(scores, labels)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    # Average (mid) ranks are what make a tied positive/negative pair count 1/2.
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    mid_rank = np.cumsum(counts) - (counts - 1) / 2.0
    rank_sum = float(mid_rank[inverse][y].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def roc_curve(scores: ArrayLike, labels: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(fpr, tpr, thresholds), one point per distinct score, predicting ``score >= threshold``.

    The first point is (0, 0) at threshold +inf, so the curve spans both corners.
    """
    s, y = _scores_labels(scores, labels)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("roc_curve needs both positive and negative labels")
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    # Last index of each run of equal scores: tied items enter the curve together.
    last = np.r_[np.flatnonzero(np.diff(s_sorted)), s_sorted.size - 1]
    tps = np.cumsum(y_sorted)[last]
    fps = last + 1 - tps
    fpr = np.r_[0.0, fps / n_neg].astype(np.float64)
    tpr = np.r_[0.0, tps / n_pos].astype(np.float64)
    thresholds = np.r_[np.inf, s_sorted[last]].astype(np.float64)
    return fpr, tpr, thresholds


def best_threshold(scores: ArrayLike, labels: ArrayLike) -> float:
    """The cut maximising balanced accuracy (Youden's J); choose it on training studies only.

    Returned as the midpoint between the chosen score and the next lower one, so it splits
    the training set the same way but sits in the gap rather than on a training point.
    Ties in J go to the higher threshold.
    """
    fpr, tpr, thresholds = roc_curve(scores, labels)
    j = tpr[1:] - fpr[1:]  # skip the +inf point: a usable threshold must be finite
    i = int(np.argmax(j)) + 1
    cut = float(thresholds[i])
    if i + 1 < thresholds.size:
        lower = float(thresholds[i + 1])
        mid = (cut + lower) / 2.0
        if lower < mid <= cut:  # adjacent floats can round the midpoint onto `lower`
            return mid
    return cut


def binary_metrics(scores: ArrayLike, labels: ArrayLike, threshold: float) -> dict[str, float]:
    """Balanced accuracy, F1, sensitivity, specificity, precision of ``score >= threshold``.

    A ratio with a zero denominator is reported as 0.0.
    """
    s, y = _scores_labels(scores, labels)
    pred = s >= threshold
    tp = int(np.sum(pred & y))
    fp = int(np.sum(pred & ~y))
    fn = int(np.sum(~pred & y))
    tn = int(np.sum(~pred & ~y))

    def ratio(num: int, den: int) -> float:
        return num / den if den else 0.0

    sensitivity = ratio(tp, tp + fn)
    specificity = ratio(tn, tn + fp)
    return {
        "balanced_accuracy": (sensitivity + specificity) / 2.0,
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "sensitivity": sensitivity,
        "specificity": specificity,
        "precision": ratio(tp, tp + fp),
    }


def zero_shot_scores(
    study_embeddings: ArrayLike, positive_prompts: ArrayLike, negative_prompts: ArrayLike
) -> FloatArray:
    """Per study: mean cosine to the positive prompts minus mean cosine to the negative ones."""
    studies = _normalise(study_embeddings)
    pos = _normalise(positive_prompts)
    neg = _normalise(negative_prompts)
    if pos.shape[0] == 0 or neg.shape[0] == 0:
        raise ValueError("zero_shot_scores needs at least one positive and one negative prompt")
    out: FloatArray = (studies @ pos.T).mean(axis=1) - (studies @ neg.T).mean(axis=1)
    return out


def prototype_episodes(
    train_emb: ArrayLike,
    train_labels: ArrayLike,
    test_emb: ArrayLike,
    test_labels: ArrayLike,
    k: int,
    episodes: int = 100,
    seed: int = 0,
) -> EpisodeSummary:
    """Few-shot prototype classifier: test AUC over random k-per-class training episodes.

    Each episode samples k positive and k negative training studies without replacement
    (all of a class when it has fewer than k), takes the mean normalised embedding of each
    class, and scores test studies by cosine to the positive prototype minus cosine to the
    negative one. Returns the mean AUC, the 2.5th/97.5th percentiles and every episode's AUC.
    """
    if k < 1 or episodes < 1:
        raise ValueError("k and episodes must be at least 1")
    train = _normalise(train_emb)
    test = _normalise(test_emb)
    y_train = np.asarray(train_labels).astype(bool)
    y_test = np.asarray(test_labels).astype(bool)
    if y_train.shape != (train.shape[0],) or y_test.shape != (test.shape[0],):
        raise ValueError("labels must be 1-D with one entry per embedding row")
    pos_idx = np.flatnonzero(y_train)
    neg_idx = np.flatnonzero(~y_train)
    if pos_idx.size == 0 or neg_idx.size == 0:
        raise ValueError("training set needs both positive and negative studies")
    if y_test.all() or not y_test.any():
        raise ValueError("test set needs both positive and negative studies for an AUC")

    rng = np.random.default_rng(seed)
    values = np.empty(episodes, dtype=np.float64)
    for e in range(episodes):
        pos = rng.choice(pos_idx, size=min(k, pos_idx.size), replace=False)
        neg = rng.choice(neg_idx, size=min(k, neg_idx.size), replace=False)
        prototypes = _normalise(np.stack([train[pos].mean(axis=0), train[neg].mean(axis=0)]))
        sims = test @ prototypes.T
        values[e] = roc_auc(sims[:, 0] - sims[:, 1], y_test)
    low, high = np.percentile(values, [2.5, 97.5])
    return {"mean": float(values.mean()), "low": float(low), "high": float(high), "values": values}


def retrieval_metrics(
    query_emb: ArrayLike, target_emb: ArrayLike, groups: ArrayLike | None = None
) -> dict[str, float]:
    """Paired retrieval (query i's answer is target i): recall@1/5/10, median rank, MRR.

    With ``groups``, any target in the same group as target i also counts as correct, so
    studies sharing an identical report are not punished for retrieving each other's.
    A wrong target tied with the best correct one ranks above it: a collapsed encoder
    (all embeddings equal) must score worst, not perfectly.
    """
    q = _normalise(query_emb)
    t = _normalise(target_emb)
    n = q.shape[0]
    if t.shape != q.shape:
        raise ValueError(f"query {q.shape} and target {t.shape} must be paired row for row")
    g = np.arange(n) if groups is None else np.asarray(groups)
    if g.shape != (n,):
        raise ValueError(f"groups must have shape ({n},), got {g.shape}")

    ranks = np.empty(n, dtype=np.float64)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        sims = q[start:stop] @ t.T
        correct = g[start:stop, None] == g[None, :]
        best_correct = np.where(correct, sims, -np.inf).max(axis=1, keepdims=True)
        ranks[start:stop] = 1 + np.sum(~correct & (sims >= best_correct), axis=1)
    return {
        "recall@1": float(np.mean(ranks <= 1)),
        "recall@5": float(np.mean(ranks <= 5)),
        "recall@10": float(np.mean(ranks <= 10)),
        "median_rank": float(np.median(ranks)),
        "mrr": float(np.mean(1.0 / ranks)),
    }


def precision_at_k(scores: ArrayLike, labels: ArrayLike, k: int = 10) -> float:
    """Fraction of positives among the k top-scored items (k clipped to N).

    Items tied at the k-th score share the remaining slots pro rata (the expectation
    under random tie-breaking), so the result does not depend on input order.
    """
    s, y = _scores_labels(scores, labels)
    if k < 1:
        raise ValueError("k must be at least 1")
    k = min(k, s.size)
    if k == 0:
        return float("nan")
    kth = np.sort(s)[::-1][k - 1]
    above = s > kth
    tied = s == kth
    slots = k - int(above.sum())
    hits = float(y[above].sum()) + slots * float(y[tied].mean())
    return hits / k


def linear_probe(
    features: ArrayLike, labels: ArrayLike, l2: float = 1.0
) -> tuple[FloatArray, float]:
    """(weights, bias) of a class-balanced ridge classifier: least squares on +-1 targets,
    each class weighing half. A probe of what the features hold, without any text."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    if y.all() or not y.any():
        raise ValueError("a probe needs positive and negative examples")
    weight = np.where(y, 0.5 / y.sum(), 0.5 / (~y).sum())
    design = np.hstack([x, np.ones((len(x), 1))])
    gram = design.T @ (design * weight[:, None]) + l2 / len(x) * np.eye(design.shape[1])
    beta = np.linalg.solve(gram, design.T @ (weight * np.where(y, 1.0, -1.0)))
    return beta[:-1], float(beta[-1])


def bootstrap_ci(
    metric_fn: Callable[..., float],
    *arrays: ArrayLike,
    n: int = 1000,
    seed: int = 0,
    strata: ArrayLike | None = None,
) -> tuple[float, float]:
    """95% percentile bootstrap interval of ``metric_fn(*arrays)``, resampling rows jointly.

    With ``strata`` (one key per row) each stratum is resampled to its own size, as an
    AUC's interval is usually drawn (positives and negatives apart, as pROC does): every
    resample then has both classes and the interval reflects the cases there are.
    Resamples where the metric is NaN (e.g. an AUC with one class drawn) are skipped;
    (nan, nan) if all of them are.
    """
    data: list[NDArray[Any]] = [np.asarray(a) for a in arrays]
    if not data:
        raise ValueError("bootstrap_ci needs at least one array")
    rows = data[0].shape[0]
    if any(a.shape[0] != rows for a in data):
        raise ValueError("all arrays must have the same number of rows")
    keys = np.zeros(rows) if strata is None else np.asarray(strata)
    if keys.shape[0] != rows:
        raise ValueError("strata must have one key per row")
    groups = [np.flatnonzero(keys == k) for k in np.unique(keys)]
    rng = np.random.default_rng(seed)
    stats = np.empty(n, dtype=np.float64)
    for b in range(n):
        idx = np.concatenate([g[rng.integers(0, g.size, size=g.size)] for g in groups])
        stats[b] = metric_fn(*(a[idx] for a in data))
    stats = stats[~np.isnan(stats)]
    if stats.size == 0:
        return float("nan"), float("nan")
    low, high = np.percentile(stats, [2.5, 97.5])
    return float(low), float(high)
