"""Statements of a report: the single claims a study is trained to agree with.

A whole impression mixes what is found with what is ruled out ("Apical aneurysm. No
LV thrombus. Normal RV size and function."), so one vector of it sits between them,
while prompts and clinicians' queries are single statements. The findings section
states every structure, normal ones included ("Normal wall thickness, maximal 9 mm."):
the negatives that impressions leave out, for free, in the reader's own words.

A text tower pretrained for paraphrase puts "No LV thrombus." next to "LV thrombus."
(a bag of words, Yuksekgonul et al., ICLR 2023). So every statement that rules
something out also yields its affirmed form, negation cue removed, as a hard
negative of the studies that rule it out (NegCLIP's remedy, made from the reports).

Queries and prompts are short ("Dilated LA."), report sentences carry measurements
("Mildly dilated LA, AP diameter 45 mm."): each statement's core, the clause before
its first comma, colon or bracket, is a statement of the same study too. And a site's
reports write "RV" where a clinician's query says "right ventricle" (or the other way
round): each statement with its abbreviations spelt out is a statement too.

A regional finding is written with where it lies ("Subendocardial LGE in the inferior
segments (RCA territory).") and each territory and wording is a statement of its own,
made by a few dozen studies: none says what all infarcts share. With ``unlocate``, a
statement that places something in coronary territories or segments (the AHA 17-segment
model, Cerqueira et al., Circulation 2002) is also made without its location. Off by
default: on three splits it raised ischaemic LGE and wall motion and lowered
non-ischaemic LGE (README). The non-ischaemic patterns are fragmented the same way
(mid-wall, patchy, diffuse, subepicardial), and what they share is how the report
reads them ("..., non-ischaemic pattern"): with ``interpret``, the interpretation
that closes a statement is a statement too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cmrclip.negation import affirmed, capitalised

_NUMBERS = re.compile(r"\d+(\.\d+)?")
_PUNCT = re.compile(r"[^a-z ]+")
_ITEM_NUMBER = re.compile(r"^\s*\d+[.)]\s*")  # "2. " or "2) " of a numbered list
_ROW_LABEL = re.compile(r"^[A-Za-z][A-Za-z /-]{0,30}:\s+")  # "Left ventricle: ", "LGE: "
# CMR abbreviations spelt out; a chamber before a noun it qualifies is an adjective
# ("RV size" -> "right ventricular size"), otherwise a noun ("Dilated RV").
ABBREVIATIONS: dict[str, str] = {
    "LV": "left ventricle",
    "RV": "right ventricle",
    "LA": "left atrium",
    "RA": "right atrium",
    "LGE": "late gadolinium enhancement",
    "LVH": "left ventricular hypertrophy",
    "LVEF": "left ventricular ejection fraction",
    "RVEF": "right ventricular ejection fraction",
    "EF": "ejection fraction",
    "DCM": "dilated cardiomyopathy",
    "HCM": "hypertrophic cardiomyopathy",
}
_ADJECTIVES = {
    "LV": "left ventricular",
    "RV": "right ventricular",
    "LA": "left atrial",
    "RA": "right atrial",
}
_ABBREVIATION = re.compile(r"\b(" + "|".join(ABBREVIATIONS) + r")\b(?:\s+([a-z]+))?")
# Words after a chamber that make it the subject, not an adjective: "LV not dilated".
_NOT_NOUNS = frozenset({"not", "is", "was", "and", "with", "in", "of", "at"})
# Coronary arteries and segment places of the AHA model, as reports name them.
_ARTERY = r"LAD|RCA|LCx|(?:left )?circumflex|left anterior descending|right coronary"
_PLACE = (
    r"basal|mid|apical|anterior|anteroseptal|inferoseptal|inferior|inferolateral|"
    r"anterolateral|lateral|septal|septum"
)
_PLACES = rf"(?:{_ARTERY}|{_PLACE})(?:(?:\s+(?:and|to)\s+|,\s*|\s+)(?:{_ARTERY}|{_PLACE}))*"
_SITE = r"(?:territory|territories|segments?|walls?)"
_REGIONAL = re.compile(rf"\b(?:{_ARTERY})\b|\bsegments\b", re.IGNORECASE)
_LOCATION = re.compile(
    # "in the LAD territory", "of the basal inferolateral wall", ", corresponding to the
    # RCA territory"; "(LAD territory)", "(RCA)"; ", LAD territory", ", lateral segments";
    # "inferior segments", "LAD territory infarction"
    rf"(?:,?\s*corresponding to|\s+(?:in|of|at))?\s+the\s+{_PLACES}(?:\s+{_SITE})?"
    rf"|\s*\(\s*{_PLACES}(?:\s+{_SITE})?\s*\)"
    rf"|,\s*{_PLACES}\s+{_SITE}"
    rf"|\b{_PLACES}(?:\s+territory)?\s+(?=(?:segments?|walls?|myocardial|infarct|infarction)\b)",
    re.IGNORECASE,
)
# What a finding means, closing its statement: ", consistent with previous infarction",
# "(non-ischaemic distribution)", ", a non-ischaemic pattern".
_INTERPRETATION = re.compile(
    r"(?:,|\()\s*(?:an?\s+)?("
    r"(?:consistent|compatible|in keeping) with [^,;().]+"
    r"|(?:suggestive|typical|characteristic) of [^,;().]+"
    r"|[\w-]+ (?:pattern|distribution)"
    r")\s*\)?\s*\.?\s*$",
    re.IGNORECASE,
)
# What one view shows, in the words reports use for it: the statements that the view's
# own vector is trained to agree with (`trainer.loop`, ``view_statement_weights``), so
# that scar is learnt on LGE and the root on the LVOT crop, not from the hearts they
# come with. LGE: late enhancement, or none; LVOT: the aortic root and valve.
VIEW_WORDS: dict[str, re.Pattern[str]] = {
    "lge": re.compile(
        r"\b(?:LGE|enhancement|enhancing|scar|fibrosis|infarct\w*|non-?isch(?:a)?emic)\b",
        re.IGNORECASE,
    ),
    "lvot": re.compile(r"\baort(?:a|ic)\b", re.IGNORECASE),
}
_CLAUSE_END = re.compile(r"\s*[,:;(]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")  # "62%. No LGE", never "2.5 cm"
_FINDINGS = re.compile(
    r"^[ \t]*(findings(?: and report)?|report|results|description|observations)[ \t]*:",
    re.IGNORECASE | re.MULTILINE,
)
_SUMMARY = re.compile(
    r"^[ \t]*(?:final\s+)?(impressions?|conclusions?|summary|opinion|interpretation)\b",
    re.IGNORECASE | re.MULTILINE,
)


def text_key(text: str) -> str:
    """Case, numbers and punctuation ignored: "LVEF 62%." and "LVEF 65%." say one thing."""
    return " ".join(_PUNCT.sub(" ", _NUMBERS.sub(" ", text.lower())).split())


def about(view: str, statement: str) -> bool:
    """Whether the statement says what the view shows (`VIEW_WORDS`), or that it is normal."""
    return VIEW_WORDS[view].search(statement) is not None


def statements(text: str) -> list[str]:
    """The statements of a text, in order: list items and lines, then their sentences."""
    out = []
    for line in text.splitlines():
        line = _ROW_LABEL.sub("", _ITEM_NUMBER.sub("", line).strip())
        out += [s.strip() for s in _SENTENCE_END.split(line) if s.strip()]
    return out


def core(statement: str) -> str | None:
    """The clause before the first comma, colon or bracket; None when that is all of it
    or a single word."""
    end = _CLAUSE_END.search(statement)
    if end is None or len(statement[: end.start()].split()) < 2:
        return None
    return statement[: end.start()] + "."


def spelt_out(statement: str) -> str | None:
    """The statement with its CMR abbreviations written in full; None without any."""

    def full(match: re.Match[str]) -> str:
        short, after = match.group(1), match.group(2)
        if after and after not in _NOT_NOUNS and short in _ADJECTIVES:
            return f"{_ADJECTIVES[short]} {after}"
        return ABBREVIATIONS[short] + (f" {after}" if after else "")

    out = _ABBREVIATION.sub(full, statement)
    return None if out == statement else capitalised(out)


def unlocated(statement: str) -> str | None:
    """A statement that names a coronary territory or segments, without where; None for
    any other ("Hypokinetic inferior segments (RCA territory)." -> "Hypokinetic segments.")."""
    if not _REGIONAL.search(statement):
        return None
    out = _LOCATION.sub("", statement)
    out = re.sub(r"\s+([,.;:)])", r"\1", re.sub(r"\(\s*\)", "", out))
    out = " ".join(out.split())
    return None if out == statement or not text_key(out) else capitalised(out)


def interpretation(statement: str) -> str | None:
    """The interpretation that closes a statement, as a statement of its own; None without
    one ("Mid-wall LGE in the septum, non-ischaemic pattern." -> "Non-ischaemic pattern.")."""
    match = _INTERPRETATION.search(statement)
    return capitalised(match.group(1).strip() + ".") if match else None


def findings_section(report: str) -> str:
    """The body under the first findings heading, up to the summary; "" without one."""
    start = _FINDINGS.search(report)
    if start is None:
        return ""
    body = report[start.end() :]
    end = _SUMMARY.search(body)
    return body[: end.start()] if end else body


def report_statements(impression: str, report: str) -> list[str]:
    """The impression's statements, then those of the findings section."""
    return statements(impression) + statements(findings_section(report))


def _forms(statement: str, unlocate: bool, interpret: bool) -> list[str]:
    """The statement, its core, (with ``unlocate``) its unlocated form and (with
    ``interpret``) its interpretation, each as written and spelt out."""
    general = unlocated(statement) if unlocate else None
    meaning = interpretation(statement) if interpret else None
    shown = [
        s for s in (statement, core(statement), general, general and core(general), meaning) if s
    ]
    return [f for s in shown for f in (s, spelt_out(s)) if f and text_key(f)]


@dataclass
class Statements:
    """Distinct statements of a set of studies and which study makes which."""

    texts: list[str]  # the forms reports make (first wording per key), then affirmed ones
    made: NDArray[np.bool_]  # (studies, texts): the report makes it
    denied: NDArray[np.bool_]  # (studies, texts): the report rules out this affirmed form
    about: dict[str, NDArray[np.bool_]]  # view -> (texts,): says what it shows (`about`)


def statement_table(
    per_study: list[list[str]], unlocate: bool = False, interpret: bool = False
) -> Statements:
    keys: dict[str, int] = {}
    texts: list[str] = []

    def index(text: str) -> int:
        key = text_key(text)
        if key not in keys:
            keys[key] = len(texts)
            texts.append(text)
        return keys[key]

    said = [[form for s in study for form in _forms(s, unlocate, interpret)] for study in per_study]
    made_rows = [[index(s) for s in study] for study in said]
    # Affirmed forms after every statement: one that some report makes stays a statement.
    denied_rows = [
        [index(a) for s in study if (a := affirmed(s)) and text_key(a)] for study in said
    ]
    made = np.zeros((len(per_study), len(texts)), bool)
    denied = np.zeros_like(made)
    for i, (row, negated) in enumerate(zip(made_rows, denied_rows, strict=True)):
        made[i, row] = True
        denied[i, negated] = True
    shown = {view: np.array([about(view, t) for t in texts], bool) for view in VIEW_WORDS}
    return Statements(texts, made, denied & ~made, shown)
