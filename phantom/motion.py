"""Physiological volume curves over one cardiac cycle (time as a fraction of RR).

Ventricles: ejection to end-systole, rapid filling, diastasis, atrial kick. Atria
do the opposite: they fill while the ventricles empty (reservoir), empty passively
in early diastole (conduit) and contract before end-diastole (booster).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

Float = NDArray[np.floating[Any]]


def end_systole(heart_rate: float) -> float:
    """End-systole as a fraction of RR: systole lasts ~330 ms, shortening a little at speed."""
    rr_ms = 60000.0 / heart_rate
    systole_ms = 330.0 - 0.8 * (heart_rate - 60.0)
    return float(np.clip(systole_ms / rr_ms, 0.25, 0.5))


def _ease(x: Float) -> Float:
    """Cosine ease from 0 to 1 over x in [0, 1]."""
    clipped = np.clip(x, 0.0, 1.0)
    return (0.5 - 0.5 * np.cos(np.pi * clipped)).astype(np.float32)


def ventricular_emptying(tau: Float, heart_rate: float) -> Float:
    """0 at end-diastole, 1 at end-systole (fraction of stroke volume ejected)."""
    t = np.mod(np.asarray(tau, dtype=np.float32), 1.0)
    es = end_systole(heart_rate)
    rapid_end = es + 0.22 * (1.0 - es)
    kick_start = 0.86
    ejection = _ease(t / es)
    rapid = 1.0 - 0.72 * _ease((t - es) / (rapid_end - es))  # 72 % of filling is early
    diastasis = 0.28 - 0.08 * (t - rapid_end) / (kick_start - rapid_end)
    kick = 0.20 * (1.0 - _ease((t - kick_start) / (1.0 - kick_start)))
    out = np.where(
        t < es, ejection, np.where(t < rapid_end, rapid, np.where(t < kick_start, diastasis, kick))
    )
    return out.astype(np.float32)


def atrial_filling(tau: Float, heart_rate: float) -> Float:
    """0 at minimum atrial volume (after atrial contraction), 1 at maximum (end-systole)."""
    t = np.mod(np.asarray(tau, dtype=np.float32), 1.0)
    es = end_systole(heart_rate)
    reservoir = _ease(t / (es + 0.03))
    conduit = 1.0 - 0.45 * _ease((t - es - 0.03) / 0.25)
    booster = 0.55 * (1.0 - _ease((t - 0.84) / 0.12))
    out = np.where(t < es + 0.03, reservoir, np.where(t < 0.84, conduit, booster))
    return np.clip(out, 0.0, 1.0).astype(np.float32)
