"""The indexing run: discover -> read headers -> map studies -> write, each stage timed."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from catalog.db import session_factory, transaction
from catalog.models import Clip, Series, Study
from indexer.clips import ClipConfig
from indexer.errors import IngestFailure
from indexer.headers import Instance, read_instance
from indexer.mapper import StudyTask, map_study
from indexer.pool import run_supervised
from indexer.reports import read_reports
from indexer.series import group_studies
from indexer.sources import Source, discover
from indexer.store import (
    clear_errors,
    record_error,
    referenced_clip_files,
    sweep_orphans,
    unchanged,
    upsert_reports,
    write_study,
)

HEADER_TIMEOUT_S = 30.0  # per file
STUDY_TIMEOUT_S = 600.0  # per study (decode and normalise every cine)


@dataclass
class IndexOptions:
    home: Path
    secret: bytes
    keep_identifiers: bool = False
    workers: int = 1
    clips: ClipConfig = field(default_factory=ClipConfig)


@dataclass
class Summary:
    seconds: dict[str, float] = field(default_factory=dict)
    files: int = 0
    studies: int = 0
    studies_written: int = 0
    studies_unchanged: int = 0
    series_by_view: Counter[str] = field(default_factory=Counter)
    clips: int = 0
    reports_linked: int = 0
    reports_unmatched: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    orphans_removed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "studies": self.studies,
            "studies_written": self.studies_written,
            "studies_unchanged": self.studies_unchanged,
            "series_by_view": dict(sorted(self.series_by_view.items())),
            "clips": self.clips,
            "reports_linked": self.reports_linked,
            "reports_unmatched": self.reports_unmatched,
            "errors_by_type": dict(sorted(self.errors.items())),
            "orphan_files_removed": self.orphans_removed,
            "seconds_by_stage": {k: round(v, 3) for k, v in self.seconds.items()},
        }


@contextmanager
def _timed(summary: Summary, stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        summary.seconds[stage] = summary.seconds.get(stage, 0.0) + time.perf_counter() - start


def run_index(
    engine: Engine,
    paths: list[Path],
    reports: Path | None,
    options: IndexOptions,
    progress: Callable[[int, int], None] | None = None,
) -> Summary:
    summary = Summary()
    factory = session_factory(engine)
    records = read_reports(reports) if reports else []  # fail early on a bad reports file
    with _timed(summary, "sweep"), factory() as session:
        summary.orphans_removed = sweep_orphans(options.home, referenced_clip_files(session))
    with _timed(summary, "discover"):
        sources = discover(paths)
    summary.files = len(sources)
    instances: list[Instance] = []
    with _timed(summary, "read"):
        failed: list[tuple[Source, IngestFailure]] = []
        for source, result in run_supervised(
            read_instance, sources, workers=options.workers, timeout=HEADER_TIMEOUT_S, batch=64
        ):
            if isinstance(result, IngestFailure):
                failed.append((source, result))
            else:
                instances.append(result)
    with _timed(summary, "write"), transaction(factory) as session:
        for source, failure in failed:
            record_error(session, source.key, failure.error_type, failure.message)
            summary.errors[failure.error_type] += 1
        clear_errors(session, [i.source.key for i in instances])

    studies = group_studies(instances)
    summary.studies = len(studies)
    tasks = []
    with factory() as session:
        for uid, series in studies.items():
            task = StudyTask(
                uid, [i for items in series.values() for i in items], options.home, options.clips
            )
            if unchanged(session, uid, task.fingerprint, options.home):
                summary.studies_unchanged += 1
            else:
                tasks.append(task)
    done = summary.studies_unchanged
    if progress:
        progress(done, summary.studies)
    loop_start, write_before = time.perf_counter(), summary.seconds.get("write", 0.0)
    for task, mapped in run_supervised(
        map_study, tasks, workers=options.workers, timeout=STUDY_TIMEOUT_S
    ):
        stale = None
        with _timed(summary, "write"), transaction(factory) as session:
            if isinstance(mapped, IngestFailure):
                record_error(
                    session,
                    task.instances[0].source.key,
                    mapped.error_type,
                    f"study could not be processed: {mapped.message}",
                )
                summary.errors[mapped.error_type] += 1
            else:
                stale = write_study(session, mapped, options.secret, options.keep_identifiers)
                summary.errors.update(error_type for _, error_type, _ in mapped.failures)
                summary.studies_written += 1
        if stale:  # only after the commit: the catalog no longer points at it
            (options.home / stale).unlink(missing_ok=True)
        done += 1
        if progress:
            progress(done, summary.studies)
    written = summary.seconds.get("write", 0.0) - write_before
    summary.seconds["map"] = time.perf_counter() - loop_start - written
    with _timed(summary, "reports"), transaction(factory) as session:
        if records:
            summary.reports_linked, summary.reports_unmatched = upsert_reports(session, records)
    with factory() as session:
        _count_catalog(session, summary, list(studies))
    return summary


def _count_catalog(session: Session, summary: Summary, uids: list[str]) -> None:
    for start in range(0, len(uids), 500):
        chunk = uids[start : start + 500]
        ids = select(Study.id).where(Study.study_uid.in_(chunk))
        for view, n in session.execute(
            select(Series.view, func.count()).where(Series.study_id.in_(ids)).group_by(Series.view)
        ):
            summary.series_by_view[view] += n
        summary.clips += int(
            session.scalar(select(func.count()).select_from(Clip).where(Clip.study_id.in_(ids)))
            or 0
        )
