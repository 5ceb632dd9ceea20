"""Mapper stage (runs in a worker): one study's instances -> series rows and a clip file."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cmrclip.clipfile import save_clips
from indexer.clips import CLIPS_VERSION, ClipConfig, make_clips
from indexer.errors import IngestFailure
from indexer.headers import Instance
from indexer.series import SeriesGroup, group_series, load_pixels
from indexer.views import SeriesInfo, classify

CLIP_SOURCES = ("sax", "2ch", "3ch", "4ch", "lge_sax", "lge_lax")


@dataclass
class StudyTask:
    study_uid: str
    instances: list[Instance]
    clip_dir: Path
    config: ClipConfig

    @property
    def fingerprint(self) -> str:
        """Changes when any file of the study, the clip settings or the way clips are
        made changes."""
        h = hashlib.sha256(repr((CLIPS_VERSION, asdict(self.config))).encode())
        for inst in sorted(self.instances, key=lambda i: i.source.key):
            h.update(f"{inst.source.key}\0{inst.source.size}\0{inst.source.mtime_ns}\n".encode())
        return h.hexdigest()


@dataclass
class StudyResult:
    study_uid: str
    fingerprint: str
    first: Instance
    series: list[dict[str, Any]]
    clip_file: str | None  # relative to HOME
    clip_shapes: dict[str, list[int]]
    clip_views_from: dict[str, str]  # clip view -> series UID
    checksum: str | None
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # path, type, message


def _series_row(group: SeriesGroup, view: str) -> dict[str, Any]:
    first = group.first
    return {
        "series_uid": group.uid,
        "series_number": first.series_number,
        "description": first.series_description[:128] or None,
        "view": view,
        "frames": group.phases,
        "slices": len(group.slices),
        "rows": first.rows,
        "columns": first.columns,
        "pixel_spacing": list(first.pixel_spacing),
        "slice_thickness": first.slice_thickness,
        "orientation": [round(x, 6) for x in first.orientation],
        "frame_time_ms": group.frame_time_ms,
        "image_type": "\\".join(first.image_type)[:128] or None,
        "inversion_time": first.inversion_time,
        "transfer_syntax": first.transfer_syntax,
        "files": len(group.instances),
    }


def map_study(task: StudyTask) -> StudyResult:
    by_series: dict[str, list[Instance]] = {}
    for inst in task.instances:
        by_series.setdefault(inst.series_uid, []).append(inst)
    groups = {uid: group_series(items) for uid, items in by_series.items()}
    infos = [
        SeriesInfo(
            uid,
            g.first.series_description,
            g.first.image_type,
            g.first.inversion_time,
            len(g.slices),
            g.phases,
            g.normal,
        )
        for uid, g in groups.items()
        if not g.mixed_orientation
    ]
    views = classify(infos)
    for uid in groups:
        views.setdefault(uid, "other")  # several orientations in one series: a localizer
    failures: list[tuple[str, str, str]] = []
    chosen: dict[str, tuple[SeriesGroup, Any]] = {}
    # One series per view: a repeated acquisition (higher series number) replaces the first.
    for uid, group in sorted(groups.items(), key=lambda kv: kv[1].first.series_number or 0):
        view = views[uid]
        if view not in CLIP_SOURCES:
            continue
        try:
            chosen[view] = (group, load_pixels(group))
        except IngestFailure as failure:
            failures.append((group.first.source.key, failure.error_type, failure.message))
    clips = make_clips(chosen, task.config) if chosen else {}
    fingerprint = task.fingerprint
    clip_file = checksum = None
    if clips:
        name = hashlib.sha256(task.study_uid.encode()).hexdigest()[:16]
        relative = Path("clips") / name[:2] / f"{name}-{fingerprint[:12]}.npz"
        checksum = save_clips(clips, task.clip_dir / relative)
        clip_file = str(relative)
    source_of = {
        "sax_basal": "sax",
        "sax_mid": "sax",
        "sax_apical": "sax",
        "lvot": "3ch",
        "lge": "lge_sax" if "lge_sax" in chosen else "lge_lax",
    }
    return StudyResult(
        study_uid=task.study_uid,
        fingerprint=fingerprint,
        first=task.instances[0],
        series=[_series_row(g, views[uid]) for uid, g in groups.items()],
        clip_file=clip_file,
        clip_shapes={k: list(v.shape) for k, v in clips.items()},
        clip_views_from={k: chosen[source_of.get(k, k)][0].uid for k in clips},
        checksum=checksum,
        failures=failures,
    )
