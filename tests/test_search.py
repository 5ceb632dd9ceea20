"""The search engine on a small indexed phantom archive, on SQLite and Postgres.

The checkpoint is an untrained model saved by the real checkpoint code: these tests
check the engine's mechanics (consistency with the catalog, filters, pagination,
deletion, threads, bad input); what a trained model retrieves is measured by
`cmrsearch evaluate`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import BACKENDS, fresh_database, index_phantom, point_at, untrained_checkpoint
from sqlalchemy import func, select

from catalog.db import make_engine, session_factory, transaction
from catalog.models import Embedding, ModelVersion, Study
from cmrclip.metrics import zero_shot_scores
from cmrclip.prompts import PROMPTS
from cmrsearch.cli import main
from phantom.archive import generate
from search.embed import STUDY
from search.engine import SearchEngine, SearchError
from search.filters import FilterError, parse_filters
from search.store import index_path


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("search") / "archive"
    generate(out, 12, seed=41, style="external", workers=2, size="small")
    return out


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return untrained_checkpoint(tmp_path_factory.mktemp("ckpt") / "model")


@pytest.fixture(scope="module", params=BACKENDS)
def searchable(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    archive: Path,
    checkpoint: Path,
) -> Iterator[SearchEngine]:
    """One indexed, embedded catalog per backend, shared by this module's tests (the
    tests that delete or corrupt come last)."""
    folder = tmp_path_factory.mktemp("catalog")
    with fresh_database(request.param, folder) as url, pytest.MonkeyPatch.context() as mp:
        home = point_at(mp, folder / "home", url)
        assert main(["db", "upgrade"]) == 0
        index_phantom(archive)
        assert main(["embed", "--model", str(checkpoint)]) == 0
        engine = make_engine(url)
        yield SearchEngine(engine, home, checkpoint)
        engine.dispose()


@pytest.fixture
def cmr_home(searchable: SearchEngine, monkeypatch: pytest.MonkeyPatch) -> Path:
    """CMRSEARCH_* pointed at the shared catalog, for CLI calls."""
    return point_at(
        monkeypatch, searchable.home, searchable.catalog.url.render_as_string(hide_password=False)
    )


def labels(archive: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in (archive / "labels.jsonl").read_text().splitlines()]


def test_embed_is_incremental(
    searchable: SearchEngine, checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["embed", "--model", str(checkpoint), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["studies_embedded"] == 0 and again["index"]["vectors"] == 12


def test_results_are_ranked_paginated_and_complete(searchable: SearchEngine) -> None:
    full = searchable.search("dilated left ventricle with reduced function", k=12)
    assert len(full.hits) == 12
    scores = [h.score for h in full.hits]
    assert scores == sorted(scores, reverse=True)
    page = searchable.search("dilated left ventricle with reduced function", k=4, offset=4)
    assert [h.study_uid for h in page.hits] == [h.study_uid for h in full.hits[4:8]]
    hit = full.hits[0]
    assert hit.patient and hit.patient.startswith("P") and hit.views and hit.impression
    assert hit.best_sentence and hit.best_sentence in hit.impression
    assert set(full.seconds) >= {"encode", "ann", "catalog"}
    assert isinstance(full.confident, bool) and -1 <= full.floor <= 1
    # each score is the cosine of the study vector with the model's text embedding
    text = searchable.model.encode_text(["dilated left ventricle with reduced function"])[0]
    with session_factory(searchable.catalog)() as session:
        rows = session.execute(
            select(Study.study_uid, Embedding.vector)
            .join(Embedding, Embedding.study_id == Study.id)
            .where(Embedding.view == "study", Embedding.model_version_id == searchable.version)
        )
        stored = {uid: vector for uid, vector in rows}
    for h in full.hits:
        assert h.score == pytest.approx(
            float(np.frombuffer(stored[h.study_uid], "<f4") @ text), abs=1e-3
        )


def test_filters_restrict_without_starving(searchable: SearchEngine, archive: Path) -> None:
    rows = labels(archive)
    vendor = str(rows[0]["vendor"])
    name = {"siemens": "SIEMENS", "ge": "GE", "philips": "Philips"}[vendor]
    expected = sum(1 for r in rows if r["vendor"] == vendor)
    result = searchable.search(
        "normal heart", k=12, filters=parse_filters([f"manufacturer={name.lower()}"])
    )
    assert len(result.hits) == expected
    assert all(name.lower() in (h.manufacturer or "").lower() for h in result.hits)
    lge = searchable.search("scar", k=12, filters=parse_filters(["has_lge=false"]))
    assert all("lge_sax" not in h.views and "lge_lax" not in h.views for h in lge.hits)
    assert len(lge.hits) == sum(1 for r in rows if not {"lge_sax", "lge_lax"} & set(r["views"]))  # type: ignore[arg-type]
    one = searchable.search(
        "heart",
        k=5,
        filters=parse_filters([f"patient={searchable.search('heart', k=1).hits[0].patient}"]),
    )
    assert {h.patient for h in one.hits} == {one.hits[0].patient}
    dates = searchable.search(
        "heart", k=12, filters=parse_filters(["date_from=2000-01-01", "date_to=2001-01-01"])
    )
    assert dates.hits == []


def test_off_topic_queries_say_no_confident_match(searchable: SearchEngine) -> None:
    # Calibrated on the archive's own reports, in the text encoder's sentence space.
    assert not searchable.search("weather forecast for the weekend", k=3).confident
    assert (
        searchable.search("recipe for apple pie", k=3).as_dict()["message"] == "no confident match"
    )
    assert searchable.search("pericardial effusion", k=3).confident


def test_bad_filters_and_injection_are_harmless(searchable: SearchEngine) -> None:
    with pytest.raises(FilterError, match="unknown filter"):
        parse_filters(["colour=red"])
    with pytest.raises(FilterError, match="YYYY-MM-DD"):
        parse_filters(["date_from=yesterday"])
    with pytest.raises(FilterError, match="use M, F or O"):
        parse_filters(["sex=x"])
    evil = "'; DROP TABLE study; --"
    result = searchable.search(evil, k=3, filters=parse_filters([f"institution={evil}"]))
    assert result.hits == []
    with session_factory(searchable.catalog)() as s:
        assert s.scalar(select(func.count()).select_from(Study)) == 12


def test_bad_queries_get_clear_errors(searchable: SearchEngine) -> None:
    with pytest.raises(SearchError, match="empty"):
        searchable.search("   ")
    with pytest.raises(SearchError, match="characters long"):
        searchable.search("a" * 1_000_000)
    with pytest.raises(SearchError, match="out of range"):
        searchable.search("heart", k=1_000_000)
    with pytest.raises(SearchError, match="no study with UID"):
        searchable.similar("1.2.3.4.5")


def test_similar_excludes_the_study_and_optionally_its_patient(
    searchable: SearchEngine, archive: Path
) -> None:
    rows = labels(archive)
    uid = str(rows[0]["study_uid"])
    result = searchable.similar(uid, k=11)
    assert uid not in [h.study_uid for h in result.hits] and len(result.hits) == 11
    patient = searchable.search("heart", k=12)
    mine = next(h.patient for h in patient.hits if h.study_uid == uid)
    others = searchable.similar(uid, k=11, exclude_same_patient=True)
    assert mine not in {h.patient for h in others.hits}


def test_classify_gives_every_finding_a_probability(
    searchable: SearchEngine, archive: Path
) -> None:
    result = searchable.classify(str(labels(archive)[0]["study_uid"]))
    assert len(result) == 14
    assert all(0.0 <= v["probability"] <= 1.0 for v in result.values())


def test_classify_scores_with_the_prompts_evaluation_kept(
    searchable: SearchEngine, archive: Path
) -> None:
    uid = str(labels(archive)[0]["study_uid"])
    before = searchable.classify(uid)
    with searchable.sessions() as session:
        vector = session.scalars(
            select(Embedding.vector)
            .join(Study, Study.id == Embedding.study_id)
            .where(Study.study_uid == uid, Embedding.view == STUDY)
        ).one()
        version = session.get(ModelVersion, searchable.version)
        assert version is not None
        saved = version.metrics
    study = np.frombuffer(vector, "<f4")[None, :]
    encode = searchable.model.encode_text
    positive, negative = PROMPTS["lv_dilation"]
    every = zero_shot_scores(study, encode(list(positive)), encode(list(negative)))[0]
    # The one pair of prompts whose score differs most from all of them (an untrained
    # tower puts the prompts close together).
    gap, i, j = max(
        (abs(zero_shot_scores(study, encode([p]), encode([n]))[0] - every), i, j)
        for i, p in enumerate(positive)
        for j, n in enumerate(negative)
    )
    checked = zero_shot_scores(study, encode([positive[i]]), encode([negative[j]]))[0]
    kept = {"lv_dilation": {"positive": [positive[i]], "negative": [negative[j]]}}
    with transaction(searchable.sessions) as session:
        session.get(ModelVersion, searchable.version).metrics = {  # type: ignore[union-attr]
            **(saved or {}),
            "evaluation": {"thresholds": {}, "prompts": kept},
        }
    try:
        after = searchable.classify(uid)
    finally:
        with transaction(searchable.sessions) as session:
            session.get(ModelVersion, searchable.version).metrics = saved  # type: ignore[union-attr]
    assert before["lv_dilation"]["score"] == pytest.approx(every, abs=1e-4)
    assert after["lv_dilation"]["score"] == pytest.approx(checked, abs=1e-4)
    assert gap > 1e-3  # more than classify's rounding to 4 decimals
    assert after["lv_hypertrophy"] == before["lv_hypertrophy"]  # not checked: every prompt


def test_cohort_exports_csv(
    searchable: SearchEngine, tmp_path: Path, checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cohort.csv"
    code = main(
        [
            "cohort",
            "pericardial effusion",
            "--top",
            "5",
            "--out",
            str(out),
            "--model",
            str(checkpoint),
            "--json",
        ]
    )
    assert code == 0 and json.loads(capsys.readouterr().out)["studies"] == 5
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 5 and set(rows[0]) == {
        "study_uid",
        "accession",
        "patient",
        "study_date",
        "score",
        "matched_sentence",
    }
    assert all(not r["matched_sentence"].startswith(("=", "+", "-", "@")) for r in rows)


def test_concurrent_queries_match_serial_ones(searchable: SearchEngine) -> None:
    queries = ["dilated", "normal heart", "scar", "effusion"] * 4
    serial = [[h.study_uid for h in searchable.search(q, k=5).hits] for q in queries]
    with ThreadPoolExecutor(8) as pool:
        parallel = list(
            pool.map(lambda q: [h.study_uid for h in searchable.search(q, k=5).hits], queries)
        )
    assert parallel == serial


def test_cli_search_json_and_errors(
    searchable: SearchEngine, checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert (
        main(
            [
                "search",
                "apical aneurysm",
                "--k",
                "3",
                "--model",
                str(checkpoint),
                "--filter",
                "has_lge=true",
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert len(result["hits"]) <= 3 and "seconds" in result
    assert main(["search", "heart", "--model", str(checkpoint), "--filter", "nope=1"]) == 1
    err = capsys.readouterr().err
    assert "unknown filter" in err and "Traceback" not in err


def test_corrupt_index_file_is_rebuilt_from_the_catalog(
    searchable: SearchEngine, cmr_env: Path
) -> None:
    before = [h.study_uid for h in searchable.search("heart", k=12).hits]
    path = index_path(searchable.home, searchable.version, "study")
    assert path.is_file()
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # truncated
    searchable.refresh()
    assert [h.study_uid for h in searchable.search("heart", k=12).hits] == before


def test_deleted_study_is_never_returned(searchable: SearchEngine) -> None:
    victim = searchable.search("heart", k=1).hits[0].study_uid
    with transaction(session_factory(searchable.catalog)) as s:
        s.delete(s.scalars(select(Study).where(Study.study_uid == victim)).one())
    searchable.refresh()
    result = searchable.search("heart", k=12)
    assert victim not in [h.study_uid for h in result.hits] and len(result.hits) == 11
    assert searchable.index() is not None and searchable.index().ntotal == 11  # type: ignore[union-attr]
