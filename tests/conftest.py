"""Shared fixtures: a fresh catalog database per test, on SQLite and on real Postgres.

Postgres runs when CMRSEARCH_TEST_DATABASE_URL points at a server (``make test``
and ``.ci/run`` set it); each test gets a database of its own, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from catalog.db import make_engine, normalise_url

POSTGRES_URL = os.environ.get("CMRSEARCH_TEST_DATABASE_URL", "")
BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(
            not POSTGRES_URL, reason="CMRSEARCH_TEST_DATABASE_URL is not set (make test sets it)"
        ),
    ),
]


@contextmanager
def fresh_database(kind: str, folder: Path) -> Iterator[str]:
    """The URL of an empty database that exists inside this block only."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'catalog.sqlite'}"
        return
    server = normalise_url(POSTGRES_URL)
    name = f"cmrsearch_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


def point_at(monkeypatch: pytest.MonkeyPatch, home: Path, database_url: str) -> Path:
    for key in list(os.environ):
        if key.startswith("CMRSEARCH_") and key != "CMRSEARCH_TEST_DATABASE_URL":
            monkeypatch.delenv(key)
    monkeypatch.setenv("CMRSEARCH_HOME", str(home))
    monkeypatch.setenv("CMRSEARCH_DATABASE_URL", database_url)
    return home


@pytest.fixture
def cmr_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str) -> Path:
    """Point CMRSEARCH_* at a private HOME and database; return HOME."""
    return point_at(monkeypatch, tmp_path / "home", database_url)


def pytest_sessionstart(session: pytest.Session) -> None:
    """A configured Postgres that does not answer stops the run: never skip it silently."""
    if not POSTGRES_URL:
        return
    probe = create_engine(normalise_url(POSTGRES_URL))
    try:
        with probe.connect():
            pass
    except Exception as exc:
        pytest.exit(
            f"CMRSEARCH_TEST_DATABASE_URL is set but Postgres does not answer: {exc}", returncode=3
        )
    finally:
        probe.dispose()


def index_phantom(archive: Path) -> None:
    """`cmrsearch index` a phantom archive with its reports (into the configured catalog)."""
    from cmrsearch.cli import main

    argv = ["index", str(archive / "dicom"), "--reports", str(archive / "reports.jsonl")]
    assert main([*argv, "--workers", "2"]) == 0


def untrained_checkpoint(path: Path) -> Path:
    """The `tiny` model, seeded and untrained, saved by the real checkpoint code: enough
    for tests of mechanics (what a trained model finds is measured by evaluation)."""
    import torch

    from cmrclip.checkpoint import save_checkpoint
    from cmrclip.config import CONFIGS
    from cmrclip.model import CMRCLIP

    torch.manual_seed(0)
    save_checkpoint(CMRCLIP(CONFIGS["tiny"]), path)
    return path
