"""The Alembic migrations and the SQLAlchemy models describe the same schema."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from catalog.models import Base
from catalog.schema import alembic_config, current_revision, head_revision, upgrade


def test_upgrade_brings_an_empty_database_to_head(engine: Engine) -> None:
    assert current_revision(engine) is None
    before, after = upgrade(engine)
    assert before is None
    assert after == head_revision(engine) == current_revision(engine)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())


def test_autogenerate_finds_no_difference_between_models_and_migrations(engine: Engine) -> None:
    upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_downgrade_to_base_and_back_leaves_the_same_schema(engine: Engine) -> None:
    upgrade(engine)
    command.downgrade(alembic_config(engine), "base")
    assert current_revision(engine) is None
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_upgrade_twice_is_a_no_op(engine: Engine) -> None:
    upgrade(engine)
    before, after = upgrade(engine)
    assert before == after == head_revision(engine)
