"""Keep a FAISS index consistent with the catalog's vectors.

The index file carries a manifest (model version, view, vector count, catalog
watermark = highest embedding row id, checksum). On open the manifest is checked
against the catalog: a foreign, stale, truncated or corrupt file is rebuilt from the
catalog vectors, never trusted. New vectors are added incrementally; when vectors
disappeared (a study deleted) the index is rebuilt, so a deleted study can never be
returned.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Engine, func, select

from catalog.db import session_factory
from catalog.models import Embedding
from search.index import IndexFileError, VectorIndex

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CatalogVectors:
    count: int
    watermark: int  # highest embedding row id (0 when none)


def catalog_state(engine: Engine, version: str, view: str) -> CatalogVectors:
    with session_factory(engine)() as session:
        count, top = session.execute(
            select(func.count(), func.max(Embedding.id)).where(
                Embedding.model_version_id == version, Embedding.view == view
            )
        ).one()
    return CatalogVectors(int(count or 0), int(top or 0))


def read_vectors(
    engine: Engine, version: str, view: str, after: int = 0
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """(study ids, vectors) of embedding rows with id > ``after``."""
    with session_factory(engine)() as session:
        rows = session.execute(
            select(Embedding.study_id, Embedding.vector)
            .where(
                Embedding.model_version_id == version, Embedding.view == view, Embedding.id > after
            )
            .order_by(Embedding.id)
        ).all()
    if not rows:
        return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
    ids = np.array([r[0] for r in rows], np.int64)
    vectors = np.stack([np.frombuffer(r[1], "<f4") for r in rows]).astype(np.float32)
    return ids, vectors


def index_path(home: Path, version: str, view: str) -> Path:
    return home / "indexes" / f"{version}-{view}.faiss"


def open_index(
    engine: Engine, home: Path, version: str, view: str, kind: str = "auto"
) -> VectorIndex | None:
    """The up-to-date index for (version, view), loaded, extended or rebuilt as needed."""
    path = index_path(home, version, view)
    state = catalog_state(engine, version, view)
    if state.count == 0:
        return None
    index: VectorIndex | None = None
    if path.is_file():
        try:
            index, manifest = VectorIndex.load(path)
        except IndexFileError as exc:
            log.warning("rebuilding the %s index: %s", view, exc)
            index = None
        else:
            index = _reconcile(index, manifest, engine, version, view, state)
    if index is None:
        ids, vectors = read_vectors(engine, version, view)
        index = VectorIndex.build(ids, vectors, kind)
    else:
        if index.ntotal == state.count:
            return index
    index.save(
        path,
        {
            "model_version": version,
            "view": view,
            "count": state.count,
            "watermark": state.watermark,
        },
    )
    return index


def _reconcile(
    index: VectorIndex,
    manifest: dict[str, object],
    engine: Engine,
    version: str,
    view: str,
    state: CatalogVectors,
) -> VectorIndex | None:
    """Extend a valid index with newer vectors, or return None to force a rebuild."""
    if manifest.get("model_version") != version or manifest.get("view") != view:
        return None
    watermark = int(manifest.get("watermark", -1))  # type: ignore[call-overload]
    count = int(manifest.get("count", -1))  # type: ignore[call-overload]
    if count != index.ntotal or watermark > state.watermark:
        return None
    ids, vectors = read_vectors(engine, version, view, after=watermark)
    if count + len(ids) != state.count:  # vectors were deleted: rebuild, never serve them
        return None
    if len(ids):
        index.add(ids, vectors)
    return index
