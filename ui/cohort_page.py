"""Cohorts: a text query or chosen findings, filters and a score threshold give a
study list with its size, finding prevalence and score histogram, exported as CSV."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from catalog import audit
from search.engine import MAX_K, Hit, cohort_csv
from search.filters import Filters
from ui.resources import Resources
from ui.study_page import UNCALIBRATED
from ui.widgets import CHIP_THRESHOLD, filter_sidebar, finding_label, findings_picker


def render(res: Resources, user: str) -> None:
    filters = filter_sidebar(res, "cohort")
    st.title("Build a cohort")
    if res.search is None:
        st.warning(res.search_problem)
        return
    text = st.text_input("Describe the cohort", key="cohort_text").strip()
    findings = findings_picker("cohort_findings")
    left, right = st.columns(2)
    min_score = left.slider("Minimum score", -1.0, 1.0, 0.0, 0.01, key="cohort_min_score")
    top = right.number_input("At most", 1, MAX_K, 200, key="cohort_top")
    if st.button("Build cohort", key="cohort_run", type="primary"):
        if not text and not findings:
            st.error("Type a description or choose at least one finding.")
            return
        _build(res, user, text, findings, min_score, int(top), filters)
    if "cohort" in st.session_state:
        _show(res, *st.session_state["cohort"])


def _build(
    res: Resources,
    user: str,
    text: str,
    findings: list[str],
    min_score: float,
    top: int,
    filters: Filters,
) -> None:
    assert res.search is not None
    audit.record(
        res.sessions,
        user,
        "cohort",
        query=text,
        findings=findings,
        min_score=min_score,
        top=top,
        filters=repr(filters),
    )
    with st.spinner("Building the cohort…"):
        hits = res.search.cohort(
            text or None, findings or None, min_score=min_score, top=top, filters=filters
        )
    st.session_state["cohort"] = (text, hits)


def _show(res: Resources, text: str, hits: list[Hit]) -> None:
    assert res.search is not None
    st.metric("Studies in the cohort", len(hits))
    if not hits:
        st.info("No study reaches this score with these filters; lower the threshold.")
        return
    probabilities = res.search.classify_many([h.study_uid for h in hits])
    prevalence = (
        {
            finding_label(f): float(
                np.mean([p[f]["probability"] >= CHIP_THRESHOLD for p in probabilities.values()])
            )
            for f in next(iter(probabilities.values()))
        }
        if probabilities
        else {}
    )
    a, b = st.columns(2)
    a.caption("Prevalence of each finding (zero-shot)")
    if not res.search.calibrated():
        a.caption(UNCALIBRATED)
    a.bar_chart(pd.Series(prevalence, name="prevalence"), horizontal=True, height=420)
    counts, edges = np.histogram([h.score for h in hits], bins=20)
    b.caption("Score histogram")
    b.bar_chart(
        pd.DataFrame({"studies": counts}, index=[f"{e:.2f}" for e in edges[:-1]]), height=420
    )
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "date": h.study_date,
                    "patient": h.patient,
                    "score": h.score,
                    "matched sentence": h.best_sentence,
                }
                for h in hits
            ]
        ),
        hide_index=True,
    )
    # The CSV is prepared with the cohort, whose building was audited with its query.
    st.download_button(
        "Download CSV",
        cohort_csv(hits),
        file_name="cohort.csv",
        mime="text/csv",
        key="cohort_csv",
        on_click="ignore",
    )
