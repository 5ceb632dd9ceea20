"""Study: every cine with playback controls, the series, the full report, zero-shot
finding probabilities, the most similar studies, and "add to a teaching file"."""

from __future__ import annotations

import html

import pandas as pd
import streamlit as st

from catalog import audit, collections
from search.studies import Cine, StudyDetail
from ui.cine import label
from ui.resources import Resources, cine_frame, cine_gif, cines
from ui.widgets import finding_label, go, once, plain

SAX = ("sax_basal", "sax_mid", "sax_apical")
UNCALIBRATED = (
    "Uncalibrated: this model has no thresholds from `cmrsearch evaluate`, "
    "so 50% is not a decision point."
)


def render(res: Resources, user: str) -> None:
    study_uid = st.session_state.get("study_uid")
    if not study_uid:
        st.info("Open a study from the search results or a collection.")
        return
    if res.search is None:
        st.warning(res.search_problem)
        return
    detail = res.search.study(study_uid)
    once(
        "view_study",
        study_uid,
        lambda: audit.record(res.sessions, user, "view_study", study_uid=study_uid),
    )
    st.title(f"Study of patient {detail.patient or 'unknown'}")
    st.caption(
        " · ".join(
            plain(str(x))
            for x in (
                detail.study_date,
                detail.institution,
                detail.manufacturer,
                detail.model_name,
                f"{detail.field_strength:g} T" if detail.field_strength else None,
                f"{detail.age} y" if detail.age is not None else None,
                detail.sex,
            )
            if x
        )
    )
    viewer, side = st.columns([3, 2])
    with viewer:
        _player(res, detail)
    with side:
        _add_to_collection(res, user, detail)
        st.subheader("Findings (zero-shot)")
        if not res.search.calibrated():
            st.caption(UNCALIBRATED)
        else:
            validated = res.search.validated_findings()
            st.caption(
                "Validated on held-out patients (zero-shot AUC ≥ 0.75): "
                + (", ".join(finding_label(f) for f in sorted(validated)) or "none yet")
                + ". Treat the other bars as unvalidated."
            )
        probabilities = res.search.classify_many([study_uid]).get(study_uid)
        if probabilities:
            chart = pd.DataFrame(
                {
                    "finding": [finding_label(f) for f in probabilities],
                    "probability": [p["probability"] for p in probabilities.values()],
                }
            ).set_index("finding")
            st.bar_chart(chart, horizontal=True, height=420)
        else:
            st.caption("No vector for the active model yet: run `cmrsearch embed`.")
    st.subheader("Report")
    if detail.report:
        st.text(detail.report)
    else:
        st.caption("No report linked to this study.")
    st.subheader("Series")
    st.dataframe(pd.DataFrame(detail.series), hide_index=True)
    _similar(res, study_uid)


def _player(res: Resources, detail: StudyDetail) -> None:
    available = {c.view: c for c in cines(res, detail)}
    if not available:
        st.info("No cine cached for this study.")
        return
    groups: list[tuple[str, list[Cine]]] = []
    if any(v in available for v in SAX):
        groups.append(("SAX", [available[v] for v in SAX if v in available]))
    groups += [(label(v), [available[v]]) for v in available if v not in SAX]
    for (name, group), tab in zip(groups, st.tabs([n for n, _ in groups]), strict=True):
        with tab:
            cine = group[0]
            if len(group) > 1:
                level = st.radio(
                    "Slice",
                    [c.view for c in group],
                    index=min(1, len(group) - 1),
                    format_func=label,
                    horizontal=True,
                    key=f"slice_{name}",
                )
                cine = next(c for c in group if c.view == level)
            _play(detail, cine)


def _play(detail: StudyDetail, cine: Cine) -> None:
    clip = detail.clip_file or ""
    frames = len(cine.frames)
    if frames == 1:
        st.image(cine_frame(clip, cine.view, 0, cine, 384), caption=label(cine.view))
        return
    playing = st.toggle("Play", value=True, key=f"play_{cine.view}")
    if playing:
        st.image(
            cine_gif(clip, cine.view, cine, 384),
            caption=f"{label(cine.view)} · one cardiac cycle at {1000 / cine.frame_ms:.0f} "
            f"frames/s ({cine.series_description or 'series'})",
        )
    else:
        index = st.slider("Frame", 1, frames, 1, key=f"frame_{cine.view}") - 1
        st.image(
            cine_frame(clip, cine.view, index, cine, 384),
            caption=f"{label(cine.view)} · frame {index + 1} of {frames}",
        )


def _add_to_collection(res: Resources, user: str, detail: StudyDetail) -> None:
    st.subheader("Teaching files")
    with res.sessions() as session:
        existing = collections.summaries(session)
    with st.form("add_to_collection", clear_on_submit=True):
        names = {c.name: c.id for c in existing}
        choice = st.selectbox("Collection", [*names, "New collection…"], key="add_target")
        new_name = st.text_input("Name of a new collection", key="add_new_name")
        note = st.text_area("Note for this case", key="add_note", max_chars=collections.MAX_NOTE)
        if st.form_submit_button("Add to collection"):
            if choice == "New collection…":
                target = collections.create(res.sessions, new_name, owner=user)
            else:
                target = names[choice]
            audit.record(
                res.sessions, user, "collect", study_uid=detail.study_uid, collection=target
            )
            collections.add(res.sessions, target, detail.study_uid, note)
            st.success("Added to the collection.")


def _similar(res: Resources, study_uid: str) -> None:
    assert res.search is not None
    st.subheader("Most similar studies")
    result = res.search.similar(study_uid, k=5)
    if not result.hits:
        st.caption("No other study has a vector yet.")
    for i, hit in enumerate(result.hits):
        cols = st.columns([4, 1])
        cols[0].markdown(
            f"score {hit.score:.3f} · {hit.study_date or 'date unknown'} · "
            f"patient {hit.patient or '?'}"
        )
        cols[0].html(f"<small>{html.escape((hit.impression or 'No report')[:300])}</small>")
        cols[1].button(
            "Open",
            key=f"similar_open_{i}",
            on_click=go,
            args=("Study",),
            kwargs={"study_uid": hit.study_uid},
        )
