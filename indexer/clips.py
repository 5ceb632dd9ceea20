"""Mapper stage: turn a study's classified series into fixed-size clips for the encoder.

Per view a (frames, size, size) uint8 clip: intensities scaled between robust
percentiles, a square crop of fixed physical size centred on the heart (the
temporal-variance map of a cine: the beating heart is what moves), resampled over
one cardiac cycle. The SAX stack gives three clips (basal, mid, apical); LGE gives
one frame per slice, basal, mid and apical where the cine stack tells which end is
the base (the slices stand where the phases of a cine would). The 3CH series gives a
second clip, "lvot": a tighter crop centred 20 mm beyond where the basal SAX slice
(planned at the mitral valve plane) crosses it, so that the aortic root, which leaves
the LV there, is not an edge of a whole-heart view but the middle of one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from indexer.series import SeriesGroup

Array = NDArray[np.float32]
# Raised whenever the clips a study gives change: the next index run re-clips every
# study. 4: the apical slice at 0.9 of the stack. 3: the LVOT clip. 2: LGE as basal, mid
# and apical slices (1: the mid slice alone).
CLIPS_VERSION = 4
# Where the basal, mid and apical clips sit along a SAX stack ordered base to apex. A
# thrombus or an aneurysm fills the apical cap: at 0.8 the apical slice cut the
# thrombus of 38 % of simulated cases, at 0.9 of all of them (the README has the count).
SAX_LEVELS = (("sax_basal", 0.2), ("sax_mid", 0.5), ("sax_apical", 0.9))


def level_index(fraction: float, n: int) -> int:
    """The slice at ``fraction`` of a stack of ``n`` ordered base to apex."""
    return min(round(fraction * (n - 1)), n - 1)


@dataclass(frozen=True)
class ClipConfig:
    frames: int = 16
    size: int = 64
    sax_crop_mm: float = 150.0
    lax_crop_mm: float = 200.0
    lvot_crop_mm: float = 120.0
    lvot_beyond_valve_mm: float = 20.0
    low_percentile: float = 1.0
    high_percentile: float = 99.5


def _scale(pixels: Array, config: ClipConfig) -> Array:
    lo, hi = np.percentile(pixels, [config.low_percentile, config.high_percentile])
    return np.clip((pixels - lo) / max(float(hi - lo), 1e-6), 0.0, 1.0).astype(np.float32)


def motion_centre(stack: Array, spacing: float) -> tuple[float, float]:
    """(row, col) of the strongest cyclic motion, i.e. the beating ventricles."""
    variance = stack.std(axis=1).mean(axis=0)  # over phases, then over slices
    smooth = ndimage.gaussian_filter(variance, sigma=max(10.0 / spacing, 1.0))
    row, col = np.unravel_index(int(np.argmax(smooth)), smooth.shape)
    return float(row), float(col)


def crop(
    frames: Array,
    centre: tuple[float, float],
    spacing: tuple[float, float],
    crop_mm: float,
    size: int,
) -> Array:
    """A crop_mm square around ``centre`` (zero outside the image), resized to size^2."""
    half_r = crop_mm / spacing[0] / 2
    half_c = crop_mm / spacing[1] / 2
    r0, c0 = round(centre[0] - half_r), round(centre[1] - half_c)
    h, w = max(round(2 * half_r), 1), max(round(2 * half_c), 1)
    out = np.zeros((frames.shape[0], h, w), np.float32)
    rs, cs = max(r0, 0), max(c0, 0)
    re, ce = min(r0 + h, frames.shape[1]), min(c0 + w, frames.shape[2])
    if re > rs and ce > cs:
        out[:, rs - r0 : re - r0, cs - c0 : ce - c0] = frames[:, rs:re, cs:ce]
    return ndimage.zoom(
        out, (1, size / h, size / w), order=1, grid_mode=True, mode="grid-constant"
    )[:, :size, :size]


def resample_cycle(frames: Array, count: int) -> Array:
    """Linear interpolation over one (cyclic) cardiac cycle to ``count`` frames."""
    n = frames.shape[0]
    if n == 1:
        return frames
    t = np.arange(count) * n / count
    i0 = np.floor(t).astype(int) % n
    i1 = (i0 + 1) % n
    w = (t - np.floor(t))[:, None, None].astype(np.float32)
    return frames[i0] * (1 - w) + frames[i1] * w


def _to_uint8(clip: Array) -> NDArray[np.uint8]:
    return np.clip(np.rint(clip * 255), 0, 255).astype(np.uint8)


def _base_first(stack: Array, centre: tuple[float, float], spacing: float) -> bool:
    """Whether the SAX stack runs base -> apex: the base slices hold far more blood."""
    r, c = int(centre[0]), int(centre[1])
    half = int(40 / spacing)
    region = stack[:, 0, max(r - half, 0) : r + half, max(c - half, 0) : c + half]
    bright = (region > 0.5).reshape(len(stack), -1).sum(axis=1)
    third = max(len(stack) // 3, 1)
    return bool(bright[:third].sum() >= bright[-third:].sum())


def patient_point(
    group: SeriesGroup, slice_index: int, rc: tuple[float, float]
) -> NDArray[np.float64]:
    inst = group.first
    origin = np.array(group.slices[slice_index][0].position)
    row_dir, col_dir = np.array(inst.orientation[:3]), np.array(inst.orientation[3:])
    return (
        origin + rc[1] * inst.pixel_spacing[1] * row_dir + rc[0] * inst.pixel_spacing[0] * col_dir
    )


def project(
    group: SeriesGroup, slice_index: int, point: NDArray[np.float64]
) -> tuple[float, float]:
    inst = group.first
    d = point - np.array(group.slices[slice_index][0].position)
    row_dir, col_dir = np.array(inst.orientation[:3]), np.array(inst.orientation[3:])
    return float(d @ col_dir / inst.pixel_spacing[0]), float(d @ row_dir / inst.pixel_spacing[1])


def _inside(rc: tuple[float, float], stack: Array) -> bool:
    """Whether (row, col) falls on the images of a (slices, phases, rows, cols) stack."""
    return 0 <= rc[0] < stack.shape[2] and 0 <= rc[1] < stack.shape[3]


def lge_slices(group: SeriesGroup, towards_base: NDArray[np.float64] | None) -> list[int]:
    """Basal, mid and apical slice of an LGE stack (a scar may spare the mid slice);
    the middle slice three times for a single plane or a stack whose base is unknown,
    so that every study's LGE clip has one shape."""
    n = len(group.slices)
    if n < 3 or towards_base is None:
        return [n // 2] * 3
    depth = [float(np.dot(s[0].position, towards_base)) for s in group.slices]
    ordered = sorted(range(n), key=lambda k: -depth[k])  # base first
    return [ordered[level_index(f, n)] for _, f in SAX_LEVELS]


def make_clips(
    series: dict[str, tuple[SeriesGroup, Array]], config: ClipConfig
) -> dict[str, NDArray[np.uint8]]:
    """Clips keyed by encoder view (sax_basal, sax_mid, sax_apical, 2ch, 3ch, lvot, 4ch,
    lge); lvot only where a SAX stack says where the valve plane is."""
    clips: dict[str, NDArray[np.uint8]] = {}
    heart: NDArray[np.float64] | None = None
    root: NDArray[np.float64] | None = None  # the LVOT clip's centre
    towards_base: NDArray[np.float64] | None = None  # unit vector along the LV long axis
    if "sax" in series:
        group, pixels = series["sax"]
        stack = _scale(pixels, config)
        spacing = group.first.pixel_spacing
        centre = motion_centre(stack, spacing[0])
        mid = len(stack) // 2
        heart = patient_point(group, mid, centre)
        base_first = _base_first(stack, centre, spacing[0])
        ordered = stack if base_first else stack[::-1]
        n = len(ordered)
        first, last = patient_point(group, 0, centre), patient_point(group, n - 1, centre)
        if np.linalg.norm(first - last) > 0:  # a stack of one slice has no axis
            basal, apical = (first, last) if base_first else (last, first)
            towards_base = (basal - apical) / np.linalg.norm(basal - apical)
            root = basal + config.lvot_beyond_valve_mm * towards_base
        for name, fraction in SAX_LEVELS:
            k = level_index(fraction, n)
            frames = crop(ordered[k], centre, spacing, config.sax_crop_mm, config.size)
            clips[name] = _to_uint8(resample_cycle(frames, config.frames))
    for view in ("2ch", "3ch", "4ch"):
        if view not in series:
            continue
        group, pixels = series[view]
        stack = _scale(pixels, config)
        spacing = group.first.pixel_spacing
        centre = motion_centre(stack, spacing[0])
        frames = crop(stack[0], centre, spacing, config.lax_crop_mm, config.size)
        clips[view] = _to_uint8(resample_cycle(frames, config.frames))
        if view == "3ch" and root is not None:
            at = project(group, 0, root)
            if _inside(at, stack):
                frames = crop(stack[0], at, spacing, config.lvot_crop_mm, config.size)
                clips["lvot"] = _to_uint8(resample_cycle(frames, config.frames))
    lge = series.get("lge_sax") or series.get("lge_lax")
    if lge is not None:
        group, pixels = lge
        stack = _scale(pixels, config)
        crop_mm = config.sax_crop_mm if "lge_sax" in series else config.lax_crop_mm
        spacing = group.first.pixel_spacing
        slices = []
        for k in lge_slices(group, towards_base):
            centre = (stack.shape[2] / 2, stack.shape[3] / 2)
            if heart is not None:
                projected = project(group, k, heart)
                if _inside(projected, stack):
                    centre = projected
            slices.append(crop(stack[k, :1], centre, spacing, crop_mm, config.size))
        clips["lge"] = _to_uint8(np.concatenate(slices))
    return clips
