"""Teaching-file export: a ZIP a teacher opens directly (index.html), with each case's
cines as animated images, its impression and the curator's notes.

De-identified by default: cases are numbered, never named; no UID, accession or
pseudonym, and dates only as far as the user allows (none, year, full date).
Every text is HTML-escaped, so report or note text can never become markup.
"""

from __future__ import annotations

import html
import io
import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from search.studies import Cine, StudyDetail, StudyNotFound
from ui.cine import gif, label

DateDetail = Literal["none", "year", "full"]


@dataclass(frozen=True)
class ExportOptions:
    dates: DateDetail = "none"
    pseudonyms: bool = False  # the site's pseudonym, to find the case again
    size: int = 192


@dataclass(frozen=True)
class Case:
    study_uid: str
    note: str | None


@dataclass
class Exported:
    data: bytes
    cases: int
    skipped: list[int]  # case numbers whose study left the catalog meanwhile


_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
_DATE = re.compile(
    r"\b(?:\d{4}-\d{1,2}-\d{1,2}"
    r"|\d{1,2}[./-]\d{1,2}[./-](?:\d{4}|\d{2})"
    rf"|\d{{1,2}}\s+{_MONTH}\s+\d{{4}}"
    rf"|{_MONTH}\s+\d{{1,2}},?\s+\d{{4}})\b",
    re.IGNORECASE,
)


def scrub_dates(text: str, dates: DateDetail) -> str:
    """Dates written in free text (a report comparing with a prior exam, a note), cut to
    what the export allows: removed, or reduced to the year."""
    if dates == "full":
        return text

    def replace(match: re.Match[str]) -> str:
        year = re.search(r"\d{4}", match.group())
        return year.group() if dates == "year" and year else "[date]"

    return _DATE.sub(replace, text)


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()[:60] or "teaching-file"


def _date(detail: StudyDetail, dates: DateDetail) -> str | None:
    if dates == "none" or not detail.study_date:
        return None
    return detail.study_date[:4] if dates == "year" else detail.study_date


def _facts(detail: StudyDetail, options: ExportOptions) -> list[tuple[str, str]]:
    facts = [
        ("Age", f"{detail.age} y" if detail.age is not None else None),
        ("Sex", detail.sex),
        ("Scanner", " ".join(x for x in (detail.manufacturer, detail.model_name) if x) or None),
        ("Field", f"{detail.field_strength:g} T" if detail.field_strength else None),
        ("Date", _date(detail, options.dates)),
        ("Patient", detail.patient if options.pseudonyms else None),
    ]
    return [(k, v) for k, v in facts if v]


def teaching_file(
    name: str,
    cases: list[Case],
    study: Callable[[str], StudyDetail],
    cines: Callable[[StudyDetail], list[Cine]],
    options: ExportOptions | None = None,
) -> Exported:
    options = options or ExportOptions()
    root = slug(name)
    buffer = io.BytesIO()
    sections: list[str] = []
    skipped: list[int] = []
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for number, case in enumerate(cases, 1):
            try:
                detail = study(case.study_uid)
            except StudyNotFound:
                skipped.append(number)
                continue
            folder = f"case-{number:02d}"
            images = []
            for cine in cines(detail):
                file = f"{folder}/{cine.view}.gif"
                # GIF data is already compressed: store it as is.
                archive.writestr(
                    f"{root}/{file}",
                    gif(cine.frames, cine.frame_ms, options.size),
                    compress_type=zipfile.ZIP_STORED,
                )
                images.append((file, label(cine.view)))
            facts = _facts(detail, options)
            impression = scrub_dates(detail.impression or "", options.dates) or None
            note = scrub_dates(case.note or "", options.dates) or None
            text = {
                "case": number,
                **{k.lower(): v for k, v in facts},
                "impression": impression,
                "note": note,
                "cines": [f for f, _ in images],
            }
            archive.writestr(f"{root}/{folder}/case.json", json.dumps(text, indent=2))
            sections.append(_section(number, facts, impression, note, images))
        archive.writestr(f"{root}/index.html", _page(name, sections, skipped))
    return Exported(buffer.getvalue(), len(cases) - len(skipped), skipped)


def _section(
    number: int,
    facts: list[tuple[str, str]],
    impression: str | None,
    note: str | None,
    images: list[tuple[str, str]],
) -> str:
    e = html.escape
    figures = "".join(
        f'<figure><img src="{e(f)}" alt="{e(t)}"><figcaption>{e(t)}</figcaption></figure>'
        for f, t in images
    )
    facts_html = " · ".join(f"{e(k)}: {e(v)}" for k, v in facts)
    return (
        f'<section id="case-{number}"><h2>Case {number}</h2>'
        f'<p class="facts">{facts_html}</p><div class="cines">{figures}</div>'
        f"<h3>Impression</h3><p>{e(impression or 'No report linked.')}</p>"
        + (f'<h3>Teaching note</h3><p class="note">{e(note)}</p>' if note else "")
        + "</section>"
    )


STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}"
    "figure{display:inline-block;margin:0 8px 8px 0;text-align:center}"
    "img{height:192px;width:auto;image-rendering:auto;background:#000}"  # LGE: 3 slices wide
    "section{border-top:1px solid #ccc;padding-top:1em}.facts{color:#555}"
    ".note{background:#f6f6e8;padding:.5em;white-space:pre-wrap}"
)


def _page(name: str, sections: list[str], skipped: list[int]) -> str:
    e = html.escape
    missing = (
        f"<p>Left out (no longer in the archive): case {', '.join(map(str, skipped))}.</p>"
        if skipped
        else ""
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{e(name)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{e(name)}</h1><p>Teaching file exported from cmr-search. "
        "Cines loop at each study's own heart rate.</p>"
        f"{missing}{''.join(sections)}</body></html>"
    )
