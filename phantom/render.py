"""Image formation: plan the views, sample anatomy on each plane, add MR physics.

Coil shading, Rician noise (magnitude of complex Gaussian noise, so air and lungs
keep a noise floor), slice misregistration between breath-holds, and occasional
bSSFP banding or respiratory ghosting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from phantom.geometry import HeartFrame, Plane, centred_plane, long_axis_directions, rotation
from phantom.heart import LVOT_ANGLE, HeartModel
from phantom.thorax import Thorax

Float = NDArray[np.floating[Any]]
F = np.float32
MAX_STORED = 4095  # 12 bits stored, as most scanners write MR


@dataclass(frozen=True)
class Acquisition:
    field_strength: float
    fov: float  # mm along the frequency-encoding (column) direction
    rows: int
    cols: int
    thickness: float
    gap: float
    phases: int
    noise: float  # Gaussian sigma relative to blood signal
    blood_counts: float  # stored value of blood at the coil sensitivity peak
    rotation_deg: float  # in-plane rotation of the planning
    offset: tuple[float, float]  # in-plane offset of the heart from the image centre (mm)
    breath_hold_mm: float  # sd of the misregistration between breath-holds
    shading_lateral: float
    artifact: str | None  # banding | ghost | None

    @property
    def spacing(self) -> float:
        return self.fov / self.cols


def sample_acquisition(rng: np.random.Generator, heart_rate: int, size: str) -> Acquisition:
    """Scanner settings that vary from study to study, within clinical ranges."""
    base = {"small": 64, "default": 76, "large": 192}[size]
    cols = int(base + 8 * rng.integers(-1, 3)) if size != "small" else base
    rows = int(round(cols * rng.choice([0.75, 0.8125, 0.875, 1.0]) / 4) * 4)
    field = float(rng.choice([1.5, 3.0], p=[0.65, 0.35]))
    phases = int(np.clip(round(rng.normal(25, 2.5)), 20, 30))
    return Acquisition(
        field_strength=field,
        fov=float(rng.uniform(220, 270) if size == "small" else rng.uniform(270, 340)),
        rows=rows,
        cols=cols,
        thickness=float(rng.choice([6.0, 7.0, 8.0])),
        gap=float(rng.choice([0.0, 2.0, 2.0, 4.0])),
        phases=phases,
        noise=float(rng.uniform(0.02, 0.05) * (0.75 if field == 3.0 else 1.0)),
        blood_counts=float(rng.uniform(500, 1500)),
        rotation_deg=float(rng.normal(0, 10)),
        offset=(float(rng.normal(0, 12)), float(rng.normal(0, 12))),
        breath_hold_mm=float(rng.uniform(0.0, 2.5)),
        shading_lateral=float(rng.normal(0, 0.12)),
        artifact=str(rng.choice(["none", "banding", "ghost"], p=[0.86, 0.08, 0.06])),
    )


def _rotated(
    row: NDArray[np.float64], col: NDArray[np.float64], degrees: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    turn = rotation(np.cross(row, col), np.deg2rad(degrees))
    return turn @ row, turn @ col


def _in_plane_offset(
    row: NDArray[np.float64], col: NDArray[np.float64], acq: Acquisition
) -> NDArray[np.float64]:
    return acq.offset[0] * row + acq.offset[1] * col


def sax_planes(
    frame: HeartFrame, heart: HeartModel, acq: Acquisition, thickness: float | None = None
) -> list[Plane]:
    """Short-axis stack from just above the mitral plane to beyond the apex (6-12 slices)."""
    thick = thickness or acq.thickness
    reach = heart.length + heart.t_apex + 0.5 * heart.aneurysm_radius
    step = thick + acq.gap
    n = int(np.clip(np.ceil((reach + 8.0) / step), 6, 12))
    step = max(step, (reach + 8.0) / n)
    row, col = _rotated(-frame.u, -frame.v, acq.rotation_deg)
    shift = _in_plane_offset(row, col, acq)
    planes = []
    for k in range(n):
        centre = frame.to_patient(-6.0 + k * step, 0.0, 0.0) + shift
        planes.append(centred_plane(centre, row, col, acq.rows, acq.cols, acq.spacing, thick))
    return planes


def long_axis_plane(frame: HeartFrame, heart: HeartModel, acq: Acquisition, view: str) -> Plane:
    row, col = long_axis_directions(frame, view, float(LVOT_ANGLE))
    row, col = _rotated(row, col, acq.rotation_deg * 0.5)
    centre = frame.to_patient(0.45 * heart.length, 0.0, 0.0) + _in_plane_offset(row, col, acq)
    return centred_plane(centre, row, col, acq.rows, acq.cols, acq.spacing, acq.thickness)


def localizer_planes(frame: HeartFrame, acq: Acquisition) -> list[Plane]:
    """Three orthogonal bright-blood scouts (axial, coronal, sagittal) through the heart."""
    centre = frame.origin + 30.0 * frame.a
    x, y, z = np.eye(3)
    size = 128 if acq.cols > 96 else 64 if acq.cols <= 64 else 96
    spacing = 420.0 / size
    return [
        centred_plane(centre, r, c, size, size, spacing, 10.0)
        for r, c in ((x, y), (x, -z), (y, -z))
    ]


@dataclass
class Renderer:
    frame: HeartFrame
    heart: HeartModel
    thorax: Thorax
    acq: Acquisition

    def render(
        self, plane: Plane, taus: Float, contrast: str, rng: np.random.Generator
    ) -> NDArray[np.uint16]:
        """Stored pixel values, shape (phases, rows, cols)."""
        clean = self.signal(plane, taus, contrast, rng)
        if contrast == "t1":  # a parametric map stores milliseconds, no magnitude noise
            return np.clip(clean, 0, 65535).astype(np.uint16)
        return self._magnitude(clean, rng)

    def _magnitude(self, clean: Float, rng: np.random.Generator) -> NDArray[np.uint16]:
        """Rician magnitude |c + sigma (n1 + i n2)| in stored counts, c the clean signal.

        The complex noise comes from Box-Muller on float32 uniforms (numpy's normal
        sampler costs ~5x more per value): with sigma^2 R^2 = -2 sigma^2 ln(U1) and
        a = sigma R cos(2 pi U2) = sigma n1, the magnitude squared is c (c + 2a) + sigma^2 R^2."""
        counts = F(self.acq.blood_counts)
        sigma = F(self.acq.noise) * counts
        uniform = rng.random((2, *clean.shape), dtype=F)
        radius2, angle = uniform[0], uniform[1]
        np.subtract(F(1.0), radius2, out=radius2)  # (0, 1]: the log stays finite
        np.log(radius2, out=radius2)
        radius2 *= F(-2.0) * sigma * sigma
        angle *= F(2.0 * np.pi)
        along = np.cos(angle, out=angle)
        along *= np.sqrt(radius2)
        c = clean * counts
        along *= F(2.0)
        along += c
        along *= c
        along += radius2
        np.maximum(along, F(0.0), out=along)  # rounding may dip just below zero
        np.sqrt(along, out=along)
        along += F(0.5)  # magnitudes are >= 0: rounding is truncation after + 0.5
        np.minimum(along, F(MAX_STORED), out=along)
        return along.astype(np.uint16)

    def signal(self, plane: Plane, taus: Float, contrast: str, rng: np.random.Generator) -> Float:
        pts = plane.points()
        # Each breath-hold lands the diaphragm a little differently (mostly head-foot).
        drift = rng.normal(0, self.acq.breath_hold_mm, 3) * np.array([0.3, 0.5, 1.0])
        pts = pts + drift
        table = "t1" if contrast == "t1" else ("lge" if contrast == "lge" else "cine")
        background = self.thorax.signal(pts, table)
        if contrast == "t1":
            background = background * F(self._t1_field_factor())
            shading: Float | None = None
        else:
            shading = self.thorax.coil_shading(pts, self.acq.shading_lateral)
        image = np.empty((len(taus), len(pts)), dtype=F)
        image[:] = background if shading is None else background * shading
        s, u, v = self.frame.to_local(pts)
        # Only pixels the heart can reach at some phase are evaluated per phase; the rest
        # keep the static thorax (the heart's region is 0 there).
        reach = self.heart.radius + self.heart.rv_semi[1] + 40.0
        near = (s > -90) & (s < self.heart.length + 40) & (u * u + v * v < reach**2)
        idx = np.flatnonzero(near)
        # The chamber distances that decide the support are reused by evaluate.
        keep, distances = self.heart.cover(s[idx], u[idx], v[idx], taus, plane.spacing[1])
        idx = idx[keep]
        if len(idx):
            sig, region = self.heart.evaluate(
                s[idx], u[idx], v[idx], taus, contrast, plane.spacing[1], distances
            )
            inside = sig - background[idx]  # blend: background + (sig - background) * region
            inside *= region
            inside += background[idx]
            if shading is not None:
                inside *= shading[idx]
            image[:, idx] = inside
        frames = image.reshape(len(taus), plane.rows, plane.cols)
        return self._artifacts(frames, pts.reshape(plane.rows, plane.cols, 3), contrast)

    def _t1_field_factor(self) -> float:
        return 1.2 if self.acq.field_strength == 3.0 else 1.0

    def _artifacts(self, image: Float, pts: NDArray[np.float64], contrast: str) -> Float:
        if contrast != "cine" or self.acq.artifact in (None, "none"):
            return image
        if self.acq.artifact == "banding":
            # Off-resonance grows away from the isocentre: dark bands at the FOV edge.
            off = np.linalg.norm(pts - self.frame.origin, axis=-1) / 45.0
            band = 1.0 - 0.85 * np.exp(-((((off % 2.0) - 1.0) / 0.07) ** 2)) * (off > 2.2)
            return (image * band[None]).astype(F)
        # Respiratory ghost: a faint copy shifted along the phase-encoding direction.
        return (image + 0.12 * np.roll(image, image.shape[1] // 3, axis=1)).astype(F)
