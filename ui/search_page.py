"""Search: a query box, filters in the sidebar, result cards with playing cines."""

from __future__ import annotations

import streamlit as st

from catalog import audit
from cmrclip.prompts import QUERIES
from search.engine import Result
from ui.resources import Resources
from ui.widgets import filter_sidebar, go, once, result_card

PAGE_SIZE = 10
EXAMPLES = (
    "apical LV aneurysm",
    "dilated left ventricle with severely impaired function",
    "asymmetric septal hypertrophy",
    "pericardial effusion",
    QUERIES["lge_ischemic"],
)


def _set_query(text: str) -> None:
    st.session_state.update(query=text, results_page=0, similar_to=None)


def render(res: Resources, user: str) -> None:
    filters = filter_sidebar(res, "search")
    if res.search is None:
        st.warning(res.search_problem)
        return
    similar_to = st.session_state.get("similar_to")
    if similar_to:
        _similar(res, user, similar_to)
        return
    st.title("Search the archive")
    query = st.text_input(
        "Describe what you are looking for",
        key="query",
        placeholder="e.g. apical LV aneurysm",
        on_change=lambda: st.session_state.update(results_page=0),
    ).strip()
    if not query:
        st.caption("Try one of these:")
        cols = st.columns(len(EXAMPLES))
        for i, (col, text) in enumerate(zip(cols, EXAMPLES, strict=True)):
            col.button(text, key=f"example_{i}", on_click=_set_query, args=(text,))
        return
    page = int(st.session_state.get("results_page", 0))
    search = res.search

    def run() -> Result:
        audit.record(res.sessions, user, "search", query=query, filters=repr(filters), page=page)
        with st.spinner("Searching…"):
            return search.search(query, k=PAGE_SIZE, offset=page * PAGE_SIZE, filters=filters)

    _results(res, once("search", (query, filters, page), run), page, "q")


def _similar(res: Resources, user: str, study_uid: str) -> None:
    assert res.search is not None
    st.title("Similar cases")
    st.button("← Back to search", on_click=go, args=("Search",), kwargs={"similar_to": None})
    search = res.search

    def run() -> Result:
        audit.record(res.sessions, user, "similar", study_uid=study_uid)
        return search.similar(study_uid, k=PAGE_SIZE)

    result = once("similar", study_uid, run)
    detail = search.study(study_uid)
    st.caption(f"Studies whose cines look like patient {detail.patient}, {detail.study_date}")
    _results(res, result, 0, "s")


def _results(res: Resources, result: Result, page: int, prefix: str) -> None:
    assert res.search is not None
    st.caption(
        " · ".join(f"{stage} {seconds * 1000:.0f} ms" for stage, seconds in result.seconds.items())
    )
    hits = result.hits
    if not hits:
        st.info("No study matches these filters. Widen the filters or change the query.")
    elif not result.confident:
        st.warning(
            "No confident match: nothing in this archive's reports is close to this query. "
            "Rephrase it in clinical terms, e.g. 'dilated RV with reduced function'."
        )
        if not st.toggle("Show the nearest studies anyway", key=f"{prefix}_anyway"):
            return
    # Chips only for findings the model was shown to detect on held-out patients.
    validated = res.search.validated_findings()
    probabilities = {
        uid: {f: p for f, p in found.items() if f in validated}
        for uid, found in (
            res.search.classify_many([h.study_uid for h in hits]) if validated else {}
        ).items()
    }
    for i, hit in enumerate(hits):
        result_card(
            res, hit, page * PAGE_SIZE + i + 1, probabilities.get(hit.study_uid), f"{prefix}{i}"
        )
    if prefix != "q":
        return
    prev, info, nxt = st.columns([1, 2, 1])
    prev.button(
        "← Previous",
        disabled=page == 0,
        on_click=lambda: st.session_state.update(results_page=page - 1),
        key="prev_page",
    )
    info.caption(f"Page {page + 1}")
    nxt.button(
        "Next →",
        disabled=len(hits) < PAGE_SIZE,
        on_click=lambda: st.session_state.update(results_page=page + 1),
        key="next_page",
    )
