"""The catalog schema: SQLAlchemy 2.0 typed models.

Patients are stored by keyed pseudonym only, unless the site opts in to keeping
identifiers (``Patient.identifier``). Vectors are float32 bytes so that any FAISS
index can be rebuilt from the catalog alone, on SQLite and Postgres alike.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names, so migrations can refer to them (Alembic's recommendation).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

UID = String(64)  # DICOM UIDs are at most 64 characters


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class Patient(Base):
    __tablename__ = "patient"

    id: Mapped[int] = mapped_column(primary_key=True)
    pseudo_id: Mapped[str] = mapped_column(String(32), unique=True)
    # Real identifier, only when CMRSEARCH_STORE_IDENTIFIERS is set.
    identifier: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    studies: Mapped[list[Study]] = relationship(back_populates="patient")


class Study(Base):
    __tablename__ = "study"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_uid: Mapped[str] = mapped_column(UID, unique=True)
    patient_id: Mapped[int | None] = mapped_column(
        ForeignKey("patient.id", ondelete="SET NULL"), index=True
    )
    accession: Mapped[str | None] = mapped_column(String(64), index=True)
    study_date: Mapped[date | None] = mapped_column(Date, index=True)
    description: Mapped[str | None] = mapped_column(String(128))
    institution: Mapped[str | None] = mapped_column(String(128), index=True)
    manufacturer: Mapped[str | None] = mapped_column(String(128), index=True)
    model_name: Mapped[str | None] = mapped_column(String(128))
    field_strength: Mapped[float | None] = mapped_column(Float)
    patient_age: Mapped[int | None] = mapped_column(Integer)  # years at the exam
    patient_sex: Mapped[str | None] = mapped_column(String(1))  # M, F, O
    # Hash of the study's file paths, sizes and mtimes: re-indexing skips unchanged studies.
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    patient: Mapped[Patient | None] = relationship(back_populates="studies")
    series: Mapped[list[Series]] = relationship(
        back_populates="study", cascade="all, delete-orphan", passive_deletes=True
    )
    clips: Mapped[list[Clip]] = relationship(
        back_populates="study", cascade="all, delete-orphan", passive_deletes=True
    )
    report: Mapped[Report | None] = relationship(back_populates="study")


class Series(Base):
    __tablename__ = "series"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), index=True)
    series_uid: Mapped[str] = mapped_column(UID, unique=True)
    series_number: Mapped[int | None] = mapped_column(Integer)
    description: Mapped[str | None] = mapped_column(String(128))
    # sax, 2ch, 3ch, 4ch, lge_sax, lge_lax or other; never null: every series gets a view.
    view: Mapped[str] = mapped_column(String(16), index=True)
    frames: Mapped[int] = mapped_column(Integer)  # cardiac phases
    slices: Mapped[int] = mapped_column(Integer)
    rows: Mapped[int | None] = mapped_column(Integer)
    columns: Mapped[int | None] = mapped_column(Integer)
    pixel_spacing: Mapped[list[Any] | None] = mapped_column()  # [row mm, column mm]
    slice_thickness: Mapped[float | None] = mapped_column(Float)
    orientation: Mapped[list[Any] | None] = mapped_column()  # ImageOrientationPatient, 6 floats
    frame_time_ms: Mapped[float | None] = mapped_column(Float)  # for native-rate playback
    image_type: Mapped[str | None] = mapped_column(String(128))
    inversion_time: Mapped[float | None] = mapped_column(Float)
    transfer_syntax: Mapped[str | None] = mapped_column(String(64))
    files: Mapped[int] = mapped_column(Integer, default=0)

    study: Mapped[Study] = relationship(back_populates="series")


class Clip(Base):
    """A normalised cine (frames x height x width), cached as a compressed array."""

    __tablename__ = "clip"
    __table_args__ = (UniqueConstraint("study_id", "view"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), index=True)
    series_id: Mapped[int | None] = mapped_column(ForeignKey("series.id", ondelete="SET NULL"))
    view: Mapped[str] = mapped_column(String(16))  # sax_basal, sax_mid, sax_apical, 2ch, ...
    path: Mapped[str] = mapped_column(String(512))  # relative to HOME
    shape: Mapped[list[Any]] = mapped_column()
    checksum: Mapped[str] = mapped_column(String(64))  # sha256 of the cached file
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    study: Mapped[Study] = relationship(back_populates="clips")


class Report(Base):
    """A radiology report; kept even before its study arrives (linked later)."""

    __tablename__ = "report"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int | None] = mapped_column(
        ForeignKey("study.id", ondelete="SET NULL"), unique=True
    )
    accession: Mapped[str | None] = mapped_column(String(64), index=True)
    study_uid: Mapped[str | None] = mapped_column(UID, index=True)
    text: Mapped[str] = mapped_column(Text)
    impression: Mapped[str] = mapped_column(Text)
    # False when no IMPRESSION/CONCLUSION heading was found and the whole text stands in.
    impression_found: Mapped[bool] = mapped_column(Boolean, default=True)
    source: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    study: Mapped[Study | None] = relationship(back_populates="report")


class ModelVersion(Base):
    __tablename__ = "model_version"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # derived from the weights
    checkpoint_path: Mapped[str] = mapped_column(String(512))
    config: Mapped[dict[str, Any]] = mapped_column()
    metrics: Mapped[dict[str, Any] | None] = mapped_column()  # evaluation numbers, thresholds
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Embedding(Base):
    """A study vector (view ``study``) or a per-view vector, for one model version."""

    __tablename__ = "embedding"
    __table_args__ = (UniqueConstraint("study_id", "model_version_id", "view"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), index=True)
    model_version_id: Mapped[str] = mapped_column(
        ForeignKey("model_version.id", ondelete="CASCADE"), index=True
    )
    view: Mapped[str] = mapped_column(String(16), default="study")
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)  # float32, little-endian, L2-normalised
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    model_version: Mapped[ModelVersion] = relationship()


class IngestError(Base):
    __tablename__ = "ingest_error"

    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(String(1024))
    error_type: Mapped[str] = mapped_column(String(32), index=True)
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Collection(Base):
    """A teaching file or a research cohort."""

    __tablename__ = "collection"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="teaching")  # teaching | cohort
    description: Mapped[str | None] = mapped_column(Text)
    query: Mapped[dict[str, Any] | None] = mapped_column()  # how a cohort was built
    owner: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    items: Mapped[list[CollectionItem]] = relationship(
        back_populates="collection",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="CollectionItem.position",
    )


class CollectionItem(Base):
    __tablename__ = "collection_item"
    __table_args__ = (UniqueConstraint("collection_id", "study_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("collection.id", ondelete="CASCADE"), index=True
    )
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str | None] = mapped_column(Text)
    score: Mapped[float | None] = mapped_column(Float)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    collection: Mapped[Collection] = relationship(back_populates="items")
    study: Mapped[Study] = relationship()


class AuditEvent(Base):
    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    user: Mapped[str] = mapped_column(String(128), index=True)
    action: Mapped[str] = mapped_column(String(32), index=True)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )
