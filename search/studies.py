"""One study as a viewer needs it: metadata, series, report and playable cines.

Cines come from the indexer's clip cache (one cardiac cycle per view); each view's
frame duration is derived from its series' DICOM timing, so a cycle plays at the
patient's own heart rate.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from catalog.models import Clip, Series, Study
from cmrclip.clipfile import load_clips
from cmrsearch.errors import CmrSearchError
from cmrsearch.vocabulary import CLIP_VIEWS

DEFAULT_CYCLE_MS = 1000.0  # 60 beats per minute, when a series carries no timing
CINE_ORDER = {view: i for i, view in enumerate(CLIP_VIEWS)}


class StudyNotFound(CmrSearchError):
    """The study is not (or no longer) in the catalog."""


@dataclass(frozen=True)
class Cine:
    view: str
    frames: NDArray[np.uint8]  # (T, H, W); one frame for LGE, its slices side by side
    frame_ms: float
    series_description: str | None


@dataclass(frozen=True)
class StudyDetail:
    study_uid: str
    patient: str | None
    study_date: str | None
    institution: str | None
    manufacturer: str | None
    model_name: str | None
    field_strength: float | None
    age: int | None
    sex: str | None
    description: str | None
    series: list[dict[str, Any]]
    report: str | None
    impression: str | None
    clip_file: str | None
    clip_views: dict[str, tuple[float, str | None]]  # view -> (cycle ms, series description)

    @property
    def views(self) -> list[str]:
        return sorted({s["view"] for s in self.series if s["view"] != "other"})


def _cycle_ms(series: Series | None) -> float:
    if series is None or not series.frame_time_ms or series.frames < 2:
        return DEFAULT_CYCLE_MS
    return float(series.frame_time_ms * series.frames)


def study_detail(session: Session, study_uid: str) -> StudyDetail:
    study = session.scalars(
        select(Study)
        .where(Study.study_uid == study_uid)
        .options(
            selectinload(Study.series),
            selectinload(Study.clips),
            selectinload(Study.patient),
            selectinload(Study.report),
        )
    ).first()
    if study is None:
        raise StudyNotFound("that study is not in the catalog (any more); it may have been deleted")
    series_by_id = {s.id: s for s in study.series}
    clips: list[Clip] = sorted(study.clips, key=lambda c: CINE_ORDER.get(c.view, 99))
    return StudyDetail(
        study_uid=study.study_uid,
        patient=study.patient.pseudo_id if study.patient else None,
        study_date=study.study_date.isoformat() if study.study_date else None,
        institution=study.institution,
        manufacturer=study.manufacturer,
        model_name=study.model_name,
        field_strength=study.field_strength,
        age=study.patient_age,
        sex=study.patient_sex,
        description=study.description,
        series=[
            {
                "number": s.series_number,
                "description": s.description,
                "view": s.view,
                "phases": s.frames,
                "slices": s.slices,
                "matrix": f"{s.rows}x{s.columns}" if s.rows and s.columns else None,
                "frame_time_ms": round(s.frame_time_ms, 1) if s.frame_time_ms else None,
            }
            for s in sorted(study.series, key=lambda s: (s.series_number or 0, s.id))
        ],
        report=study.report.text if study.report else None,
        impression=study.report.impression if study.report else None,
        clip_file=clips[0].path if clips else None,
        clip_views={
            c.view: (
                _cycle_ms(series_by_id.get(c.series_id) if c.series_id else None),
                series_by_id[c.series_id].description if c.series_id in series_by_id else None,
            )
            for c in clips
        },
    )


def _distinct(frames: NDArray[np.uint8]) -> list[NDArray[np.uint8]]:
    """Frames, each repeat of the one before left out (a single LGE plane comes thrice)."""
    return [f for k, f in enumerate(frames) if k == 0 or not np.array_equal(f, frames[k - 1])]


def load_cines(home: Path, detail: StudyDetail) -> list[Cine]:
    """The study's cines in display order (SAX base to apex, long axis, LGE)."""
    if detail.clip_file is None:
        return []
    path = home / detail.clip_file
    try:
        arrays = load_clips(path)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise CmrSearchError(
            f"the cached cines of this study cannot be read ({type(exc).__name__}); "
            "re-run `cmrsearch index` on its folder"
        ) from None
    out = []
    for view, (cycle_ms, description) in detail.clip_views.items():
        frames = arrays.get(view)
        if frames is None:
            continue
        frames = frames if frames.ndim == 3 else frames[None]
        if view == "lge":  # its slices, base to apex, side by side in one still
            frames = np.concatenate(_distinct(frames), axis=1)[None]
        out.append(Cine(view, frames, cycle_ms / max(len(frames), 1), description))
    return out
