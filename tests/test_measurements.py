"""Measurements read from reports: the regression targets of `trainer.measurements`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from phantom.archive import generate
from trainer.loop import _measurement_loss
from trainer.measurements import Targets, measure

INTERNAL = """FINDINGS:
LV: Normal LV size: LVEDV 181 ml (LVEDVi 90 ml/m²). Normal LV systolic function, LVEF 64% \
(LVESV 65 ml). Normal wall thickness, maximal 10 mm.
Right ventricle: RV not dilated, RVEDV 199 ml, RVEDVi 98 ml/m². Normal RV systolic \
function, RVEF 55%.
Atria/aorta: Normal LA size, AP diameter 34 mm. Mildly dilated aortic root, 43 mm at the \
sinuses.
Pericardium: Moderate pericardial effusion measuring 12 mm.
IMPRESSION:
1. Mildly dilated aortic root (43 mm).
"""

# The external site's wording: no abbreviations, numbers after the words they measure.
EXTERNAL = """Report:
The left ventricle is of normal size (end-diastolic volume 150 ml, 80 ml/m²). Global \
contractility is normal, with a left ventricular ejection fraction of 61%. The myocardium \
is of normal thickness, measuring at most 9 mm. The right ventricle is of normal size \
(170 ml, 92 ml/m²). Right ventricular contractility is normal (EF 52%). The left atrium \
is of normal size (31 mm). The aortic root measures 33 mm at the sinuses, which is normal.
"""


def test_each_measurement_is_the_number_after_its_words() -> None:
    assert measure(INTERNAL) == {
        "lvedvi": 90.0,
        "lvef": 64.0,
        "wall_mm": 10.0,
        "rvedvi": 98.0,
        "rvef": 55.0,
        "la_mm": 34.0,
        "aortic_root_mm": 43.0,
        "effusion_mm": 12.0,
    }
    assert measure(EXTERNAL) == {
        "lvedvi": 80.0,
        "lvef": 61.0,
        "wall_mm": 9.0,
        "rvedvi": 92.0,
        "rvef": 52.0,
        "la_mm": 31.0,
        "aortic_root_mm": 33.0,
    }


def test_a_comparison_with_an_earlier_study_is_not_read_as_the_value() -> None:
    text = "FINDINGS:\nLVEF has improved from 40% to 55% since the study of 2024.\nLVEF 55%.\n"
    assert measure(text) == {"lvef": 55.0}
    assert measure("FINDINGS:\nLVEF has fallen from 60% to 45% since 2024.\n") == {}


def test_a_report_without_findings_heading_is_read_whole() -> None:
    assert measure("Dilated aortic root, 47 mm.") == {"aortic_root_mm": 47.0}
    assert measure("Normal study.") == {}


def test_targets_are_standardised_and_missing_where_a_report_is_silent() -> None:
    reports = [
        "Aortic root 30 mm. LVEF 60%.",
        "Aortic root 40 mm. LVEF 50%.",
        "Aortic root 35 mm.",
        "No measurement here.",
    ]
    targets = Targets.of(reports)
    assert targets.names == ["aortic_root_mm", "lvef"]  # effusion etc.: no report states it
    root = targets.values[:, 0]
    assert np.nanmean(root) == pytest.approx(0.0, abs=1e-6)
    assert np.nanstd(root) == pytest.approx(1.0, abs=1e-5)
    assert root[0] < root[2] < root[1] and np.isnan(root[3])
    assert np.isnan(targets.values[2:, 1]).all() and targets.values[0, 1] > 0


def test_a_measurement_one_report_states_is_no_target() -> None:
    targets = Targets.of(["Aortic root 30 mm.", "Normal."])
    assert targets.names == [] and targets.values.shape == (2, 0)


def test_phantom_reports_give_the_measured_truth(tmp_path: Path) -> None:
    """Both phantom styles: every report's numbers, read back, are the truth rounded."""
    truth_key = {
        "aortic_root_mm": "aortic_root_mm",
        "la_mm": "la_diameter_mm",
        "wall_mm": "max_wall_mm",
        "lvedvi": "lvedvi",
        "rvedvi": "rvedvi",
        "lvef": "lvef",
        "rvef": "rvef",
    }
    for style, seed in (("internal", 41), ("external", 42)):
        root = tmp_path / style
        generate(root, 6, seed=seed, style=style, workers=1, size="small")
        reports = {
            r["study_uid"]: r["text"]
            for r in map(json.loads, (root / "reports.jsonl").read_text().splitlines())
        }
        for label in map(json.loads, (root / "labels.jsonl").read_text().splitlines()):
            read = measure(reports[label["study_uid"]])
            for name, key in truth_key.items():
                assert read[name] == pytest.approx(label["measurements"][key], abs=0.51), name


def test_the_loss_covers_only_what_reports_state() -> None:
    head = torch.nn.Linear(2, 2)
    with torch.no_grad():
        head.weight.copy_(torch.eye(2))
        head.bias.zero_()
    video = torch.tensor([[1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    targets = Targets(["a", "b"], np.array([[1.0, np.nan], [0.5, 1.0]], np.float32))
    loss = _measurement_loss(head, video, targets, np.array([0, 1]))
    # Huber (delta 1) of the three stated values: 0, 0.5 * 0.5², 0.
    assert loss.item() == pytest.approx(0.125 / 3)
    silent = Targets(["a"], np.full((2, 1), np.nan, np.float32))
    nothing = _measurement_loss(torch.nn.Linear(2, 1), video, silent, np.array([0, 1]))
    assert nothing.item() == 0.0
    nothing.backward()  # a batch whose reports state nothing still steps
