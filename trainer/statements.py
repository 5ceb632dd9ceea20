"""Statements of a report: the single claims a study is trained to agree with.

A whole impression mixes what is found with what is ruled out ("Apical aneurysm. No
LV thrombus. Normal RV size and function."), so one vector of it sits between them,
while prompts and clinicians' queries are single statements. The findings section
states every structure, normal ones included ("Normal wall thickness, maximal 9 mm."):
the negatives that impressions leave out, for free, in the reader's own words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

_NUMBERS = re.compile(r"\d+(\.\d+)?")
_PUNCT = re.compile(r"[^a-z ]+")
_ITEM_NUMBER = re.compile(r"^\s*\d+[.)]\s*")  # "2. " or "2) " of a numbered list
_ROW_LABEL = re.compile(r"^[A-Za-z][A-Za-z /-]{0,30}:\s+")  # "Left ventricle: ", "LGE: "
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


def statements(text: str) -> list[str]:
    """The statements of a text, in order: list items and lines, then their sentences."""
    out = []
    for line in text.splitlines():
        line = _ROW_LABEL.sub("", _ITEM_NUMBER.sub("", line).strip())
        out += [s.strip() for s in _SENTENCE_END.split(line) if s.strip()]
    return out


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


@dataclass
class Statements:
    """Distinct statements of a set of studies and which study makes which."""

    texts: list[str]  # one wording per key (the first seen)
    made: NDArray[np.bool_]  # (studies, statements)


def statement_table(per_study: list[list[str]]) -> Statements:
    keys: dict[str, int] = {}
    texts: list[str] = []
    rows: list[list[int]] = []
    for study in per_study:
        row = []
        for statement in study:
            key = text_key(statement)
            if not key:
                continue
            if key not in keys:
                keys[key] = len(texts)
                texts.append(statement)
            row.append(keys[key])
        rows.append(row)
    made = np.zeros((len(per_study), len(texts)), bool)
    for i, row in enumerate(rows):
        made[i, row] = True
    return Statements(texts, made)
