"""Archive status figures (CLI `status`, the UI's archive page)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.models import (
    Clip,
    Embedding,
    IngestError,
    ModelVersion,
    Patient,
    Report,
    Series,
    Study,
)


def archive_status(session: Session) -> dict[str, Any]:
    def count(model: Any) -> int:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)

    def grouped(column: Any) -> dict[str, int]:
        rows = session.execute(select(column, func.count()).group_by(column).order_by(column))
        return {str(key): int(n) for key, n in rows}

    linked = session.scalar(
        select(func.count()).select_from(Report).where(Report.study_id.is_not(None))
    )
    return {
        "patients": count(Patient),
        "studies": count(Study),
        "series": count(Series),
        "series_by_view": grouped(Series.view),
        "clips": count(Clip),
        "reports": count(Report),
        "reports_linked": int(linked or 0),
        "ingest_errors": grouped(IngestError.error_type),
        "model_versions": count(ModelVersion),
        "embeddings": count(Embedding),
    }
