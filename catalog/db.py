"""Engine and session factory, with one-line errors for the usual misconfigurations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from cmrsearch.errors import CmrSearchError


class CatalogError(CmrSearchError):
    """The catalog database cannot be used as configured."""


def normalise_url(raw: str) -> URL:
    """Parse a database URL; plain ``postgresql://`` means the psycopg 3 driver we ship."""
    try:
        url = make_url(raw)
    except ArgumentError:
        raise CatalogError(
            "CMRSEARCH_DATABASE_URL is not a database URL; use "
            "sqlite:///path/to/catalog.sqlite or postgresql://user@host:5432/dbname"
        ) from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise CatalogError(
            f"CMRSEARCH_DATABASE_URL uses {url.get_backend_name()!r}, which cmr-search does not "
            "support; use a sqlite:/// or postgresql:// URL"
        )
    return url


def safe_url(url: URL) -> str:
    """The URL as it may appear in messages: password hidden."""
    return url.render_as_string(hide_password=True)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")  # SQLite ignores FOREIGN KEY clauses otherwise
    cursor.execute("PRAGMA journal_mode=WAL")  # readers (UI threads) never block the indexer
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(raw_url: str, *, check: bool = True) -> Engine:
    """Create an engine and, by default, prove the database answers."""
    url = normalise_url(raw_url)
    kwargs: dict[str, Any] = {"future": True}
    if url.get_backend_name() == "postgresql":
        kwargs.update(pool_pre_ping=True, connect_args={"connect_timeout": 10})
    try:
        engine = create_engine(url, **kwargs)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise CatalogError(
            f"cannot use database URL {safe_url(url)}: {exc}; fix CMRSEARCH_DATABASE_URL"
        ) from None
    if url.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    if check:
        ping(engine)
    return engine


def ping(engine: Engine) -> None:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "no answer"
        raise CatalogError(
            f"cannot reach the database at {safe_url(engine.url)} ({reason}); start the "
            "database server or fix CMRSEARCH_DATABASE_URL"
        ) from None
    except SQLAlchemyError as exc:
        raise CatalogError(
            f"database at {safe_url(engine.url)} failed: {type(exc).__name__}; "
            "check CMRSEARCH_DATABASE_URL"
        ) from None


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work is committed on success and rolled back on any error."""
    with factory() as session, session.begin():
        yield session
