"""Report statements: how reports of both styles split, and which study makes which."""

from __future__ import annotations

import pytest

from cmrclip.negation import affirmed
from trainer.statements import (
    about,
    core,
    findings_section,
    interpretation,
    report_statements,
    spelt_out,
    statement_table,
    statements,
    unlocated,
)

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
            ["Ejection fraction 24 percent.", "No effusion."],
            ["Ejection fraction 20 percent.", "Apical aneurysm."],
            ["", "..."],
        ]
    )
    assert table.texts == [
        "Ejection fraction 24 percent.",
        "No effusion.",
        "Apical aneurysm.",
        "Effusion.",  # the affirmed form of "No effusion.", a hard negative of study 0 alone
    ]
    assert table.made.tolist() == [
        [True, True, False, False],
        [True, False, True, False],
        [False, False, False, False],
    ]
    assert table.denied.tolist() == [
        [False, False, False, True],
        [False, False, False, False],
        [False, False, False, False],
    ]


def test_a_study_also_makes_the_core_and_the_spelt_out_forms_of_its_statements() -> None:
    table = statement_table([["Dilated LV, 120 ml/m²."], ["No LGE."]])
    assert table.texts == [
        "Dilated LV, 120 ml/m².",
        "Dilated left ventricle, 120 ml/m².",
        "Dilated LV.",
        "Dilated left ventricle.",
        "No LGE.",
        "No late gadolinium enhancement.",
        "LGE.",
        "Late gadolinium enhancement.",
    ]
    assert table.made.tolist() == [[True] * 4 + [False] * 4, [False] * 4 + [True] * 2 + [False] * 2]
    assert table.denied.tolist() == [[False] * 8, [False] * 6 + [True] * 2]


def test_spelt_out_forms_use_the_adjective_before_a_noun_and_the_noun_otherwise() -> None:
    assert spelt_out("Dilated RV.") == "Dilated right ventricle."
    assert (
        spelt_out("Normal RV size and function.") == "Normal right ventricular size and function."
    )
    assert spelt_out("LA not dilated (36 mm AP).") == "Left atrium not dilated (36 mm AP)."
    assert spelt_out("No LGE; in keeping with DCM.") == (
        "No late gadolinium enhancement; in keeping with dilated cardiomyopathy."
    )
    assert spelt_out("Preserved biventricular systolic function.") is None
    assert spelt_out("LAD territory.") is None  # whole words only


def test_a_core_is_the_clause_before_the_first_comma_colon_or_bracket() -> None:
    assert core("Normal LV size: LVEDV 190 ml (LVEDVi 94 ml/m²).") == "Normal LV size."
    assert core("The LV is mildly dilated, LVEDV 201 ml.") == "The LV is mildly dilated."
    assert core("Apical LV aneurysm.") is None
    assert core("Mild LA dilatation (45 mm).") == "Mild LA dilatation."
    assert core("Normal (LVEF 60%).") is None  # one word says too little


# Both styles, every way a location is written: prepositional, bracketed, apposed, or
# as the adjective of segments, a wall or an infarction.
UNLOCATED = {
    "Subendocardial LGE in the LAD territory (mid to apical anterior), consistent with "
    "previous infarction.": "Subendocardial LGE, consistent with previous infarction.",
    "Hypokinetic basal to mid inferior segments (RCA territory).": "Hypokinetic segments.",
    "Transmural infarct scar, LAD territory (anterior segments).": "Transmural infarct scar.",
    "Appearances in keeping with previous LCx territory infarction.": (
        "Appearances in keeping with previous infarction."
    ),
    "There is akinesis of the lateral segments, corresponding to the circumflex territory.": (
        "There is akinesis."
    ),
    "Regional dyskinesia of the inferior and inferoseptal wall (RCA).": "Regional dyskinesia.",
}


def test_a_regional_statement_is_also_made_without_its_territory_and_segments() -> None:
    assert {s: unlocated(s) for s in UNLOCATED} == UNLOCATED
    # Where a finding lies is what names it outside coronary territories: kept.
    kept = [
        "Severe asymmetric septal hypertrophy: septum 21 mm, lateral wall 9 mm.",
        "Mid-wall LGE in the basal to mid septum.",
        "Regional wall motion abnormality.",
    ]
    assert [unlocated(s) for s in kept] == [None, None, None]


# An interpretation closes a statement after a comma or in brackets, with or without
# an article; every other statement has none.
INTERPRETATIONS = {
    "Mid-wall LGE in the basal to mid septum, non-ischaemic pattern.": "Non-ischaemic pattern.",
    "Patchy LGE in the septum (non-ischaemic distribution).": "Non-ischaemic distribution.",
    "Subepicardial LGE of the inferolateral wall, a non-ischaemic pattern.": (
        "Non-ischaemic pattern."
    ),
    "Transmural LGE in the LAD territory (anterior), consistent with previous infarction.": (
        "Consistent with previous infarction."
    ),
    "Mildly depressed LV systolic function (EF 48%), in keeping with DCM.": "In keeping with DCM.",
    "Concentric LV hypertrophy, suggestive of cardiac amyloidosis.": (
        "Suggestive of cardiac amyloidosis."
    ),
    "Mildly dilated LA, AP diameter 45 mm.": None,
    "LV thrombus; anticoagulation advised.": None,
    "Moderate pericardial effusion, no tamponade features.": None,
    "Findings in keeping with previous infarction.": None,
}


def test_the_interpretation_closing_a_statement_is_a_statement_of_its_own() -> None:
    assert {s: interpretation(s) for s in INTERPRETATIONS} == INTERPRETATIONS


# Two scars of one kind, written in different places, and a heart without scar: with its
# switch, a derived form is the statement the two scars share.
@pytest.mark.parametrize(
    ("switch", "scars", "shared"),
    [
        (
            "unlocate",
            [
                "Subendocardial LGE in the inferior segments (RCA territory).",
                "Subendocardial LGE in the anterior and anteroseptal segments (LAD territory).",
            ],
            "Subendocardial LGE.",
        ),
        (
            "interpret",
            [
                "Mid-wall LGE in the basal to mid septum, non-ischaemic pattern.",
                "Subepicardial LGE in the basal to mid lateral wall, non-ischaemic pattern.",
            ],
            "Non-ischaemic pattern.",
        ),
    ],
)
def test_scars_written_in_different_places_share_a_derived_statement(
    switch: str, scars: list[str], shared: str
) -> None:
    reports = [[scar] for scar in scars] + [["No LGE."]]
    table = statement_table(reports, **{switch: True})
    assert table.made[:, table.texts.index(shared)].tolist() == [True, True, False]
    assert shared not in statement_table(reports).texts  # off by default


def test_affirmed_forms_drop_the_first_negation_cue_of_either_style() -> None:
    assert affirmed("No LGE.") == "LGE."
    assert affirmed("LV not dilated, LVEDV 189 ml.") == "LV dilated, LVEDV 189 ml."
    assert affirmed("There is no segmental wall motion abnormality.") == (
        "There is segmental wall motion abnormality."
    )
    assert affirmed("Late enhancement imaging shows no myocardial scar.") == (
        "Late enhancement imaging shows myocardial scar."
    )
    assert affirmed("Normal right ventricle.") is None
    assert affirmed("Known anterior infarct.") is None  # "no" only as a word of its own


def test_an_affirmed_form_some_report_makes_is_no_hard_negative_of_that_report() -> None:
    table = statement_table([["No pericardial effusion."], ["Pericardial effusion."]])
    assert table.texts == ["No pericardial effusion.", "Pericardial effusion."]
    assert table.denied.tolist() == [[False, True], [False, False]]


@pytest.mark.parametrize(
    ("view", "statement", "shown"),
    [
        ("lge", "Mid-wall LGE in the basal to mid septum, non-ischaemic pattern.", True),
        ("lge", "No late gadolinium enhancement to suggest infarction or infiltration.", True),
        ("lge", "Linear intramyocardial enhancement of the septum.", True),
        ("lge", "Transmural scar in the LAD territory.", True),
        ("lge", "Mid-wall septal fibrosis.", True),
        ("lge", "Non-ischaemic pattern.", True),  # the interpretation form of an LGE statement
        ("lge", "Previous inferior myocardial infarction.", True),
        ("lge", "No myocardial scar.", True),  # what LGE rules out teaches the LGE view too
        ("lge", "Moderately dilated LV with severely impaired systolic function.", False),
        ("lge", "Normal RV size and function.", False),
        ("lge", "Small pericardial effusion.", False),
        ("lge", "Mildly dilated aortic root, 43 mm at the sinuses.", False),
        ("lvot", "Mildly dilated aortic root, 43 mm at the sinuses.", True),
        ("lvot", "The aortic root measures 33 mm at the sinuses, which is normal.", True),
        ("lvot", "Ectatic ascending aorta.", True),
        ("lvot", "Trileaflet aortic valve.", True),
        ("lvot", "Normal LA size, AP diameter 34 mm.", False),
        ("lvot", "No LGE.", False),
    ],
)
def test_a_views_statements_are_those_that_say_what_it_shows(
    view: str, statement: str, shown: bool
) -> None:
    assert about(view, statement) is shown


def test_the_statement_table_marks_what_each_view_shows() -> None:
    table = statement_table(
        [["Dilated LV.", "No LGE."], ["Subepicardial LGE, lateral wall.", "Dilated aortic root."]]
    )

    def shown(view: str) -> list[str]:
        return [text for text, it in zip(table.texts, table.about[view], strict=True) if it]

    assert set(table.texts) - set(shown("lge")) - set(shown("lvot")) == {
        "Dilated LV.",
        "Dilated left ventricle.",
    }
    assert "LGE." in shown("lge")  # the affirmed form: a hard negative of the first study
    assert shown("lvot") == ["Dilated aortic root."]
    assert {len(m) for m in table.about.values()} == {len(table.texts)} == {table.made.shape[1]}
