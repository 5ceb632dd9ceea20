"""`cmrsearch demo`, `serve` and `user add` as a user runs them."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from catalog.db import make_engine, session_factory
from catalog.models import Embedding, ModelVersion, Study
from cmrsearch.accounts import authenticate, read_users
from cmrsearch.cli import main


@pytest.fixture
def sqlite_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    from conftest import point_at

    return point_at(monkeypatch, tmp_path / "home", f"sqlite:///{tmp_path / 'catalog.sqlite'}")


def test_demo_builds_everything_then_reuses_it(
    sqlite_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["demo", "--studies", "10", "--epochs", "1", "--no-serve"]
    assert main(argv) == 0
    first = capsys.readouterr().err
    for step in ("[1/7] catalog schema", "phantom archive of 10", "train the demo model",
                 "evaluate it", "embed studies", "demo ready"):  # fmt: skip
        assert step in first, step
    engine = make_engine(f"sqlite:///{sqlite_home.parent / 'catalog.sqlite'}")
    with session_factory(engine)() as session:
        studies = session.scalar(select(func.count()).select_from(Study))
        vectors = session.scalar(
            select(func.count()).select_from(Embedding).where(Embedding.view == "study")
        )
        version = session.scalars(select(ModelVersion)).one()
    assert studies == vectors == 10
    assert version.metrics and version.metrics["evaluation"]["thresholds"]
    assert main(argv) == 0
    again = capsys.readouterr().err
    assert "phantom archive of 10 studies (already done)" in again
    assert "(already done)" in again.split("train the demo model")[1].splitlines()[0]
    engine.dispose()


def test_serve_refuses_to_start_without_accounts_or_open_access(
    sqlite_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    assert main(["serve", "--port", "8599"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "cmrsearch user add" in err and "CMRSEARCH_OPEN_ACCESS" in err


def test_serve_refuses_an_unupgraded_catalog(
    sqlite_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CMRSEARCH_OPEN_ACCESS", "true")
    assert main(["serve", "--port", "8599"]) == 1
    assert "cmrsearch db upgrade" in capsys.readouterr().err


def test_user_add_from_stdin(
    sqlite_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("a sufficiently long one\n"))
    assert main(["user", "add", "dr.kim", "--password-stdin", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    users = Path(result["users_file"])
    assert users == sqlite_home.resolve() / "users" or users == sqlite_home / "users"
    assert list(read_users(users)) == ["dr.kim"]
    assert authenticate(users, "dr.kim", "a sufficiently long one")
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert main(["user", "add", "dr.kim", "--password-stdin"]) == 1
    assert "too short" in capsys.readouterr().err
    assert authenticate(users, "dr.kim", "a sufficiently long one")  # unchanged
