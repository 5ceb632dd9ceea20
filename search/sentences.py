"""Sentence vectors of report text, kept on disk per model version.

The confidence floor compares a query with every distinct impression of the archive in
the sentence encoder's own space. Encoding an archive's impressions costs tens of ms
each on a CPU (minutes for 10k reports), so each text is encoded once per model and
kept in ``HOME/cache/sentences-<model version>.npz``; a restart, or the next CLI query,
only encodes impressions it has not seen.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

Encoder = Callable[[list[str]], NDArray[np.float32]]


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class SentenceCache:
    def __init__(self, path: Path, encode: Encoder, width: int) -> None:
        self.path = path
        self.encode = encode
        self.width = width
        self._vectors: dict[str, NDArray[np.float32]] | None = None
        self._lock = threading.Lock()

    def _load(self) -> dict[str, NDArray[np.float32]]:
        try:
            with np.load(self.path, allow_pickle=False) as data:
                keys, vectors = data["keys"], data["vectors"]
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
            return {}  # missing or damaged: rebuilt from the texts, nothing is lost
        if vectors.ndim != 2 or vectors.shape[1] != self.width or len(keys) != len(vectors):
            return {}
        return {str(k): v for k, v in zip(keys, vectors.astype(np.float32), strict=True)}

    def _save(self, vectors: dict[str, NDArray[np.float32]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            np.savez(
                fh,
                keys=np.array(list(vectors), dtype="U24"),
                vectors=np.stack(list(vectors.values())),
            )
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def vectors(self, texts: list[str], persist: bool = True) -> NDArray[np.float32]:
        """(len(texts), width) vectors, encoding only texts not seen before; new ones
        are written to the file unless ``persist`` is off (per-query use: the file is
        rewritten whole, so it is saved from batch work only)."""
        if not texts:
            return np.zeros((0, self.width), np.float32)
        with self._lock:
            if self._vectors is None:
                self._vectors = self._load()
            keys = [text_key(t) for t in texts]
            missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in self._vectors}
            if missing:
                encoded = self.encode(list(missing.values()))
                self._vectors.update(zip(missing, encoded, strict=True))
                if persist:  # a read-only HOME only costs the next start the same work
                    with contextlib.suppress(OSError):
                        self._save(self._vectors)
            return np.stack([self._vectors[k] for k in keys])
