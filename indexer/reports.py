"""Radiology reports: read JSONL, CSV or a folder of <accession>.txt; find the impression."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

from indexer.errors import IndexingError

# A heading that opens the summary section, as readers write it across institutions.
_IMPRESSION = re.compile(
    r"^[ \t]*(?:final\s+)?(impressions?|conclusions?|summary|opinion|interpretation)"
    r"[ \t]*[:.\-]*[ \t]*\r?$|^[ \t]*(?:final\s+)?(impressions?|conclusions?|summary|opinion)"
    r"[ \t]*[:\-]+[ \t]*(?=\S)",
    re.IGNORECASE | re.MULTILINE,
)
# A heading that starts another section after the impression.
_NEXT_SECTION = re.compile(
    r"^[ \t]*(recommendations?|comments?|addendum|signed|electronically signed|reported by|"
    r"dictated by|verified by)\b",
    re.IGNORECASE | re.MULTILINE,
)


@dataclass(frozen=True)
class ReportRecord:
    accession: str | None
    study_uid: str | None
    text: str
    source: str


def extract_impression(text: str) -> tuple[str, bool]:
    """(impression, found): the body under the last summary heading, else the whole text."""
    matches = list(_IMPRESSION.finditer(text))
    if not matches:
        return text.strip(), False
    start = matches[-1].end()
    body = text[start:]
    end = _NEXT_SECTION.search(body)
    if end:
        body = body[: end.start()]
    body = body.strip()
    return (body, True) if body else (text.strip(), False)


def _clean(value: object) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def read_reports(path: Path) -> list[ReportRecord]:
    """Reports from a .jsonl file, a .csv file or a folder of <accession>.txt files."""
    if not path.exists():
        raise IndexingError(f"reports {path} not found; give a .jsonl, a .csv or a folder")
    if path.is_dir():
        return [
            ReportRecord(p.stem, None, p.read_text(errors="replace"), p.name)
            for p in sorted(path.glob("*.txt"))
            if not p.name.startswith(".")
        ]
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return _jsonl(path)
    if suffix == ".csv":
        return _csv(path)
    raise IndexingError(
        f"reports {path.name}: unknown format; use .jsonl, .csv or a folder "
        "of <accession>.txt files"
    )


def _jsonl(path: Path) -> list[ReportRecord]:
    out = []
    with path.open(errors="replace") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise IndexingError(
                    f"reports {path.name} line {number} is not JSON; fix or remove that line"
                ) from None
            out.append(_record(row, f"{path.name}:{number}", path, number))
    return out


def _csv(path: Path) -> list[ReportRecord]:
    with path.open(newline="", errors="replace") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or "text" not in reader.fieldnames:
            raise IndexingError(
                f"reports {path.name} needs a header with columns accession, study_uid, text"
            )
        return [_record(row, f"{path.name}:{n}", path, n) for n, row in enumerate(reader, 2)]


def _record(row: dict[str, object], source: str, path: Path, number: int) -> ReportRecord:
    text = _clean(row.get("text"))
    accession, study_uid = _clean(row.get("accession")), _clean(row.get("study_uid"))
    if text is None or (accession is None and study_uid is None):
        raise IndexingError(
            f"reports {path.name} entry {number} needs text and an accession or study_uid"
        )
    return ReportRecord(accession, study_uid, text, source)
