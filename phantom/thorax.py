"""The static thorax around the heart, evaluated at patient (LPS) points.

Body outline with skin fat and chest-wall muscle, ribs, sternum, breasts, two lungs
with vessels, the diaphragm domes with liver, stomach and spleen below, the spine
with its canal, the descending aorta and the caval veins. Signals are relative to
flowing blood for each contrast.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

Float = NDArray[np.floating[Any]]
F = np.float32

TISSUES = (
    "air",
    "fat",
    "muscle",
    "lung",
    "bone",
    "marrow",
    "csf",
    "blood",
    "liver",
    "spleen",
    "stomach",
    "breast",
    "mediastinum",
    "vessel_lung",
)
# Relative signal per contrast (bSSFP cine / localizer, IR-GRE LGE, T1 in ms at 1.5 T).
SIGNAL = {
    "cine": {
        "air": 0.0,
        "fat": 0.86,
        "muscle": 0.2,
        "lung": 0.035,
        "bone": 0.08,
        "marrow": 0.42,
        "csf": 0.95,
        "blood": 0.95,
        "liver": 0.3,
        "spleen": 0.45,
        "stomach": 0.62,
        "breast": 0.55,
        "mediastinum": 0.7,
        "vessel_lung": 0.35,
    },
    "lge": {
        "air": 0.0,
        "fat": 0.55,
        "muscle": 0.08,
        "lung": 0.02,
        "bone": 0.05,
        "marrow": 0.3,
        "csf": 0.06,
        "blood": 0.42,
        "liver": 0.28,
        "spleen": 0.35,
        "stomach": 0.15,
        "breast": 0.35,
        "mediastinum": 0.45,
        "vessel_lung": 0.2,
    },
    "t1": {
        "air": 0.0,
        "fat": 260.0,
        "muscle": 1000.0,
        "lung": 1200.0,
        "bone": 300.0,
        "marrow": 550.0,
        "csf": 3000.0,
        "blood": 1580.0,
        "liver": 580.0,
        "spleen": 1050.0,
        "stomach": 2000.0,
        "breast": 700.0,
        "mediastinum": 400.0,
        "vessel_lung": 1500.0,
    },
}


@dataclass(frozen=True)
class Thorax:
    half_width: float  # body semi-axis left-right (mm)
    half_depth: float  # anterior-posterior
    fat: float  # subcutaneous fat thickness
    muscle: float
    dome: float  # z of the right diaphragm dome
    female: bool
    texture_seed: int

    def labels(self, p: NDArray[np.float64]) -> NDArray[np.int8]:
        """Tissue index (into TISSUES) at each point, shape (n,)."""
        x, y, z = (p[:, i].astype(F) for i in range(3))
        w, d = self.half_width, self.half_depth
        body = np.sqrt((x / w) ** 2 + ((y - 0.1 * d * (x / w) ** 2) / d) ** 2)
        depth_in = (1.0 - body) * min(w, d)  # approx. distance inside the skin (mm)
        lab = np.zeros(x.shape, dtype=np.int8)
        idx = {name: np.int8(i) for i, name in enumerate(TISSUES)}

        def put(mask: NDArray[np.bool_], name: str) -> None:
            np.copyto(lab, idx[name], where=mask)  # cheaper than lab[mask] = ...

        inside = depth_in > 0
        put(inside, "fat")
        wall = inside & (depth_in > self.fat)
        put(wall, "muscle")
        cavity = depth_in > self.fat + self.muscle
        put(cavity, "mediastinum")
        # Ribs: oblique bands crossing the chest wall.
        rib = wall & ~cavity & (np.sin(2 * np.pi * (z + 0.45 * y) / 24.0) > 0.55)
        put(rib & (depth_in > self.fat + 0.3 * self.muscle), "marrow")
        if self.female:
            for side in (-1.0, 1.0):
                q = (
                    ((x - side * 0.5 * w) / 60) ** 2
                    + ((y + d + 5) / 42) ** 2
                    + ((z + 30) / 60) ** 2
                )
                put((q < 1) & (depth_in < self.fat), "breast")
        # Diaphragm: liver below the right dome, stomach and spleen below the left one.
        dome = self.dome - 0.0022 * (x + 0.25 * w) ** 2 - 0.0015 * (y + 10) ** 2
        dome_left = dome - 15.0
        below = np.where(x < 30, z < dome, z < dome_left) & cavity
        # Lungs fill the cavity around the heart (drawn on top) except a midline
        # mediastinum: prevascular fat in front, oesophagus and aorta behind.
        mediastinum = (np.abs(x - 5) < 18 + 10 * (y < -0.6 * d)) & (z > -40)
        lung = cavity & ~below & ~mediastinum
        put(lung, "lung")
        vessels = lung & (np.abs(np.sin(x / 7.0) * np.sin(y / 9.0) * np.sin(z / 8.0)) > 0.93)
        put(vessels, "vessel_lung")
        put(below & (x < 30), "liver")
        put(below & (x >= 30) & (y < 0.2 * d), "stomach")
        put(below & (x >= 30) & (y >= 0.2 * d), "spleen")
        # Spine, canal, paraspinal muscle; descending aorta; caval veins.
        put(inside & (y > d - 45) & (np.abs(x) < 55) & ~cavity, "muscle")
        put((x**2 + (y - (d - 48)) ** 2) < 17**2, "marrow")
        put((x**2 + (y - (d - 24)) ** 2) < 8**2, "csf")
        put(((x - 26) ** 2 + (y - (d - 66)) ** 2) < 12**2, "blood")
        put(((x + 22) ** 2 + (y - 5) ** 2 < 12**2) & (z < -10), "blood")
        put(((x + 28) ** 2 + (y + 8) ** 2 < 9**2) & (z > 35), "blood")
        put((np.abs(x) < 12) & (np.abs(y + d - 18) < 7) & inside, "marrow")  # sternum
        return lab

    def signal(self, p: NDArray[np.float64], contrast: str) -> Float:
        table = SIGNAL[contrast]
        values = np.array([table[name] for name in TISSUES], dtype=F)
        sig = values[self.labels(p)]
        return (sig * self._texture(p)).astype(F)

    def _texture(self, p: NDArray[np.float64]) -> Float:
        """Smooth tissue inhomogeneity (a few random 3-D waves), +-10 %."""
        out = np.ones(len(p), dtype=F)
        for k, phase in _waves(self.texture_seed):
            # Column sums rather than p @ k: no BLAS threads for a (n, 3) product.
            wave = p[:, 0] * k[0] + p[:, 1] * k[1] + p[:, 2] * k[2] + phase
            out += F(0.05) * np.sin(wave.astype(F))
        return out

    def coil_shading(self, p: NDArray[np.float64], lateral: float) -> Float:
        """Receive-coil sensitivity: bright near the anterior and posterior arrays."""
        y, x = p[:, 1].astype(F), p[:, 0].astype(F)
        d_ant = np.maximum(y + self.half_depth, 0)
        d_post = np.maximum(self.half_depth - y, 0)
        s = 0.3 + 0.7 * (np.exp(-d_ant / 85.0) + np.exp(-d_post / 85.0))
        return (s * (1 + lateral * x / self.half_width)).astype(F)


@functools.lru_cache(maxsize=64)
def _waves(seed: int) -> tuple[tuple[NDArray[np.float64], float], ...]:
    """The texture's wave vectors and phases (drawn once per thorax, not per plane)."""
    rng = np.random.default_rng(seed)
    waves = []
    for _ in range(4):
        k = rng.normal(0, 1, 3) / rng.uniform(12, 40)
        waves.append((k, float(rng.uniform(0, 2 * np.pi))))
    return tuple(waves)


def sample_thorax(rng: np.random.Generator, sex: str, bsa: float) -> Thorax:
    size = np.sqrt(bsa / 1.9)
    return Thorax(
        half_width=float(rng.normal(165, 10) * size),
        half_depth=float(rng.normal(118, 8) * size),
        fat=float(rng.uniform(6, 22) * (1.2 if sex == "F" else 1.0)),
        muscle=float(rng.uniform(10, 18)),
        dome=float(rng.normal(-45, 8)),
        female=sex == "F",
        texture_seed=int(rng.integers(1 << 30)),
    )
