"""Generate a synthetic CMR archive: DICOM studies, reports and ground truth.

Layout::

    OUT/dicom/<patient>/<study>/<series>/IM00001.dcm
    OUT/reports.jsonl   {"accession", "study_uid", "text"} per study
    OUT/labels.jsonl    truth per study (training never reads it)
    OUT/phantom.json    how the archive was made; written last

Everything is planned up front from the seed (cheap, deterministic), then studies
are rendered in parallel. A study is written under ``OUT/.partial`` and renamed
into ``OUT/dicom`` only when complete, so an interrupted run never leaves a
half-written study that looks complete.
"""

from __future__ import annotations

import json
import os
import shutil
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.uid import generate_uid

from cmrsearch.errors import CmrSearchError
from phantom.case import Case, follow_up, sample_case
from phantom.dicom_writer import (
    UNINFORMATIVE,
    VENDORS,
    SeriesSpec,
    StudyHeader,
    series_times,
    write_series,
)
from phantom.geometry import heart_frame
from phantom.heart import build_heart
from phantom.render import (
    Acquisition,
    Renderer,
    localizer_planes,
    long_axis_plane,
    sample_acquisition,
    sax_planes,
)
from phantom.reports import write_report
from phantom.thorax import sample_thorax

STYLES = ("internal", "external")
SIZES = ("small", "default", "large")
INSTITUTIONS = {
    "internal": "Lakeside University Hospital",
    "external": "Clinique Cardiologique du Littoral",
}
VENDOR_MIX = {
    "internal": {"siemens": 0.7, "ge": 0.3},
    "external": {"philips": 0.6, "ge": 0.25, "siemens": 0.15},
}
FAMILY = (
    "Lind",
    "Okafor",
    "Marsh",
    "Vidal",
    "Brandt",
    "Kowalski",
    "Ferreira",
    "Nakamura",
    "Hale",
    "Duval",
    "Moreau",
    "Quist",
    "Ibarra",
    "Renner",
    "Castell",
    "Oduya",
)
GIVEN = {
    "M": ("Arne", "Tomas", "Felix", "Jonah", "Milan", "Rafael", "Omar", "Henrik"),
    "F": ("Ines", "Mara", "Lotte", "Ada", "Noor", "Clara", "Yara", "Sofia"),
}


class PhantomError(CmrSearchError):
    """The phantom cannot be generated as asked."""


@dataclass(frozen=True)
class StudyPlan:
    patient: str  # folder name and synthetic patient ID
    index: int  # study number within the patient (1 = first)
    case: Case
    prior: Case | None
    prior_date: date | None
    study_date: date
    birth_date: date
    style: str
    vendor: str
    size: str
    seed: int

    @property
    def key(self) -> str:
        return f"{self.patient}/S{self.index}"


def plan_archive(studies: int, seed: int, style: str, size: str = "default") -> list[StudyPlan]:
    """Patients (some with follow-up studies whose findings evolve) up to ``studies``."""
    rng = np.random.default_rng([seed, 0])
    plans: list[StudyPlan] = []
    patient_no = 0
    prefix = "LUH" if style == "internal" else "CCL"
    while len(plans) < studies:
        patient_no += 1
        patient = f"{prefix}{seed % 1000:03d}{patient_no:05d}"
        visits = int(rng.choice([1, 2, 3], p=[0.75, 0.18, 0.07]))
        case: Case | None = None
        when = date(2014, 1, 1) + timedelta(days=int(rng.integers(0, 365 * 8)))
        birth: date | None = None
        prior_case: Case | None = None
        prior_date: date | None = None
        for visit in range(1, visits + 1):
            if len(plans) >= studies:
                break
            if case is None:
                case = sample_case(rng)
                birth = when - timedelta(days=int(365.25 * case.age + rng.integers(0, 365)))
            else:
                years = float(rng.uniform(0.5, 3.0))
                prior_case, prior_date = case, when
                when = when + timedelta(days=int(365 * years))
                case = follow_up(rng, case, years)
            vendor = str(rng.choice(list(VENDOR_MIX[style]), p=list(VENDOR_MIX[style].values())))
            assert birth is not None
            plans.append(
                StudyPlan(
                    patient,
                    visit,
                    case,
                    prior_case,
                    prior_date,
                    when,
                    birth,
                    style,
                    vendor,
                    size,
                    int(rng.integers(1 << 31)),
                )
            )
    return plans


def _views_present(rng: np.random.Generator, case: Case) -> list[str]:
    """Real studies miss views sometimes and carry non-cine extras."""
    if rng.random() < 0.02:
        views = ["sax"]
    else:
        views = ["sax"] + [
            v for v, p in (("2ch", 0.95), ("3ch", 0.88), ("4ch", 0.97)) if rng.random() < p
        ]
    has_scar = case.lge_ischemic is not None or case.lge_nonischemic is not None
    if has_scar or rng.random() < 0.8:
        views.append("lge_sax")
        if rng.random() < 0.3:
            views.append("lge_lax")
    if rng.random() < 0.85:
        views.insert(0, "localizer")
    if rng.random() < 0.3:
        views.append("t1map")
    return views


def _header(plan: StudyPlan, rng: np.random.Generator, acq: Acquisition) -> StudyHeader:
    c, m = plan.case, plan.case.measurements
    vendor = VENDORS[plan.vendor]
    patient_rng = np.random.default_rng(zlib.crc32(plan.patient.encode()))
    family = FAMILY[int(patient_rng.integers(len(FAMILY)))]
    given = GIVEN[c.sex][int(patient_rng.integers(len(GIVEN[c.sex])))]
    age = int((plan.study_date - plan.birth_date).days // 365.25)
    height = float(np.clip(patient_rng.normal(1.77 if c.sex == "M" else 1.64, 0.07), 1.45, 2.05))
    weight = float(m.bsa**2 * 3600 / (height * 100))  # Mosteller's formula, inverted
    root = f"{plan.key}:{plan.seed}"
    return StudyHeader(
        patient_name=f"{family.upper()}^{given.upper()}",
        patient_id=plan.patient,
        birth_date=plan.birth_date,
        sex=c.sex,
        age=age,
        weight_kg=round(weight, 1),
        height_m=round(height, 2),
        study_uid=generate_uid(entropy_srcs=[root, "study"]),
        frame_of_reference_uid=generate_uid(entropy_srcs=[root, "for"]),
        accession=("A" if plan.style == "internal" else "EX-") + f"{plan.seed % 10**8:08d}",
        study_date=plan.study_date,
        study_time=time(int(rng.integers(7, 18)), int(rng.integers(0, 60))),
        institution=INSTITUTIONS[plan.style],
        vendor=vendor,
        model=str(rng.choice(vendor.models[acq.field_strength])),
        field_strength=acq.field_strength,
        heart_rate=m.heart_rate,
    )


SERIES_NUMBER = {
    "localizer": 1,
    "2ch": 3,
    "4ch": 4,
    "sax": 5,
    "3ch": 6,
    "t1map": 8,
    "lge_sax": 10,
    "lge_lax": 11,
}


def render_study(plan: StudyPlan, partial_root: Path, final_root: Path) -> dict[str, Any]:
    """Render and write one study; returns its label and report. Runs in a worker."""
    rng = np.random.default_rng(plan.seed)
    case = plan.case
    heart = build_heart(case, rng)
    frame = heart_frame(rng)
    thorax = sample_thorax(rng, case.sex, case.measurements.bsa)
    acq = sample_acquisition(rng, case.measurements.heart_rate, plan.size)
    renderer = Renderer(frame, heart, thorax, acq)
    header = _header(plan, rng, acq)
    views = _views_present(rng, case)
    vendor = VENDORS[plan.vendor]
    rr = 60000.0 / case.measurements.heart_rate
    cine_taus = (np.arange(acq.phases) / acq.phases).astype(np.float32)
    diastole = np.array([0.75], dtype=np.float32)
    inversion = float(rng.uniform(250, 330))

    partial = partial_root / plan.key.replace("/", "_")
    if partial.exists():
        shutil.rmtree(partial)
    start = datetime.combine(plan.study_date, header.study_time)
    files = 0
    for view, when in zip(views, series_times(start, len(views)), strict=True):
        if view == "localizer":
            planes, taus, contrast = localizer_planes(frame, acq), diastole, "cine"
        elif view in ("sax", "lge_sax"):
            planes = sax_planes(frame, heart, acq)
            taus, contrast = (cine_taus, "cine") if view == "sax" else (diastole, "lge")
        elif view == "t1map":
            stack = sax_planes(frame, heart, acq)
            planes, taus, contrast = [stack[len(stack) // 2]], diastole, "t1"
        else:
            lax = "4ch" if view == "lge_lax" else view
            planes = [long_axis_plane(frame, heart, acq, lax)]
            taus, contrast = (diastole, "lge") if view == "lge_lax" else (cine_taus, "cine")
        pixels = np.stack([renderer.render(p, taus, contrast, rng) for p in planes])
        described = rng.random() > 0.1 or view in ("localizer", "t1map")
        description = (
            str(rng.choice(vendor.descriptions[view]))
            if described
            else str(rng.choice(UNINFORMATIVE))
        )
        spec = SeriesSpec(
            kind=view,
            number=SERIES_NUMBER[view],
            description=description,
            planes=planes,
            pixels=pixels,
            trigger_ms=[float(t) * rr for t in taus],
            inversion_time=inversion if contrast == "lge" else None,
            enhanced=view != "localizer" and rng.random() < vendor.enhanced_share,
        )
        # Some series RLE-compressed (kept to small single-frame series: slow path).
        spec.rle = rng.random() < 0.08 and (spec.enhanced or pixels[:, :, 0, 0].size <= 30)
        files += write_series(
            header, spec, partial / f"SE{spec.number:02d}", f"{plan.key}:{plan.seed}", when
        )

    report = write_report(
        case,
        plan.style,
        rng,
        prior=plan.prior,
        prior_date=plan.prior_date,
        field_strength=acq.field_strength,
        vendor=vendor.manufacturer,
    )
    target = final_root / plan.key
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        shutil.rmtree(target)
    os.replace(partial, target)  # the study appears whole or not at all
    label = {
        "study_uid": header.study_uid,
        "accession": header.accession,
        "patient": plan.patient,
        **case.truth(),
        "style": plan.style,
        "vendor": plan.vendor,
        "views": [v for v in views if v not in ("localizer", "t1map")],
        "extras": [v for v in views if v in ("localizer", "t1map")],
        "study_date": plan.study_date.isoformat(),
        "field_strength": acq.field_strength,
        "phases": acq.phases,
        "files": files,
        "path": f"dicom/{plan.key}",
    }
    return {
        "label": label,
        "report": {
            "accession": header.accession,
            "study_uid": header.study_uid,
            "text": report.text,
        },
    }


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise PhantomError(f"{out} exists and is not a directory; choose another OUT")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise PhantomError(f"{out} is not empty; pass --force to replace its contents")
        for child in out.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise PhantomError(
            f"cannot write to {out} ({exc.strerror}); choose a writable OUT"
        ) from None


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as fh:
        for row in rows:
            fh.write(json.dumps(row, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _run(plans: list[StudyPlan], out: Path, workers: int) -> Iterator[dict[str, Any]]:
    partial, final = out / ".partial", out / "dicom"
    if workers <= 1:
        for plan in plans:
            yield render_study(plan, partial, final)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(render_study, plan, partial, final) for plan in plans]
        for future in futures:
            yield future.result()


def generate(
    out: Path,
    studies: int,
    seed: int = 0,
    style: str = "internal",
    workers: int = 1,
    force: bool = False,
    size: str = "default",
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Write a whole archive; returns a summary."""
    if studies < 1:
        raise PhantomError(f"--studies must be at least 1 (got {studies})")
    if style not in STYLES:
        raise PhantomError(f"--style must be one of {', '.join(STYLES)} (got {style!r})")
    if size not in SIZES:
        raise PhantomError(f"--size must be one of {', '.join(SIZES)} (got {size!r})")
    _check_out(out, force)
    started = datetime.now()
    plans = plan_archive(studies, seed, style, size)
    labels, reports = [], []
    for result in _run(plans, out, workers):
        labels.append(result["label"])
        reports.append(result["report"])
        if progress:
            progress(1)
    shutil.rmtree(out / ".partial", ignore_errors=True)
    _write_jsonl(out / "reports.jsonl", reports)
    _write_jsonl(out / "labels.jsonl", labels)
    seconds = (datetime.now() - started).total_seconds()
    size_bytes = sum(p.stat().st_size for p in (out / "dicom").rglob("*.dcm"))
    summary = {
        "studies": len(labels),
        "patients": len({label["patient"] for label in labels}),
        "files": sum(label["files"] for label in labels),
        "bytes": size_bytes,
        "seconds": round(seconds, 2),
        "seed": seed,
        "style": style,
        "size": size,
        "diagnoses": _count(label["diagnosis"] for label in labels),
    }
    (out / "phantom.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def _count(values: Iterator[str] | Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))
