"""Writer stage: studies, series, clips, reports and errors into the catalog.

Each study is written in one transaction, after its clip file is in place, so a
reader never sees half a study; a run killed between the two leaves only an
unreferenced clip file, which ``sweep_orphans`` removes at the next start.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from catalog.models import Clip, Embedding, IngestError, Patient, Report, Series, Study
from cmrsearch.privacy import pseudonymise
from indexer.mapper import StudyResult
from indexer.reports import ReportRecord, extract_impression


def unchanged(session: Session, study_uid: str, fingerprint: str, home: Path) -> bool:
    study = session.scalars(select(Study).where(Study.study_uid == study_uid)).first()
    if study is None or study.fingerprint != fingerprint:
        return False
    return all((home / clip.path).is_file() for clip in study.clips)


def _patient(session: Session, key: str, secret: bytes, keep_identifier: bool) -> Patient:
    pseudo = pseudonymise(key, secret)
    patient = session.scalars(select(Patient).where(Patient.pseudo_id == pseudo)).first()
    if patient is None:
        patient = Patient(pseudo_id=pseudo)
        session.add(patient)
    if keep_identifier:
        patient.identifier = key[:128]
    return patient


def write_study(
    session: Session, result: StudyResult, secret: bytes, keep_identifier: bool
) -> str | None:
    """Insert or replace one study; return the clip file it no longer uses, if any."""
    first = result.first
    study = session.scalars(select(Study).where(Study.study_uid == result.study_uid)).first()
    old_file = None
    if study is None:
        study = Study(study_uid=result.study_uid)
        session.add(study)
    else:
        old_file = study.clips[0].path if study.clips else None
        for model in (Clip, Series, Embedding):  # the study changed: its vectors are stale
            session.execute(delete(model).where(model.study_id == study.id))
        session.expire(study, ["clips", "series"])
    study.patient = _patient(session, first.patient_key, secret, keep_identifier)
    study.accession = first.accession[:64] if first.accession else None
    study.study_date = first.study_date
    study.description = (first.study_description or "")[:128] or None
    study.institution = (first.institution or "")[:128] or None
    study.manufacturer = (first.manufacturer or "")[:128] or None
    study.model_name = (first.model or "")[:128] or None
    study.field_strength = first.field_strength
    study.patient_age = first.age
    study.patient_sex = first.sex
    study.fingerprint = result.fingerprint
    session.flush()
    series_ids = {}
    for row in result.series:
        series = Series(study_id=study.id, **row)
        session.add(series)
        session.flush()
        series_ids[row["series_uid"]] = series.id
    if result.clip_file and result.checksum:
        for view, shape in result.clip_shapes.items():
            session.add(
                Clip(
                    study_id=study.id,
                    view=view,
                    path=result.clip_file,
                    shape=shape,
                    checksum=result.checksum,
                    series_id=series_ids.get(result.clip_views_from[view]),
                )
            )
    _link_reports_to(session, study)
    for path, error_type, message in result.failures:
        record_error(session, path, error_type, message)
    return old_file if old_file != result.clip_file else None


def record_error(session: Session, path: str, error_type: str, message: str) -> None:
    """One row per file: a re-run replaces the file's earlier error instead of adding one."""
    session.execute(delete(IngestError).where(IngestError.path == path[:1024]))
    session.add(IngestError(path=path[:1024], error_type=error_type, message=message[:2000]))


def clear_errors(session: Session, paths: list[str]) -> None:
    """Files that now ingest cleanly lose their old error rows."""
    for start in range(0, len(paths), 500):
        chunk = [p[:1024] for p in paths[start : start + 500]]
        session.execute(delete(IngestError).where(IngestError.path.in_(chunk)))


def _link_reports_to(session: Session, study: Study) -> None:
    if session.scalars(select(Report).where(Report.study_id == study.id)).first():
        return
    clauses = [Report.study_uid == study.study_uid]
    if study.accession:
        clauses.append(Report.accession == study.accession)
    report = session.scalars(
        select(Report).where(Report.study_id.is_(None), or_(*clauses)).order_by(Report.id.desc())
    ).first()
    if report is not None:
        report.study_id = study.id


def upsert_reports(session: Session, records: list[ReportRecord]) -> tuple[int, int]:
    """Insert new reports, update changed ones, link them; return (linked, unmatched)."""
    by_uid: dict[str, int] = {
        uid: id_ for uid, id_ in session.execute(select(Study.study_uid, Study.id))
    }
    by_accession: dict[str | None, int] = {
        acc: id_
        for acc, id_ in session.execute(
            select(Study.accession, Study.id).where(Study.accession.is_not(None))
        )
    }
    linked = unmatched = 0
    for record in records:
        impression, found = extract_impression(record.text)
        clauses = []
        if record.study_uid:
            clauses.append(Report.study_uid == record.study_uid)
        if record.accession:
            clauses.append(Report.accession == record.accession)
        report = session.scalars(select(Report).where(or_(*clauses))).first()
        if report is None:
            report = Report(accession=record.accession, study_uid=record.study_uid)
            session.add(report)
        report.text, report.impression, report.impression_found = record.text, impression, found
        report.source = record.source[:512]
        study_id = by_uid.get(record.study_uid or "") or by_accession.get(record.accession or "")
        if study_id is not None:
            holder = session.scalars(select(Report).where(Report.study_id == study_id)).first()
            if holder is None or holder is report:
                report.study_id = study_id
        session.flush()
        if report.study_id is not None:
            linked += 1
        else:
            unmatched += 1
    return linked, unmatched


def referenced_clip_files(session: Session) -> set[str]:
    return set(session.scalars(select(Clip.path).distinct()).all())


def sweep_orphans(home: Path, referenced: set[str]) -> int:
    """Delete clip files and temp files that no catalog row refers to."""
    root = home / "clips"
    removed = 0
    if not root.is_dir():
        return 0
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        relative = str(path.relative_to(home))
        if path.name.endswith(".tmp") or relative not in referenced:
            path.unlink(missing_ok=True)
            removed += 1
    return removed
