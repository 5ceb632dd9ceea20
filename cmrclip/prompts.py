"""Zero-shot prompts per finding: how a report states it, and how a normal report reads.

Written in the register of CMR reports ("Dilated LA.", "Normal RV systolic function."),
the language the model learns. Negatives are the statements of normal reports, never
pertinent negatives: "No LV thrombus." is written mostly about diseased hearts, so a
text tower that reads negation (`cmrclip.negation`) rightly puts it near them.
"""

from __future__ import annotations

from typing import Final

from cmrsearch.vocabulary import FINDINGS

PROMPTS: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "lv_dilation": (
        (
            "Dilated LV.",
            "The left ventricle is dilated.",
            "Moderately dilated LV, increased LVEDV.",
        ),
        ("Normal LV size.", "LV not dilated."),
    ),
    "lv_systolic_dysfunction": (
        (
            "Impaired LV systolic function.",
            "Reduced LVEF.",
            "Severely impaired left ventricular systolic function.",
        ),
        ("Normal LV systolic function.", "Normal left ventricular ejection fraction."),
    ),
    "lv_hypertrophy": (
        (
            "Left ventricular hypertrophy.",
            "Concentric LV hypertrophy.",
            "Concentric LVH, increased maximal wall thickness.",
        ),
        ("Normal wall thickness.", "Normal LV wall thickness."),
    ),
    "asymmetric_septal_hypertrophy": (
        (
            "Asymmetric septal hypertrophy.",
            "Hypertrophic cardiomyopathy with septal thickening.",
            "Asymmetric thickening of the interventricular septum.",
        ),
        ("Normal septal thickness.", "Normal wall thickness."),
    ),
    "rv_dilation": (
        (
            "Dilated RV.",
            "The right ventricle is dilated.",
            "Moderately dilated RV, increased RVEDV.",
        ),
        ("Normal RV size.", "RV not dilated."),
    ),
    "rv_systolic_dysfunction": (
        ("Impaired RV systolic function.", "Reduced RVEF.", "RV systolic impairment."),
        ("Normal RV systolic function.", "Normal RV size and function."),
    ),
    "regional_wall_motion_abnormality": (
        (
            "Regional wall motion abnormality in a coronary territory.",
            "Hypokinetic inferior segments (RCA territory).",
            "Akinetic anterior segments (LAD territory).",
        ),
        ("No regional wall motion abnormality.", "Normal regional wall motion."),
    ),
    "apical_aneurysm": (
        ("Apical LV aneurysm.", "Thin-walled dyskinetic apical aneurysm."),
        ("Normal apical contraction.", "Normal LV apex."),
    ),
    "lv_thrombus": (
        ("LV thrombus.", "Mural LV thrombus.", "Apical left ventricular thrombus."),
        # A normal report says nothing of thrombus; it rules out the wall that holds one.
        ("Normal LV systolic function.", "No regional wall motion abnormality."),
    ),
    "pericardial_effusion": (
        ("Pericardial effusion.", "Moderate pericardial effusion."),
        ("No pericardial effusion.", "Normal pericardium."),
    ),
    "lge_ischemic": (
        (
            "Subendocardial LGE in a coronary territory, consistent with previous infarction.",
            "Transmural infarct scar.",
            "Ischaemic pattern of late gadolinium enhancement.",
        ),
        ("No LGE.", "No myocardial scar."),
    ),
    "lge_nonischemic": (
        (
            "Mid-wall LGE, non-ischaemic pattern.",
            "Patchy non-ischaemic late gadolinium enhancement.",
            "Subepicardial LGE in a non-coronary distribution.",
        ),
        ("No LGE.", "No myocardial fibrosis."),
    ),
    "la_enlargement": (
        ("Dilated LA.", "Left atrial enlargement.", "Moderately dilated left atrium."),
        ("Normal LA size.", "LA not dilated."),
    ),
    "aortic_root_dilation": (
        ("Dilated aortic root.", "Aortic root dilatation at the sinuses."),
        ("Normal aortic root dimension.", "Normal aortic root."),
    ),
}
assert set(PROMPTS) == set(FINDINGS)

# Free-text query per finding, for finding-query precision@10: the finding named as a
# reader would type it, with no pattern or place the finding does not require. Truth
# counts every non-ischaemic pattern (mid-wall, patchy, diffuse, subepicardial), every
# infarct depth and every territory; a query naming one of them ("Mid-wall LGE,
# non-ischaemic pattern.") asks for part of the finding and ranks the rest below other
# hearts (README).
QUERIES: Final[dict[str, str]] = {
    "lv_dilation": "Dilated LV.",
    "lv_systolic_dysfunction": "Impaired LV systolic function.",
    "lv_hypertrophy": "Left ventricular hypertrophy.",
    "asymmetric_septal_hypertrophy": "Asymmetric septal hypertrophy.",
    "rv_dilation": "Dilated RV.",
    "rv_systolic_dysfunction": "Impaired RV systolic function.",
    "regional_wall_motion_abnormality": "Regional wall motion abnormality.",
    "apical_aneurysm": "Apical LV aneurysm.",
    "lv_thrombus": "LV thrombus.",
    "pericardial_effusion": "Pericardial effusion.",
    "lge_ischemic": "Ischaemic LGE.",
    "lge_nonischemic": "Non-ischaemic LGE.",
    "la_enlargement": "Dilated LA.",
    "aortic_root_dilation": "Dilated aortic root.",
}
assert set(QUERIES) == set(FINDINGS)
