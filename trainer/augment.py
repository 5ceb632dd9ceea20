"""Training augmentation of a study's clips (numpy, before collation).

Intensity (gamma and gain), a small crop-and-resize jitter, a shift of the cardiac
phase and of the temporal stride, and view dropout (a study missing views, as real
studies do; at least one view always stays).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

Clips = dict[str, NDArray[np.uint8]]


def augment(clips: Clips, rng: np.random.Generator, view_dropout: float = 0.2) -> Clips:
    names = list(clips)
    keep = [n for n in names if rng.random() >= view_dropout] or [str(rng.choice(names))]
    out: Clips = {}
    gamma = float(np.exp(rng.normal(0, 0.15)))
    gain = float(rng.uniform(0.85, 1.15))
    zoom = float(rng.uniform(0.9, 1.1))
    shift = rng.uniform(-3, 3, 2)
    for name in keep:
        clip = clips[name].astype(np.float32) / 255.0
        clip = np.clip(gain * clip**gamma, 0, 1)
        if clip.shape[0] > 1:
            clip = np.roll(clip, int(rng.integers(clip.shape[0])), axis=0)  # start phase
            if rng.random() < 0.3:  # a different temporal stride: fewer phases, repeated
                clip = np.repeat(clip[::2], 2, axis=0)[: clip.shape[0]]
        clip = _jitter(clip, zoom, shift)
        out[name] = np.clip(np.rint(clip * 255), 0, 255).astype(np.uint8)
    return out


def _jitter(
    clip: NDArray[np.float32], zoom: float, shift: NDArray[np.float64]
) -> NDArray[np.float32]:
    size = clip.shape[-1]
    centre = (size - 1) / 2
    matrix = np.diag([1.0, 1 / zoom, 1 / zoom])
    offset = np.array([0.0, centre - centre / zoom + shift[0], centre - centre / zoom + shift[1]])
    return ndimage.affine_transform(clip, matrix, offset=offset, order=1, mode="nearest")
