"""archive catalog: patients, studies, series, clips, reports, ingest errors

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ingest_error",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("error_type", sa.String(length=32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_error")),
    )
    op.create_index(
        op.f("ix_ingest_error_error_type"), "ingest_error", ["error_type"], unique=False
    )
    op.create_table(
        "patient",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pseudo_id", sa.String(length=32), nullable=False),
        sa.Column("identifier", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient")),
        sa.UniqueConstraint("pseudo_id", name=op.f("uq_patient_pseudo_id")),
    )
    op.create_table(
        "study",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_uid", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("accession", sa.String(length=64), nullable=True),
        sa.Column("study_date", sa.Date(), nullable=True),
        sa.Column("description", sa.String(length=128), nullable=True),
        sa.Column("institution", sa.String(length=128), nullable=True),
        sa.Column("manufacturer", sa.String(length=128), nullable=True),
        sa.Column("model_name", sa.String(length=128), nullable=True),
        sa.Column("field_strength", sa.Float(), nullable=True),
        sa.Column("patient_age", sa.Integer(), nullable=True),
        sa.Column("patient_sex", sa.String(length=1), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patient.id"],
            name=op.f("fk_study_patient_id_patient"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_study")),
        sa.UniqueConstraint("study_uid", name=op.f("uq_study_study_uid")),
    )
    op.create_index(op.f("ix_study_accession"), "study", ["accession"], unique=False)
    op.create_index(op.f("ix_study_institution"), "study", ["institution"], unique=False)
    op.create_index(op.f("ix_study_manufacturer"), "study", ["manufacturer"], unique=False)
    op.create_index(op.f("ix_study_patient_id"), "study", ["patient_id"], unique=False)
    op.create_index(op.f("ix_study_study_date"), "study", ["study_date"], unique=False)
    op.create_table(
        "report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=True),
        sa.Column("accession", sa.String(length=64), nullable=True),
        sa.Column("study_uid", sa.String(length=64), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("impression", sa.Text(), nullable=False),
        sa.Column("impression_found", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=512), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["study_id"], ["study.id"], name=op.f("fk_report_study_id_study"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report")),
        sa.UniqueConstraint("study_id", name=op.f("uq_report_study_id")),
    )
    op.create_index(op.f("ix_report_accession"), "report", ["accession"], unique=False)
    op.create_index(op.f("ix_report_study_uid"), "report", ["study_uid"], unique=False)
    op.create_table(
        "series",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("series_uid", sa.String(length=64), nullable=False),
        sa.Column("series_number", sa.Integer(), nullable=True),
        sa.Column("description", sa.String(length=128), nullable=True),
        sa.Column("view", sa.String(length=16), nullable=False),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("slices", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=True),
        sa.Column("columns", sa.Integer(), nullable=True),
        sa.Column("pixel_spacing", sa.JSON(), nullable=True),
        sa.Column("slice_thickness", sa.Float(), nullable=True),
        sa.Column("orientation", sa.JSON(), nullable=True),
        sa.Column("frame_time_ms", sa.Float(), nullable=True),
        sa.Column("image_type", sa.String(length=128), nullable=True),
        sa.Column("inversion_time", sa.Float(), nullable=True),
        sa.Column("transfer_syntax", sa.String(length=64), nullable=True),
        sa.Column("files", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["study_id"], ["study.id"], name=op.f("fk_series_study_id_study"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_series")),
        sa.UniqueConstraint("series_uid", name=op.f("uq_series_series_uid")),
    )
    op.create_index(op.f("ix_series_study_id"), "series", ["study_id"], unique=False)
    op.create_index(op.f("ix_series_view"), "series", ["view"], unique=False)
    op.create_table(
        "clip",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("series_id", sa.Integer(), nullable=True),
        sa.Column("view", sa.String(length=16), nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("shape", sa.JSON(), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["series_id"], ["series.id"], name=op.f("fk_clip_series_id_series"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["study_id"], ["study.id"], name=op.f("fk_clip_study_id_study"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clip")),
        sa.UniqueConstraint("study_id", "view", name=op.f("uq_clip_study_id")),
    )
    op.create_index(op.f("ix_clip_study_id"), "clip", ["study_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_clip_study_id"), table_name="clip")
    op.drop_table("clip")
    op.drop_index(op.f("ix_series_view"), table_name="series")
    op.drop_index(op.f("ix_series_study_id"), table_name="series")
    op.drop_table("series")
    op.drop_index(op.f("ix_report_study_uid"), table_name="report")
    op.drop_index(op.f("ix_report_accession"), table_name="report")
    op.drop_table("report")
    op.drop_index(op.f("ix_study_study_date"), table_name="study")
    op.drop_index(op.f("ix_study_patient_id"), table_name="study")
    op.drop_index(op.f("ix_study_manufacturer"), table_name="study")
    op.drop_index(op.f("ix_study_institution"), table_name="study")
    op.drop_index(op.f("ix_study_accession"), table_name="study")
    op.drop_table("study")
    op.drop_table("patient")
    op.drop_index(op.f("ix_ingest_error_error_type"), table_name="ingest_error")
    op.drop_table("ingest_error")
