"""Report statements: how reports of both styles split, and which study makes which."""

from __future__ import annotations

from trainer.statements import findings_section, report_statements, statement_table, statements

INTERNAL = """CARDIAC MRI
INDICATION: Known CAD, assess viability.
TECHNIQUE: 1.5T scanner. Cine SSFP.
FINDINGS:
Left ventricle: The LV is mildly dilated, LVEDVi 105 ml/m². Normal wall thickness, maximal 9 mm.
Pericardium: Normal pericardium, no effusion.
IMPRESSION:
1. Apical LV aneurysm (LVEF 2.5%).
2) No LV thrombus.
"""
EXTERNAL = """Cardiac magnetic resonance imaging

Clinical details: Chest pain.

REPORT:
The right ventricle is of normal size (180 ml). There is no pericardial effusion.

CONCLUSION: Mildly enlarged left atrium (45 mm). Normal right ventricle."""


def test_statements_split_items_lines_and_sentences_but_not_decimals() -> None:
    assert statements("1. Apical LV aneurysm (LVEF 2.5%).\n2) No LV thrombus.") == [
        "Apical LV aneurysm (LVEF 2.5%).",
        "No LV thrombus.",
    ]
    assert statements("Severely dilated LV, 160 ml/m². No LGE; in keeping with DCM.") == [
        "Severely dilated LV, 160 ml/m².",
        "No LGE; in keeping with DCM.",
    ]


def test_the_findings_section_of_both_styles_without_indication_or_summary() -> None:
    internal = findings_section(INTERNAL)
    assert "mildly dilated" in internal and "CAD" not in internal and "aneurysm" not in internal
    external = findings_section(EXTERNAL)
    assert "normal size" in external and "Chest pain" not in external
    assert "enlarged left atrium" not in external
    assert findings_section("Normal study.") == ""


def test_report_statements_are_the_impressions_then_the_findings_without_row_labels() -> None:
    impression = "1. Apical LV aneurysm (LVEF 2.5%).\n2) No LV thrombus."
    assert report_statements(impression, INTERNAL) == [
        "Apical LV aneurysm (LVEF 2.5%).",
        "No LV thrombus.",
        "The LV is mildly dilated, LVEDVi 105 ml/m².",
        "Normal wall thickness, maximal 9 mm.",
        "Normal pericardium, no effusion.",
    ]
    assert report_statements("Normal right ventricle.", EXTERNAL) == [
        "Normal right ventricle.",
        "The right ventricle is of normal size (180 ml).",
        "There is no pericardial effusion.",
    ]


def test_statement_table_merges_wordings_that_differ_only_in_numbers() -> None:
    table = statement_table(
        [
            ["Severely impaired LV function (LVEF 24%).", "No LGE."],
            ["Severely impaired LV function (LVEF 20%).", "Apical LV aneurysm."],
            ["", "..."],
        ]
    )
    assert table.texts == [
        "Severely impaired LV function (LVEF 24%).",
        "No LGE.",
        "Apical LV aneurysm.",
    ]
    assert table.made.tolist() == [
        [True, True, False],
        [True, False, True],
        [False, False, False],
    ]
