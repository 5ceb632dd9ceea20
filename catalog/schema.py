"""Schema versioning through the Alembic migrations in ``migrations/``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

import migrations
from catalog.db import CatalogError, safe_url

MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent


def alembic_config(engine: Engine) -> Config:
    """An in-memory Alembic config bound to ``engine`` (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def head_revision(engine: Engine) -> str:
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    assert head is not None, "migrations/versions holds no revision"
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the database to head; return (revision before, revision after)."""
    before = current_revision(engine)
    _check_known(engine, before)
    command.upgrade(alembic_config(engine), "head")
    return before, head_revision(engine)


def require_head(engine: Engine) -> None:
    """Refuse to work on a database whose schema is not this version's head."""
    current = current_revision(engine)
    head = head_revision(engine)
    if current == head:
        return
    where = safe_url(engine.url)
    if current is None:
        raise CatalogError(
            f"the database at {where} has no cmr-search schema yet; run `cmrsearch db upgrade`"
        )
    _check_known(engine, current)
    raise CatalogError(
        f"the database at {where} is at schema revision {current}, this version needs {head}; "
        "run `cmrsearch db upgrade`"
    )


def _check_known(engine: Engine, revision: str | None) -> None:
    if revision is None:
        return
    script = ScriptDirectory.from_config(alembic_config(engine))
    if revision not in {rev.revision for rev in script.walk_revisions()}:
        raise CatalogError(
            f"the database at {safe_url(engine.url)} is at schema revision {revision}, which "
            "this version of cmr-search does not know (written by a newer release?); "
            "upgrade cmr-search or point CMRSEARCH_DATABASE_URL elsewhere"
        )
