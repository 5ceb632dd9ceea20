"""Cines as images a browser plays: animated GIF (8-bit grey is lossless in a GIF
palette), single frames as PNG. Upscaled with a smooth filter for viewing."""

from __future__ import annotations

import io
import itertools

import numpy as np
from numpy.typing import NDArray
from PIL import Image

MIN_FRAME_MS = 20  # browsers slow down GIF frames shorter than 20 ms


def _image(frame: NDArray[np.uint8], size: int) -> Image.Image:
    """``size`` pixels high; as wide as the frame's shape says (LGE slices side by side)."""
    height, width = frame.shape
    return Image.fromarray(np.ascontiguousarray(frame), mode="L").resize(
        (round(size * width / height), size), Image.Resampling.BICUBIC
    )


def gif(frames: NDArray[np.uint8], frame_ms: float, size: int = 256) -> bytes:
    """An endlessly looping GIF; one frame gives a still image."""
    images = [_image(f, size) for f in frames]
    # GIF counts time in 10 ms ticks: round the running total, not each frame, so a
    # cycle lasts as long as the patient's (46.3 ms frames would otherwise play as 40).
    ticks = [round(i * frame_ms / 10) * 10 for i in range(len(images) + 1)]
    durations = [max(b - a, MIN_FRAME_MS) for a, b in itertools.pairwise(ticks)]
    buffer = io.BytesIO()
    images[0].save(
        buffer,
        format="GIF",
        save_all=len(images) > 1,
        append_images=images[1:],
        duration=durations if len(images) > 1 else durations[0],
        loop=0,
        optimize=False,
    )
    return buffer.getvalue()


def png(frame: NDArray[np.uint8], size: int = 256) -> bytes:
    buffer = io.BytesIO()
    _image(frame, size).save(buffer, format="PNG")
    return buffer.getvalue()


VIEW_LABELS = {
    "sax_basal": "SAX basal",
    "sax_mid": "SAX mid",
    "sax_apical": "SAX apical",
    "2ch": "2-chamber",
    "3ch": "3-chamber",
    "lvot": "3-chamber, valve plane",
    "4ch": "4-chamber",
    "lge": "LGE",
}


SHORT_LABELS = {
    "sax_basal": "SAX b",
    "sax_mid": "SAX m",
    "sax_apical": "SAX a",
    "2ch": "2CH",
    "3ch": "3CH",
    "lvot": "LVOT",
    "4ch": "4CH",
    "lge": "LGE",
}


def label(view: str) -> str:
    return VIEW_LABELS.get(view, view)


def short_label(view: str) -> str:
    return SHORT_LABELS.get(view, view)
