"""Group instances into studies and series; order slices and phases; decode pixels."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pydicom
from numpy.typing import NDArray

from indexer.errors import IngestFailure
from indexer.headers import Frame, Instance

POSITION_TOLERANCE = 0.5  # mm: frames closer than this along the normal share a slice


@dataclass
class SeriesGroup:
    uid: str
    instances: list[Instance]
    normal: NDArray[np.float64]
    slices: list[list[Frame]]  # slice (ordered along the normal) -> frames in time order
    mixed_orientation: bool

    @property
    def first(self) -> Instance:
        return self.instances[0]

    @property
    def phases(self) -> int:
        return max((len(s) for s in self.slices), default=0)

    @property
    def frame_time_ms(self) -> float | None:
        triggers = sorted({f.trigger_ms for f in self.slices[0] if f.trigger_ms is not None})
        if len(triggers) >= 2:
            return float(np.median(np.diff(triggers)))
        interval = self.first.nominal_interval
        return interval / self.phases if interval and self.phases > 1 else None


def normal_of(orientation: tuple[float, ...]) -> NDArray[np.float64]:
    row, col = np.array(orientation[:3]), np.array(orientation[3:])
    n = np.cross(row, col)
    return n / (np.linalg.norm(n) + 1e-12)


def group_series(instances: list[Instance]) -> SeriesGroup:
    """Order a series' frames: slices by position along the normal, phases by trigger time."""
    first = instances[0]
    normal = normal_of(first.orientation)
    mixed = any(not np.allclose(i.orientation, first.orientation, atol=1e-3) for i in instances)
    frames = [f for i in instances for f in i.frames]
    if mixed:
        return SeriesGroup(first.series_uid, instances, normal, [[f] for f in frames], True)
    by_position: dict[float, list[Frame]] = defaultdict(list)
    for frame in frames:
        distance = float(np.dot(frame.position, normal))
        key = round(distance / POSITION_TOLERANCE) * POSITION_TOLERANCE
        by_position[key].append(frame)
    slices = []
    for key in sorted(by_position):
        group = by_position[key]
        group.sort(
            key=lambda f: (f.trigger_ms if f.trigger_ms is not None else 0.0, f.instance, f.index)
        )
        slices.append(group)
    return SeriesGroup(first.series_uid, instances, normal, slices, False)


def group_studies(instances: list[Instance]) -> dict[str, dict[str, list[Instance]]]:
    """study UID -> series UID -> instances (duplicates by SOP Instance UID dropped)."""
    studies: dict[str, dict[str, list[Instance]]] = defaultdict(lambda: defaultdict(list))
    seen: set[str] = set()
    for inst in sorted(instances, key=lambda i: i.source.key):
        if inst.sop_uid in seen:
            continue
        seen.add(inst.sop_uid)
        studies[inst.study_uid][inst.series_uid].append(inst)
    return {k: dict(v) for k, v in studies.items()}


def load_pixels(group: SeriesGroup) -> NDArray[np.float32]:
    """Decoded, rescaled pixels as (slices, phases, rows, cols)."""
    sizes = {(i.rows, i.columns) for i in group.instances}
    if len(sizes) != 1:
        raise IngestFailure(
            "inconsistent_frames", f"frames of one series have {len(sizes)} different sizes"
        )
    rows, cols = sizes.pop()
    by_source = {i.source.key: i for i in group.instances}
    decoded: dict[str, NDArray[np.float32]] = {}
    for key, inst in by_source.items():
        try:
            with inst.source.open() as fh:
                ds = pydicom.dcmread(fh)
                array = ds.pixel_array.astype(np.float32)
        except Exception as exc:  # any decoder failure rejects this series, named
            raise IngestFailure(
                "decode_failed", f"pixel data could not be decoded ({type(exc).__name__})"
            ) from None
        slope, intercept = _rescale(ds)
        array = array * slope + intercept
        decoded[key] = array.reshape(-1, rows, cols)
    phases = group.phases
    out = np.zeros((len(group.slices), phases, rows, cols), np.float32)
    for k, frames in enumerate(group.slices):
        for t, frame in enumerate(frames):
            out[k, t] = decoded[frame.source][frame.index]
        for t in range(len(frames), phases):  # a slice with fewer phases: hold the last
            out[k, t] = out[k, len(frames) - 1]
    return out


def _rescale(ds: pydicom.Dataset) -> tuple[float, float]:
    holder = ds
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared and "PixelValueTransformationSequence" in shared[0]:
        holder = shared[0].PixelValueTransformationSequence[0]
    return float(holder.get("RescaleSlope", 1) or 1), float(holder.get("RescaleIntercept", 0) or 0)
