"""Zero-shot prompts per finding: how a reader states it, and how a reader rules it out."""

from __future__ import annotations

from typing import Final

from cmrsearch.vocabulary import FINDINGS

PROMPTS: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "lv_dilation": (
        (
            "Dilated left ventricle.",
            "The left ventricle is enlarged.",
            "Moderately dilated LV with increased end-diastolic volume.",
        ),
        ("Normal left ventricular size.", "The left ventricle is not dilated."),
    ),
    "lv_systolic_dysfunction": (
        (
            "Impaired left ventricular systolic function.",
            "Reduced LV ejection fraction.",
            "Severely impaired LV systolic function.",
        ),
        ("Normal left ventricular systolic function.", "Preserved LV ejection fraction."),
    ),
    "lv_hypertrophy": (
        (
            "Left ventricular hypertrophy.",
            "Increased LV wall thickness.",
            "Concentric left ventricular hypertrophy.",
        ),
        ("Normal left ventricular wall thickness.", "No left ventricular hypertrophy."),
    ),
    "asymmetric_septal_hypertrophy": (
        (
            "Asymmetric septal hypertrophy.",
            "Hypertrophic cardiomyopathy with septal thickening.",
            "Disproportionate thickening of the interventricular septum.",
        ),
        ("Normal septal thickness.", "No asymmetric septal hypertrophy."),
    ),
    "rv_dilation": (
        ("Dilated right ventricle.", "The right ventricle is enlarged."),
        ("Normal right ventricular size.", "The right ventricle is not dilated."),
    ),
    "rv_systolic_dysfunction": (
        ("Impaired right ventricular systolic function.", "Reduced RV ejection fraction."),
        ("Normal right ventricular systolic function.", "Preserved RV function."),
    ),
    "regional_wall_motion_abnormality": (
        (
            "Regional wall motion abnormality.",
            "Akinetic segments in a coronary territory.",
            "Hypokinesia of the inferior wall.",
        ),
        ("No regional wall motion abnormality.", "Normal regional wall motion."),
    ),
    "apical_aneurysm": (
        ("Apical left ventricular aneurysm.", "Thin dyskinetic apex with aneurysm formation."),
        ("No LV aneurysm.", "Normal apical contraction."),
    ),
    "lv_thrombus": (
        ("Left ventricular thrombus.", "Apical LV thrombus."),
        ("No left ventricular thrombus.", "No intracardiac thrombus."),
    ),
    "pericardial_effusion": (
        ("Pericardial effusion.", "Moderate pericardial effusion."),
        ("No pericardial effusion.", "Normal pericardium."),
    ),
    "lge_ischemic": (
        (
            "Subendocardial late gadolinium enhancement in a coronary territory.",
            "Transmural infarction scar.",
            "LGE consistent with previous myocardial infarction.",
        ),
        ("No late gadolinium enhancement.", "No myocardial scar or infarction."),
    ),
    "lge_nonischemic": (
        (
            "Mid-wall late gadolinium enhancement.",
            "Non-ischaemic pattern of LGE.",
            "Patchy myocardial enhancement in a non-coronary distribution.",
        ),
        ("No late gadolinium enhancement.", "No myocardial fibrosis."),
    ),
    "la_enlargement": (
        ("Dilated left atrium.", "Left atrial enlargement."),
        ("Normal left atrial size.", "The left atrium is not dilated."),
    ),
    "aortic_root_dilation": (
        ("Dilated aortic root.", "Aortic root dilatation."),
        ("Normal aortic root dimensions.", "The aortic root is not dilated."),
    ),
}
assert set(PROMPTS) == set(FINDINGS)

# Free-text query per finding, for finding-query precision@10.
QUERIES: Final[dict[str, str]] = {f: PROMPTS[f][0][0] for f in FINDINGS}
