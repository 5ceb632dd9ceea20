"""Phantom radiology reports agree with the case truth, in both institutions' wording.

The finding patterns below are written from how readers phrase findings, independently
of the generator's phrase tables, so a template that states a finding in a way a reader
would not recognise (or states one that is absent) fails here.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator

import numpy as np
import pytest

from cmrsearch.vocabulary import DIAGNOSES, FINDINGS, GRADED_FINDINGS
from phantom.case import Case, follow_up, sample_case
from phantom.reports import STYLES, Report, template_sentences, write_report

# Words in one clause are separated by anything but word characters and clause punctuation.
_SEP = r"[^\w.,;:]+"


def _near(subject: str, attribute: str, after: int = 4, before: int = 1) -> str:
    """`subject` then `attribute` within `after` words, or `attribute` just before `subject`."""
    forward = rf"\b(?:{subject})(?:{_SEP}\w+){{0,{after}}}{_SEP}(?:{attribute})"
    backward = rf"\b(?:{attribute})\w*(?:{_SEP}\w+){{0,{before}}}{_SEP}(?:{subject})\b"
    return f"{forward}|{backward}"


_LV = r"LV|left[ -]ventric\w*"
_RV = r"RV|right[ -]ventric\w*"
_LARGE = r"dilat\w*|enlarg\w*"
_WORSE = r"impair\w*|reduc\w*|depress\w*|decreas\w*|dysfunction|poor"
_LGE = r"LGE|enhancement|fibrosis|scar"

FINDING_PATTERNS: dict[str, str] = {
    "lv_dilation": _near(_LV, _LARGE),
    "lv_systolic_dysfunction": _near(rf"{_LV}|LVEF", _WORSE),
    "lv_hypertrophy": r"hypertroph(?:y|ied)\b|\bLVH\b|thicken\w*|increased wall thickness",
    "asymmetric_septal_hypertrophy": r"\basymmetric\w*|\bASH\b",
    "rv_dilation": _near(_RV, _LARGE),
    "rv_systolic_dysfunction": _near(rf"{_RV}|RVEF", _WORSE),
    "regional_wall_motion_abnormality": r"wall motion abnormalit\w*|\b(?:hypo|a|dys)kine\w*",
    "apical_aneurysm": r"aneurysm\w*",
    "lv_thrombus": r"thromb\w*",
    "pericardial_effusion": r"effusion|pericardial fluid",
    "lge_ischemic": r"subendocardial|transmural|infarct\w*|(?<!non-)ischa?emic (?:pattern|scar)",
    "lge_nonischemic": _near(
        r"mid-?wall|mid-?myocardial|intramyocardial|subepicardial|patchy|diffuse|non-?ischa?emic",
        _LGE,
        after=4,
        before=0,
    )
    + r"|non-?ischa?emic (?:pattern|distribution)",
    "la_enlargement": _near(r"LA|left atri\w*", _LARGE),
    "aortic_root_dilation": _near(r"aortic root|aorta", rf"{_LARGE}|ectatic"),
}
TERRITORY_PATTERNS = {
    "lad": r"\b(?:LAD|anter\w*|left anterior descending)\b",
    "rca": r"\b(?:RCA|inferior|inferoseptal|right coronary)\b",
    "lcx": r"\b(?:LCx|circumflex|lateral|inferolateral)\b",
}
DIAGNOSIS_PATTERNS = {
    "dcm": r"dilated cardiomyopathy|\bDCM\b|non-ischaemic cardiomyopathy",
    "icm": r"(?<!non-)ischaemic (?:heart disease|cardiomyopathy)|infarct",
    "hcm": r"hypertrophic cardiomyopathy|\bHCM\b",
    "amyloidosis": r"amyloid",
    "arvc": r"\bARVC\b|arrhythmogenic",
    "pericarditis": r"pericarditis",
    "athlete": r"athlet\w*|training",
}
# Negated clauses, as the issue defines them: from the negation up to , ; or .
NEGATED = re.compile(r"\b(?:no|not|without|absence of|negative for)\b[^.;,]*", re.IGNORECASE)
LVEF_NUMBER = re.compile(
    r"(?:\bLVEF\b|\bLV ejection fraction|left ventricular ejection fraction)\D{0,25}?(\d+)\s*%",
    re.IGNORECASE,
)
SAMPLES_PER_DIAGNOSIS = 20


def _found(pattern: str, text: str) -> bool:
    return re.search(pattern, text, re.IGNORECASE) is not None


def _affirmed(text: str) -> str:
    """The text with every negated clause removed."""
    return NEGATED.sub(" ", text)


def _sentences(text: str) -> list[str]:
    """Sentences and list items; the numbers of a numbered list are not sentences."""
    pieces = re.split(r"\n|(?<=[.!?])\s+", text)
    return [s for s in pieces if s.strip() and not re.fullmatch(r"\s*\d+\.\s*", s)]


def _stating(finding: str, impression: str) -> list[str]:
    pattern = FINDING_PATTERNS[finding]
    return [s for s in _sentences(_affirmed(impression)) if _found(pattern, s)]


def _cohort() -> Iterator[tuple[Case, Case | None, Report]]:
    """First studies of every diagnosis and some follow-ups, in both styles."""
    rng = np.random.default_rng(20240611)
    for diagnosis in DIAGNOSES:
        for i in range(SAMPLES_PER_DIAGNOSIS):
            case = sample_case(rng, diagnosis)
            style = STYLES[i % 2]
            yield case, None, write_report(case, style, rng)
            if i % 4 == 0:
                later = follow_up(rng, case, float(rng.uniform(0.5, 3.0)))
                date = datetime.date(2020, 1, 1) + datetime.timedelta(days=int(rng.integers(900)))
                report = write_report(later, STYLES[1 - i % 2], rng, prior=case, prior_date=date)
                yield later, case, report


COHORT = list(_cohort())


def _ids() -> list[str]:
    return [f"{case.diagnosis}-{n}" for n, (case, _, _) in enumerate(COHORT)]


@pytest.mark.parametrize(("case", "prior", "report"), COHORT, ids=_ids())
def test_impression_states_exactly_the_true_findings(
    case: Case, prior: Case | None, report: Report
) -> None:
    assert report.impression in report.text
    affirmed = _affirmed(report.impression)
    for finding, present in case.findings.items():
        stated = _found(FINDING_PATTERNS[finding], affirmed)
        assert stated == present, (finding, present, report.impression)


@pytest.mark.parametrize(("case", "prior", "report"), COHORT, ids=_ids())
def test_grades_and_territories_sit_in_the_stating_sentence(
    case: Case, prior: Case | None, report: Report
) -> None:
    for finding, grade in case.grades.items():
        sentences = _stating(finding, report.impression)
        assert any(grade in s.lower() for s in sentences), (finding, grade, report.impression)
    territories = {
        "regional_wall_motion_abnormality": case.rwma_territory,
        "lge_ischemic": case.lge_ischemic_territory,
    }
    for finding, territory in territories.items():
        if territory is None:
            continue
        for sentence in _stating(finding, report.impression):
            assert _found(TERRITORY_PATTERNS[territory], sentence), (finding, sentence)
            others = [t for t in TERRITORY_PATTERNS if t != territory]
            assert not any(_found(TERRITORY_PATTERNS[t], sentence) for t in others), sentence


@pytest.mark.parametrize(("case", "prior", "report"), COHORT, ids=_ids())
def test_lvef_in_findings_matches_the_measurement(
    case: Case, prior: Case | None, report: Report
) -> None:
    before_impression = report.text[: report.text.index(report.impression)]
    numbers = [int(n) for n in LVEF_NUMBER.findall(before_impression)]
    assert numbers, before_impression
    assert all(abs(n - round(case.measurements.lvef)) <= 1 for n in numbers), numbers


@pytest.mark.parametrize(("case", "prior", "report"), COHORT, ids=_ids())
def test_diagnosis_phrase_matches_the_diagnosis(
    case: Case, prior: Case | None, report: Report
) -> None:
    if case.diagnosis == "normal" or not any(case.findings.values()):
        return
    for diagnosis, pattern in DIAGNOSIS_PATTERNS.items():
        mentioned = _found(pattern, _affirmed(report.impression))
        assert mentioned == (diagnosis == case.diagnosis), (diagnosis, report.impression)


def test_sampled_cohort_covers_every_finding_grade_and_style() -> None:
    positives = {f for case, _, _ in COHORT for f, v in case.findings.items() if v}
    grades = {(f, g) for case, _, _ in COHORT for f, g in case.grades.items()}
    assert positives == set(FINDINGS)
    assert {f for f, _ in grades} == set(GRADED_FINDINGS)
    assert len(grades) >= 15


def test_internal_style_is_structured_with_a_numbered_impression() -> None:
    reports = [r for _, _, r in COHORT if "IMPRESSION:" in r.text]
    assert len(reports) >= len(COHORT) // 3
    for report in reports:
        assert report.text.split("IMPRESSION:\n", 1)[1] == report.impression
        for heading in ("INDICATION:", "TECHNIQUE:", "FINDINGS:"):
            assert heading in report.text
        lines = report.impression.split("\n")
        assert [line.split(".")[0] for line in lines] == [str(i) for i in range(1, len(lines) + 1)]


def test_external_style_is_narrative_under_its_own_headings() -> None:
    reports = [r for _, _, r in COHORT if "IMPRESSION" not in r.text]
    assert len(reports) >= len(COHORT) // 3
    headings = set()
    for report in reports:
        before = report.text[: report.text.index(report.impression)].rstrip()
        heading = before.rsplit("\n", 1)[-1]
        assert re.fullmatch(r"(?i)(conclusion|summary|opinion):", heading), heading
        headings.add(heading)
        assert not re.search(r"(?m)^\s*\d+\.\s", report.impression), report.impression
        assert not any(h in report.text for h in ("INDICATION:", "TECHNIQUE:", "FINDINGS:"))
    assert len(headings) >= 3


def test_styles_share_less_than_half_of_their_templates() -> None:
    internal, external = template_sentences("internal"), template_sentences("external")
    assert min(len(internal), len(external)) >= 50
    assert len(internal & external) / min(len(internal), len(external)) < 0.5


def test_normal_studies_are_reported_in_several_ways() -> None:
    rng = np.random.default_rng(7)
    for style in STYLES:
        wordings = set()
        for _ in range(40):
            case = sample_case(rng, "normal")
            if not any(case.findings.values()):
                wordings.add(_sentences(write_report(case, style, rng).impression)[0])
        assert len(wordings) >= 2, wordings


def test_each_style_also_affirms_the_words_a_reader_searches_for() -> None:
    """Readers type "regional wall motion abnormality" and "myocardial infarction"; if
    reports only ever negated them, a model would learn them as normal."""
    rng = np.random.default_rng(3)
    for style in STYLES:
        reports = [write_report(sample_case(rng, "icm"), style, rng) for _ in range(40)]
        assert any(
            _found("regional wall motion abnormality", _affirmed(r.text)) for r in reports
        ), style
        assert any(_found("myocardial infarction", _affirmed(r.impression)) for r in reports), style


def test_prior_study_is_compared_by_date() -> None:
    rng = np.random.default_rng(11)
    date = datetime.date(2021, 3, 4)
    spellings = ("04/03/2021", "04.03.2021", "4 March 2021", "2021-03-04")
    for style in STYLES:
        for diagnosis in ("dcm", "icm", "pericarditis"):
            prior = sample_case(rng, diagnosis)
            later = follow_up(rng, prior, 1.5)
            report = write_report(later, style, rng, prior=prior, prior_date=date)
            assert any(s in report.text for s in spellings), report.text
            assert any(s in report.impression for s in spellings), report.impression
            assert _found(r"improved|fallen|declined|stable|resolved|persists", report.impression)


def test_resolved_effusion_is_reported_as_resolved_not_present() -> None:
    rng = np.random.default_rng(5)
    checked = 0
    while checked < 6:
        prior = sample_case(rng, "pericarditis")
        later = follow_up(rng, prior, 1.0)
        if not prior.findings["pericardial_effusion"] or later.findings["pericardial_effusion"]:
            continue
        report = write_report(later, STYLES[checked % 2], rng, prior=prior)
        assert _found(r"resolved|remains", report.impression), report.impression
        assert not _found(FINDING_PATTERNS["pericardial_effusion"], _affirmed(report.impression))
        checked += 1


def test_same_seed_same_report_and_styles_differ() -> None:
    case = sample_case(np.random.default_rng(3), "dcm")
    for style in STYLES:
        first = write_report(case, style, np.random.default_rng(99))
        again = write_report(case, style, np.random.default_rng(99))
        assert first == again
    internal = write_report(case, "internal", np.random.default_rng(99))
    external = write_report(case, "external", np.random.default_rng(99))
    assert internal.text != external.text


def test_different_cases_give_different_reports() -> None:
    rng = np.random.default_rng(13)
    texts = [write_report(sample_case(rng, "icm"), "internal", rng).text for _ in range(30)]
    assert len(set(texts)) == len(texts)


def test_athlete_with_normal_function_is_never_called_impaired() -> None:
    athletes = [
        (case, report)
        for case, _, report in COHORT
        if case.diagnosis == "athlete" and not case.findings["lv_systolic_dysfunction"]
    ]
    assert sum(case.findings["lv_dilation"] for case, _ in athletes) >= 5
    for case, report in athletes:
        assert not case.findings["rv_systolic_dysfunction"]
        worse = re.compile(r"\b(?:impaired|reduced|depressed|decreased|dysfunction)\b", re.I)
        assert not worse.search(_affirmed(report.text)), report.text


def test_technique_names_scanner_and_sequences() -> None:
    case = sample_case(np.random.default_rng(1), "hcm")
    for style in STYLES:
        text = write_report(
            case, style, np.random.default_rng(2), field_strength=3.0, vendor="Philips"
        ).text
        assert "Philips" in text
        assert _found(r"\b3 ?(?:T|tesla)\b", text)
        assert _found(r"SSFP", text)
        assert _found(r"gadolinium|gadobutrol|gadoterate", text)


def test_unknown_style_is_rejected() -> None:
    case = sample_case(np.random.default_rng(0), "normal")
    with pytest.raises(ValueError, match="style"):
        write_report(case, "tabloid", np.random.default_rng(0))
    with pytest.raises(ValueError):
        template_sentences("tabloid")
