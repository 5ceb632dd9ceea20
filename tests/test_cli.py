"""`cmrsearch db upgrade` and `status` in-process, and their one-line errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from catalog.db import make_engine
from catalog.schema import alembic_config, head_revision
from cmrsearch.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 1
    lines = [line for line in err.splitlines() if line.startswith("cmrsearch: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


def test_db_upgrade_then_status(cmr_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "db", "upgrade", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["from_revision"] is None
    assert result["to_revision"] == result["to_revision"].strip() != ""

    code, out, _ = run(capsys, "db", "upgrade")
    assert code == 0 and "already at revision" in out

    code, out, _ = run(capsys, "status", "--json")
    assert code == 0
    status = json.loads(out)
    assert status["studies"] == 0 and status["series_by_view"] == {}
    assert status["schema_revision"] == result["to_revision"]


def test_status_refuses_a_database_without_schema(
    cmr_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "status")
    assert out == ""
    assert_one_line_error(code, err, "no cmr-search schema", "cmrsearch db upgrade")


def test_older_schema_is_refused_then_upgraded_with_data_kept(
    cmr_env: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = make_engine(database_url)
    command.upgrade(alembic_config(engine), "0001")  # what an older release left behind
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO study (study_uid, created_at, updated_at) VALUES ('1.2.840.1', :t, :t)"
            ),
            {"t": datetime.now(UTC)},
        )
    head = head_revision(engine)
    engine.dispose()

    code, _, err = run(capsys, "status")
    assert_one_line_error(code, err, "revision 0001", f"needs {head}", "cmrsearch db upgrade")

    code, out, _ = run(capsys, "db", "upgrade", "--json")
    assert code == 0 and json.loads(out)["from_revision"] == "0001"
    code, out, _ = run(capsys, "status", "--json")
    assert code == 0 and json.loads(out)["studies"] == 1


def test_unknown_revision_is_reported_not_overwritten(
    cmr_env: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "upgrade"]) == 0
    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'fffffff'"))
    code, _, err = run(capsys, "db", "upgrade")
    assert_one_line_error(code, err, "fffffff", "upgrade cmr-search")
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT version_num FROM alembic_version")) == "fffffff"
    engine.dispose()


@pytest.mark.parametrize(
    ("url", "fragments"),
    [
        ("not a url", ("CMRSEARCH_DATABASE_URL is not a database URL",)),
        ("mysql://root@127.0.0.1/test", ("'mysql'", "sqlite:///")),
        (
            "postgresql://postgres:s3cret@127.0.0.1:1/test",
            ("cannot reach the database", "127.0.0.1:1", "CMRSEARCH_DATABASE_URL"),
        ),
    ],
)
def test_bad_database_urls_give_one_line_errors(
    url: str,
    fragments: tuple[str, ...],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CMRSEARCH_HOME", str(tmp_path))
    monkeypatch.setenv("CMRSEARCH_DATABASE_URL", url)
    code, _, err = run(capsys, "db", "upgrade")
    assert_one_line_error(code, err, *fragments)
    assert "s3cret" not in err


def test_unwritable_home_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("CMRSEARCH_HOME", str(blocker / "home"))
    monkeypatch.delenv("CMRSEARCH_DATABASE_URL", raising=False)
    code, _, err = run(capsys, "db", "upgrade")
    assert_one_line_error(code, err, "CMRSEARCH_HOME", "not a writable directory")


def test_invalid_setting_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CMRSEARCH_DEVICE", "tpu")
    code, _, err = run(capsys, "status")
    assert_one_line_error(code, err, "CMRSEARCH_DEVICE")


def test_unknown_subcommands_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["dance", "--port", "8501"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--statement-weight", "1.5", "not a number from 0 to 1"),
        ("--measurement-weight", "-1", "not a number of 0 or more"),
        ("--measurement-weight", "nan", "not a number of 0 or more"),
        ("--view-dropout", "1.5", "not a number from 0 to 1"),
        ("--view-statement-weight", "-1", "not a number of 0 or more"),
        ("--view-statement-weight", "aorta=1", "not W or VIEW=W,... with VIEW one of lge, lvot"),
    ],
)
def test_training_options_out_of_range_are_refused(
    option: str, value: str, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train", "--out", str(tmp_path / "model"), option, value])
    assert exc.value.code == 2
    assert f"'{value}' is {says}" in capsys.readouterr().err
    assert not (tmp_path / "model").exists()


def test_train_help_states_the_defaults_train_config_holds() -> None:
    # The help restates each default that lives in TrainConfig; they drift apart silently.
    import argparse
    import re

    from cmrsearch.cli import TRAIN_OVERRIDES, build_parser
    from trainer.loop import TrainConfig

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help or "" for a in commands.choices["train"]._actions}
    for name in TRAIN_OVERRIDES:
        value = getattr(TrainConfig(), name)
        stated = re.search(r"default:? (on|off|[\w.=,]+)", helps[name])
        assert stated, (name, helps[name])
        if isinstance(value, bool):
            assert stated.group(1) == ("on" if value else "off"), name
        elif isinstance(value, dict):
            given = (part.split("=") for part in stated.group(1).split(","))
            assert {k: float(v) for k, v in given} == value, name
        else:
            assert float(stated.group(1)) == value, name
