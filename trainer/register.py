"""Record a trained checkpoint as a model version in the catalog."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from catalog.db import session_factory, transaction
from catalog.models import ModelVersion
from cmrclip.checkpoint import read_config, version_id


def register(engine: Engine, checkpoint: Path, metrics: dict[str, Any] | None = None) -> str:
    """Insert (or update) the model version row of ``checkpoint``; return its id."""
    vid = version_id(checkpoint)
    config = read_config(checkpoint)
    with transaction(session_factory(engine)) as session:
        row = session.get(ModelVersion, vid)
        if row is None:
            row = ModelVersion(id=vid, checkpoint_path=str(checkpoint.resolve()), config=config)
            session.add(row)
        row.checkpoint_path = str(checkpoint.resolve())
        if metrics is not None:
            row.metrics = {**(row.metrics or {}), **_json_safe(metrics)}
    return vid


def _json_safe(value: Any) -> Any:
    """NaN and infinities (an AUC with one class absent) are not JSON: store null."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
