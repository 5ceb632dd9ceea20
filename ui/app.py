"""The cmr-search front end: `cmrsearch serve` runs this script with Streamlit.

Thin by design: pages call the search API and the catalog helpers; everything heavy is
loaded once per process (`ui.resources`). An error the user can act on is shown as
one message in the page, never as a traceback.
"""

from __future__ import annotations

import logging

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from cmrsearch.errors import CmrSearchError
from ui import (
    cohort_page,
    collections_page,
    search_page,
    status_page,
    study_page,
)
from ui.login import OPEN_USER, current_user, sign_out
from ui.resources import resources
from ui.widgets import PAGES, literal

log = logging.getLogger("cmrsearch.ui")
RENDER = {
    "Search": search_page.render,
    "Study": study_page.render,
    "Collections": collections_page.render,
    "Cohorts": cohort_page.render,
    "Archive": status_page.render,
}
DATABASE_DOWN = (
    "The catalog database is not answering, so nothing was done and nothing was lost. "
    "Try again in a moment; if it persists, ask your administrator to check the database."
)


def main() -> None:
    st.set_page_config(page_title="cmr-search", page_icon="🫀", layout="wide")
    try:
        res = resources()
    except CmrSearchError as exc:
        st.error(literal(f"cmr-search cannot start: {exc}"))
        st.stop()
    try:
        user = current_user(res)
    except (CmrSearchError, SQLAlchemyError) as exc:
        _problem(exc)
        st.stop()
    st.session_state.setdefault("page", "Search")
    with st.sidebar:
        st.radio("Go to", PAGES, key="page")
        if user == OPEN_USER:
            st.caption("Open access: local demo mode, no login.")
        else:
            st.caption(f"Signed in as {user}")
            st.button("Sign out", on_click=sign_out, key="sign_out")
    page = st.session_state["page"]
    if st.session_state.get("last_page") != page:  # a study opened again is a new view
        st.session_state.pop("once_view_study", None)
        st.session_state["last_page"] = page
    try:
        RENDER[page](res, user)
    except (CmrSearchError, SQLAlchemyError) as exc:
        _problem(exc)


def _problem(exc: Exception) -> None:
    if isinstance(exc, CmrSearchError):  # messages may quote what the user typed
        st.error(literal(str(exc)))
    else:  # the message may carry SQL and parameters: log the type only
        log.warning("catalog error in the UI: %s", type(exc).__name__)
        st.error(DATABASE_DOWN)


main()
