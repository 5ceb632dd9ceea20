"""The catalog: SQLAlchemy models, the engine/session factory and schema versioning."""

from catalog.db import CatalogError, make_engine, session_factory, transaction
from catalog.models import (
    AuditEvent,
    Base,
    Clip,
    Collection,
    CollectionItem,
    Embedding,
    IngestError,
    ModelVersion,
    Patient,
    Report,
    Series,
    Study,
)

__all__ = [
    "AuditEvent",
    "Base",
    "CatalogError",
    "Clip",
    "Collection",
    "CollectionItem",
    "Embedding",
    "IngestError",
    "ModelVersion",
    "Patient",
    "Report",
    "Series",
    "Study",
    "make_engine",
    "session_factory",
    "transaction",
]
