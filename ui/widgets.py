"""Pieces several pages share: navigation, the filter sidebar, result cards.

Report and note text always goes through `html.escape` and is shown with `st.html`
or as plain text, never as Markdown: a report can then never inject markup or links.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar, cast

import streamlit as st
from sqlalchemy import select

from catalog.models import Study
from cmrsearch.vocabulary import CLIP_VIEWS, FINDINGS, VIEWS
from search.engine import Hit
from search.filters import Filters
from ui.cine import label, short_label
from ui.resources import Resources, cine_gif, cines

T = TypeVar("T")
PAGES = ("Search", "Study", "Collections", "Cohorts", "Archive")
CHIP_THRESHOLD = 0.5


def once(key: str, signature: object, action: Callable[[], T]) -> T:
    """Run `action` when `signature` differs from the last run under `key`, else reuse its
    result: a rerun for a widget click (a view pill, play/pause) repeats neither the
    query nor its audit row."""
    memo = st.session_state.get(f"once_{key}")
    if memo is None or memo[0] != signature:
        memo = (signature, action())
        st.session_state[f"once_{key}"] = memo
    return cast(T, memo[1])


def go(page: str, **state: Any) -> None:
    """Button callback: switch page (callbacks run before the widgets are drawn)."""
    st.session_state["page"] = page
    st.session_state.update(state)


def finding_label(finding: str) -> str:
    text = finding.replace("_", " ")
    for short in ("lv", "rv", "la", "lge"):
        text = text.replace(f"{short} ", f"{short.upper()} ")
    return text[0].upper() + text[1:]


def highlighted(text: str | None, sentence: str | None) -> str:
    """The impression as safe HTML, the sentence that matched the query marked."""
    if not text:
        return "<p><em>No report linked to this study.</em></p>"
    escaped = html.escape(text)
    if sentence and sentence in text:
        mark = html.escape(sentence)
        escaped = escaped.replace(mark, f"<mark>{mark}</mark>", 1)
    return f'<div style="white-space:pre-wrap;font-size:0.92rem">{escaped}</div>'


def chips(probabilities: dict[str, dict[str, float]] | None) -> str:
    if not probabilities:
        return ""
    found = sorted(
        (p["probability"], f)
        for f, p in probabilities.items()
        if p["probability"] >= CHIP_THRESHOLD
    )[::-1]
    return " ".join(f":blue-badge[{finding_label(f)} {p:.0%}]" for p, f in found[:6])


@st.cache_data(ttl=300, show_spinner=False)
def _choices(_res: Resources, column: str) -> list[Any]:
    with _res.sessions() as session:
        values = session.scalars(select(getattr(Study, column)).distinct()).all()
    return sorted(v for v in values if v is not None)


def filter_sidebar(res: Resources, prefix: str) -> Filters:
    """The search API's filters as sidebar widgets; returns what is set."""
    sb = st.sidebar
    sb.subheader("Filters")
    values: dict[str, Any] = {}
    if sb.checkbox("Limit study dates", key=f"{prefix}_dates"):
        start = sb.date_input("From", value=date(2015, 1, 1), key=f"{prefix}_from")
        end = sb.date_input("To", value=date.today(), key=f"{prefix}_to")
        values.update(date_from=start, date_to=end)
    for column, name in (
        ("manufacturer", "Manufacturer"),
        ("institution", "Institution"),
        ("field_strength", "Field strength (T)"),
    ):
        choice = sb.selectbox(name, ["Any", *_choices(res, column)], key=f"{prefix}_{column}")
        if choice != "Any":
            values[column] = choice
    sex = sb.selectbox("Sex", ["Any", "F", "M", "O"], key=f"{prefix}_sex")
    if sex != "Any":
        values["sex"] = sex
    ages = sb.slider("Age", 0, 100, (0, 100), key=f"{prefix}_age")
    if ages != (0, 100):
        values.update(age_min=ages[0], age_max=ages[1])
    views = sb.multiselect(
        "Views present", [v for v in VIEWS if v != "other"], key=f"{prefix}_views"
    )
    if views:
        values["views"] = tuple(views)
    patient = sb.text_input("Patient (pseudonym)", key=f"{prefix}_patient").strip()
    if patient:
        values["patient"] = patient
    lge = sb.selectbox("LGE", ["Any", "with LGE", "without LGE"], key=f"{prefix}_lge")
    if lge != "Any":
        values["has_lge"] = lge == "with LGE"
    return Filters(**values)


def result_card(
    res: Resources,
    hit: Hit,
    rank: int,
    probabilities: dict[str, dict[str, float]] | None,
    key: str,
) -> None:
    with st.container(border=True):
        left, right = st.columns([1, 2.4])
        with left:
            cine_panel(res, hit.study_uid, hit.best_view, f"{key}_view", size=224)
        with right:
            st.markdown(
                f"**#{rank}** · score **{hit.score:.3f}** · {hit.study_date or 'date unknown'}"
                f" · {plain(hit.institution or 'institution unknown')}"
            )
            st.caption(
                "Views: "
                + ", ".join(hit.views or ["none"])
                + f" · {plain(hit.manufacturer or '')}"
                + (f" {hit.field_strength:g} T" if hit.field_strength else "")
                + f" · patient {hit.patient or '?'}"
            )
            st.html(highlighted(hit.impression, hit.best_sentence))
            if badge := chips(probabilities):
                st.markdown(badge)
            a, b, _ = st.columns([1, 1, 2])
            a.button(
                "Open study",
                key=f"{key}_open_{hit.study_uid}",
                on_click=go,
                args=("Study",),
                kwargs={"study_uid": hit.study_uid},
            )
            b.button(
                "Similar cases",
                key=f"{key}_similar_{hit.study_uid}",
                on_click=go,
                args=("Search",),
                kwargs={"similar_to": hit.study_uid, "results_page": 0},
            )


def cine_panel(
    res: Resources, study_uid: str, preferred: str | None, key: str, size: int = 256
) -> None:
    """The most relevant view playing, the study's other views one click away."""
    assert res.search is not None
    detail = res.search.study(study_uid)
    available = {c.view: c for c in cines(res, detail)}
    if not available:
        st.info("No cine cached for this study.")
        return
    order = [v for v in CLIP_VIEWS if v in available]
    default = preferred if preferred in available else order[0]
    view = (
        st.pills(
            "View",
            order,
            default=default,
            format_func=short_label,
            key=key,
            label_visibility="collapsed",
        )
        or default
    )
    cine = available[view]
    st.image(
        cine_gif(detail.clip_file or "", view, cine, size),
        caption=f"{label(view)} · {1000 / cine.frame_ms:.0f} frames/s"
        if len(cine.frames) > 1
        else label(view),
        width=size,
    )


def plain(value: str) -> str:
    """Catalog text inside our own Markdown: drop the characters Markdown acts on."""
    return "".join(ch for ch in value if ch not in "*_`[]()<>#!|~:\\")


def literal(text: str) -> str:
    """Text shown through Markdown exactly as written: every ASCII punctuation mark
    backslash-escaped (CommonMark allows it), so no user input becomes a link."""
    return re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", text)


def findings_picker(key: str) -> list[str]:
    return st.multiselect("Findings", FINDINGS, format_func=finding_label, key=key)
