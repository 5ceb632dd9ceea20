"""Measurements a report states, as regression targets for the study vector.

A finding such as a dilated aortic root is a threshold on a size the report gives in
every study ("Aortic root 33 mm at the sinuses (normal)."). As a statement it trains
the model only on the few studies past the threshold, and a contrastive batch of 32
holds two or three of them; as a number it trains on every study, the normal ones
included. Regressing the stated sizes and fractions from the study vector makes the
video tower measure what radiologists measure, and keeps it in the vector that
queries are scored against (README: "Per-view maps and measurement targets").

Each measurement is the first number with its unit after one of its words in a
sentence; sentences that compare with an earlier study are skipped (their first
number is the old one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from trainer.statements import findings_section, statements

_NUMBER = r"(\d+(?:\.\d+)?)"
_COMPARISON = re.compile(r"\b(previous(ly)?|prior|since|compared|from \d)", re.IGNORECASE)


@dataclass(frozen=True)
class Measurement:
    words: re.Pattern[str]  # what the sentence must name, before the number
    unit: re.Pattern[str]  # the number, captured, and its unit


def _m(words: str, unit: str) -> Measurement:
    return Measurement(re.compile(words, re.IGNORECASE), re.compile(_NUMBER + r"\s*" + unit))


MEASUREMENTS: dict[str, Measurement] = {
    "aortic_root_mm": _m(r"aortic root", "mm"),
    "la_mm": _m(r"\bLA\b|left atri", "mm"),
    "wall_mm": _m(r"wall|myocardium|\bLVH\b|hypertrophy|septum", "mm"),
    "effusion_mm": _m(r"effusion", "mm"),
    "lvedvi": _m(r"\bLV(EDVi?)?\b|left ventric", r"ml/m"),
    "rvedvi": _m(r"\bRV(EDVi?)?\b|right ventric", r"ml/m"),
    "lvef": _m(r"\bLVEF\b|\bLV\b|left ventric", "%"),
    "rvef": _m(r"\bRVEF\b|\bRV\b|right ventric", "%"),
}


def measure(report: str) -> dict[str, float]:
    """Every measurement the report states: in its findings section, or anywhere in a
    report without one."""
    found: dict[str, float] = {}
    for sentence in statements(findings_section(report) or report):
        if _COMPARISON.search(sentence):
            continue
        for name, m in MEASUREMENTS.items():
            if name in found or (words := m.words.search(sentence)) is None:
                continue
            value = m.unit.search(sentence, words.start())
            if value is not None:
                found[name] = float(value.group(1))
    return found


@dataclass
class Targets:
    """Measurements of a set of studies, standardised; NaN where a report is silent."""

    names: list[str]
    values: NDArray[np.float32]  # (studies, measurements), z-scores over the studies

    @classmethod
    def of(cls, texts: list[str]) -> Targets:
        rows = [measure(t) for t in texts]
        names = [n for n in MEASUREMENTS if sum(n in r for r in rows) >= 2]
        raw = np.array([[r.get(n, np.nan) for n in names] for r in rows], np.float32)
        raw = raw.reshape(len(rows), len(names))
        if not names:
            return cls(names, raw)
        mean, std = np.nanmean(raw, axis=0), np.nanstd(raw, axis=0)
        return cls(names, (raw - mean) / np.where(std > 0, std, 1))
