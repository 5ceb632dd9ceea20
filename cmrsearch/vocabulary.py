"""The findings vocabulary shared by phantom truth, prompts and evaluation (DESIGN.md)."""

from typing import Final

FINDINGS: Final[tuple[str, ...]] = (
    "lv_dilation",
    "lv_systolic_dysfunction",
    "lv_hypertrophy",
    "asymmetric_septal_hypertrophy",
    "rv_dilation",
    "rv_systolic_dysfunction",
    "regional_wall_motion_abnormality",
    "apical_aneurysm",
    "lv_thrombus",
    "pericardial_effusion",
    "lge_ischemic",
    "lge_nonischemic",
    "la_enlargement",
    "aortic_root_dilation",
)

DIAGNOSES: Final[tuple[str, ...]] = (
    "normal",
    "dcm",
    "icm",
    "hcm",
    "amyloidosis",
    "arvc",
    "pericarditis",
    "athlete",
)

GRADES: Final[tuple[str, ...]] = ("mild", "moderate", "severe")

# Findings that carry a severity grade in truth and in reports.
GRADED_FINDINGS: Final[frozenset[str]] = frozenset(
    {
        "lv_dilation",
        "lv_systolic_dysfunction",
        "lv_hypertrophy",
        "rv_dilation",
        "rv_systolic_dysfunction",
        "pericardial_effusion",
        "la_enlargement",
        "aortic_root_dilation",
    }
)

# Cine views as the indexer names them; LGE may be short or long axis.
VIEWS: Final[tuple[str, ...]] = ("sax", "2ch", "3ch", "4ch", "lge_sax", "lge_lax", "other")
# The encoder's clip slots (SAX split into three levels; the 3CH also cropped at the
# valve plane, "lvot", for the aortic root).
CLIP_VIEWS: Final[tuple[str, ...]] = (
    "sax_basal",
    "sax_mid",
    "sax_apical",
    "2ch",
    "3ch",
    "lvot",
    "4ch",
    "lge",
)
