"""`cmrsearch embed`: vectors for every study that has clips but none for the model yet.

Vectors go into the catalog first (any index can be rebuilt from it alone), the
study vector under view ``study`` and one per present view, so a search can target
one view (LGE only, say).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, select

from catalog.db import session_factory, transaction
from catalog.models import Clip, Embedding, ModelVersion
from cmrclip.checkpoint import read_config, version_id
from cmrclip.clipfile import load_clips
from cmrclip.model import CMRCLIP

STUDY = "study"


def ensure_model_version(engine: Engine, checkpoint: Path) -> str:
    vid = version_id(checkpoint)
    with transaction(session_factory(engine)) as session:
        if session.get(ModelVersion, vid) is None:
            session.add(
                ModelVersion(
                    id=vid,
                    checkpoint_path=str(checkpoint.resolve()),
                    config=read_config(checkpoint),
                )
            )
    return vid


def pending_studies(engine: Engine, version: str) -> list[tuple[int, str]]:
    """(study id, clip file) of studies with clips and no study vector for ``version``."""
    with session_factory(engine)() as session:
        done = select(Embedding.study_id).where(
            Embedding.model_version_id == version, Embedding.view == STUDY
        )
        rows = session.execute(
            select(Clip.study_id, Clip.path)
            .distinct()
            .where(Clip.study_id.not_in(done))
            .order_by(Clip.study_id)
        )
        return [(int(s), str(p)) for s, p in rows]


def embed_catalog(
    engine: Engine,
    home: Path,
    model: CMRCLIP,
    version: str,
    batch_size: int = 32,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    todo = pending_studies(engine, version)
    views = model.config.video.views
    factory = session_factory(engine)
    done = 0
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        clips = [load_clips(home / path) for _, path in batch]
        studies, per_view, mask = model.encode_video(clips, batch_size=batch_size)
        with transaction(factory) as session:
            for i, (study_id, _) in enumerate(batch):
                rows = [(STUDY, studies[i])] + [
                    (views[v], per_view[i, v]) for v in range(len(views)) if mask[i, v]
                ]
                for view, vector in rows:
                    session.add(
                        Embedding(
                            study_id=study_id,
                            model_version_id=version,
                            view=view,
                            dim=int(vector.shape[0]),
                            vector=np.asarray(vector, "<f4").tobytes(),
                        )
                    )
        done += len(batch)
        if progress:
            progress(done, len(todo))
    return {"model_version": version, "studies_embedded": done}
