"""The clip cache file of one study: an .npz of uint8 (frames, H, W) arrays by view."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path

import numpy as np
from numpy.typing import NDArray


def save_clips(clips: dict[str, NDArray[np.uint8]], path: Path) -> str:
    """Write an .npz atomically (temp file, fsync, rename); return the file's sha256.

    The zip entries carry a fixed timestamp, so the same clips give the same bytes:
    a re-run, or a run resumed after a kill, reproduces the checksum exactly.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        with zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in sorted(clips):
                buffer = io.BytesIO()
                np.save(buffer, clips[name], allow_pickle=False)
                entry = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                entry.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(entry, buffer.getvalue())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_clips(path: Path) -> dict[str, NDArray[np.uint8]]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
