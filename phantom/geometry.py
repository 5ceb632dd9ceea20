"""Patient geometry (DICOM LPS, mm): where the heart sits and how views are planned.

Views are planned the way a CMR technologist does: short axis perpendicular to the
LV long axis, four-chamber through both ventricles, two-chamber perpendicular to the
septum, three-chamber through the aortic root; all long-axis planes contain the LV
long axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Vec = NDArray[np.float64]


def unit(v: Vec) -> Vec:
    return v / np.linalg.norm(v)


def rotation(axis: Vec, angle: float) -> NDArray[np.float64]:
    """Rodrigues rotation matrix about ``axis`` by ``angle`` radians."""
    k = unit(axis)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * kx + (1 - np.cos(angle)) * kx @ kx


@dataclass(frozen=True)
class HeartFrame:
    """Origin at the end-diastolic mitral-plane centre; a: base->apex, u: septal, v: anterior
    (v = u x a)."""

    origin: Vec
    a: Vec
    u: Vec
    v: Vec

    def to_local(self, points: NDArray[np.float64]) -> tuple[NDArray[np.float32], ...]:
        d = points - self.origin
        # Column sums rather than d @ axis: no BLAS threads for a (n, 3) product.
        return tuple(
            (d[:, 0] * axis[0] + d[:, 1] * axis[1] + d[:, 2] * axis[2]).astype(np.float32)
            for axis in (self.a, self.u, self.v)
        )

    def to_patient(self, s: float, u: float, v: float) -> Vec:
        return self.origin + s * self.a + u * self.u + v * self.v


def heart_frame(rng: np.random.Generator, origin_jitter: float = 8.0) -> HeartFrame:
    """A heart axis pointing left, anterior and inferior, with individual variation."""
    # Long axis ~45 deg from sagittal in the axial plane, tilted ~25 deg downward.
    azimuth = np.deg2rad(45 + rng.normal(0, 6))
    tilt = np.deg2rad(25 + rng.normal(0, 6))
    a = unit(
        np.array([np.cos(azimuth) * np.cos(tilt), -np.sin(azimuth) * np.cos(tilt), -np.sin(tilt)])
    )
    toward_rv = np.array([-0.6, -0.8, 0.1])  # the RV lies right and anterior of the LV
    u = unit(toward_rv - (toward_rv @ a) * a)
    u = rotation(a, np.deg2rad(rng.normal(0, 8))) @ u
    # v = u x a is the LV anterior wall's direction (anterior and superior): seen from the
    # apex, the septum is on the left when anterior is up, as short-axis views are shown.
    v = np.cross(u, a)
    assert v @ np.array([0.0, -1.0, 1.0]) > 0, "anterior wall must face front and up"
    origin = np.array([12.0, 6.0, 10.0]) + rng.normal(0, origin_jitter, 3)
    return HeartFrame(origin=origin, a=a, u=u, v=v)


@dataclass(frozen=True)
class Plane:
    """An image plane: DICOM ImagePositionPatient of pixel (0, 0) and orientation."""

    position: Vec
    row_dir: Vec  # direction of increasing column index
    col_dir: Vec  # direction of increasing row index
    rows: int
    cols: int
    spacing: tuple[float, float]  # (between rows, between columns) mm
    thickness: float

    @property
    def normal(self) -> Vec:
        return np.cross(self.row_dir, self.col_dir)

    @property
    def orientation(self) -> list[float]:
        return [round(float(x), 6) for x in (*self.row_dir, *self.col_dir)]

    def points(self) -> NDArray[np.float64]:
        """Patient coordinates of every pixel centre, shape (rows*cols, 3)."""
        r = np.arange(self.rows)[:, None, None] * self.spacing[0] * self.col_dir
        c = np.arange(self.cols)[None, :, None] * self.spacing[1] * self.row_dir
        return (self.position + r + c).reshape(-1, 3)


def centred_plane(
    centre: Vec, row_dir: Vec, col_dir: Vec, rows: int, cols: int, spacing: float, thickness: float
) -> Plane:
    row_dir, col_dir = unit(row_dir), unit(col_dir - (col_dir @ unit(row_dir)) * unit(row_dir))
    position = centre - (cols - 1) / 2 * spacing * row_dir - (rows - 1) / 2 * spacing * col_dir
    return Plane(position, row_dir, col_dir, rows, cols, (spacing, spacing), thickness)


def long_axis_directions(frame: HeartFrame, view: str, lvot_angle: float) -> tuple[Vec, Vec]:
    """(row_dir, col_dir) of a long-axis view; column direction runs apex -> base."""
    down = -frame.a  # apex at the top of the image
    if view == "4ch":
        across = -frame.u  # RV on the image left
    elif view == "2ch":
        across = -frame.v
    elif view == "3ch":
        across = -(np.cos(lvot_angle) * frame.u + np.sin(lvot_angle) * frame.v)
    else:
        raise ValueError(f"unknown long-axis view {view!r}")
    return across, down
