"""Alembic migrations of the catalog schema (`cmrsearch db upgrade`)."""
