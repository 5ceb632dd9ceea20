"""Collections (teaching files): create, annotate, reorder, remove, export as a ZIP."""

from __future__ import annotations

import html
from typing import cast

import streamlit as st

from catalog import audit, collections
from ui.export import Case, DateDetail, ExportOptions, slug, teaching_file
from ui.resources import Resources
from ui.widgets import go, literal

DATE_CHOICES = {"none": "No dates", "year": "Year only", "full": "Full study dates"}


def render(res: Resources, user: str) -> None:
    st.title("Teaching files")
    with st.expander("New collection", expanded=False), st.form("new_collection"):
        name = st.text_input("Name", key="new_collection_name")
        description = st.text_area("Description", key="new_collection_description")
        if st.form_submit_button("Create"):
            collections.create(res.sessions, name, owner=user, description=description or None)
            st.success(literal(f"Created “{collections.check_name(name)}”."))
    with res.sessions() as session:
        existing = collections.summaries(session)
    if not existing:
        st.info("No collection yet: create one here, or add a study from its page.")
        return
    labels = {c.id: f"{c.name} ({c.items} cases)" for c in existing}
    chosen = st.selectbox(
        "Collection", list(labels), format_func=labels.__getitem__, key="collection_id"
    )
    with res.sessions() as session:
        collection = collections.get(session, chosen)
        items = [
            (
                item.study.study_uid,
                item.note,
                item.study.study_date,
                item.study.report.impression if item.study.report else None,
            )
            for item in collection.items
        ]
        title, about = collection.name, collection.description
    if about:
        st.text(about)
    for position, (study_uid, note, study_date, impression) in enumerate(items):
        _case(res, chosen, position, len(items), study_uid, note, study_date, impression)
    _export(res, user, chosen, title, [Case(uid, note) for uid, note, _, _ in items])
    with st.expander("Delete this collection"):
        if st.button("Delete it (the studies stay in the archive)", key="delete_collection"):
            audit.record(res.sessions, user, "delete_collection", collection=chosen)
            collections.delete(res.sessions, chosen)
            st.rerun()


def _case(
    res: Resources,
    collection_id: int,
    position: int,
    count: int,
    study_uid: str,
    note: str | None,
    study_date: object,
    impression: str | None,
) -> None:
    with st.container(border=True):
        st.markdown(f"**Case {position + 1}** · {study_date or 'date unknown'}")
        st.html(f"<small>{html.escape(impression or 'No report linked.')}</small>")
        edited = st.text_area("Note", value=note or "", key=f"note_{collection_id}_{study_uid}")
        cols = st.columns(5)
        if cols[0].button("Save note", key=f"save_{study_uid}"):
            collections.set_note(res.sessions, collection_id, study_uid, edited)
            st.rerun()
        if cols[1].button("↑", key=f"up_{study_uid}", disabled=position == 0):
            collections.move(res.sessions, collection_id, study_uid, -1)
            st.rerun()
        if cols[2].button("↓", key=f"down_{study_uid}", disabled=position == count - 1):
            collections.move(res.sessions, collection_id, study_uid, +1)
            st.rerun()
        if cols[3].button("Remove", key=f"remove_{study_uid}"):
            collections.remove(res.sessions, collection_id, study_uid)
            st.rerun()
        cols[4].button(
            "Open",
            key=f"open_{study_uid}",
            on_click=go,
            args=("Study",),
            kwargs={"study_uid": study_uid},
        )


def _export(res: Resources, user: str, collection_id: int, name: str, cases: list[Case]) -> None:
    st.subheader("Export")
    if not cases or res.search is None:
        st.caption("Add cases first." if not cases else res.search_problem)
        return
    dates = st.radio(
        "Dates in the export",
        list(DATE_CHOICES),
        format_func=DATE_CHOICES.__getitem__,
        horizontal=True,
        key="export_dates",
    )
    pseudonyms = st.checkbox("Include the site's patient pseudonyms", key="export_pseudonyms")
    if st.button("Prepare ZIP", key="prepare_export", type="primary"):
        audit.record(
            res.sessions,
            user,
            "export_collection",
            collection=collection_id,
            cases=len(cases),
            dates=dates,
            pseudonyms=pseudonyms,
        )
        search = res.search
        with st.spinner("Rendering cines…"):
            exported = teaching_file(
                name,
                cases,
                search.study,
                search.cines,
                ExportOptions(dates=cast(DateDetail, dates), pseudonyms=pseudonyms),
            )
        st.session_state["export"] = (collection_id, exported)
    ready = st.session_state.get("export")
    if ready and ready[0] == collection_id:
        exported = ready[1]
        if exported.skipped:
            st.warning(
                "Left out, no longer in the archive: case " + ", ".join(map(str, exported.skipped))
            )
        st.download_button(
            f"Download ZIP ({exported.cases} cases, {len(exported.data) / 1e6:.1f} MB)",
            exported.data,
            file_name=f"{slug(name)}.zip",
            mime="application/zip",
            key="download_export",
            on_click="ignore",
        )
