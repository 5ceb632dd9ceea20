"""Evaluation's prompt check on hand-made vectors whose rankings are known."""

from __future__ import annotations

import numpy as np

from cmrclip.metrics import roc_auc
from cmrclip.prompts import PROMPTS
from cmrsearch.vocabulary import FINDINGS
from trainer.evaluate import Encoded, _binary, _check_prompts, _prompt_scores

RIGHT = np.array([1.0, 0.0, 0.0], np.float32)  # points at the studies with the finding


def unit(*rows: list[float]) -> np.ndarray:
    x = np.array(rows, np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_prompts_that_rank_training_studies_the_wrong_way_are_left_out() -> None:
    rng = np.random.default_rng(0)
    y = np.arange(40) < 20
    studies = unit(*[[1.0 if p else -1.0, float(rng.normal()), 1.0] for p in y])
    train = np.arange(30)  # held out: 30..39, all without the finding
    truth = {f: y.copy() for f in FINDINGS}
    truth["lv_thrombus"] = np.zeros(40, bool)  # no case to check its prompts on
    prompts = {}
    for finding, (positive, _) in PROMPTS.items():
        # The first positive points at the finding, the others away from it; both
        # negatives point at it, the second less surely (a noisy direction).
        pos = np.vstack([RIGHT] + [-RIGHT] * (len(positive) - 1))
        neg = unit([1.0, 0.0, 0.0], [1.0, 8.0, 0.0])
        prompts[finding] = (pos, neg)
    enc = Encoded(studies, studies, prompts, {})

    checked, texts = _check_prompts(enc, train, truth)

    positive, negative = PROMPTS["lv_dilation"]
    assert texts["lv_dilation"] == {"positive": [positive[0]], "negative": [negative[1]]}
    assert np.array_equal(checked.prompts["lv_dilation"][0], RIGHT[None, :])
    # Nothing to check them on: every prompt stays.
    assert texts["lv_thrombus"] == {
        "positive": list(PROMPTS["lv_thrombus"][0]),
        "negative": list(PROMPTS["lv_thrombus"][1]),
    }
    # Left out, the wrong-way prompts no longer turn the score around.
    assert roc_auc(_prompt_scores(enc)["lv_dilation"], y) < 0.2
    assert roc_auc(_prompt_scores(checked)["lv_dilation"], y) > 0.8


def test_an_auc_interval_needs_two_cases_of_each_class() -> None:
    scores = np.linspace(0.0, 1.0, 12)
    one_case = np.arange(12) == 11
    assert "auc_95ci" not in _binary(scores, one_case, 0.5)
    three = np.isin(np.arange(12), [2, 9, 11])
    result = _binary(scores, three, 0.5)
    low, high = result["auc_95ci"]
    assert low < result["auc"] < high
