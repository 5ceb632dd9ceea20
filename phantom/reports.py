"""Radiology reports for phantom cases, worded the way two institutions' readers write.

A report is rendered from the case truth only, so every positive finding reaches the
impression with its grade (and territory where it has one) and a negative finding is
never stated positively. Negatives in the impression are leading "No ..." clauses,
never "X is not seen", so that a reader, or a test, can strip them clause by clause.

The two styles stand for the internal and external cohorts of the evaluation: one
centre's structured report with a numbered IMPRESSION, and another centre's narrative
prose with its own section names and synonyms. They share no sentence template.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from phantom.case import EF_CUTS, GRADE_CUTS, MEASURED_BY, Case

STYLES = ("internal", "external")

Table = Mapping[str, tuple[str, ...]]

_ADVERB = {"mild": "mildly", "moderate": "moderately", "severe": "severely"}
# Short placeholder names of the graded findings: "{lvdil}" -> "mild", "{lvdil_ly}" -> "mildly".
_GRADE_KEYS = {
    "lv_dilation": "lvdil",
    "lv_systolic_dysfunction": "lvsys",
    "lv_hypertrophy": "lvh",
    "rv_dilation": "rvdil",
    "rv_systolic_dysfunction": "rvsys",
    "pericardial_effusion": "eff",
    "la_enlargement": "la",
    "aortic_root_dilation": "ao",
}
# Clinical weight of each impression item: lower comes first, before a little jitter.
_PRIORITY = {
    "lv": 1.0,
    "wall": 1.2,
    "ischaemic": 1.4,
    "rv": 2.0,
    "aneurysm": 2.4,
    "thrombus": 2.2,
    "effusion": 2.6,
    "lge_nonischemic": 2.8,
    "la": 3.5,
    "ao": 3.7,
}
# A diagnosis phrase opening with one of these reads well after a comma ("..., in keeping
# with DCM"); the others ("meets criteria for ARVC") stand as sentences of their own.
_SUFFIX_WORDS = frozenset(
    {
        "in",
        "consistent",
        "compatible",
        "suggestive",
        "highly",
        "suspicious",
        "appearances",
        "features",
        "likely",
    }
)
# On its own line a phrase like "in keeping with DCM" needs a subject ("Appearances ...").
_NEEDS_LEAD = frozenset({"in", "consistent", "compatible", "suggestive", "highly", "suspicious"})
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


@dataclass(frozen=True)
class Report:
    text: str  # the full report
    impression: str  # the impression/conclusion body exactly as it appears in text


@dataclass(frozen=True)
class _Style:
    headings: Table  # section names and row labels: not sentences
    sentences: Table  # sentence templates, the unit that template_sentences() counts
    words: Table  # fragments filled into the templates (territories, patterns, names)


_INTERNAL = _Style(
    headings={
        "title": ("CARDIAC MRI", "CARDIAC MRI REPORT", "CMR STUDY"),
        "indication": ("INDICATION:", "CLINICAL INDICATION:"),
        "comparison": ("COMPARISON:",),
        "technique": ("TECHNIQUE:",),
        "findings": ("FINDINGS:",),
        "impression": ("IMPRESSION:",),
        "row.lv": ("Left ventricle:", "LV:"),
        "row.rv": ("Right ventricle:", "RV:"),
        "row.atria": ("Atria and aorta:", "Atria/aorta:"),
        "row.pericardium": ("Pericardium:",),
        "row.lge": ("Tissue characterisation:", "LGE:"),
        "dx_lead": ("Appearances", "Findings"),
    },
    sentences={
        "ind.normal": (
            "Palpitations, ? structural heart disease.",
            "Abnormal ECG (T-wave inversion), ? cardiomyopathy.",
            "Family history of sudden cardiac death.",
            "Frequent ventricular ectopy, exclude structural heart disease.",
        ),
        "ind.dcm": (
            "Dyspnoea, ? cardiomyopathy.",
            "New heart failure, LV dysfunction on echo.",
            "LBBB and breathlessness, ? DCM.",
        ),
        "ind.icm": (
            "Chest pain, troponin rise.",
            "Known CAD, assess viability.",
            "Previous MI, assess LV function and scar.",
        ),
        "ind.hcm": (
            "Family history of HCM.",
            "LVH on echo, ? HCM.",
            "Systolic murmur, ? LVOT obstruction.",
        ),
        "ind.amyloidosis": (
            "HFpEF, ? infiltrative cardiomyopathy.",
            "LVH with low-voltage ECG, ? amyloid.",
            "Known myeloma, ? cardiac involvement.",
        ),
        "ind.arvc": (
            "VT with LBBB morphology, ? ARVC.",
            "Family history of ARVC.",
            "Syncope, TWI V1-V3.",
        ),
        "ind.pericarditis": (
            "Pleuritic chest pain, raised CRP, ? pericarditis.",
            "Chest pain with widespread ST elevation.",
            "Recurrent pericarditis, assess activity.",
        ),
        "ind.athlete": (
            "Pre-participation screening.",
            "Athlete with abnormal ECG, ? cardiomyopathy.",
            "Endurance athlete, large LV on echo.",
        ),
        "ind.follow_up": (
            "Follow-up of known {dx_name}.",
            "Interval reassessment, known {dx_name}.",
        ),
        "tech.scanner": ("{field}T {vendor} scanner.", "Performed on a {field}T {vendor} system."),
        "tech.cine": (
            "Cine SSFP in a short-axis stack and 2-, 3- and 4-chamber views.",
            "ECG-gated cine SSFP imaging, SAX stack and long-axis views.",
        ),
        "tech.lge": (
            "LGE imaging 10 min after 0.1 mmol/kg gadobutrol (PSIR).",
            "Late gadolinium enhancement imaging after 0.15 mmol/kg gadoterate, TI scout.",
        ),
        "tech.extra": ("Heart rate {hr} bpm, BSA {bsa} m².",),
        "cmp.header": ("CMR {prior_date}.", "Previous CMR dated {prior_date}."),
        "cmp.header_undated": ("Prior CMR (date not recorded).",),
        "cmp.none": ("None.", "No prior CMR available."),
        "find.lv_size_normal": (
            "Normal LV size: LVEDV {lvedv} ml (LVEDVi {lvedvi} ml/m²).",
            "LV not dilated, LVEDV {lvedv} ml, LVEDVi {lvedvi} ml/m².",
        ),
        "find.lv_size_dilated": (
            "{lvdil_ly} dilated LV: LVEDV {lvedv} ml (LVEDVi {lvedvi} ml/m²).",
            "The LV is {lvdil_ly} dilated, LVEDV {lvedv} ml, LVEDVi {lvedvi} ml/m².",
        ),
        "find.lv_function_normal": (
            "Normal LV systolic function, LVEF {lvef}% (LVESV {lvesv} ml).",
            "LVEF {lvef}%, normal global systolic function.",
        ),
        "find.lv_function_low_normal": ("Low-normal LV systolic function, LVEF {lvef}%.",),
        "find.lv_function_hyper": ("Hyperdynamic LV systolic function, LVEF {lvef}%.",),
        "find.lv_function_impaired": (
            "{lvsys_ly} impaired LV systolic function, LVEF {lvef}% (LVESV {lvesv} ml).",
            "LVEF {lvef}%: {lvsys_ly} reduced LV systolic function.",
            "{lvsys} global LV systolic impairment, LVEF {lvef}%.",
        ),
        "find.wall_normal": (
            "Normal wall thickness, maximal {mwt} mm.",
            "Maximal LV wall thickness {mwt} mm (normal).",
        ),
        "find.wall_concentric": (
            "{lvh} concentric LV hypertrophy, maximal wall thickness {mwt} mm.",
            "Concentric LVH ({lvh}), maximal {mwt} mm.",
        ),
        "find.wall_asymmetric": (
            "{lvh} asymmetric septal hypertrophy: septum {septal} mm, lateral wall {lateral} mm.",
            "Asymmetric septal hypertrophy ({lvh}), maximal {mwt} mm at the septum.",
        ),
        "find.septum_asymmetric": ("Asymmetric septal contour, septum {septal} mm.",),
        "find.rwma_none": ("No regional wall motion abnormality.",),
        "find.rwma": (
            "{rwma_kind} {segments} segments ({artery} territory).",
            "Regional {rwma_noun} of the {segments} wall ({artery}).",
            "Regional wall motion abnormality: {rwma_kind} {segments} segments ({artery}).",
        ),
        "find.aneurysm": ("Thin-walled dyskinetic apical aneurysm.", "Apical LV aneurysm."),
        "find.thrombus": (
            "LV thrombus, low signal on early and late post-contrast imaging.",
            "Mural LV thrombus on early post-gadolinium imaging.",
        ),
        "find.thrombus_none": ("No LV thrombus on early or late post-contrast imaging.",),
        "find.rv_size_normal": (
            "Normal RV volumes: RVEDV {rvedv} ml (RVEDVi {rvedvi} ml/m²).",
            "RV not dilated, RVEDV {rvedv} ml, RVEDVi {rvedvi} ml/m².",
        ),
        "find.rv_size_dilated": (
            "{rvdil_ly} dilated RV: RVEDV {rvedv} ml (RVEDVi {rvedvi} ml/m²).",
        ),
        "find.rv_function_normal": ("Normal RV systolic function, RVEF {rvef}%.",),
        "find.rv_function_impaired": (
            "{rvsys_ly} impaired RV systolic function, RVEF {rvef}%.",
            "RVEF {rvef}%: {rvsys_ly} reduced RV systolic function.",
        ),
        "find.la_normal": (
            "LA not dilated ({la_mm} mm AP).",
            "Normal LA size, AP diameter {la_mm} mm.",
        ),
        "find.la_dilated": ("{la_ly} dilated LA, AP diameter {la_mm} mm.",),
        "find.ao_normal": (
            "Aortic root {ao_mm} mm at the sinuses (normal).",
            "Normal aortic root dimension ({ao_mm} mm).",
        ),
        "find.ao_dilated": ("{ao_ly} dilated aortic root, {ao_mm} mm at the sinuses.",),
        "find.effusion_none": ("No pericardial effusion.", "Normal pericardium, no effusion."),
        "find.effusion": (
            "{eff} pericardial effusion, {eff_mm} mm maximal depth, no tamponade features.",
            "{eff} pericardial effusion measuring {eff_mm} mm.",
        ),
        "find.lge_none": (
            "No late gadolinium enhancement to suggest infarction or infiltration.",
            "No LGE.",
        ),
        "find.lge_ischemic": (
            "{transmurality} LGE in the {lge_segments} segments ({lge_artery} territory).",
        ),
        "find.lge_nonischemic": ("{lge_pattern}.",),
        "imp.lv_dilation": (
            "{lvdil_ly} dilated LV (LVEDVi {lvedvi} ml/m²)",
            "{lvdil} LV dilatation (LVEDVi {lvedvi} ml/m²)",
        ),
        "imp.lv_dilation_preserved": (
            "{lvdil_ly} dilated LV (LVEDVi {lvedvi} ml/m²) with preserved systolic function "
            "(LVEF {lvef}%)",
            "{lvdil} LV dilatation (LVEDVi {lvedvi} ml/m²), normal LVEF of {lvef}%",
        ),
        "imp.lv_systolic_dysfunction": (
            "{lvsys_ly} impaired LV systolic function (LVEF {lvef}%)",
            "{lvsys} LV systolic impairment, LVEF {lvef}%",
            "{lvsys_ly} depressed LV systolic function (EF {lvef}%)",
        ),
        "imp.lv_dilation_dysfunction": (
            "{lvdil_ly} dilated LV with {lvsys_ly} impaired systolic function (LVEDVi {lvedvi} "
            "ml/m², LVEF {lvef}%)",
        ),
        "imp.lv_hypertrophy": (
            "{lvh} concentric LV hypertrophy (maximal wall thickness {mwt} mm)",
            "{lvh} concentric LVH, {mwt} mm",
        ),
        "imp.lv_hypertrophy_asymmetric": (
            "{lvh} asymmetric septal hypertrophy (septum {septal} mm, lateral wall {lateral} mm)",
            "{lvh} asymmetric septal hypertrophy, maximal wall thickness {mwt} mm "
            "(septal:lateral ratio {ratio})",
        ),
        "imp.lv_hypertrophy_athlete": (
            "{lvh} concentric LV hypertrophy ({mwt} mm) within the range seen in trained athletes",
        ),
        "imp.septum_asymmetric": ("asymmetric septal contour (septum {septal} mm)",),
        "imp.rwma": (
            "{rwma_kind} {segments} segments ({artery} territory)",
            "regional {rwma_noun} in the {artery} territory ({segments} walls)",
            "regional wall motion abnormality in the {artery} territory ({rwma_kind} "
            "{segments} segments)",
        ),
        "imp.rwma_viable": (
            "{rwma_kind} {segments} segments ({artery} territory) without LGE, consistent "
            "with viable myocardium",
        ),
        "imp.rwma_lge": (
            "{rwma_kind} {segments} wall with {transmurality} infarct scar ({artery} territory), "
            "{viability}",
            "{transmurality} LGE and {rwma_noun} in the {artery} territory ({segments}), "
            "{viability}",
        ),
        "imp.lge_ischemic": (
            "{transmurality} LGE in the {lge_artery} territory ({lge_segments}), consistent "
            "with previous infarction",
            "{transmurality} infarct scar, {lge_artery} territory ({lge_segments} segments)",
            "previous {lge_artery} territory myocardial infarction ({transmurality} LGE, "
            "{lge_segments} segments)",
        ),
        "imp.apical_aneurysm": ("apical LV aneurysm", "thin-walled apical aneurysm"),
        "imp.aneurysm_thrombus": (
            "apical aneurysm containing thrombus; anticoagulation recommended",
        ),
        "imp.lv_thrombus": ("LV thrombus; anticoagulation advised", "mural LV thrombus"),
        "imp.rv_dilation": (
            "{rvdil_ly} dilated RV (RVEDVi {rvedvi} ml/m²)",
            "{rvdil} RV dilatation (RVEDVi {rvedvi} ml/m²)",
        ),
        "imp.rv_dilation_preserved": (
            "{rvdil_ly} dilated RV (RVEDVi {rvedvi} ml/m²) with preserved systolic function "
            "(RVEF {rvef}%)",
        ),
        "imp.rv_systolic_dysfunction": (
            "{rvsys_ly} impaired RV systolic function (RVEF {rvef}%)",
            "{rvsys} RV systolic impairment, RVEF {rvef}%",
        ),
        "imp.pericardial_effusion": (
            "{eff} pericardial effusion ({eff_mm} mm) without tamponade physiology",
            "{eff} pericardial effusion, maximal depth {eff_mm} mm",
        ),
        "imp.lge_nonischemic": (
            "{lge_pattern}, non-ischaemic pattern",
            "{lge_pattern} (non-ischaemic distribution)",
        ),
        "imp.la_enlargement": (
            "{la_ly} dilated LA ({la_mm} mm)",
            "{la} LA dilatation ({la_mm} mm)",
        ),
        "imp.aortic_root_dilation": (
            "{ao_ly} dilated aortic root ({ao_mm} mm)",
            "{ao} aortic root dilatation, {ao_mm} mm at the sinuses",
        ),
        "neg.no_lge": (
            "No LGE.",
            "No late gadolinium enhancement to suggest infarction or infiltration.",
        ),
        "neg.no_thrombus": ("No LV thrombus.",),
        "neg.no_effusion": ("No pericardial effusion.",),
        "neg.biv_normal": (
            "Preserved biventricular systolic function.",
            "Normal biventricular size and systolic function.",
        ),
        "neg.lv_normal": (
            "Normal LV size and systolic function (LVEF {lvef}%).",
            "Preserved LV systolic function (LVEF {lvef}%).",
        ),
        "neg.rv_normal": ("Normal RV size and function.",),
        "normal": (
            "Normal cardiac MRI.",
            "No CMR evidence of infarction, infiltration or cardiomyopathy.",
            "Normal biventricular volumes and systolic function (LVEF {lvef}%).",
        ),
        "dx.dcm": ("in keeping with dilated cardiomyopathy", "consistent with DCM"),
        "dx.dcm_nondilated": ("in keeping with a non-ischaemic cardiomyopathy",),
        "dx.icm": ("in keeping with ischaemic heart disease",),
        "dx.icm_scar": (
            "consistent with ischaemic heart disease",
            "in keeping with previous {lge_artery} territory infarction",
        ),
        "dx.hcm": (
            "appearances consistent with hypertrophic cardiomyopathy",
            "in keeping with HCM",
        ),
        "dx.amyloid": (
            "features suggestive of cardiac amyloidosis",
            "likely cardiac amyloid (suggest DPD scintigraphy and serum free light chains)",
        ),
        "dx.amyloid_possible": (
            "an infiltrative cardiomyopathy such as amyloidosis cannot be excluded",
        ),
        "dx.arvc_criteria": ("meets imaging criteria for ARVC",),
        "dx.arvc": ("suggestive of ARVC (correlate with Task Force criteria)",),
        "dx.myopericarditis": ("in keeping with myopericarditis",),
        "dx.pericarditis": ("consistent with pericarditis in the appropriate clinical context",),
        "dx.athlete": (
            "in keeping with athletic remodelling",
            "likely physiological (athlete's heart)",
        ),
        "dx.athlete_normal": (
            "Resting bradycardia ({hr} bpm) in keeping with athletic conditioning.",
        ),
        "dx.pericarditis_normal": (
            "A clinical diagnosis of pericarditis cannot be excluded on imaging.",
        ),
        "cmp.lvef_up": (
            "LVEF has improved from {prior_lvef}% to {lvef}% since {prior_ref}.",
            "Compared with {prior_ref}, LVEF has improved from {prior_lvef}% to {lvef}%.",
        ),
        "cmp.lvef_down": ("LVEF has fallen from {prior_lvef}% to {lvef}% since {prior_ref}.",),
        "cmp.lvef_same": ("LVEF stable at {lvef}% (previously {prior_lvef}% on {prior_ref}).",),
        "cmp.lv_smaller": ("LVEDV {lvedv} ml, previously {prior_lvedv} ml on {prior_ref}.",),
        "cmp.effusion_resolved": (
            "No residual pericardial effusion - the {prior_eff_mm} mm effusion of {prior_ref} "
            "has resolved.",
        ),
        "cmp.effusion_smaller": (
            "Pericardial effusion smaller than on {prior_ref} ({prior_eff_mm} mm previously).",
        ),
        "cmp.thrombus_resolved": ("No residual LV thrombus (present on {prior_ref}).",),
        "cmp.thrombus_persists": ("LV thrombus persists, unchanged from {prior_ref}.",),
    },
    words={
        "dx_name.dcm": ("DCM",),
        "dx_name.icm": ("ischaemic cardiomyopathy", "IHD"),
        "dx_name.hcm": ("HCM",),
        "dx_name.amyloidosis": ("cardiac amyloidosis",),
        "dx_name.arvc": ("ARVC",),
        "dx_name.pericarditis": ("pericarditis",),
        "dx_name.athlete": ("athletic remodelling",),
        "segments.lad": ("anterior and anteroseptal", "mid to apical anterior"),
        "segments.rca": ("basal to mid inferior", "inferior and inferoseptal"),
        "segments.lcx": ("basal inferolateral", "lateral"),
        "artery.lad": ("LAD",),
        "artery.rca": ("RCA",),
        "artery.lcx": ("circumflex", "LCx"),
        "kind.hypokinetic": ("hypokinetic",),
        "kind.akinetic": ("akinetic",),
        "kind.dyskinetic": ("dyskinetic",),
        "noun.hypokinetic": ("hypokinesia",),
        "noun.akinetic": ("akinesia",),
        "noun.dyskinetic": ("dyskinesia",),
        "viability.subendocardial": ("likely viable", "viable myocardium"),
        "viability.transmural": ("non-viable", "unlikely to recover with revascularisation"),
        "lge.midwall": ("mid-wall LGE in the basal to mid septum", "linear mid-wall septal LGE"),
        "lge.patchy": (
            "patchy LGE in the thickest segments and at the RV insertion points",
            "patchy mid-myocardial LGE in the septum",
        ),
        "lge.diffuse": (
            "diffuse global LGE with difficulty nulling the myocardium",
            "diffuse heterogeneous LGE with abnormal gadolinium kinetics",
        ),
        "lge.subepicardial": (
            "subepicardial LGE in the basal to mid lateral wall",
            "subepicardial LGE of the inferolateral wall",
        ),
    },
)

_EXTERNAL = _Style(
    headings={
        "title": ("Cardiac magnetic resonance imaging", "Cardiac MR examination"),
        "indication": ("Clinical history:", "Clinical details:", "CLINICAL HISTORY:"),
        "comparison": ("Previous examination:", "Comparison:"),
        "technique": ("Protocol:", "PROTOCOL:", "Sequences:"),
        "findings": ("Report:", "REPORT:", "Findings and report:"),
        "impression": ("CONCLUSION:", "Conclusion:", "Summary:", "Opinion:", "SUMMARY:"),
        "dx_lead": ("The overall picture is", "Overall, the findings are"),
    },
    sentences={
        "ind.normal": (
            "Referred with palpitations to exclude structural heart disease.",
            "Abnormal resting ECG with T-wave inversion.",
            "Relative of a young sudden cardiac death victim, screening.",
        ),
        "ind.dcm": (
            "Breathlessness; suspected cardiomyopathy.",
            "Recently diagnosed heart failure with poor function on echocardiography.",
            "Dyspnoea on exertion, question of a dilated cardiomyopathy.",
        ),
        "ind.icm": (
            "Chest pain with raised troponin.",
            "Coronary artery disease; myocardial viability requested.",
            "Prior myocardial infarction; assessment of scar burden.",
        ),
        "ind.hcm": (
            "First-degree relative with hypertrophic cardiomyopathy.",
            "Septal thickening on echocardiography; hypertrophic cardiomyopathy suspected.",
            "Abnormal ECG with repolarisation changes in a young patient.",
        ),
        "ind.amyloidosis": (
            "Heart failure with preserved ejection fraction; infiltration suspected.",
            "Increased wall thickness with low QRS voltages.",
            "Plasma cell dyscrasia; cardiac amyloid to be excluded.",
        ),
        "ind.arvc": (
            "Ventricular tachycardia of right ventricular outflow origin.",
            "Family screening for arrhythmogenic cardiomyopathy.",
            "Exercise-induced syncope with inverted T waves in the right precordial leads.",
        ),
        "ind.pericarditis": (
            "Pleuritic chest pain with elevated inflammatory markers.",
            "Suspected acute pericarditis.",
            "Recurrent pericarditis; assessment of disease activity.",
        ),
        "ind.athlete": (
            "Pre-participation screening of a competitive athlete.",
            "Elite athlete with an abnormal ECG.",
            "Endurance athlete with a large left ventricle on echocardiography.",
        ),
        "ind.follow_up": (
            "Known {dx_name}; interval follow-up.",
            "Follow-up study in a patient with {dx_name}.",
        ),
        "tech.scanner": (
            "Examination on a {vendor} {field} tesla magnet.",
            "{vendor} {field} T system with a phased-array cardiac coil.",
        ),
        "tech.cine": (
            "Steady-state free precession (SSFP) cine sequences in the short axis and in the "
            "long-axis planes.",
            "Balanced SSFP cines covering the ventricles from base to apex, plus long-axis cines.",
        ),
        "tech.lge": (
            "Late enhancement sequences after injection of gadolinium (0.2 mmol/kg gadoterate "
            "meglumine).",
            "Delayed post-gadolinium inversion-recovery imaging at 8 to 12 minutes.",
        ),
        "tech.extra": ("Mean heart rate during acquisition {hr}/min; body surface area {bsa} m².",),
        "cmp.header": ("Study of {prior_date}.", "CMR performed on {prior_date}."),
        "cmp.header_undated": ("Earlier study, date not available.",),
        "cmp.none": ("Nil.", "None available."),
        "find.lv_size_normal": (
            "The left ventricle is normal in size (end-diastolic volume {lvedv} ml, indexed "
            "{lvedvi} ml/m²).",
            "Left ventricular dimensions are within normal limits, with an end-diastolic volume "
            "of {lvedv} ml ({lvedvi} ml/m²).",
        ),
        "find.lv_size_dilated": (
            "The left ventricle is {lvdil_ly} enlarged, with an end-diastolic volume of {lvedv} ml "
            "({lvedvi} ml/m²).",
            "There is {lvdil} enlargement of the left ventricle (end-diastolic volume {lvedv} ml, "
            "i.e. {lvedvi} ml/m²).",
        ),
        "find.lv_function_normal": (
            "Global contractility is normal, with a left ventricular ejection fraction of {lvef}%.",
            "Left ventricular contractility is preserved: LV ejection fraction {lvef}%.",
        ),
        "find.lv_function_low_normal": (
            "Contractility is at the lower limit of normal (left ventricular ejection fraction "
            "{lvef}%).",
        ),
        "find.lv_function_hyper": (
            "Contractility is vigorous, with a left ventricular ejection fraction of {lvef}%.",
        ),
        "find.lv_function_impaired": (
            "Global contractility is {lvsys_ly} reduced, with a left ventricular ejection "
            "fraction of {lvef}% and an end-systolic volume of {lvesv} ml.",
            "There is {lvsys} left ventricular dysfunction: LV ejection fraction {lvef}%.",
        ),
        "find.wall_normal": (
            "Wall thickness is normal (maximum {mwt} mm).",
            "The myocardium is of normal thickness, measuring at most {mwt} mm.",
        ),
        "find.wall_concentric": (
            "The walls are {lvh_ly} thickened in a concentric fashion, up to {mwt} mm.",
        ),
        "find.wall_asymmetric": (
            "There is {lvh} asymmetric thickening of the septum, measuring {septal} mm against "
            "{lateral} mm in the lateral wall.",
        ),
        "find.septum_asymmetric": ("The septal contour is asymmetric ({septal} mm).",),
        "find.rwma_none": (
            "Segmental contraction is normal.",
            "There is no segmental wall motion abnormality.",
        ),
        "find.rwma": (
            "There is {rwma_noun} of the {segments} segments, corresponding to the {artery} "
            "territory.",
            "There is a regional wall motion abnormality, with {rwma_noun} of the {segments} "
            "segments ({artery} territory).",
        ),
        "find.aneurysm": ("The apex is thinned and aneurysmal.",),
        "find.thrombus": ("A thrombus is seen in the left ventricular cavity.",),
        "find.thrombus_none": ("No intracavitary thrombus is seen.",),
        "find.rv_size_normal": (
            "The right ventricle is of normal size ({rvedv} ml, {rvedvi} ml/m²).",
        ),
        "find.rv_size_dilated": (
            "The right ventricle is {rvdil_ly} enlarged ({rvedv} ml, {rvedvi} ml/m²).",
        ),
        "find.rv_function_normal": ("Right ventricular contractility is normal (EF {rvef}%).",),
        "find.rv_function_impaired": (
            "Right ventricular contractility is {rvsys_ly} reduced (EF {rvef}%).",
        ),
        "find.la_normal": (
            "The left atrium is of normal size ({la_mm} mm).",
            "Left atrial diameter {la_mm} mm, within normal limits.",
        ),
        "find.la_dilated": ("The left atrium is {la_ly} enlarged, measuring {la_mm} mm.",),
        "find.ao_normal": ("The aortic root measures {ao_mm} mm at the sinuses, which is normal.",),
        "find.ao_dilated": ("The aortic root is {ao_ly} dilated at {ao_mm} mm.",),
        "find.effusion_none": ("There is no pericardial effusion.",),
        "find.effusion": ("There is a {eff} pericardial effusion measuring {eff_mm} mm.",),
        "find.lge_none": (
            "Late enhancement imaging shows no myocardial scar.",
            "No late gadolinium enhancement is seen.",
        ),
        "find.lge_ischemic": (
            "Late images show {transmurality} scar in the {lge_segments} segments "
            "({lge_artery} territory).",
        ),
        "find.lge_nonischemic": ("Late images show {lge_pattern}.",),
        "imp.lv_dilation": (
            "the left ventricle is {lvdil_ly} enlarged (indexed end-diastolic volume {lvedvi} "
            "ml/m²)",
            "{lvdil} left ventricular enlargement ({lvedvi} ml/m²)",
        ),
        "imp.lv_dilation_preserved": (
            "{lvdil_ly} enlarged left ventricle with normal contractility (ejection fraction "
            "{lvef}%)",
        ),
        "imp.lv_systolic_dysfunction": (
            "{lvsys_ly} reduced left ventricular contractility (ejection fraction {lvef}%)",
            "left ventricular systolic function is {lvsys_ly} decreased, with an ejection "
            "fraction of {lvef}%",
            "{lvsys} global left ventricular dysfunction (EF {lvef}%)",
        ),
        "imp.lv_dilation_dysfunction": (
            "{lvdil_ly} enlarged left ventricle with {lvsys_ly} reduced contractility (EF {lvef}%)",
        ),
        "imp.lv_hypertrophy": (
            "{lvh} concentric thickening of the left ventricular walls (up to {mwt} mm)",
            "{lvh} concentric left ventricular hypertrophy, maximal thickness {mwt} mm",
        ),
        "imp.lv_hypertrophy_asymmetric": (
            "{lvh} asymmetric hypertrophy of the septum ({septal} mm against {lateral} mm "
            "laterally)",
            "{lvh_ly} thickened septum with an asymmetric distribution (maximum {mwt} mm)",
        ),
        "imp.lv_hypertrophy_athlete": (
            "{lvh} left ventricular wall thickening ({mwt} mm) compatible with training",
        ),
        "imp.septum_asymmetric": ("asymmetric septal contour ({septal} mm)",),
        "imp.rwma": (
            "{rwma_noun} of the {segments} wall in the {artery} territory",
            "{rwma_kind} {segments} segments ({artery})",
        ),
        "imp.rwma_viable": (
            "{rwma_noun} of the {segments} wall ({artery} territory) without scar, in keeping "
            "with viable myocardium",
        ),
        "imp.rwma_lge": (
            "{rwma_noun} of the {segments} wall with {transmurality} scar in the {artery} "
            "territory, {viability}",
        ),
        "imp.lge_ischemic": (
            "{transmurality} scar in the {lge_artery} territory ({lge_segments} segments), in "
            "keeping with an old infarct",
            "{transmurality} scar in keeping with an old myocardial infarction in the "
            "{lge_artery} territory ({lge_segments} segments)",
        ),
        "imp.apical_aneurysm": ("aneurysm of the left ventricular apex", "thinned aneurysmal apex"),
        "imp.aneurysm_thrombus": (
            "apical aneurysm with a thrombus within it; anticoagulation is recommended",
        ),
        "imp.lv_thrombus": (
            "left ventricular thrombus, anticoagulation to be discussed",
            "intracavitary thrombus in the left ventricle",
        ),
        "imp.rv_dilation": (
            "{rvdil_ly} enlarged right ventricle (indexed volume {rvedvi} ml/m²)",
            "{rvdil} right ventricular enlargement",
        ),
        "imp.rv_dilation_preserved": (
            "{rvdil_ly} enlarged right ventricle with normal contractility (RV EF {rvef}%)",
        ),
        "imp.rv_systolic_dysfunction": (
            "{rvsys_ly} reduced right ventricular contractility (EF {rvef}%)",
            "{rvsys} right ventricular dysfunction with an ejection fraction of {rvef}%",
        ),
        "imp.pericardial_effusion": (
            "{eff} pericardial effusion measuring {eff_mm} mm, without haemodynamic compromise",
            "{eff} pericardial effusion ({eff_mm} mm)",
        ),
        "imp.lge_nonischemic": (
            "{lge_pattern}, a non-ischaemic pattern",
            "non-ischaemic fibrosis: {lge_pattern}",
        ),
        "imp.la_enlargement": (
            "{la_ly} enlarged left atrium ({la_mm} mm)",
            "{la} left atrial enlargement",
        ),
        "imp.aortic_root_dilation": (
            "{ao_ly} enlarged aortic root ({ao_mm} mm)",
            "the aortic root is {ao_ly} dilated at {ao_mm} mm",
        ),
        "neg.no_lge": ("No myocardial scar.", "No late enhancement."),
        "neg.no_thrombus": ("No intracavitary thrombus.",),
        "neg.no_effusion": ("No pericardial fluid.",),
        "neg.biv_normal": ("Good biventricular contractility.",),
        "neg.lv_normal": (
            "Normal left ventricular size and contractility (EF {lvef}%).",
            "The left ventricle is normal.",
        ),
        "neg.rv_normal": ("Normal right ventricle.",),
        "normal": (
            "Structurally and functionally normal heart.",
            "Normal cardiac magnetic resonance study.",
            "Normal ventricular volumes and contractility with no scar.",
        ),
        "dx.dcm": (
            "the appearances are those of a dilated cardiomyopathy",
            "compatible with a dilated cardiomyopathy",
        ),
        "dx.dcm_nondilated": ("compatible with a non-ischaemic cardiomyopathy",),
        "dx.icm": ("compatible with ischaemic heart disease",),
        "dx.icm_scar": (
            "in keeping with an old infarct in the {lge_artery} territory",
            "compatible with ischaemic heart disease",
        ),
        "dx.hcm": (
            "the picture is that of hypertrophic cardiomyopathy",
            "compatible with hypertrophic cardiomyopathy",
        ),
        "dx.amyloid": (
            "highly suggestive of cardiac amyloidosis",
            "suspicious for cardiac amyloid infiltration (scintigraphy is suggested)",
        ),
        "dx.amyloid_possible": ("cardiac amyloidosis cannot be excluded",),
        "dx.arvc_criteria": (
            "fulfils a major imaging criterion for arrhythmogenic right ventricular cardiomyopathy",
        ),
        "dx.arvc": ("suggestive of arrhythmogenic cardiomyopathy",),
        "dx.myopericarditis": ("compatible with myopericarditis",),
        "dx.pericarditis": ("compatible with pericarditis",),
        "dx.athlete": (
            "compatible with an athlete's heart",
            "in keeping with physiological adaptation to training",
        ),
        "dx.athlete_normal": ("The low heart rate ({hr}/min) reflects training.",),
        "dx.pericarditis_normal": ("Pericarditis remains a clinical diagnosis.",),
        "cmp.lvef_up": (
            "Compared with {prior_ref}, the ejection fraction has improved from {prior_lvef}% to "
            "{lvef}%.",
        ),
        "cmp.lvef_down": (
            "Since {prior_ref} the ejection fraction has declined from {prior_lvef}% to {lvef}%.",
        ),
        "cmp.lvef_same": (
            "The ejection fraction is stable compared with {prior_ref} ({prior_lvef}% then, "
            "{lvef}% now).",
        ),
        "cmp.lv_smaller": (
            "End-diastolic volume {lvedv} ml against {prior_lvedv} ml on {prior_ref}.",
        ),
        "cmp.effusion_resolved": (
            "No pericardial effusion remains (it measured {prior_eff_mm} mm on {prior_ref}).",
        ),
        "cmp.effusion_smaller": (
            "The pericardial effusion is smaller than on {prior_ref} ({prior_eff_mm} mm then).",
        ),
        "cmp.thrombus_resolved": ("No residual thrombus compared with {prior_ref}.",),
        "cmp.thrombus_persists": ("The thrombus seen on {prior_ref} persists.",),
    },
    words={
        "dx_name.dcm": ("dilated cardiomyopathy",),
        "dx_name.icm": ("ischaemic heart disease",),
        "dx_name.hcm": ("hypertrophic cardiomyopathy",),
        "dx_name.amyloidosis": ("cardiac amyloidosis",),
        "dx_name.arvc": ("arrhythmogenic cardiomyopathy",),
        "dx_name.pericarditis": ("pericarditis",),
        "dx_name.athlete": ("an athlete's heart",),
        "segments.lad": ("anterior", "anteroseptal"),
        "segments.rca": ("inferior", "inferoseptal"),
        "segments.lcx": ("lateral", "inferolateral"),
        "artery.lad": ("left anterior descending", "LAD"),
        "artery.rca": ("right coronary", "RCA"),
        "artery.lcx": ("circumflex",),
        "kind.hypokinetic": ("hypokinetic",),
        "kind.akinetic": ("akinetic",),
        "kind.dyskinetic": ("dyskinetic",),
        "noun.hypokinetic": ("hypokinesis",),
        "noun.akinetic": ("akinesis",),
        "noun.dyskinetic": ("dyskinesis",),
        "viability.subendocardial": ("probably viable",),
        "viability.transmural": ("no viability expected",),
        "lge.midwall": (
            "mid-wall septal fibrosis",
            "linear intramyocardial enhancement of the septum",
        ),
        "lge.patchy": (
            "patchy fibrosis in the septum and at the junction points",
            "patchy intramyocardial enhancement of the septum",
        ),
        "lge.diffuse": (
            "diffuse enhancement of the myocardium with abnormal gadolinium kinetics",
            "extensive diffuse late enhancement",
        ),
        "lge.subepicardial": (
            "subepicardial enhancement of the lateral wall",
            "subepicardial late enhancement in the inferolateral wall",
        ),
    },
)

_STYLES: Mapping[str, _Style] = {"internal": _INTERNAL, "external": _EXTERNAL}


def _style(name: str) -> _Style:
    if name not in _STYLES:
        raise ValueError(f"unknown report style {name!r}; expected one of {STYLES}")
    return _STYLES[name]


def template_sentences(style: str) -> set[str]:
    """Every sentence template (placeholders unfilled) the style can write."""
    return {t for templates in _style(style).sentences.values() for t in templates}


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _sentence(fragment: str) -> str:
    text = _cap(fragment.strip())
    return text if text.endswith(".") else text + "."


def _shown(case: Case, finding: str) -> int:
    """The measurement rounded to a whole number on the same side of normal as the truth."""
    value = case.measurements.value(MEASURED_BY[finding])
    shown = round(value)
    positive = case.findings[finding]
    if finding in EF_CUTS:  # abnormal at or below the cut
        cut = EF_CUTS[finding][0]
        if positive and shown > cut:
            shown = math.floor(cut)
        elif not positive and shown <= cut:
            shown = math.floor(cut) + 1
    else:  # abnormal at or above the cut
        cut = GRADE_CUTS[finding][0]
        if positive and shown < cut:
            shown = math.ceil(cut)
        elif not positive and shown >= cut:
            shown = math.ceil(cut) - 1
    return shown


def _format_date(date: datetime.date, style: str, rng: np.random.Generator) -> str:
    if style == "internal":
        return date.strftime("%d/%m/%Y")
    if rng.random() < 0.5:
        return date.strftime("%d.%m.%Y")
    return f"{date.day} {_MONTHS[date.month - 1]} {date.year}"


class _Writer:
    """Renders one report: the case, its style's phrasebook, the rng and the fill-in values."""

    def __init__(
        self,
        case: Case,
        style: str,
        rng: np.random.Generator,
        prior: Case | None,
        prior_date: datetime.date | None,
        scanner: tuple[float, str],
    ) -> None:
        self.case = case
        self.name = style
        self.style = _style(style)
        self.rng = rng
        self.prior = prior
        self.prior_date = prior_date
        self.found = case.findings
        self.values = self._values(scanner)

    # --- fill-in values -------------------------------------------------------------

    def _values(self, scanner: tuple[float, str]) -> dict[str, str]:
        m = self.case.measurements
        mwt = _shown(self.case, "lv_hypertrophy")
        values = {
            "field": f"{scanner[0]:g}",
            "vendor": scanner[1],
            "hr": str(m.heart_rate),
            "bsa": f"{m.bsa:.2f}",
            "lvef": str(_shown(self.case, "lv_systolic_dysfunction")),
            "lvedv": str(round(m.lvedv)),
            "lvedvi": str(_shown(self.case, "lv_dilation")),
            "lvesv": str(round(m.lvesv)),
            "rvef": str(_shown(self.case, "rv_systolic_dysfunction")),
            "rvedv": str(round(m.rvedv)),
            "rvedvi": str(_shown(self.case, "rv_dilation")),
            "mwt": str(mwt),
            "septal": str(mwt if m.septal_mm >= m.lateral_mm else round(m.septal_mm)),
            "lateral": str(mwt if m.lateral_mm > m.septal_mm else round(m.lateral_mm)),
            "ratio": f"{m.septal_mm / m.lateral_mm:.1f}",
            "la_mm": str(_shown(self.case, "la_enlargement")),
            "ao_mm": str(_shown(self.case, "aortic_root_dilation")),
            "eff_mm": str(_shown(self.case, "pericardial_effusion")),
        }
        for finding, key in _GRADE_KEYS.items():
            grade = self.case.grade(finding)
            if grade is not None:
                values[key] = grade
                values[key + "_ly"] = _ADVERB[grade]
        values.update(self._detail_values())
        values.update(self._prior_values())
        return values

    def _word(self, key: str) -> str:
        options = self.style.words[key]
        return options[int(self.rng.integers(len(options)))]

    def _detail_values(self) -> dict[str, str]:
        c = self.case
        out: dict[str, str] = {}
        if c.diagnosis != "normal":
            out["dx_name"] = self._word(f"dx_name.{c.diagnosis}")
        if c.rwma_territory is not None:
            out["segments"] = self._word(f"segments.{c.rwma_territory}")
            out["artery"] = self._word(f"artery.{c.rwma_territory}")
        if c.rwma_kind is not None:
            out["rwma_kind"] = self._word(f"kind.{c.rwma_kind}")
            out["rwma_noun"] = self._word(f"noun.{c.rwma_kind}")
        if c.lge_ischemic is not None:
            territory = c.lge_ischemic_territory or c.rwma_territory or "lad"
            same = territory == c.rwma_territory
            out["lge_segments"] = out["segments"] if same else self._word(f"segments.{territory}")
            out["lge_artery"] = out["artery"] if same else self._word(f"artery.{territory}")
            out["transmurality"] = c.lge_ischemic
            out["viability"] = self._word(f"viability.{c.lge_ischemic}")
        if c.lge_nonischemic is not None:
            out["lge_pattern"] = self._word(f"lge.{c.lge_nonischemic}")
        return out

    def _prior_values(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.prior_date is not None:
            ref = out["prior_date"] = _format_date(self.prior_date, self.name, self.rng)
            if self.name == "external" and self.rng.random() < 0.5:
                ref = f"the study of {ref}"
        else:
            ref = "prior CMR" if self.name == "internal" else "the previous study"
        out["prior_ref"] = ref
        if self.prior is not None:
            out["prior_lvef"] = str(_shown(self.prior, "lv_systolic_dysfunction"))
            out["prior_lvedv"] = str(round(self.prior.measurements.lvedv))
            out["prior_eff_mm"] = str(_shown(self.prior, "pericardial_effusion"))
        return out

    # --- choosing and filling templates ----------------------------------------------

    def fill(self, key: str) -> str:
        options = self.style.sentences[key]
        template = options[int(self.rng.integers(len(options)))]
        return template.format_map(self.values)

    def say(self, key: str) -> str:
        return _sentence(self.fill(key))

    def heading(self, key: str) -> str:
        options = self.style.headings[key]
        return options[int(self.rng.integers(len(options)))]

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    # --- header sections ---------------------------------------------------------------

    def indication(self) -> str:
        dx = self.case.diagnosis
        if self.prior is not None and dx != "normal" and self.chance(0.6):
            return self.fill("ind.follow_up")
        return self.fill(f"ind.{dx}")

    def technique(self) -> str:
        parts = [self.fill("tech.scanner"), self.fill("tech.cine"), self.fill("tech.lge")]
        if self.chance(0.5):
            parts.append(self.fill("tech.extra"))
        return " ".join(parts)

    def comparison(self) -> str | None:
        if self.prior is None and self.prior_date is None:
            return self.fill("cmp.none") if self.chance(0.3) else None
        return self.fill("cmp.header" if self.prior_date is not None else "cmp.header_undated")

    # --- findings section ---------------------------------------------------------------

    def _lv_function_key(self) -> str:
        if self.found["lv_systolic_dysfunction"]:
            return "find.lv_function_impaired"
        lvef = int(self.values["lvef"])
        if lvef > 77:
            return "find.lv_function_hyper"
        return "find.lv_function_low_normal" if lvef < 57 else "find.lv_function_normal"

    def _wall_key(self) -> str:
        if not self.found["lv_hypertrophy"]:
            asym = self.found["asymmetric_septal_hypertrophy"]
            return "find.septum_asymmetric" if asym else "find.wall_normal"
        if self.found["asymmetric_septal_hypertrophy"]:
            return "find.wall_asymmetric"
        return "find.wall_concentric"

    def _lv_findings(self) -> list[str]:
        f = self.found
        keys = [
            "find.lv_size_dilated" if f["lv_dilation"] else "find.lv_size_normal",
            self._lv_function_key(),
            self._wall_key(),
            "find.rwma" if f["regional_wall_motion_abnormality"] else "find.rwma_none",
        ]
        if f["apical_aneurysm"]:
            keys.append("find.aneurysm")
        if f["lv_thrombus"]:
            keys.append("find.thrombus")
        elif self.case.diagnosis in ("icm", "dcm") or f["apical_aneurysm"]:
            keys.append("find.thrombus_none")
        return [self.fill(k) for k in keys]

    def _rv_findings(self) -> list[str]:
        f = self.found
        size = "find.rv_size_dilated" if f["rv_dilation"] else "find.rv_size_normal"
        func = (
            "find.rv_function_impaired"
            if f["rv_systolic_dysfunction"]
            else "find.rv_function_normal"
        )
        return [self.fill(size), self.fill(func)]

    def _atria_findings(self) -> list[str]:
        la = "find.la_dilated" if self.found["la_enlargement"] else "find.la_normal"
        ao = "find.ao_dilated" if self.found["aortic_root_dilation"] else "find.ao_normal"
        return [self.fill(la), self.fill(ao)]

    def _pericardium_findings(self) -> list[str]:
        key = "find.effusion" if self.found["pericardial_effusion"] else "find.effusion_none"
        return [self.say(key)]

    def _lge_findings(self) -> list[str]:
        keys = [k for k in ("lge_ischemic", "lge_nonischemic") if self.found[k]]
        if not keys:
            return [self.fill("find.lge_none")]
        return [self.say(f"find.{k}") for k in keys]

    def findings_internal(self) -> str:
        rows = (
            ("row.lv", self._lv_findings()),
            ("row.rv", self._rv_findings()),
            ("row.atria", self._atria_findings()),
            ("row.pericardium", self._pericardium_findings()),
            ("row.lge", self._lge_findings()),
        )
        return "\n".join(f"{self.heading(row)} " + " ".join(map(_cap, text)) for row, text in rows)

    def findings_external(self) -> str:
        # Narrative readers vary the order of the minor paragraphs.
        minor = self._atria_findings() + self._pericardium_findings()
        order = self.rng.permutation(len(minor))
        paragraphs = [
            self._lv_findings(),
            self._rv_findings(),
            [minor[int(i)] for i in order],
            self._lge_findings(),
        ]
        return "\n\n".join(" ".join(map(_cap, p)) for p in paragraphs)

    # --- impression -----------------------------------------------------------------------

    def _lv_items(self) -> list[tuple[str, str]]:
        dilated = self.found["lv_dilation"]
        impaired = self.found["lv_systolic_dysfunction"]
        if dilated and impaired and self.chance(0.4):
            return [("lv", self.fill("imp.lv_dilation_dysfunction"))]
        items = []
        if impaired:
            items.append(("lv", self.fill("imp.lv_systolic_dysfunction")))
        if dilated:
            key = "imp.lv_dilation" if impaired else "imp.lv_dilation_preserved"
            items.append(("lv", self.fill(key)))
        return items

    def _wall_items(self) -> list[tuple[str, str]]:
        asym = self.found["asymmetric_septal_hypertrophy"]
        if not self.found["lv_hypertrophy"]:
            return [("wall", self.fill("imp.septum_asymmetric"))] if asym else []
        if asym:
            key = "imp.lv_hypertrophy_asymmetric"
        elif self.case.diagnosis == "athlete":
            key = "imp.lv_hypertrophy_athlete"
        else:
            key = "imp.lv_hypertrophy"
        return [("wall", self.fill(key))]

    def _ischaemic_items(self) -> list[tuple[str, str]]:
        rwma = self.found["regional_wall_motion_abnormality"]
        scar = self.found["lge_ischemic"]
        same = self.case.lge_ischemic_territory == self.case.rwma_territory
        if rwma and scar and same and self.chance(0.6):
            return [("ischaemic", self.fill("imp.rwma_lge"))]
        items = []
        if rwma:
            items.append(("ischaemic", self.fill("imp.rwma" if scar else "imp.rwma_viable")))
        if scar:
            items.append(("ischaemic", self.fill("imp.lge_ischemic")))
        return items

    def _apex_items(self) -> list[tuple[str, str]]:
        aneurysm = self.found["apical_aneurysm"]
        thrombus = self.found["lv_thrombus"]
        if aneurysm and thrombus and self.chance(0.5):
            return [("aneurysm", self.fill("imp.aneurysm_thrombus"))]
        items = []
        if aneurysm:
            items.append(("aneurysm", self.fill("imp.apical_aneurysm")))
        if thrombus:
            items.append(("thrombus", self.fill("imp.lv_thrombus")))
        return items

    def _rv_items(self) -> list[tuple[str, str]]:
        items = []
        impaired = self.found["rv_systolic_dysfunction"]
        if impaired:
            items.append(("rv", self.fill("imp.rv_systolic_dysfunction")))
        if self.found["rv_dilation"]:
            key = "imp.rv_dilation" if impaired else "imp.rv_dilation_preserved"
            items.append(("rv", self.fill(key)))
        return items

    def _simple_items(self) -> list[tuple[str, str]]:
        simple = (
            ("effusion", "pericardial_effusion"),
            ("lge_nonischemic", "lge_nonischemic"),
            ("la", "la_enlargement"),
            ("ao", "aortic_root_dilation"),
        )
        return [(topic, self.fill(f"imp.{name}")) for topic, name in simple if self.found[name]]

    def _positive_items(self) -> list[str]:
        """Every positive finding, most important first, with a little reader-to-reader jitter."""
        items = (
            self._lv_items()
            + self._wall_items()
            + self._ischaemic_items()
            + self._apex_items()
            + self._rv_items()
            + self._simple_items()
        )
        ranks = [_PRIORITY[topic] + self.rng.normal(0.0, 0.5) for topic, _ in items]
        return [items[i][1] for i in np.argsort(ranks, kind="stable")]

    def _diagnosis_key(self) -> str | None:
        c, f = self.case, self.found
        keys = {
            "dcm": "dx.dcm" if f["lv_dilation"] else "dx.dcm_nondilated",
            "icm": "dx.icm_scar" if f["lge_ischemic"] else "dx.icm",
            "hcm": "dx.hcm",
            "amyloidosis": "dx.amyloid" if f["lge_nonischemic"] else "dx.amyloid_possible",
            "arvc": "dx.arvc_criteria"
            if f["rv_dilation"] and int(self.values["rvef"]) <= 40
            else "dx.arvc",
            "pericarditis": "dx.myopericarditis" if f["lge_nonischemic"] else "dx.pericarditis",
            "athlete": "dx.athlete",
        }
        return keys.get(c.diagnosis)

    def _with_diagnosis(self, items: list[str]) -> list[str]:
        """Attach the diagnosis phrase to the leading finding, or give it a line of its own."""
        key = self._diagnosis_key()
        if key is None:
            return items
        phrase = self.fill(key)
        first = phrase.split()[0]
        if first in _SUFFIX_WORDS and "," not in items[0] and self.chance(0.5):
            return [f"{items[0]}, {phrase}", *items[1:]]
        if first in _NEEDS_LEAD:
            phrase = f"{self.heading('dx_lead')} {phrase}"
        if self.chance(0.5):
            return [phrase, *items]
        return [*items, phrase]

    def _negative_items(self) -> list[str]:
        """Important negatives a reader volunteers, chosen by what was being looked for."""
        f, dx = self.found, self.case.diagnosis
        # Absent now or before: a resolution is already stated by the comparison.
        had = self.prior.findings if self.prior is not None else {}

        def never(finding: str) -> bool:
            return not (f[finding] or had.get(finding, False))

        lv_ok = not (f["lv_dilation"] or f["lv_systolic_dysfunction"])
        rv_ok = not (f["rv_dilation"] or f["rv_systolic_dysfunction"])
        wanted = {
            "neg.no_lge": never("lge_ischemic") and never("lge_nonischemic"),
            "neg.no_thrombus": dx in ("icm", "dcm") and never("lv_thrombus"),
            "neg.no_effusion": dx in ("pericarditis", "amyloidosis")
            and never("pericardial_effusion"),
            "neg.biv_normal": lv_ok and rv_ok,
            "neg.lv_normal": lv_ok and not rv_ok,
            "neg.rv_normal": rv_ok and not lv_ok,
        }
        return [self.say(key) for key, ok in wanted.items() if ok and self.chance(0.65)]

    def _normal_items(self) -> list[str]:
        items = [self.say("normal")]
        if self.chance(0.3):
            items.append(self.say("neg.no_lge"))
        note = {"athlete": "dx.athlete_normal", "pericarditis": "dx.pericarditis_normal"}
        if self.case.diagnosis in note and self.chance(0.7):
            items.append(self.fill(note[self.case.diagnosis]))
        return items

    def _comparison_items(self) -> list[str]:
        """Interval change against the prior study; resolutions are phrased as negatives."""
        if self.prior is None:
            return []
        before, now = self.prior, self.case
        delta = int(self.values["lvef"]) - int(self.values["prior_lvef"])
        keys = ["cmp.lvef_up" if delta > 3 else "cmp.lvef_down" if delta < -3 else "cmp.lvef_same"]
        if abs(now.measurements.lvedv / before.measurements.lvedv - 1) > 0.1:
            keys.append("cmp.lv_smaller")
        if before.findings["pericardial_effusion"]:
            resolved = not self.found["pericardial_effusion"]
            keys.append("cmp.effusion_resolved" if resolved else "cmp.effusion_smaller")
        if before.lv_thrombus:
            keys.append("cmp.thrombus_persists" if now.lv_thrombus else "cmp.thrombus_resolved")
        return [self.fill(k) for k in keys]

    def impression_items(self) -> list[str]:
        positives = self._positive_items()
        if positives:
            items = self._with_diagnosis(positives) + self._negative_items()
        else:
            items = self._normal_items()
        items = [_sentence(item) for item in items]
        comparisons = self._comparison_items()
        return comparisons + items if self.chance(0.3) else items + comparisons


def _internal_text(w: _Writer) -> tuple[str, str]:
    items = w.impression_items()
    impression = "\n".join(f"{i}. {item}" for i, item in enumerate(items, start=1))
    lines = [w.heading("title"), f"{w.heading('indication')} {w.indication()}"]
    comparison = w.comparison()
    if comparison is not None:
        lines.append(f"{w.heading('comparison')} {comparison}")
    lines += [
        f"{w.heading('technique')} {w.technique()}",
        w.heading("findings"),
        w.findings_internal(),
        w.heading("impression"),
        impression,
    ]
    return "\n".join(lines), impression


def _external_text(w: _Writer) -> tuple[str, str]:
    impression = " ".join(w.impression_items())
    blocks = [w.heading("title"), f"{w.heading('indication')} {w.indication()}"]
    technique = w.technique()
    comparison = w.comparison()
    if comparison is not None:
        technique += f" {w.heading('comparison')} {comparison}"
    blocks += [
        f"{w.heading('technique')} {technique}",
        f"{w.heading('findings')}\n{w.findings_external()}",
    ]
    # Some readers put the conclusion on the heading line, others below it.
    joiner = " " if w.chance(0.5) else "\n"
    blocks.append(f"{w.heading('impression')}{joiner}{impression}")
    return "\n\n".join(blocks), impression


def write_report(
    case: Case,
    style: str,
    rng: np.random.Generator,
    *,
    prior: Case | None = None,
    prior_date: datetime.date | None = None,
    field_strength: float = 1.5,
    vendor: str = "Siemens",
) -> Report:
    """The radiology report of ``case`` in one institution's ``style`` (see STYLES)."""
    writer = _Writer(case, style, rng, prior, prior_date, (field_strength, vendor))
    text, impression = (_internal_text if style == "internal" else _external_text)(writer)
    return Report(text=text, impression=impression)
