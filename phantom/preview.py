"""PNG montages of phantom studies: one row per view, several phases across."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
from numpy.typing import NDArray
from PIL import Image

COLUMNS = 6


def _window(image: NDArray[np.float32]) -> NDArray[np.uint8]:
    lo, hi = np.percentile(image, [1.0, 99.5])
    return (np.clip((image - lo) / max(hi - lo, 1e-6), 0, 1) * 255).astype(np.uint8)


def _series_frames(folder: Path) -> list[NDArray[np.float32]]:
    """Frames of a series' middle slice (or its only slice), in time order."""
    files = sorted(folder.glob("*.dcm"))
    datasets = [pydicom.dcmread(f) for f in files]
    if len(datasets) == 1 and "NumberOfFrames" in datasets[0]:
        ds = datasets[0]
        frames = ds.pixel_array.astype(np.float32)
        stack = [
            int(item.FrameContentSequence[0].InStackPositionNumber)
            for item in ds.PerFrameFunctionalGroupsSequence
        ]
        middle = sorted(set(stack))[len(set(stack)) // 2]
        return [f for f, k in zip(frames, stack, strict=True) if k == middle]
    by_slice: dict[str, list[pydicom.Dataset]] = {}
    for ds in datasets:
        by_slice.setdefault(str(ds.get("SliceLocation", "")), []).append(ds)
    keys = sorted(by_slice, key=lambda k: float(k) if k else 0.0)
    chosen = by_slice[keys[len(keys) // 2]]
    chosen.sort(key=lambda d: float(d.get("TriggerTime", 0) or 0))
    return [d.pixel_array.astype(np.float32) for d in chosen]


def montage(study_dir: Path, size: int = 128) -> Image.Image:
    rows = []
    for series in sorted(p for p in study_dir.iterdir() if p.is_dir()):
        frames = _series_frames(series)
        picks = np.linspace(0, len(frames) - 1, min(COLUMNS, len(frames))).round().astype(int)
        rows.append([Image.fromarray(_window(frames[i])).resize((size, size)) for i in picks])
    canvas = Image.new("L", (size * COLUMNS, size * max(len(rows), 1)))
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            canvas.paste(tile, (c * size, r * size))
    return canvas


def write_previews(out: Path, count: int) -> list[Path]:
    labels = [json.loads(line) for line in (out / "labels.jsonl").read_text().splitlines()]
    target = out / "preview"
    target.mkdir(exist_ok=True)
    written = []
    for label in labels[:count]:
        path = target / f"{label['path'].replace('/', '_')}.png"
        montage(out / label["path"]).save(path)
        written.append(path)
    return written
