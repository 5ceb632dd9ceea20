"""Evaluation metrics against hand-computed values and brute-force definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cmrclip.metrics import (
    best_threshold,
    binary_metrics,
    bootstrap_ci,
    linear_probe,
    precision_at_k,
    prototype_episodes,
    retrieval_metrics,
    roc_auc,
    roc_curve,
    zero_shot_scores,
)


def pairwise_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """The AUC definition itself: P(pos > neg) + P(pos == neg) / 2 over all pairs."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    diff = pos[:, None] - neg[None, :]
    return float(np.mean((diff > 0) + 0.5 * (diff == 0)))


# --- AUC and ROC -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scores", "labels", "expected"),
    [
        ([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1], 1.0),  # perfect separation
        ([0.8, 0.9, 0.1, 0.2], [0, 0, 1, 1], 0.0),  # inverted
        ([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1], 0.5),  # all ties
        # pairs (pos, neg): (.35,.1)=1 (.35,.4)=0 (.8,.1)=1 (.8,.4)=1 -> 3/4
        ([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], 0.75),
        # pos .5 vs negs .2/.5 -> 1 + 1/2; pos .9 vs both -> 2; 3.5 / 4
        ([0.2, 0.5, 0.5, 0.9], [0, 0, 1, 1], 0.875),
        ([0.3, 0.7, 0.7], [1, 0, 1], 0.25),  # (.3,.7)=0, (.7,.7)=1/2 -> 1/2 / 2
    ],
)
def test_roc_auc_hand_cases(scores: list[float], labels: list[int], expected: float) -> None:
    assert roc_auc(np.array(scores), np.array(labels)) == pytest.approx(expected, abs=1e-12)


def test_roc_auc_accepts_bool_labels_and_is_nan_with_one_class() -> None:
    assert roc_auc(np.array([0.1, 0.9]), np.array([False, True])) == 1.0
    assert math.isnan(roc_auc(np.array([0.1, 0.9]), np.array([1, 1])))
    assert math.isnan(roc_auc(np.array([0.1, 0.9]), np.array([0, 0])))


@pytest.mark.parametrize("seed", range(5))
def test_roc_auc_matches_pairwise_definition_and_trapezoid_area(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=300)
    # Rounding creates many ties, within and across classes.
    scores = np.round(rng.normal(size=300) + 0.7 * labels, 1)
    auc = roc_auc(scores, labels)
    fpr, tpr, thresholds = roc_curve(scores, labels)
    assert auc == pytest.approx(pairwise_auc(scores, labels), abs=1e-9)
    assert auc == pytest.approx(float(np.trapezoid(tpr, fpr)), abs=1e-9)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert thresholds[0] == np.inf and np.all(np.diff(thresholds) < 0)


def test_roc_curve_hand_case() -> None:
    fpr, tpr, thresholds = roc_curve(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
    np.testing.assert_allclose(thresholds, [np.inf, 0.8, 0.4, 0.35, 0.1])
    np.testing.assert_allclose(tpr, [0, 0.5, 0.5, 1, 1])
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 1])


def test_roc_curve_needs_both_classes() -> None:
    with pytest.raises(ValueError, match="both"):
        roc_curve(np.array([0.1, 0.2]), np.array([1, 1]))


# --- Threshold and binary metrics --------------------------------------------------------

# Nine studies, positives at 0.4, 0.5 and 0.9. Cuts (score >= t): at 0.9 sens 1/3, spec 1
# (BA 0.667, but the best plain accuracy, 7/9); at 0.5 sens 2/3, spec 1/2 (0.583); at 0.4
# sens 1, spec 1/2 (BA 0.75, the unique maximum); at 0.3 sens 1, spec 1/3 (0.667).
THR_SCORES = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
THR_LABELS = np.array([0, 0, 0, 1, 1, 0, 0, 0, 1])


def test_best_threshold_maximises_balanced_accuracy() -> None:
    t = best_threshold(THR_SCORES, THR_LABELS)
    assert t == pytest.approx(0.35)  # midway between the cut at 0.4 and the next score down
    assert binary_metrics(THR_SCORES, THR_LABELS, t)["balanced_accuracy"] == pytest.approx(0.75)


def test_best_threshold_perfect_separation_sits_in_the_gap() -> None:
    assert best_threshold(np.array([0.1, 0.2, 0.7, 0.9]), np.array([0, 0, 1, 1])) == (
        pytest.approx(0.45)
    )


def test_binary_metrics_hand_case() -> None:
    # At 0.35: predicted positive 0.4..0.9 -> tp 3, fp 3, fn 0, tn 3.
    m = binary_metrics(THR_SCORES, THR_LABELS, 0.35)
    assert m == pytest.approx(
        {
            "balanced_accuracy": 0.75,
            "f1": 2 * 3 / (2 * 3 + 3 + 0),
            "sensitivity": 1.0,
            "specificity": 0.5,
            "precision": 0.5,
        }
    )
    # At 0.85: tp 1, fp 0, fn 2, tn 6.
    m = binary_metrics(THR_SCORES, THR_LABELS, 0.85)
    assert m == pytest.approx(
        {
            "balanced_accuracy": (1 / 3 + 1) / 2,
            "f1": 2 / (2 + 0 + 2),
            "sensitivity": 1 / 3,
            "specificity": 1.0,
            "precision": 1.0,
        }
    )


def test_binary_metrics_zero_divisions_are_zero() -> None:
    # Nothing predicted positive and no positives at all: every ratio but specificity is 0/0.
    m = binary_metrics(np.array([0.1, 0.2]), np.array([0, 0]), 0.5)
    assert m == {
        "balanced_accuracy": 0.5,
        "f1": 0.0,
        "sensitivity": 0.0,
        "specificity": 1.0,
        "precision": 0.0,
    }


# --- Zero-shot -----------------------------------------------------------------------------


def test_zero_shot_scores_hand_case() -> None:
    studies = np.array([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0]])
    positives = np.array([[1.0, 0.0], [5.0, 0.0]])  # both normalise to (1, 0)
    negatives = np.array([[0.0, 2.0], [1.0, 1.0]])
    r = 1 / math.sqrt(2)
    expected = [
        1 - (0 + r) / 2,  # (1,0): cos 1 to positives; 0 and r to negatives
        0 - (1 + r) / 2,  # (0,1): cos 0 to positives; 1 and r to negatives
        r - (r + 1) / 2,  # (1,1)/√2: cos r to positives; r and 1 to negatives
    ]
    np.testing.assert_allclose(zero_shot_scores(studies, positives, negatives), expected)


# --- Few-shot ------------------------------------------------------------------------------


def clusters(rng: np.random.Generator, n: int, dim: int = 8) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.random(n) < 0.4
    centres = np.zeros((2, dim))
    centres[0, 0] = centres[1, 1] = 4.0  # negatives around 4·e1, positives around 4·e2
    return centres[labels.astype(int)] + 0.5 * rng.normal(size=(n, dim)), labels


@pytest.mark.parametrize("k", [1, 16])
def test_prototype_episodes_separated_clusters(k: int) -> None:
    rng = np.random.default_rng(1)
    train_x, train_y = clusters(rng, 200)
    test_x, test_y = clusters(rng, 200)
    out = prototype_episodes(train_x, train_y, test_x, test_y, k=k, episodes=100, seed=3)
    assert out["mean"] > 0.95
    assert out["values"].shape == (100,)
    assert out["low"] <= out["mean"] <= out["high"]


def test_prototype_episodes_random_labels_near_chance() -> None:
    rng = np.random.default_rng(2)
    train_x, test_x = rng.normal(size=(200, 16)), rng.normal(size=(400, 16))
    train_y, test_y = rng.random(200) < 0.5, rng.random(400) < 0.5
    out = prototype_episodes(train_x, train_y, test_x, test_y, k=4, episodes=100, seed=0)
    assert abs(out["mean"] - 0.5) < 0.05
    assert out["low"] <= out["mean"] <= out["high"]
    assert out["low"] < 0.5 < out["high"]


def test_prototype_episodes_deterministic_for_seed() -> None:
    rng = np.random.default_rng(4)
    train_x, train_y = clusters(rng, 60)
    test_x, test_y = rng.normal(size=(50, 8)), rng.random(50) < 0.5
    a = prototype_episodes(train_x, train_y, test_x, test_y, k=2, episodes=30, seed=9)
    b = prototype_episodes(train_x, train_y, test_x, test_y, k=2, episodes=30, seed=9)
    c = prototype_episodes(train_x, train_y, test_x, test_y, k=2, episodes=30, seed=10)
    np.testing.assert_array_equal(a["values"], b["values"])
    assert a["mean"] == b["mean"]
    assert not np.array_equal(a["values"], c["values"])


def test_prototype_episodes_uses_all_when_fewer_than_k() -> None:
    rng = np.random.default_rng(5)
    train_x, test_x = rng.normal(size=(10, 4)), rng.normal(size=(30, 4))
    train_y = np.array([1, 1] + [0] * 8, dtype=bool)  # two positives, eight negatives
    test_y = rng.random(30) < 0.5
    out = prototype_episodes(train_x, train_y, test_x, test_y, k=16, episodes=5, seed=0)
    # Every study of both classes is in every episode, so all episodes agree.
    assert np.all(out["values"] == out["values"][0])
    assert out["low"] == out["mean"] == out["high"]


# --- Retrieval -----------------------------------------------------------------------------


def test_retrieval_identity_is_perfect() -> None:
    m = retrieval_metrics(np.eye(20), np.eye(20))
    assert m == {"recall@1": 1.0, "recall@5": 1.0, "recall@10": 1.0, "median_rank": 1.0, "mrr": 1.0}


def test_retrieval_hand_case_with_known_ranks() -> None:
    targets = np.eye(3)
    queries = np.array(
        [
            [1.0, 0.0, 0.0],  # own target best: rank 1
            [1.0, 0.5, 0.0],  # target 0 scores higher: rank 2
            [1.0, 0.8, 0.3],  # targets 0 and 1 higher: rank 3
        ]
    )
    m = retrieval_metrics(queries, targets)
    assert m == pytest.approx(
        {
            "recall@1": 1 / 3,
            "recall@5": 1.0,
            "recall@10": 1.0,
            "median_rank": 2.0,
            "mrr": (1 + 1 / 2 + 1 / 3) / 3,
        }
    )


def test_retrieval_groups_turn_identical_duplicate_into_hit() -> None:
    # Studies 0 and 1 share one report text, so their targets are identical.
    targets = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    queries = np.array([[1.0, 0.1], [1.0, 0.1], [0.0, 1.0]])
    plain = retrieval_metrics(queries, targets)
    grouped = retrieval_metrics(queries, targets, groups=np.array([0, 0, 1]))
    # Without groups the duplicate ties the own target and counts against it (rank 2).
    assert plain["recall@1"] == pytest.approx(1 / 3)
    assert plain["mrr"] == pytest.approx((1 / 2 + 1 / 2 + 1) / 3)
    assert grouped["recall@1"] == 1.0
    assert grouped["mrr"] == 1.0


def test_retrieval_collapsed_embeddings_rank_last() -> None:
    m = retrieval_metrics(np.ones((20, 4)), np.ones((20, 4)))
    assert m["recall@10"] == 0.0
    assert m["median_rank"] == 20.0


# --- Precision@k and bootstrap ------------------------------------------------------------


def test_precision_at_k_hand_case() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.1, 0.2])
    labels = np.array([1, 0, 1, 1, 0])
    assert precision_at_k(scores, labels, k=3) == pytest.approx(2 / 3)  # .9, .8, .7
    assert precision_at_k(scores, labels, k=1) == 1.0
    assert precision_at_k(scores, labels, k=10) == pytest.approx(3 / 5)  # k clipped to 5


def test_precision_at_k_ties_share_the_last_slot() -> None:
    # One positive clearly on top; one slot left for three tied items, one of them positive.
    scores = np.array([0.5, 1.0, 0.5, 0.5])
    labels = np.array([1, 1, 0, 0])
    assert precision_at_k(scores, labels, k=2) == pytest.approx((1 + 1 / 3) / 2)


def test_linear_probe_finds_the_one_direction_that_separates_a_rare_class() -> None:
    """Five positives among 200, told apart only along the third axis, which carries
    less spread than the two noise axes: the balanced probe ranks all five first."""
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1.0, (200, 3))
    y = np.zeros(200, bool)
    y[:5] = True
    x[:, 2] = np.where(y, 0.6, 0.0) + rng.normal(0, 0.1, 200)
    w, b = linear_probe(x, y)
    assert abs(w[2]) > 5 * max(abs(w[0]), abs(w[1]))
    assert precision_at_k(x @ w + b, y, 5) == 1.0
    with pytest.raises(ValueError, match="positive and negative"):
        linear_probe(x, np.ones(200, bool))


def test_bootstrap_ci_contains_point_estimate() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=2000)
    scores = rng.normal(size=2000) + labels
    auc = roc_auc(scores, labels)
    low, high = bootstrap_ci(roc_auc, scores, labels, n=300, seed=0)
    assert low < auc < high
    assert high - low < 0.06
    assert bootstrap_ci(roc_auc, scores, labels, n=300, seed=0) == (low, high)

    x = rng.normal(size=2000)
    low, high = bootstrap_ci(np.mean, x, n=500, seed=1)
    # Normal-theory half-width is 1.96 / sqrt(2000) ≈ 0.044.
    assert low < x.mean() < high
    assert high - low == pytest.approx(2 * 1.96 / math.sqrt(2000), rel=0.2)


def test_bootstrap_ci_skips_nan_resamples() -> None:
    # With two rows, about half of the resamples draw one class only (AUC NaN).
    low, high = bootstrap_ci(roc_auc, np.array([0.2, 0.8]), np.array([0, 1]), n=200, seed=0)
    assert (low, high) == (1.0, 1.0)
    assert all(math.isnan(v) for v in bootstrap_ci(roc_auc, np.ones(3), np.zeros(3), n=20))


def test_bootstrap_ci_by_strata_keeps_each_stratum_size() -> None:
    labels = np.array([1, 0, 0, 0, 0, 0, 0, 1, 0, 0])
    # Resampled as one pool the number of positives varies; by strata it never does.
    assert bootstrap_ci(np.sum, labels, n=200, seed=0) != (2.0, 2.0)
    assert bootstrap_ci(np.sum, labels, n=200, seed=0, strata=labels) == (2.0, 2.0)
    # Every stratified resample holds both classes, so none is skipped as NaN.
    scores = np.array([0.9, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.35, 0.7, 0.8])
    low, high = bootstrap_ci(roc_auc, scores, labels, n=300, seed=0, strata=labels)
    assert low < roc_auc(scores, labels) < high and high <= 1.0
    with pytest.raises(ValueError, match="one key per row"):
        bootstrap_ci(np.sum, labels, strata=labels[:3])
