"""What every session shares, loaded once per server process (`st.cache_resource`):
settings, the catalog engine and the search engine (model + indexes, thread-safe)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from catalog.db import make_engine, session_factory
from catalog.schema import require_head
from cmrsearch.errors import CmrSearchError
from cmrsearch.settings import Settings, load_settings
from search.engine import SearchEngine
from search.studies import Cine, StudyDetail
from ui.cine import gif, png


@dataclass
class Resources:
    settings: Settings
    home: Path
    catalog: Engine
    sessions: sessionmaker[Session]
    search: SearchEngine | None
    search_problem: str | None  # why search is unavailable, in one line


@st.cache_resource(show_spinner="Loading the catalog, the model and the index…")
def resources() -> Resources:
    settings = load_settings()
    home = settings.ensure_home()
    catalog = make_engine(settings.resolved_database_url)
    require_head(catalog)
    search, problem = None, None
    if settings.model is None:
        problem = (
            "No model is configured: set CMRSEARCH_MODEL to a checkpoint written by "
            "`cmrsearch train`, then restart `cmrsearch serve`."
        )
    else:
        try:
            search = SearchEngine(catalog, home, settings.model, settings.resolved_device())
            search.warm_up()  # the first user's query should not pay for calibration
        except CmrSearchError as exc:
            problem = f"The model cannot be loaded: {exc}"
    return Resources(settings, home, catalog, session_factory(catalog), search, problem)


@st.cache_data(max_entries=512, show_spinner=False)
def cine_gif(clip_file: str, view: str, _cine: Cine, size: int) -> bytes:
    """Encoded once per (cached clip file, view, size): the file name changes whenever
    the indexer rewrites a study, so a stale image is never served."""
    return gif(_cine.frames, _cine.frame_ms, size)


@st.cache_data(max_entries=2048, show_spinner=False)
def cine_frame(clip_file: str, view: str, index: int, _cine: Cine, size: int) -> bytes:
    return png(_cine.frames[index], size)


@st.cache_resource(max_entries=256, show_spinner=False)
def study_cines(_res: Resources, clip_file: str, _detail: StudyDetail) -> list[Cine]:
    """A study's decoded cines, read once per clip file (reruns for a widget click do
    not reread it); shared read-only by every session."""
    assert _res.search is not None
    return _res.search.cines(_detail)


def cines(res: Resources, detail: StudyDetail) -> list[Cine]:
    return study_cines(res, detail.clip_file or "", detail) if detail.clip_file else []
