"""Curation and teaching: accounts, audit trail, collections, study detail, cines, export.

Accounts, audit and collections run on real SQLite and Postgres databases (the
``engine`` fixture); the study viewer and the teaching-file export run on one small
indexed phantom catalog in SQLite, with an untrained checkpoint, shared by the module.
"""

from __future__ import annotations

import io
import json
import os
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import fresh_database, index_phantom, point_at, untrained_checkpoint
from PIL import Image
from sqlalchemy import Engine, delete, func, select, text
from sqlalchemy.orm import Session, sessionmaker

import catalog.collections as col
from catalog.audit import MAX_DETAIL_CHARS, AuditError, recent, record
from catalog.db import make_engine, session_factory, transaction
from catalog.models import AuditEvent, CollectionItem, Study
from catalog.schema import upgrade
from cmrsearch.accounts import (
    AccountError,
    add_user,
    authenticate,
    hash_password,
    read_users,
    verify_password,
)
from cmrsearch.cli import main
from cmrsearch.errors import CmrSearchError
from cmrsearch.vocabulary import CLIP_VIEWS
from phantom.archive import generate
from search.engine import SearchEngine
from search.studies import DEFAULT_CYCLE_MS, StudyNotFound
from ui.cine import MIN_FRAME_MS, gif, png
from ui.export import Case, Exported, ExportOptions, teaching_file


def one_line(exc: BaseException) -> str:
    """The user-facing message: one non-empty line, raised without a chained cause."""
    message = str(exc)
    assert message.strip() and "\n" not in message
    assert exc.__cause__ is None
    return message


# ---- accounts ----------------------------------------------------------------------


def test_password_hash_round_trip_and_malformed_hashes() -> None:
    stored = hash_password("correct horse battery")
    assert stored.startswith("scrypt$") and "correct horse" not in stored
    assert verify_password("correct horse battery", stored)
    assert not verify_password("correct horse batterY", stored)
    # One hex digit of the digest changed: the comparison, not the parsing, says no.
    digest = stored.rsplit("$", 1)[1]
    flipped = ("1" if digest[0] == "0" else "0") + digest[1:]
    assert not verify_password("correct horse battery", f"{stored[: -len(digest)]}{flipped}")
    salt = stored.split("$")[4]
    for bad in (
        "",
        "correct horse battery",
        stored.replace("scrypt$", "bcrypt$", 1),
        "scrypt$131072$8$1$" + salt,  # a field missing
        stored.replace("$131072$", "$many$", 1),  # cost not a number
        stored.replace("$131072$", "$3$", 1),  # cost not a power of two
        stored.replace(salt, "not-hex", 1),
    ):
        assert verify_password("correct horse battery", bad) is False, bad


def test_a_stored_digest_that_is_not_hex_is_a_mismatch() -> None:
    # Cheap parameters (N=2), a valid salt, a digest that is not hex: read_users accepts
    # the line (it starts with scrypt$), so authenticate would crash on it.
    assert verify_password("anything at all", f"scrypt$2$1$1${'00' * 16}$not-hex") is False


def test_add_user_writes_a_private_file_and_replaces_accounts(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "users"
    old_umask = os.umask(0)  # so that only the code's own mode keeps the file private
    try:
        assert add_user(path, "alice@example.org", "first secret 1") is False
        assert add_user(path, "bob", "bobs own password") is False
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    body = path.read_text()
    assert "first secret 1" not in body and "bobs own password" not in body
    users = read_users(path)
    assert set(users) == {"alice@example.org", "bob"}
    assert all(v.startswith("scrypt$") for v in users.values())

    assert add_user(path, "alice@example.org", "second secret") is True
    again = read_users(path)
    assert set(again) == {"alice@example.org", "bob"}
    assert again["bob"] == users["bob"] and again["alice@example.org"] != users["alice@example.org"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["users"]  # no temp file left

    assert authenticate(path, "alice@example.org", "second secret") is True
    assert authenticate(path, "alice@example.org", "first secret 1") is False
    assert authenticate(path, "mallory", "second secret") is False


@pytest.mark.parametrize("name", ["", "two words", "col:on", "../etc", "x" * 65, "tab\there"])
def test_add_user_rejects_bad_names(tmp_path: Path, name: str) -> None:
    path = tmp_path / "users"
    with pytest.raises(AccountError, match="not allowed") as caught:
        add_user(path, name, "a long enough password")
    one_line(caught.value)
    assert not path.exists()


def test_a_user_name_ending_in_a_newline_is_rejected(tmp_path: Path) -> None:
    # Accepted today, "eve\n:scrypt$..." splits into two lines and the whole file stops
    # loading ("line 2 is not name:scrypt$..."): every login fails.
    with pytest.raises(AccountError):
        add_user(tmp_path / "users", "eve\n", "a long enough password")


def test_add_user_rejects_a_short_password(tmp_path: Path) -> None:
    path = tmp_path / "users"
    with pytest.raises(AccountError, match="too short") as caught:
        add_user(path, "alice", "123456789")
    assert "123456789" not in one_line(caught.value)
    assert not path.exists()


def test_read_users_names_the_missing_file_and_the_bad_line(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "users"
    with pytest.raises(AccountError, match="does not exist"):
        read_users(missing)
    with pytest.raises(AccountError, match="does not exist"):
        authenticate(missing, "alice", "a long enough password")

    path = tmp_path / "users"
    good = "alice:scrypt$131072$8$1$00$00"
    path.write_text(f"# accounts\n{good}\n\nbob:bcrypt$secret-hash\n")
    with pytest.raises(AccountError, match=r"line 4 is not") as caught:
        read_users(path)
    assert "secret-hash" not in one_line(caught.value)
    for line in ("no separator at all", "two words:scrypt$1$2$3$00$00", ":scrypt$1$2$3$00$00"):
        path.write_text(f"{good}\n{line}\n")
        with pytest.raises(AccountError, match=r"line 2 is not"):
            read_users(path)
    path.write_text(f"# accounts\n\n{good}\n")
    assert read_users(path) == {"alice": "scrypt$131072$8$1$00$00"}


# ---- audit trail -------------------------------------------------------------------


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    upgrade(engine)
    return session_factory(engine)


def test_audit_record_stores_the_event(sessions: sessionmaker[Session]) -> None:
    record(sessions, "alice", "search", query="q" * 5000, k=10, filters=["sex=F"], page=None)
    record(sessions, "u" * 200, "export-teaching-file-" + "x" * 40, collection=3)
    with sessions() as session:
        events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
        latest = recent(session, limit=1)
    assert len(events) == 2
    first, second = events
    assert (first.user, first.action) == ("alice", "search")
    assert first.details == {
        "query": "q" * MAX_DETAIL_CHARS,
        "k": 10,
        "filters": ["sex=F"],
        "page": None,
    }
    assert first.created_at is not None
    assert second.user == "u" * 128 and second.action == ("export-teaching-file-" + "x" * 40)[:32]
    assert second.details == {"collection": 3}
    assert [e.id for e in latest] == [second.id]


def check_audit_error(exc: AuditError, action: str) -> None:
    message = one_line(exc)
    assert f"the {action} was not performed" in message
    for leak in ("INSERT", "SELECT", "audit_event", "1.2.840.99"):
        assert leak not in message


def test_audit_failure_refuses_the_action_when_the_table_is_gone(engine: Engine) -> None:
    upgrade(engine)
    sessions = session_factory(engine)
    record(sessions, "alice", "view", study="1.2.840.99.1")
    engine.dispose()
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE audit_event"))
    with pytest.raises(AuditError) as caught:
        record(sessions, "alice", "export", study="1.2.840.99.2")
    check_audit_error(caught.value, "export")


@pytest.mark.parametrize("where", ["no schema", "no folder"])
def test_audit_failure_on_an_unusable_sqlite_catalog(tmp_path: Path, where: str) -> None:
    file = tmp_path / "empty.sqlite" if where == "no schema" else tmp_path / "gone" / "c.sqlite"
    engine = make_engine(f"sqlite:///{file}", check=False)
    try:
        with pytest.raises(AuditError) as caught:
            record(session_factory(engine), "bob", "search", query="1.2.840.99.3")
        check_audit_error(caught.value, "search")
    finally:
        engine.dispose()


# ---- collections -------------------------------------------------------------------

UIDS = [f"1.2.826.0.1.3680043.99.{i}" for i in range(1, 5)]


@pytest.fixture
def curated(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """A catalog at head with four bare studies."""
    with transaction(sessions) as session:
        session.add_all(Study(study_uid=uid) for uid in UIDS)
    return sessions


def order(sessions: sessionmaker[Session], collection_id: int) -> list[tuple[str, int]]:
    with sessions() as session:
        items = col.get(session, collection_id).items
        return [(item.study.study_uid, item.position) for item in items]


def counts(sessions: sessionmaker[Session]) -> dict[str, int]:
    with sessions() as session:
        return {s.name: s.items for s in col.summaries(session)}


def test_collection_names_are_normalised_and_checked(curated: sessionmaker[Session]) -> None:
    cid = col.create(curated, "  Heart   failure\tcases ", "alice", description="for year 4")
    with curated() as session:
        made = col.get(session, cid)
        assert (made.name, made.kind, made.owner, made.description) == (
            "Heart failure cases",
            "teaching",
            "alice",
            "for year 4",
        )
        assert made.items == []
    for same in ("Heart failure cases", " Heart  failure cases"):
        with pytest.raises(col.CollectionError, match="exists already") as caught:
            col.create(curated, same, "bob")
        one_line(caught.value)
    bad_names = ["", "   ", "a/b", "a\\b", ".", "..", "bell\x07", "nul\x00x", "zero\u200bwidth"]
    for bad in [*bad_names, "x" * 201]:
        with pytest.raises(col.CollectionError):
            col.create(curated, bad, "bob")
    with pytest.raises(col.CollectionError, match="unknown collection kind"):
        col.create(curated, "Cohort A", "bob", kind="cine")
    cohort = col.create(curated, "Cohort A", None, kind="cohort")
    with curated() as session:
        assert [(s.id, s.kind, s.items) for s in col.summaries(session)] == [
            (cohort, "cohort", 0),
            (cid, "teaching", 0),
        ]


def test_collection_items_keep_an_order(curated: sessionmaker[Session]) -> None:
    cid = col.create(curated, "Teaching: cardiomyopathies", "alice")
    a, b, c, d = UIDS
    col.add(curated, cid, a, note="  first  ", score=0.9)
    col.add(curated, cid, b)
    col.add(curated, cid, c)
    assert order(curated, cid) == [(a, 0), (b, 1), (c, 2)]
    with pytest.raises(col.CollectionError, match="already"):
        col.add(curated, cid, b)
    with pytest.raises(col.CollectionError, match="no longer in the catalog"):
        col.add(curated, cid, "1.2.3.4.5.6.7")
    with pytest.raises(col.CollectionError, match="longer than"):
        col.add(curated, cid, d, note="n" * (col.MAX_NOTE + 1))
    with pytest.raises(col.CollectionError, match="no longer exists"):
        col.add(curated, cid + 1000, d)
    assert order(curated, cid) == [(a, 0), (b, 1), (c, 2)]  # failed adds left no trace

    col.move(curated, cid, c, -1)
    assert order(curated, cid) == [(a, 0), (c, 1), (b, 2)]
    col.move(curated, cid, a, +1)
    assert order(curated, cid) == [(c, 0), (a, 1), (b, 2)]
    col.move(curated, cid, b, +5)  # already last: stays
    col.move(curated, cid, a, -9)  # clamped to the top
    assert order(curated, cid) == [(a, 0), (c, 1), (b, 2)]
    with pytest.raises(col.CollectionError, match="not in this collection"):
        col.move(curated, cid, d, -1)

    col.set_note(curated, cid, c, "  look at the <b>apex</b>  ")
    with curated() as session:
        notes = {i.study.study_uid: (i.note, i.score) for i in col.get(session, cid).items}
    assert notes == {a: ("first", 0.9), b: (None, None), c: ("look at the <b>apex</b>", None)}
    col.set_note(curated, cid, c, "   ")
    with curated() as session:
        assert [i.note for i in col.get(session, cid).items] == ["first", None, None]
    with pytest.raises(col.CollectionError, match="not in this collection"):
        col.set_note(curated, cid, d, "no")

    col.remove(curated, cid, a)
    assert [uid for uid, _ in order(curated, cid)] == [c, b]
    with pytest.raises(col.CollectionError, match="not in this collection"):
        col.remove(curated, cid, a)

    other = col.create(curated, "Cohort B", "bob", kind="cohort")
    col.add(curated, other, d)
    col.add(curated, cid, d)  # touched last: listed first
    with curated() as session:
        assert [(s.id, s.items) for s in col.summaries(session)] == [(cid, 3), (other, 1)]

    col.delete(curated, cid)
    with curated() as session:
        with pytest.raises(col.CollectionError, match="no longer exists") as caught:
            col.get(session, cid)
        one_line(caught.value)
        left = session.scalar(
            select(func.count())
            .select_from(CollectionItem)
            .where(CollectionItem.collection_id == cid)
        )
    assert left == 0
    assert counts(curated) == {"Cohort B": 1}
    col.delete(curated, cid)  # deleting twice is harmless
    with pytest.raises(col.CollectionError, match="no longer exists"):
        col.add(curated, cid, a)
    with pytest.raises(col.CollectionError):
        col.set_note(curated, cid, d, "gone")


def test_a_study_deleted_from_the_catalog_leaves_its_collections(
    engine: Engine, curated: sessionmaker[Session]
) -> None:
    a, b, c, _ = UIDS
    first = col.create(curated, "First", "alice")
    second = col.create(curated, "Second", "alice")
    for uid in (a, b, c):
        col.add(curated, first, uid)
    col.add(curated, second, b)
    with engine.begin() as conn:  # the database's ON DELETE CASCADE, not the ORM
        conn.execute(delete(Study).where(Study.study_uid == b))
    assert [uid for uid, _ in order(curated, first)] == [a, c]
    assert order(curated, second) == []
    assert counts(curated) == {"First": 2, "Second": 0}
    with pytest.raises(col.CollectionError, match="no longer in the catalog"):
        col.add(curated, second, b)
    col.move(curated, first, c, -1)
    assert order(curated, first) == [(c, 0), (a, 1)]


# ---- one small indexed phantom catalog (SQLite) ------------------------------------


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("curation") / "archive"
    generate(out, 5, seed=7, style="internal", workers=2, size="small")
    return out


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return untrained_checkpoint(tmp_path_factory.mktemp("ckpt") / "model")


@pytest.fixture(scope="module")
def studies(
    tmp_path_factory: pytest.TempPathFactory, archive: Path, checkpoint: Path
) -> Iterator[SearchEngine]:
    folder = tmp_path_factory.mktemp("catalog")
    with fresh_database("sqlite", folder) as url, pytest.MonkeyPatch.context() as mp:
        home = point_at(mp, folder / "home", url)
        assert main(["db", "upgrade"]) == 0
        index_phantom(archive)
        assert main(["embed", "--model", str(checkpoint)]) == 0
        engine = make_engine(url)
        yield SearchEngine(engine, home, checkpoint)
        engine.dispose()


@pytest.fixture(scope="module")
def labels(archive: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (archive / "labels.jsonl").read_text().splitlines()]


def expected_clip_views(views: list[str]) -> list[str]:
    sources = {"sax_basal": "sax", "sax_mid": "sax", "sax_apical": "sax", "lvot": "3ch"}
    out = [v for v in CLIP_VIEWS if v != "lge" and sources.get(v, v) in views]
    return out + (["lge"] if {"lge_sax", "lge_lax"} & set(views) else [])


# ---- study detail and cines --------------------------------------------------------


def test_study_detail_matches_the_archive(
    studies: SearchEngine, labels: list[dict[str, Any]], archive: Path
) -> None:
    reports = {
        row["study_uid"]: row["text"]
        for row in map(json.loads, (archive / "reports.jsonl").read_text().splitlines())
    }
    for row in labels:
        detail = studies.study(row["study_uid"])
        assert detail.study_uid == row["study_uid"]
        assert (
            detail.patient and detail.patient.startswith("P") and detail.patient != row["patient"]
        )
        assert detail.study_date == row["study_date"]
        assert detail.field_strength == row["field_strength"]
        assert set(detail.views) == set(row["views"]) and detail.views == sorted(detail.views)
        numbers = [s["number"] for s in detail.series]
        assert numbers == sorted(numbers)
        assert {s["view"] for s in detail.series} - {"other"} == set(row["views"])
        sax = next(s for s in detail.series if s["view"] == "sax")
        assert sax["phases"] == row["phases"] and sax["slices"] > 1 and sax["matrix"]
        assert detail.report == reports[row["study_uid"]]
        assert detail.report and detail.impression and detail.impression in detail.report
        assert list(detail.clip_views) == expected_clip_views(row["views"])
        assert detail.clip_file and (studies.home / detail.clip_file).is_file()
        descriptions = {s["description"] for s in detail.series}
        rr_ms = 60_000 / row["measurements"]["heart_rate"]
        for view, (cycle_ms, description) in detail.clip_views.items():
            assert description in descriptions
            if view == "lge":
                assert cycle_ms == DEFAULT_CYCLE_MS
            else:  # one cardiac cycle plays at the patient's own heart rate
                assert cycle_ms == pytest.approx(rr_ms, rel=0.01)


def test_cines_come_in_display_order(studies: SearchEngine, labels: list[dict[str, Any]]) -> None:
    for row in labels[:2]:
        detail = studies.study(row["study_uid"])
        cines = studies.cines(detail)
        views = [c.view for c in cines]
        assert views == list(detail.clip_views)
        assert views == sorted(views, key=CLIP_VIEWS.index) and len(views) >= 5
        for cine in cines:
            cycle_ms, description = detail.clip_views[cine.view]
            assert cine.frames.dtype == np.uint8 and cine.frames.ndim == 3
            assert cine.frame_ms > 0
            assert cine.frame_ms * len(cine.frames) == pytest.approx(cycle_ms)
            assert cine.series_description == description
            assert (len(cine.frames) == 1) == (cine.view == "lge")
            if cine.view == "lge":  # a SAX stack's basal, mid and apical slice side by side
                slices = 3 if "lge_sax" in row["views"] else 1
                assert cine.frames.shape[2] == cine.frames.shape[1] * slices


def test_unknown_studies_are_not_found(studies: SearchEngine) -> None:
    for uid in ("1.2.3.4.5.6.7.8.9", "' OR 1=1 --", ""):
        with pytest.raises(StudyNotFound) as caught:
            studies.study(uid)
        assert isinstance(caught.value, CmrSearchError)
        one_line(caught.value)


def test_a_study_without_series_or_clips(studies: SearchEngine) -> None:
    sessions = session_factory(studies.catalog)
    with transaction(sessions) as session:
        session.add(Study(study_uid="1.2.826.0.1.3680043.99.77"))
    try:
        detail = studies.study("1.2.826.0.1.3680043.99.77")
        assert (detail.series, detail.views, detail.clip_views) == ([], [], {})
        assert (detail.report, detail.impression, detail.clip_file, detail.patient) == (None,) * 4
        assert studies.cines(detail) == []
    finally:
        with transaction(sessions) as session:
            session.execute(delete(Study).where(Study.study_uid == "1.2.826.0.1.3680043.99.77"))


def test_a_missing_clip_file_is_a_clear_error(
    studies: SearchEngine, labels: list[dict[str, Any]]
) -> None:
    detail = studies.study(labels[-1]["study_uid"])
    assert detail.clip_file
    path = studies.home / detail.clip_file
    away = path.with_name(path.name + ".away")
    path.rename(away)
    try:
        with pytest.raises(CmrSearchError, match="cannot be read") as caught:
            studies.cines(detail)
    finally:
        away.rename(path)
    assert not isinstance(caught.value, OSError)
    assert "cmrsearch index" in one_line(caught.value)
    assert len(studies.cines(detail)) == len(detail.clip_views)  # restored, readable again


@pytest.mark.parametrize("keep", [0.5, 0.0])
def test_a_truncated_clip_file_is_a_clear_error(
    studies: SearchEngine, labels: list[dict[str, Any]], keep: float
) -> None:
    detail = studies.study(labels[-1]["study_uid"])
    assert detail.clip_file
    path = studies.home / detail.clip_file
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    try:
        with pytest.raises(CmrSearchError, match="cannot be read") as caught:
            studies.cines(detail)
    finally:
        path.write_bytes(data)
    assert not isinstance(caught.value, OSError)
    one_line(caught.value)


# ---- cine images -------------------------------------------------------------------


def frames_in(image: Image.Image) -> int:
    return int(image.n_frames)  # type: ignore[attr-defined]


def animated(image: Image.Image) -> bool:
    return bool(image.is_animated)  # type: ignore[attr-defined]


def flat_frames(values: list[int], size: int = 12) -> np.ndarray:
    return np.stack([np.full((size, size), v, np.uint8) for v in values])


def test_gif_keeps_every_frame_in_order_at_the_requested_pace() -> None:
    values = [0, 40, 80, 120, 160, 200, 240]
    image = Image.open(io.BytesIO(gif(flat_frames(values), 50, size=40)))
    assert image.format == "GIF" and image.size == (40, 40)
    assert frames_in(image) == len(values) and animated(image)
    assert image.info["loop"] == 0
    for i, value in enumerate(values):
        image.seek(i)
        assert image.info["duration"] == 50
        assert np.unique(np.asarray(image.convert("L"))).tolist() == [value]
    fast = Image.open(io.BytesIO(gif(flat_frames(values), 5, size=16)))
    assert frames_in(fast) == len(values) and fast.info["duration"] == MIN_FRAME_MS


def test_gif_of_one_frame_is_a_still() -> None:
    image = Image.open(io.BytesIO(gif(flat_frames([90]), 1000, size=24)))
    assert image.format == "GIF" and image.size == (24, 24)
    assert frames_in(image) == 1 and not animated(image)
    assert np.unique(np.asarray(image.convert("L"))).tolist() == [90]


def test_gif_cycle_keeps_the_heart_rate() -> None:
    # 16 phases of an 81 bpm cycle (741 ms): 46.3 ms frames are stored as 40 ms, so the
    # cycle plays in 640 ms (94 bpm).
    frames = flat_frames(list(range(0, 160, 10)))
    image = Image.open(io.BytesIO(gif(frames, 740.74 / 16, size=16)))
    total = 0
    for i in range(frames_in(image)):
        image.seek(i)
        total += image.info["duration"]
    assert total == pytest.approx(740.74, abs=10)


def test_png_decodes_to_the_requested_size() -> None:
    frame = np.tile(np.arange(0, 256, 16, dtype=np.uint8), (16, 1))
    image = Image.open(io.BytesIO(png(frame, size=33)))
    assert image.format == "PNG" and image.mode == "L" and image.size == (33, 33)
    pixels = np.asarray(image).astype(int)
    assert pixels[:, 0].mean() < 30 and pixels[:, -1].mean() > 220  # dark left, bright right
    flat = Image.open(io.BytesIO(png(np.full((8, 8), 77, np.uint8), size=20)))
    assert flat.size == (20, 20) and np.unique(np.asarray(flat)).tolist() == [77]


# ---- teaching-file export ----------------------------------------------------------


def export(
    studies: SearchEngine, cases: list[Case], options: ExportOptions | None = None, name: str = "T"
) -> tuple[Exported, zipfile.ZipFile]:
    out = teaching_file(name, cases, studies.study, studies.cines, options)
    archive = zipfile.ZipFile(io.BytesIO(out.data))
    assert archive.testzip() is None
    return out, archive


def case_json(archive: zipfile.ZipFile, root: str, number: int) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(archive.read(f"{root}/case-{number:02d}/case.json"))
    return data


def all_text(archive: zipfile.ZipFile) -> str:
    """Every name in the ZIP and the content of every HTML and JSON file."""
    names = archive.namelist()
    texts = [archive.read(n).decode() for n in names if n.endswith((".html", ".json"))]
    return "\n".join([*names, *texts])


def test_teaching_file_layout_and_animated_cines(
    studies: SearchEngine, labels: list[dict[str, Any]]
) -> None:
    rows = labels[:2]
    out, archive = export(
        studies,
        [Case(r["study_uid"], None) for r in rows],
        ExportOptions(size=48),
        name="Heart failure: 2 cases!",
    )
    root = "heart-failure-2-cases"
    assert (out.cases, out.skipped) == (2, [])
    names = set(archive.namelist())
    assert f"{root}/index.html" in names
    page = archive.read(f"{root}/index.html").decode()
    assert page.startswith("<!doctype html>") and "Heart failure: 2 cases!" in page
    for number, row in enumerate(rows, 1):
        folder = f"case-{number:02d}"
        detail = studies.study(row["study_uid"])
        cines = {c.view: c for c in studies.cines(detail)}
        expected = [f"{folder}/{view}.gif" for view in detail.clip_views]
        assert sorted(n for n in names if n.startswith(f"{root}/{folder}/")) == sorted(
            [f"{root}/{folder}/case.json", *(f"{root}/{f}" for f in expected)]
        )
        for file in expected:
            assert f'src="{file}"' in page
            view = file.rsplit("/", 1)[1].removesuffix(".gif")
            image = Image.open(io.BytesIO(archive.read(f"{root}/{file}")))
            height, width = cines[view].frames.shape[1:]  # LGE: its slices side by side
            assert image.format == "GIF" and image.size == (round(48 * width / height), 48)
            assert frames_in(image) == len(cines[view].frames)
            assert (frames_in(image) > 1) == (view != "lge")
        facts = case_json(archive, root, number)
        assert facts["case"] == number and facts["cines"] == expected
        assert facts["impression"] == detail.impression and facts["note"] is None
        assert facts["sex"] == detail.sex and facts["age"] == f"{detail.age} y"


def test_teaching_file_is_deidentified_by_default(
    studies: SearchEngine, labels: list[dict[str, Any]]
) -> None:
    rows = labels[:3]
    _, archive = export(studies, [Case(r["study_uid"], "classic case") for r in rows])
    everything = all_text(archive)
    for number, row in enumerate(rows, 1):
        detail = studies.study(row["study_uid"])
        for secret in (row["study_uid"], row["accession"], row["patient"], detail.patient):
            assert secret and secret not in everything
        assert row["study_date"] not in everything
        facts = case_json(archive, "t", number)
        assert "date" not in facts and "patient" not in facts
    assert "Date:" not in everything and "Patient:" not in everything


@pytest.mark.parametrize("dates", ["year", "full"])
def test_teaching_file_dates_only_as_far_as_allowed(
    studies: SearchEngine, labels: list[dict[str, Any]], dates: str
) -> None:
    rows = labels[:2]
    _, archive = export(
        studies,
        [Case(r["study_uid"], None) for r in rows],
        ExportOptions(dates=dates),  # type: ignore[arg-type]
    )
    everything = all_text(archive)
    page = archive.read("t/index.html").decode()
    for number, row in enumerate(rows, 1):
        shown = row["study_date"][:4] if dates == "year" else row["study_date"]
        assert case_json(archive, "t", number)["date"] == shown
        assert f"Date: {shown}" in page
        if dates == "year":
            assert row["study_date"] not in everything
        assert row["study_uid"] not in everything and row["accession"] not in everything
    assert "Patient:" not in everything


def test_teaching_file_pseudonyms_on_request(
    studies: SearchEngine, labels: list[dict[str, Any]]
) -> None:
    row = labels[0]
    detail = studies.study(row["study_uid"])
    _, archive = export(studies, [Case(row["study_uid"], None)], ExportOptions(pseudonyms=True))
    assert detail.patient
    assert case_json(archive, "t", 1)["patient"] == detail.patient
    assert f"Patient: {detail.patient}" in archive.read("t/index.html").decode()
    everything = all_text(archive)
    assert row["patient"] not in everything and row["study_uid"] not in everything
    assert row["study_date"] not in everything and row["accession"] not in everything


def test_teaching_file_escapes_notes_and_names(
    studies: SearchEngine, labels: list[dict[str, Any]]
) -> None:
    note = '<script>alert(1)</script> & "quoted"'
    name = "<img src=x onerror=alert(1)>"
    _, archive = export(studies, [Case(labels[0]["study_uid"], note)], name=name)
    root = "img-src-x-onerror-alert-1"
    page = archive.read(f"{root}/index.html").decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quoted&quot;" in page
    assert "<script" not in page.lower() and "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert case_json(archive, root, 1)["note"] == note  # JSON keeps the text as written


def test_teaching_file_reports_cases_that_left_the_catalog(
    studies: SearchEngine, labels: list[dict[str, Any]]
) -> None:
    cases = [
        Case(labels[0]["study_uid"], "kept"),
        Case("1.2.826.0.1.3680043.99.404", "gone"),
        Case(labels[1]["study_uid"], "kept too"),
    ]
    out, archive = export(studies, cases, ExportOptions(size=32))
    assert (out.cases, out.skipped) == (2, [2])
    folders = {n.split("/")[1] for n in archive.namelist() if n.count("/") == 2}
    assert folders == {"case-01", "case-03"}
    assert case_json(archive, "t", 3)["note"] == "kept too"
    page = archive.read("t/index.html").decode()
    assert "Left out (no longer in the archive): case 2." in page
    assert 'id="case-1"' in page and 'id="case-3"' in page and 'id="case-2"' not in page
    assert "1.2.826.0.1.3680043.99.404" not in all_text(archive)


def test_dates_in_free_text_follow_the_export_setting() -> None:
    from ui.export import scrub_dates

    text = (
        "LVEF improved since 03/04/2021; effusion smaller than on 12.11.2020 and "
        "on 5 March 2019 and 2018-07-09 and Feb 2, 2017. LVEF 55%, 3 mm, 1.5 T."
    )
    assert scrub_dates(text, "full") == text
    none = scrub_dates(text, "none")
    assert none.count("[date]") == 5
    assert not any(year in none for year in ("2021", "2020", "2019", "2018", "2017"))
    assert "LVEF 55%, 3 mm, 1.5 T." in none
    year = scrub_dates(text, "year")
    assert all(y in year for y in ("2021", "2020", "2019", "2018", "2017"))
    assert "03/04" not in year and "5 March" not in year


def test_sentence_cache_encodes_each_text_once_and_survives_damage(tmp_path: Path) -> None:
    from search.sentences import SentenceCache

    calls: list[list[str]] = []

    def encode(texts: list[str]) -> np.ndarray:
        calls.append(texts)
        return np.stack([np.full(4, len(t), np.float32) for t in texts])

    path = tmp_path / "cache" / "sentences-v1.npz"
    first = SentenceCache(path, encode, 4).vectors(["a", "bb", "a"])
    assert first[:, 0].tolist() == [1, 2, 1] and calls == [["a", "bb"]]
    again = SentenceCache(path, encode, 4)  # a restart reads the file
    assert again.vectors(["bb", "ccc"])[:, 0].tolist() == [2, 3]
    assert calls[-1] == ["ccc"]
    path.write_bytes(path.read_bytes()[:20])  # truncated: rebuilt, not trusted
    assert SentenceCache(path, encode, 4).vectors(["a"])[:, 0].tolist() == [1]
    assert calls[-1] == ["a"]
    calls.clear()
    wider = SentenceCache(path, lambda t: np.ones((len(t), 8), np.float32), 8)
    assert wider.vectors(["a"]).shape == (1, 8)  # another model's width: not reused
