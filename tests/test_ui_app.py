"""The Streamlit pages, run by Streamlit's AppTest against a real indexed, embedded
phantom catalog (SQLite and Postgres) and a real checkpoint: login, search, filters,
pagination, study page, collections, cohorts, audit rows and bad input."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import streamlit as st
from conftest import BACKENDS, fresh_database, index_phantom, point_at, untrained_checkpoint
from sqlalchemy import Engine, select, text
from streamlit.testing.v1 import AppTest

from catalog.db import make_engine, session_factory, transaction
from catalog.models import AuditEvent, Collection, ModelVersion, Report, Study
from cmrsearch.accounts import add_user
from cmrsearch.cli import main
from phantom.archive import generate
from ui.cine import SHORT_LABELS

APP = str(Path(__file__).resolve().parents[1] / "ui" / "app.py")
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """A phantom archive and an (untrained) checkpoint saved by the real code."""
    root = tmp_path_factory.mktemp("ui")
    generate(root / "archive", 12, seed=7, style="internal", workers=2, size="small")
    untrained_checkpoint(root / "model")
    yield root / "archive", root / "model"


@pytest.fixture(scope="module", params=BACKENDS)
def catalog(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    site: tuple[Path, Path],
) -> Iterator[tuple[str, Path]]:
    archive, model = site
    folder = tmp_path_factory.mktemp("catalog")
    with fresh_database(request.param, folder) as url, pytest.MonkeyPatch.context() as mp:
        point_at(mp, folder / "home", url)
        assert main(["db", "upgrade"]) == 0
        index_phantom(archive)
        assert main(["embed", "--model", str(model)]) == 0
        yield url, folder / "home"


@pytest.fixture
def db(catalog: tuple[str, Path]) -> Iterator[Engine]:
    engine = make_engine(catalog[0])
    yield engine
    engine.dispose()


def configure(mp: pytest.MonkeyPatch, catalog: tuple[str, Path], model: Path, **extra: str) -> None:
    url, home = catalog
    point_at(mp, home, url)
    mp.setenv("CMRSEARCH_MODEL", str(model))
    for key, value in extra.items():
        mp.setenv(f"CMRSEARCH_{key.upper()}", value)
    # Resources are cached per process: each test starts from its own settings.
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture
def app(
    monkeypatch: pytest.MonkeyPatch, catalog: tuple[str, Path], site: tuple[Path, Path]
) -> AppTest:
    configure(monkeypatch, catalog, site[1], open_access="true")
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def events(engine: Engine, action: str) -> list[AuditEvent]:
    with session_factory(engine)() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def texts(at: AppTest) -> str:
    parts = [e.value for e in at.markdown] + [e.value for e in at.caption]
    parts += [str(e.proto.body) for e in at.get("html")]
    for kind in (at.error, at.warning, at.info):
        parts += [e.value for e in kind]
    return "\n".join(str(p) for p in parts)


def search(at: AppTest, query: str) -> AppTest:
    at.text_input(key="query").input(query).run()
    assert not at.exception, at.exception
    return at


def result_studies(at: AppTest) -> list[str]:
    return _hit_uids(at)


# ---- access ---------------------------------------------------------------------------
def sign_in_page(
    monkeypatch: pytest.MonkeyPatch,
    catalog: tuple[str, Path],
    site: tuple[Path, Path],
    tmp_path: Path,
    user: str,
) -> AppTest:
    """The app with one account, ``user``, configured: it opens on the sign-in form."""
    users = tmp_path / "users"
    add_user(users, user, PASSWORD)
    configure(monkeypatch, catalog, site[1], users_file=str(users))
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.text_input(key="login_name").input(user)
    return at


def test_login_is_required_when_accounts_exist(
    monkeypatch: pytest.MonkeyPatch,
    catalog: tuple[str, Path],
    site: tuple[Path, Path],
    db: Engine,
    tmp_path: Path,
) -> None:
    at = sign_in_page(monkeypatch, catalog, site, tmp_path, "dr.lee")
    assert [b.label for b in at.button] == ["Sign in"]
    assert "query" not in [t.key for t in at.text_input]  # no search before signing in
    at.text_input(key="login_password").input("wrong password!")
    at.button[0].click().run()
    assert "Wrong user name or password." in texts(at)
    assert "user" not in at.session_state
    assert [e.user for e in events(db, "login_failed")][-1:] == ["dr.lee"]
    at.text_input(key="login_password").input(PASSWORD)
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert at.session_state["user"] == "dr.lee"
    assert any(e.user == "dr.lee" for e in events(db, "login"))
    assert "Search the archive" in [t.value for t in at.title]


def test_repeated_wrong_passwords_lock_the_account_for_a_while(
    monkeypatch: pytest.MonkeyPatch,
    catalog: tuple[str, Path],
    site: tuple[Path, Path],
    db: Engine,
    tmp_path: Path,
) -> None:
    from ui.login import MAX_FAILURES

    at = sign_in_page(monkeypatch, catalog, site, tmp_path, "dr.guess")
    for attempt in range(MAX_FAILURES):
        at.text_input(key="login_password").input(f"guess number {attempt}")
        at.button[0].click().run()
        assert "Wrong user name or password." in texts(at)
    at.text_input(key="login_password").input(PASSWORD)  # right, but too late
    at.button[0].click().run()
    assert any("Too many failed sign-ins" in e.value for e in at.error)
    assert "user" not in at.session_state
    assert [e.user for e in events(db, "login_locked")][-1:] == ["dr.guess"]
    with transaction(session_factory(db)) as session:  # the window passes
        for event in session.scalars(select(AuditEvent).where(AuditEvent.user == "dr.guess")):
            event.created_at = event.created_at - timedelta(hours=1)
    at.button[0].click().run()
    assert at.session_state["user"] == "dr.guess"


def test_no_accounts_and_no_open_access_means_no_access(
    monkeypatch: pytest.MonkeyPatch,
    catalog: tuple[str, Path],
    site: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    configure(monkeypatch, catalog, site[1], users_file=str(tmp_path / "absent"))
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert "cmrsearch user add" in texts(at)
    assert not at.text_input


# ---- search ---------------------------------------------------------------------------
def test_empty_page_shows_examples_and_an_example_searches(app: AppTest, db: Engine) -> None:
    examples = [b for b in app.button if b.key and b.key.startswith("example_")]
    assert len(examples) >= 3
    examples[0].click().run()
    assert not app.exception, app.exception
    assert app.session_state["query"] == examples[0].label
    assert len(result_studies(app)) == 10
    assert len(app.get("image")) == 10  # one playing cine per card
    audit = events(db, "search")
    assert audit and audit[-1].details["query"] == examples[0].label
    assert audit[-1].user == "local-demo"


def test_results_carry_scores_impressions_and_views(app: AppTest, db: Engine) -> None:
    search(app, "dilated left ventricle with impaired function")
    body = texts(app)
    assert body.count("score") >= 10
    assert "<mark>" in body  # the best-matching sentence is highlighted
    pills = list(app.get("button_group"))
    assert pills, "each card offers its other views"
    searches = len(events(db, "search"))
    other = next(
        view
        for view, shown in SHORT_LABELS.items()
        if shown in pills[0].options and view != pills[0].value
    )
    pills[0].set_value(other).run()  # show another view of the first card
    assert not app.exception, app.exception
    assert len(events(db, "search")) == searches  # a click is not a new query


def test_pagination_moves_through_distinct_results(app: AppTest) -> None:
    search(app, "normal study")
    first = {h for h in _hit_uids(app)}
    app.button(key="next_page").click().run()
    assert not app.exception, app.exception
    second = {h for h in _hit_uids(app)}
    assert "Page 2" in texts(app)
    assert first and second and not first & second
    assert len(first | second) == 12  # the whole archive over two pages


def _hit_uids(at: AppTest) -> list[str]:
    """The studies on the page, in order (each card's "Open study" key names its study)."""
    return [b.key.split("_open_", 1)[1] for b in at.button if b.key and "_open_" in b.key]


def test_filters_restrict_results(app: AppTest, db: Engine) -> None:
    with session_factory(db)() as session:
        sexes = {s.study_uid: s.patient_sex for s in session.scalars(select(Study))}
    wanted = next(iter(sorted(set(sexes.values()))))
    app.sidebar.selectbox(key="search_sex").select(wanted).run()
    search(app, "left ventricle")
    shown = _hit_uids(app)
    assert shown
    assert len(shown) == min(10, sum(1 for s in sexes.values() if s == wanted))


def test_off_topic_query_says_no_confident_match(app: AppTest) -> None:
    search(app, "recipe for tomato soup")
    assert any("No confident match" in w.value for w in app.warning)
    assert not result_studies(app)


def test_report_markup_is_shown_as_text(app: AppTest, db: Engine) -> None:
    hostile = " <script>alert('x')</script> [link](http://evil.example) **loud**"
    with transaction(session_factory(db)) as session:
        report = session.scalars(select(Report).where(Report.study_id.is_not(None))).first()
        assert report is not None and report.study is not None
        saved, uid = report.impression, report.study.study_uid
        pseudonym = report.study.patient.pseudo_id  # type: ignore[union-attr]
        report.impression = saved + hostile
        report.text = report.text + hostile
    try:
        app.sidebar.text_input(key="search_patient").input(pseudonym)
        search(app, "left ventricular function")
        assert uid in _hit_uids(app)
        bodies = [str(e.proto.body) for e in app.get("html")]
        assert any("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in b for b in bodies)
        assert not any("<script>" in b for b in bodies)
        assert not any("evil.example" in m.value for m in app.markdown)
        app.button(key=next(b.key for b in app.button if b.key and b.key.endswith(uid))).click()
        app.run()
        assert app.session_state["page"] == "Study"
        assert any(hostile.strip() in t.value for t in app.text)  # plain text, not markup
        assert not any("evil.example" in m.value for m in app.markdown)
    finally:
        with transaction(session_factory(db)) as session:
            back = session.get(Report, report.id)
            assert back is not None
            back.impression, back.text = saved, back.text.replace(hostile, "")


def test_a_failed_audit_write_refuses_the_search(app: AppTest, db: Engine) -> None:
    with db.begin() as conn:
        conn.execute(text("ALTER TABLE audit_event RENAME TO audit_event_away"))
    try:
        search(app, "pericardial effusion")
        assert any("audit log could not be written" in e.value for e in app.error)
        assert not result_studies(app)
    finally:
        with db.begin() as conn:
            conn.execute(text("ALTER TABLE audit_event_away RENAME TO audit_event"))


# ---- study, collections, cohorts, status -----------------------------------------------
def open_study(at: AppTest, uid: str) -> AppTest:
    at.session_state["page"] = "Study"
    at.session_state["study_uid"] = uid
    at.run()
    assert not at.exception, at.exception
    return at


def test_study_page_plays_cines_and_adds_to_a_new_collection(app: AppTest, db: Engine) -> None:
    search(app, "severe concentric left ventricular hypertrophy")
    uid = _hit_uids(app)[0]
    open_key = next(b.key for b in app.button if b.key and b.key.endswith(f"_open_{uid}"))
    app.button(key=open_key).click().run()
    assert not app.exception, app.exception
    assert app.session_state["page"] == "Study"
    assert any(e.details.get("study_uid") == uid for e in events(db, "view_study"))
    assert next(t.label for t in app.tabs) == "SAX"
    assert app.radio(key="slice_SAX").value == "sax_mid"
    assert len(app.get("image")) == len(app.tabs)  # every tab holds a cine
    # pause: a frame slider replaces the loop
    app.toggle(key="play_sax_mid").set_value(False).run()
    assert app.slider(key="frame_sax_mid").max == 16
    app.selectbox(key="add_target").select("New collection…")
    app.text_input(key="add_new_name").input("Teaching: hypertrophy")
    app.text_area(key="add_note").input("Look at the septum <b>here</b>")
    next(b for b in app.button if b.label == "Add to collection").click().run()
    assert not app.exception, app.exception
    with session_factory(db)() as session:
        collection = session.scalars(
            select(Collection).where(Collection.name == "Teaching: hypertrophy")
        ).one()
        assert [i.study.study_uid for i in collection.items] == [uid]
        assert collection.items[0].note == "Look at the septum <b>here</b>"
        session.delete(collection)
        session.commit()


def test_collections_page_refuses_a_name_with_a_path_separator(app: AppTest, db: Engine) -> None:
    app.sidebar.radio(key="page").set_value("Collections").run()
    app.text_input(key="new_collection_name").input("../../etc/passwd")
    next(b for b in app.button if b.label == "Create").click().run()
    assert any("cannot contain" in e.value for e in app.error)
    with session_factory(db)() as session:
        assert session.scalars(select(Collection)).all() == []
    # a name that is Markdown: created as text, and quoted as text in the error it causes
    hostile = "[see](javascript:alert(1))"
    for _ in range(2):
        app.text_input(key="new_collection_name").input(hostile)
        next(b for b in app.button if b.label == "Create").click().run()
    shown = [e.value for e in app.error] + [s.value for s in app.success]
    assert any("exists already" in e for e in shown)
    assert not any("[see](" in e for e in shown)  # every bracket escaped
    with transaction(session_factory(db)) as session:
        session.delete(session.scalars(select(Collection)).one())


def test_collection_reorder_note_export_and_remove(app: AppTest, db: Engine) -> None:
    from catalog import collections

    sessions = session_factory(db)
    with sessions() as session:
        uids = [s.study_uid for s in session.scalars(select(Study).order_by(Study.id).limit(3))]
    target = collections.create(sessions, "Cardiomyopathies", owner="local-demo")
    for uid in uids:
        collections.add(sessions, target, uid, note=f"note for {uid[-6:]}")
    try:
        app.sidebar.radio(key="page").set_value("Collections").run()
        assert not app.exception, app.exception
        app.button(key=f"down_{uids[0]}").click().run()
        with sessions() as session:
            order = [i.study.study_uid for i in collections.get(session, target).items]
        assert order == [uids[1], uids[0], uids[2]]
        app.button(key=f"remove_{uids[2]}").click().run()
        app.radio(key="export_dates").set_value("year")
        app.button(key="prepare_export").click().run()
        assert not app.exception, app.exception
        _, exported = app.session_state["export"]
        assert exported.cases == 2 and exported.skipped == []
        with zipfile.ZipFile(__import__("io").BytesIO(exported.data)) as archive:
            names = archive.namelist()
            page = archive.read("cardiomyopathies/index.html").decode()
        assert any(n.endswith("case-01/sax_mid.gif") for n in names)
        assert uids[0] not in page and f"note for {uids[0][-6:]}" in page
        audit = events(db, "export_collection")
        assert audit and audit[-1].details["collection"] == target
    finally:
        collections.delete(sessions, target)


def test_cohort_page_counts_charts_and_exports(app: AppTest, db: Engine) -> None:
    app.sidebar.radio(key="page").set_value("Cohorts").run()
    app.text_input(key="cohort_text").input("dilated cardiomyopathy")
    app.slider(key="cohort_min_score").set_value(-1.0)
    app.button(key="cohort_run").click().run()
    assert not app.exception, app.exception
    assert app.metric[0].value == "12"
    text_, hits = app.session_state["cohort"]
    assert text_ == "dilated cardiomyopathy" and len(hits) == 12
    assert len(app.get("arrow_vega_lite_chart")) + len(app.get("vega_lite_chart")) >= 2
    assert events(db, "cohort")[-1].details["query"] == "dilated cardiomyopathy"


def test_cohort_without_text_or_findings_asks_for_one(app: AppTest) -> None:
    app.sidebar.radio(key="page").set_value("Cohorts").run()
    app.button(key="cohort_run").click().run()
    assert any("Type a description" in e.value for e in app.error)


def test_archive_status_page(app: AppTest) -> None:
    app.sidebar.radio(key="page").set_value("Archive").run()
    assert not app.exception, app.exception
    values = {m.label: m.value for m in app.metric}
    assert values["Studies"] == "12"
    assert "flat index, 12 study vectors" in texts(app)


def test_archive_status_page_gives_the_mean_auc_with_its_interval(app: AppTest, db: Engine) -> None:
    evaluation = {
        "mean_auc": {"internal": 0.908, "external": 0.89},
        "mean_auc_95ci": {"internal": [0.891, 0.925], "external": [0.862, 0.917]},
        "zero_shot": {"lv_dilation": {"internal": {"auc": 0.99}, "external": {"auc": 0.98}}},
    }
    with transaction(session_factory(db)) as session:
        version = session.scalars(select(ModelVersion)).one()
        saved = version.metrics
        version.metrics = {**(saved or {}), "evaluation": evaluation}
    try:
        app.sidebar.radio(key="page").set_value("Archive").run()
        assert not app.exception, app.exception
        shown = texts(app)
        assert "internal **0.908** (95% CI 0.891-0.925)" in shown
        assert "external **0.890** (95% CI 0.862-0.917)" in shown
    finally:
        with transaction(session_factory(db)) as session:
            session.scalars(select(ModelVersion)).one().metrics = saved


def test_a_database_that_goes_away_gives_a_message_not_a_traceback(
    app: AppTest, db: Engine
) -> None:
    with db.begin() as conn:
        conn.execute(text("ALTER TABLE study RENAME TO study_away"))
    try:
        app.sidebar.radio(key="page").set_value("Archive").run()
        assert not app.exception, app.exception
        assert any("not answering" in e.value for e in app.error)
    finally:
        with db.begin() as conn:
            conn.execute(text("ALTER TABLE study_away RENAME TO study"))


def test_finding_chips_only_for_findings_validated_on_held_out_patients(
    app: AppTest, db: Engine
) -> None:
    search(app, "dilated left ventricle with impaired function")
    assert not any("badge" in m.value for m in app.markdown)  # not evaluated: no chips
    evaluation = {
        "thresholds": {"lv_dilation": -10.0, "lge_ischemic": -10.0},
        "zero_shot": {
            "lv_dilation": {"internal": {"auc": 0.91}, "external": {"auc": 0.88}},
            "lge_ischemic": {"internal": {"auc": 0.93}, "external": {"auc": 0.61}},
        },
    }
    with transaction(session_factory(db)) as session:
        version = session.scalars(select(ModelVersion)).one()
        saved = version.metrics
        version.metrics = {**(saved or {}), "evaluation": evaluation}
    try:
        search(app, "dilated left ventricle with severely impaired function")
        badges = [m.value for m in app.markdown if "badge" in m.value]
        assert len(badges) == len(_hit_uids(app))
        assert all("LV dilation 100%" in b and "LGE ischemic" not in b for b in badges)
    finally:
        with transaction(session_factory(db)) as session:
            session.scalars(select(ModelVersion)).one().metrics = saved
