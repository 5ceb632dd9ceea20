"""Classify each series' view from its header, falling back to geometry.

Views: ``sax``, ``2ch``, ``3ch``, ``4ch`` (cines), ``lge_sax``, ``lge_lax`` and
``other`` (localizers, maps, flow, anything unknown). Every series gets one.

Geometry: a short-axis stack has several parallel slices; long-axis planes contain
the LV long axis (the SAX normal). Around that axis the three long-axis views sit at
characteristic angles: taking the four-chamber plane as 0, the three-chamber plane is
~60 deg away and the two-chamber ~90 deg; without any labelled sibling, the
four-chamber is the most axial of the three (its normal has the largest head-foot
component), the two-chamber the least.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

OTHER = "other"
CINE_MIN_PHASES = 8

_OTHER_WORDS = re.compile(
    r"loc(ali[sz]er)?\b|scout|survey|3-plane|tri-?pilot|\bmap\b|t1.?map|t2.?map|molli|"
    r"shmolli|smart1|t2\*|flow|\bpc\b|venc|phase.?contrast|perf|haste|t2w|stir|tse|"
    r"angio|mra\b|\bmap",
    re.IGNORECASE,
)
_LGE_WORDS = re.compile(
    r"\blge\b|lge_|psir|\bmde\b|delayed|late.?gad|\bde_|_de_|ir_tfe|ir-tfe|tfl_psir|"
    r"\bpsir|viability",
    re.IGNORECASE,
)
_VIEW_WORDS = [
    ("4ch", re.compile(r"4.?ch|\bhla\b|four.?ch", re.IGNORECASE)),
    ("3ch", re.compile(r"3.?ch|lvot|three.?ch|\bplax\b", re.IGNORECASE)),
    ("2ch", re.compile(r"2.?ch|\bvla\b|two.?ch", re.IGNORECASE)),
    ("sax", re.compile(r"\bsax?\b|_sax?\b|sax_|short.?ax|\bsa_|_sa_|sa\b", re.IGNORECASE)),
]
# Angles about the long axis, relative to the four-chamber plane (degrees).
_LAX_ANGLES = {"4ch": 0.0, "3ch": 60.0, "2ch": 90.0}


@dataclass
class SeriesInfo:
    """What classification needs to know about one series."""

    uid: str
    description: str
    image_type: tuple[str, ...]
    inversion_time: float | None
    slices: int
    phases: int
    normal: NDArray[np.float64]


def _by_header(info: SeriesInfo) -> str | None:
    text = info.description
    kinds = set(info.image_type)
    if kinds & {"LOCALIZER", "MAP", "T1 MAP", "T2 MAP", "PHASE", "P", "VELOCITY"}:
        return OTHER
    if "DERIVED" in kinds and "PRIMARY" in kinds and info.phases <= 1 and "MAP" in " ".join(kinds):
        return OTHER
    if _OTHER_WORDS.search(text):
        return OTHER
    lge = bool(_LGE_WORDS.search(text)) or (
        info.inversion_time is not None and info.inversion_time > 50 and info.phases <= 2
    )
    if lge:
        return "lge"
    if info.phases < CINE_MIN_PHASES:
        return OTHER  # single-phase, not LGE: nothing the encoder uses
    for view, pattern in _VIEW_WORDS:
        if pattern.search(text):
            return view
    return None  # a cine whose description says nothing: decide by geometry


def _unit(v: NDArray[np.float64]) -> NDArray[np.float64]:
    return v / (np.linalg.norm(v) + 1e-12)


def classify(series: list[SeriesInfo]) -> dict[str, str]:
    """View per series UID for all series of one study."""
    views: dict[str, str] = {}
    pending: list[SeriesInfo] = []
    for info in series:
        view = _by_header(info)
        if view is None:
            view = "sax" if info.slices >= 3 else None
        if view is None:
            pending.append(info)
        else:
            views[info.uid] = view
    sax_normal = _sax_normal(series, views)
    for info in pending:
        views[info.uid] = _lax_by_geometry(info, series, views, sax_normal)
    for info in series:  # LGE: stack or long-axis plane
        if views[info.uid] == "lge":
            parallel = sax_normal is not None and abs(float(info.normal @ sax_normal)) > 0.8
            views[info.uid] = "lge_sax" if info.slices >= 3 or parallel else "lge_lax"
    return views


def _sax_normal(series: list[SeriesInfo], views: dict[str, str]) -> NDArray[np.float64] | None:
    stacks = [s for s in series if views.get(s.uid) == "sax"]
    if not stacks:
        stacks = [s for s in series if views.get(s.uid) == "lge" and s.slices >= 3]
    return _unit(stacks[0].normal) if stacks else None


def _lax_angle(
    normal: NDArray[np.float64], reference: NDArray[np.float64], axis: NDArray[np.float64]
) -> float:
    """Angle (0-90 deg) between two long-axis planes about the long axis."""
    a = _unit(normal - (normal @ axis) * axis)
    b = _unit(reference - (reference @ axis) * axis)
    return float(np.degrees(np.arccos(min(1.0, abs(float(a @ b))))))


def _lax_by_geometry(
    info: SeriesInfo,
    series: list[SeriesInfo],
    views: dict[str, str],
    sax_normal: NDArray[np.float64] | None,
) -> str:
    normal = _unit(info.normal)
    if sax_normal is not None and abs(float(normal @ sax_normal)) > 0.5:
        return OTHER  # a single-slice cine parallel to the short axis: not a long-axis view
    labelled = [s for s in series if views.get(s.uid) in _LAX_ANGLES]
    if sax_normal is not None and labelled:
        ref = labelled[0]
        offset = _LAX_ANGLES[views[ref.uid]]
        angle = _lax_angle(normal, _unit(ref.normal), sax_normal)
        # The plane's angle from the four-chamber: the reference's own angle +- measured.
        candidates = {abs(offset + angle), abs(offset - angle)}
        best = min(_LAX_ANGLES, key=lambda v: min(abs(_LAX_ANGLES[v] - c) for c in candidates))
        return best
    head_foot = abs(float(normal[2]))
    if head_foot > 0.65:
        return "4ch"
    return "2ch" if head_foot < 0.25 else "3ch"
