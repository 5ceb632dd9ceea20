"""Archive status: what the catalog holds, the active model and its evaluation, the index."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from catalog.models import ModelVersion
from catalog.stats import archive_status
from ui.resources import Resources
from ui.widgets import finding_label


def render(res: Resources, user: str) -> None:
    st.title("Archive status")
    with res.sessions() as session:
        status = archive_status(session)
        version = session.get(ModelVersion, res.search.version) if res.search else None
        metrics = (version.metrics or {}) if version else {}
    a, b, c, d = st.columns(4)
    a.metric("Studies", status["studies"])
    b.metric("Patients", status["patients"])
    c.metric("Series", status["series"])
    d.metric("Reports linked", f"{status['reports_linked']} / {status['reports']}")
    left, right = st.columns(2)
    left.caption("Series by view")
    left.bar_chart(pd.Series(status["series_by_view"], name="series"), height=260)
    right.caption("Ingest errors by type")
    if status["ingest_errors"]:
        right.bar_chart(pd.Series(status["ingest_errors"], name="files"), height=260)
    else:
        right.success("No file was rejected.")
    st.subheader("Model")
    if res.search is None:
        st.warning(res.search_problem)
        return
    st.markdown(f"Active version `{res.search.version}`")
    evaluation = metrics.get("evaluation")
    if evaluation:
        auc = evaluation.get("mean_auc", {})
        intervals = evaluation.get("mean_auc_95ci", {})  # absent before 2026-12-05
        shown = [
            f"{cohort} **{value:.3f}**"
            + (" (95% CI {:.3f}-{:.3f})".format(*intervals[cohort]) if cohort in intervals else "")
            for cohort, value in auc.items()
        ]
        st.markdown("Mean zero-shot AUC: " + ", ".join(shown))
        rows = {
            finding_label(f): {cohort: v.get(cohort, {}).get("auc") for cohort in auc}
            for f, v in evaluation.get("zero_shot", {}).items()
        }
        st.dataframe(pd.DataFrame.from_dict(rows, orient="index"))
    else:
        st.caption(
            "Not evaluated yet: run `cmrsearch evaluate --labels ...` "
            "to show its numbers here and calibrate the finding chips."
        )
    index = res.search.index()
    st.subheader("Index")
    if index is None:
        st.caption("Empty: run `cmrsearch embed`.")
    else:
        st.markdown(f"{index.kind} index, {index.ntotal} study vectors")
