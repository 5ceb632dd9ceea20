"""Alembic environment: runs on the engine that catalog.schema hands over."""

from alembic import context
from sqlalchemy import create_engine

from catalog.db import normalise_url
from catalog.models import Base

target_metadata = Base.metadata
config = context.config


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:  # plain `alembic` command line: URL from alembic.ini / -x url=...
        url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
            "sqlalchemy.url"
        )
        if not url:
            raise SystemExit("give the database URL: alembic -x url=... upgrade head")
        engine = create_engine(normalise_url(url))
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER much
            compare_type=True,
        )
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()
