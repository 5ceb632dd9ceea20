"""`cmrsearch index` on phantom archives and the real localizers: views, clips, privacy,
idempotence, changed studies and kill-and-resume, on SQLite and Postgres."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from catalog.db import make_engine, session_factory
from catalog.models import Clip, IngestError, Patient, Report, Series, Study
from cmrclip.clipfile import load_clips
from cmrsearch.cli import main
from indexer.clips import SAX_LEVELS, level_index, lge_slices
from indexer.headers import Frame
from indexer.series import SeriesGroup
from phantom.archive import SERIES_NUMBER, StudyPlan, generate, plan_archive, render_study
from phantom.case import sample_case
from phantom.geometry import heart_frame
from phantom.heart import build_heart
from phantom.render import sample_acquisition, sax_planes

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-dicom"
EXPECTED_VIEW = {
    number: ("other" if kind in ("localizer", "t1map") else kind)
    for kind, number in SERIES_NUMBER.items()
}


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("archives")
    out = {}
    for style, seed, n in (("internal", 21, 7), ("external", 22, 7)):
        out[style] = root / style
        generate(out[style], n, seed=seed, style=style, workers=2, size="small")
    return out


def labels(archive: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (archive / "labels.jsonl").read_text().splitlines()]


def index(*argv: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["index", *argv, "--workers", "2", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def catalog_state(database_url: str) -> set[tuple[Any, ...]]:
    engine = make_engine(database_url)
    with session_factory(engine)() as s:
        rows = set()
        for study in s.scalars(select(Study)):
            series = tuple(sorted((x.series_uid, x.view, x.frames, x.slices) for x in study.series))
            clips = tuple(sorted((c.view, c.checksum, tuple(c.shape)) for c in study.clips))
            rows.add((study.study_uid, study.fingerprint, series, clips))
    engine.dispose()
    return rows


def test_views_clips_reports_and_privacy(
    cmr_env: Path,
    database_url: str,
    archives: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    reports = cmr_env.parent / "reports.jsonl"
    reports.write_text("".join((a / "reports.jsonl").read_text() for a in archives.values()))
    summary = index(
        str(archives["internal"] / "dicom"),
        str(archives["external"] / "dicom"),
        str(REAL),
        "--reports",
        str(reports),
        capsys=capsys,
    )
    truth = labels(archives["internal"]) + labels(archives["external"])
    assert summary["studies"] == len(truth) + 2  # two real localizer studies
    assert summary["reports_linked"] == len(truth) and summary["reports_unmatched"] == 0
    assert summary["errors_by_type"] == {"not_dicom": 1}  # the README beside the real files

    engine = make_engine(database_url)
    with session_factory(engine)() as s:
        by_uid = {st.study_uid: st for st in s.scalars(select(Study))}
        right = total = 0
        for row in truth:
            study = by_uid[row["study_uid"]]
            for series in study.series:
                total += 1
                right += series.view == EXPECTED_VIEW[series.series_number]
            clip_views = {c.view for c in study.clips}
            expected = {"sax_basal", "sax_mid", "sax_apical"} | (
                {v for v in row["views"] if v in ("2ch", "3ch", "4ch")}
            )
            if "3ch" in row["views"]:
                expected.add("lvot")  # the 3CH again, at the valve plane
            if "lge_sax" in row["views"] or "lge_lax" in row["views"]:
                expected.add("lge")
            assert clip_views == expected
            arrays = load_clips(cmr_env / study.clips[0].path)
            for clip in study.clips:
                assert list(arrays[clip.view].shape) == clip.shape
                frames = 3 if clip.view == "lge" else 16  # LGE: basal, mid, apical slice
                assert clip.shape == [frames, 64, 64]
                assert arrays[clip.view].dtype == np.uint8 and arrays[clip.view].std() > 5
            assert study.report is not None and study.report.impression_found
        assert right / total >= 0.99, f"{right}/{total} series views right"
        # The real scanner localizers: kept, classified 'other', no clip.
        real = [st for uid, st in by_uid.items() if uid not in {r["study_uid"] for r in truth}]
        assert len(real) == 2
        for study in real:
            assert {x.view for x in study.series} == {"other"} and study.clips == []
        # Privacy: pseudonyms only; no name or ID anywhere in the catalog.
        names = [p.pseudo_id for p in s.scalars(select(Patient))]
        assert all(n.startswith("P") and len(n) == 16 for n in names)
        assert s.scalar(select(func.count()).where(Patient.identifier.is_not(None))) == 0
        dump = json.dumps(
            [(st.accession, st.institution, st.description) for st in by_uid.values()]
        )
        for row in truth:
            assert row["patient"] not in dump and row["patient"] not in "".join(names)
    engine.dispose()
    assert "SCD0000101" not in capsys.readouterr().err


def test_reindex_is_idempotent_and_changed_studies_are_updated(
    cmr_env: Path,
    database_url: str,
    archives: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    import shutil

    source = tmp_path / "dicom"
    shutil.copytree(archives["internal"] / "dicom", source)
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    first = index(str(source), capsys=capsys)
    before = catalog_state(database_url)
    again = index(str(source), capsys=capsys)
    assert again["studies_unchanged"] == first["studies"] and again["studies_written"] == 0
    assert catalog_state(database_url) == before

    # Change one study: drop its 2-chamber series (a re-export without it).
    study_dir = sorted(source.glob("*/*"))[0]
    shutil.rmtree(study_dir / "SE03", ignore_errors=True)
    changed = index(str(source), capsys=capsys)
    assert changed["studies_written"] == 1
    after = catalog_state(database_url)
    assert len(after) == len(before) and after != before
    clip_files = sorted((cmr_env / "clips").rglob("*.npz"))
    assert len(clip_files) == first["studies"]  # the superseded clip file is gone


@pytest.mark.slow
def test_killed_runs_resume_to_the_same_catalog(
    cmr_env: Path,
    database_url: str,
    archives: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dicom = archives["external"] / "dicom"
    # Reference: an uninterrupted run in a catalog of its own.
    env = dict(os.environ)
    ref_home = tmp_path / "ref"
    ref_url = f"sqlite:///{tmp_path / 'ref.sqlite'}"
    command = [sys.executable, "-c", "from cmrsearch.cli import main; raise SystemExit(main())"]
    ref_env = {**env, "CMRSEARCH_HOME": str(ref_home), "CMRSEARCH_DATABASE_URL": ref_url}
    subprocess.run([*command, "db", "upgrade"], env=ref_env, check=True, capture_output=True)
    subprocess.run(
        [*command, "index", str(dicom), "--workers", "2"],
        env=ref_env,
        check=True,
        capture_output=True,
    )
    reference = catalog_state(ref_url)

    assert main(["db", "upgrade"]) == 0
    engine = make_engine(database_url)
    for kill_after in (1, 3, 5):  # studies written before SIGKILL
        process = subprocess.Popen(
            [*command, "index", str(dicom), "--workers", "2"],
            env=dict(os.environ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            with session_factory(engine)() as s:
                if (s.scalar(select(func.count()).select_from(Study)) or 0) >= kill_after:
                    break
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)  # the run and its workers, mid-flight
        process.wait()
        with session_factory(engine)() as s:  # whatever is visible is whole
            for study in s.scalars(select(Study)):
                assert study.series and all((cmr_env / c.path).is_file() for c in study.clips)
    engine.dispose()
    capsys.readouterr()
    assert main(["index", str(dicom), "--workers", "2"]) == 0
    assert catalog_state(database_url) == reference
    engine = make_engine(database_url)
    with session_factory(engine)() as s:
        referenced = {str(cmr_env / p) for p in s.scalars(select(Clip.path).distinct())}
        assert s.scalar(select(func.count()).select_from(IngestError)) == 0
        assert s.scalar(select(func.count()).select_from(Series)) > 0
        assert s.scalar(select(func.count()).select_from(Report)) == 0
    engine.dispose()
    on_disk = {str(p) for p in (cmr_env / "clips").rglob("*") if p.is_file()}
    assert on_disk == referenced  # no orphan or temporary clip file left


def test_lge_slices_run_base_to_apex_whatever_the_stored_order() -> None:
    towards_base = np.array([0.0, 0.0, 1.0])

    def stack(heights: list[float]) -> SeriesGroup:
        slices = [[Frame("f", 0, (0.0, 0.0, h), None, k)] for k, h in enumerate(heights)]
        return SeriesGroup("1.2", [], towards_base, slices, False)

    apex_first = stack([0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0])
    assert lge_slices(apex_first, towards_base) == [8, 5, 1]  # highest (basal) first
    assert lge_slices(apex_first, -towards_base) == [2, 5, 9]
    assert lge_slices(apex_first, None) == [5] * 3  # no cine stack: which end is the base?
    assert lge_slices(stack([0.0, 10.0]), towards_base) == [1] * 3  # too few for three


def test_the_apical_slice_cuts_an_apical_thrombus() -> None:
    """The SAX (and LGE) slice the indexer takes as apical passes through the thrombus of
    every simulated thrombus case: the model can only see what its clips hold."""
    rng = np.random.default_rng(0)
    fraction = dict(SAX_LEVELS)["sax_apical"]
    cut, cases = 0, 0
    while cases < 40:
        case = sample_case(rng)
        if not case.lv_thrombus:
            continue
        cases += 1
        heart, frame = build_heart(case, rng), heart_frame(rng)
        planes = sax_planes(frame, heart, sample_acquisition(rng, 70, "default"))
        plane = planes[level_index(fraction, len(planes))]  # the stack runs base to apex
        depth = frame.to_local(plane.position[None])[0][0]  # mm below the mitral plane
        slab = np.linspace(depth - plane.thickness / 2, depth + plane.thickness / 2, 9)
        cut += bool((heart._thrombus(slab, np.zeros_like(slab), 1.0) > 0.5).any())
    assert cut == cases  # 13 of 40 when the apical slice sat at 0.8 of the stack


def test_the_lvot_clip_holds_the_aortic_root_in_its_middle(
    cmr_env: Path, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One study rendered twice, the root 30 then 50 mm wide and all else equal: the
    pixels that change are the root's. On the whole-heart 3CH it lies at the edge; the
    LVOT clip, centred just beyond where the basal SAX slice crosses the 3CH, must hold
    it nearer its middle and over more pixels (finer mm per pixel)."""
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()

    def rendered(plan: StudyPlan, mm: float) -> Path:
        case = replace(plan.case, measurements=replace(plan.case.measurements, aortic_root_mm=mm))
        render_study(replace(plan, case=case), tmp_path / "partial", tmp_path / f"{mm:.0f}")
        return tmp_path / f"{mm:.0f}" / plan.key

    three_ch = f"SE{SERIES_NUMBER['3ch']:02d}"
    plan = next(p for p in plan_archive(8, 5, "internal") if (rendered(p, 30) / three_ch).is_dir())
    clips = {}
    for mm, study in ((30.0, tmp_path / "30" / plan.key), (50.0, rendered(plan, 50))):
        index(str(study), capsys=capsys)
        engine = make_engine(database_url)
        with session_factory(engine)() as s:
            path = s.scalars(select(Clip.path)).first()
        engine.dispose()
        assert path is not None
        clips[mm] = load_clips(cmr_env / path)

    def changed(view: str) -> tuple[int, float]:
        """(pixels the wider root changes, their mean distance from the middle / width)."""
        diff = np.abs(clips[50.0][view].astype(float) - clips[30.0][view]).mean(axis=0)
        rows, cols = np.nonzero(diff > 25)
        size = diff.shape[0]
        return len(rows), float(np.hypot(rows - size / 2, cols - size / 2).mean() / size)

    lvot_pixels, lvot_off = changed("lvot")
    whole_pixels, whole_off = changed("3ch")
    assert lvot_pixels >= 3 * whole_pixels > 0  # 392 against 61 when written
    assert lvot_off <= 0.75 * whole_off  # 0.28 against 0.42 of the clip's width
