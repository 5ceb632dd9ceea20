"""`SearchEngine`: text -> studies, study -> studies, zero-shot findings, cohorts.

Resources (model, indexes) are loaded once and shared by threads: indexes are only
read after loading, search parameters travel with each query, and the catalog is
read through short-lived sessions with bound parameters.
"""

from __future__ import annotations

import csv
import io
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, selectinload

from catalog.db import session_factory
from catalog.models import Embedding, ModelVersion, Report, Study
from cmrclip.checkpoint import load_checkpoint
from cmrclip.metrics import zero_shot_scores
from cmrclip.prompts import PROMPTS
from cmrsearch.errors import CmrSearchError
from cmrsearch.vocabulary import FINDINGS
from search.embed import STUDY, ensure_model_version
from search.filters import Filters, allowed_study_ids
from search.index import VectorIndex
from search.sentences import SentenceCache
from search.store import open_index
from search.studies import Cine, StudyDetail, load_cines, study_detail

MAX_QUERY_CHARS = 2000
MAX_CALIBRATION_REPORTS = 20000
CONFIDENCE_MARGIN = 0.05
MAX_K = 1000
# Off-topic queries: how close they come to the archive's reports sets the confidence floor.
OFF_TOPIC = (
    "weather forecast for tomorrow",
    "fractured left radius on x-ray",
    "invoice number and payment terms",
    "recipe for tomato soup",
    "knee MRI with meniscal tear",
    "a cat sitting on a keyboard",
)
_SENTENCE = re.compile(r"(?<=[.;])\s+|\n+")
MAX_WARM_SENTENCES = 50_000  # encoded ahead (and kept on disk) when an archive has fewer


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if len(s.strip()) > 3]


class SearchError(CmrSearchError):
    """A query the engine cannot answer as asked."""


@dataclass
class Hit:
    study_uid: str
    score: float
    accession: str | None
    patient: str | None
    study_date: str | None
    institution: str | None
    manufacturer: str | None
    field_strength: float | None
    views: list[str]
    impression: str | None
    best_sentence: str | None = None
    best_view: str | None = None  # the cine view whose own vector is nearest the query


@dataclass
class Result:
    query: str
    hits: list[Hit]
    confident: bool
    floor: float
    offset: int
    k: int
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["message"] = None if self.confident else "no confident match"
        return out


class SearchEngine:
    def __init__(
        self,
        engine: Engine,
        home: Path,
        checkpoint: Path,
        device: str = "cpu",
        index_kind: str = "auto",
    ) -> None:
        self.catalog = engine
        self.sessions = session_factory(engine)
        self.home = home
        self.model = load_checkpoint(checkpoint, device)
        self.version = ensure_model_version(engine, checkpoint)
        self.index_kind = index_kind
        self._indexes: dict[str, VectorIndex | None] = {}
        self._lock = threading.Lock()
        self._floor: float | None = None
        self._reports: NDArray[np.float32] | None = None
        self._impression_texts: list[str] | None = None
        # (positive, negative) prompt texts -> their vectors
        self._prompts: dict[
            tuple[tuple[str, ...], tuple[str, ...]], tuple[NDArray[np.float32], NDArray[np.float32]]
        ] = {}
        self._impressions = SentenceCache(
            home / "cache" / f"sentences-{self.version}.npz",
            self._sentence_space,
            self.model.text.width,
        )

    # ---- resources -----------------------------------------------------------------
    def index(self, view: str = STUDY) -> VectorIndex | None:
        with self._lock:
            if view not in self._indexes:
                self._indexes[view] = open_index(
                    self.catalog, self.home, self.version, view, self.index_kind
                )
            return self._indexes[view]

    def refresh(self) -> None:
        """Pick up new or deleted vectors (after `cmrsearch embed` or a deletion)."""
        with self._lock:
            self._indexes.clear()
            self._floor = None
            self._reports = None
            self._impression_texts = None

    def impressions(self) -> list[str]:
        """The archive's distinct impressions (read once per engine)."""
        with self._lock:
            if self._impression_texts is None:
                with self.sessions() as session:
                    self._impression_texts = list(
                        session.scalars(
                            select(Report.impression).distinct().limit(MAX_CALIBRATION_REPORTS)
                        )
                    )
            return self._impression_texts

    def report_vectors(self) -> NDArray[np.float32]:
        """Sentence vectors of the archive's distinct impressions (once per engine)."""
        texts = self.impressions()
        with self._lock:
            if self._reports is None:
                self._reports = self._impressions.vectors(texts)
            return self._reports

    def _sentence_space(self, texts: list[str]) -> NDArray[np.float32]:
        """The text encoder's own sentence embedding (before the learned projection): the
        space where "is this about the same thing" is best answered."""
        if not texts:
            return np.zeros((0, self.model.text.width), np.float32)
        with torch.no_grad():
            parts = [
                torch.nn.functional.normalize(self.model.text.features(texts[i : i + 256]), dim=-1)
                .float()
                .cpu()
                .numpy()
                for i in range(0, len(texts), 256)
            ]
        return np.concatenate(parts)

    def _encode_query(self, text: str) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """One transformer pass gives both the shared-space query (1, D) and its
        sentence-space vector (width,)."""
        with torch.no_grad():
            features, negated = self.model.text.split_features([text])
            query = self.model.text_embeddings(features=features, negated=negated)
            sentence = torch.nn.functional.normalize(features, dim=-1)
        return query.float().cpu().numpy(), sentence[0].float().cpu().numpy()

    def floor(self) -> float:
        """How close off-topic text comes to any report of this archive: a query must come
        closer to be a confident match. Text against text, so it holds however well the
        video tower is trained."""
        if self._floor is None:
            reports = self.report_vectors()
            if len(reports) == 0:
                return 1.0
            off_topic = self._sentence_space(list(OFF_TOPIC)) @ reports.T
            self._floor = float(off_topic.max()) + CONFIDENCE_MARGIN
        return self._floor

    def confident(self, text: str, sentence: NDArray[np.float32] | None = None) -> bool:
        reports = self.report_vectors()
        if not len(reports):
            return False
        if sentence is None:
            sentence = self._sentence_space([text])[0]
        return float((reports @ sentence).max()) >= self.floor()

    # ---- queries -------------------------------------------------------------------
    def search(
        self,
        text: str,
        k: int = 10,
        offset: int = 0,
        filters: Filters | None = None,
        view: str = STUDY,
    ) -> Result:
        text = _check_text(text)
        k, offset = _check_k(k), max(int(offset), 0)
        timings: dict[str, float] = {}
        start = time.perf_counter()
        query, sentence = self._encode_query(text)
        timings["encode"] = time.perf_counter() - start
        hits, _ = self._nearest(query, k + offset, filters or Filters(), view, timings)
        start = time.perf_counter()
        confident = self.confident(text, sentence)
        timings["encode"] += time.perf_counter() - start
        start = time.perf_counter()
        results = self._describe(hits[offset : offset + k], (query[0], sentence))
        timings["catalog"] = timings.get("catalog", 0.0) + time.perf_counter() - start
        seconds = {name: round(value, 4) for name, value in timings.items()}
        return Result(text, results, confident, self.floor(), offset, k, seconds)

    def similar(
        self,
        study_uid: str,
        k: int = 10,
        exclude_same_patient: bool = False,
        filters: Filters | None = None,
    ) -> Result:
        k = _check_k(k)
        with self.sessions() as session:
            study = session.scalars(select(Study).where(Study.study_uid == study_uid)).first()
            if study is None:
                raise SearchError(f"no study with UID {study_uid[:64]!r} in the catalog")
            vector = session.scalars(
                select(Embedding.vector).where(
                    Embedding.study_id == study.id,
                    Embedding.model_version_id == self.version,
                    Embedding.view == STUDY,
                )
            ).first()
            excluded = {study.id}
            if exclude_same_patient and study.patient_id is not None:
                excluded |= set(
                    session.scalars(select(Study.id).where(Study.patient_id == study.patient_id))
                )
        if vector is None:
            raise SearchError(
                f"study {study_uid[:64]} has no vector for model {self.version}; "
                "run `cmrsearch embed`"
            )
        query = np.frombuffer(vector, "<f4")[None, :].astype(np.float32)
        timings: dict[str, float] = {}
        hits, _ = self._nearest(
            query, k + len(excluded), filters or Filters(), STUDY, timings, excluded
        )
        return Result(study_uid, self._describe(hits[:k], None), True, self.floor(), 0, k, timings)

    def classify(self, study_uid: str) -> dict[str, dict[str, float]]:
        """Zero-shot probability per finding, with the thresholds chosen in evaluation."""
        with self.sessions() as session:
            if session.scalar(select(Study.id).where(Study.study_uid == study_uid)) is None:
                raise SearchError(f"no study with UID {study_uid[:64]!r} in the catalog")
        found = self.classify_many([study_uid])
        if study_uid not in found:
            raise SearchError(f"study {study_uid[:64]} has no vector yet; run `cmrsearch embed`")
        return found[study_uid]

    def _evaluation(self) -> dict[str, Any]:
        with self.sessions() as session:
            version = session.get(ModelVersion, self.version)
            metrics = (version.metrics if version else None) or {}
        return dict(metrics.get("evaluation", {}))

    def thresholds(self) -> dict[str, float]:
        """Per-finding zero-shot thresholds that `cmrsearch evaluate` registered for the
        active model; empty before evaluation, when probabilities mean little."""
        return dict(self._evaluation().get("thresholds", {}))

    def validated_findings(self, min_auc: float = 0.75) -> set[str]:
        """Findings whose held-out zero-shot AUC reached `min_auc` in every evaluated
        cohort: the ones whose probabilities a reader may be shown as findings."""
        out = set()
        for finding, cohorts in self._evaluation().get("zero_shot", {}).items():
            aucs = [
                float(v["auc"])
                for v in cohorts.values()
                if isinstance(v, dict) and v.get("auc") is not None and v["auc"] == v["auc"]
            ]  # a NaN AUC (no positives in a cohort) is not a measurement
            if aucs and min(aucs) >= min_auc:
                out.add(finding)
        return out

    def calibrated(self) -> bool:
        return bool(self.thresholds())

    def classify_many(self, study_uids: list[str]) -> dict[str, dict[str, dict[str, float]]]:
        """`classify` for many studies in one catalog query; studies without a vector
        for the active model are left out."""
        with self.sessions() as session:
            rows = session.execute(
                select(Study.study_uid, Embedding.vector)
                .join(Embedding, Embedding.study_id == Study.id)
                .where(
                    Study.study_uid.in_(study_uids),
                    Embedding.model_version_id == self.version,
                    Embedding.view == STUDY,
                )
            ).all()
        if not rows:
            return {}
        evaluation = self._evaluation()
        thresholds = dict(evaluation.get("thresholds", {}))
        vectors = np.stack([np.frombuffer(v, "<f4") for _, v in rows])
        out: dict[str, dict[str, dict[str, float]]] = {uid: {} for uid, _ in rows}
        for finding in FINDINGS:
            pos, neg = self._prompt_vectors(finding, evaluation.get("prompts", {}))
            scores = zero_shot_scores(vectors, pos, neg)
            threshold = float(thresholds.get(finding, 0.0))
            # A logistic around the evaluation threshold: 0.5 exactly at the cut.
            probabilities = 1.0 / (1.0 + np.exp(-(scores - threshold) * 40.0))
            for (uid, _), score, probability in zip(rows, scores, probabilities, strict=True):
                out[uid][finding] = {
                    "probability": round(float(probability), 4),
                    "score": round(float(score), 4),
                    "threshold": round(threshold, 4),
                }
        return out

    def cohort(
        self,
        text: str | None = None,
        findings: list[str] | None = None,
        min_score: float | None = None,
        top: int | None = None,
        filters: Filters | None = None,
    ) -> list[Hit]:
        if not text and not findings:
            raise SearchError("a cohort needs a query text or findings")
        unknown = [f for f in findings or [] if f not in FINDINGS]
        if unknown:
            raise SearchError(f"unknown finding {unknown[0]!r}; use {', '.join(FINDINGS)}")
        query_text = (
            _check_text(text) if text else " ".join(PROMPTS[f][0][0] for f in findings or [])
        )
        index = self.index()
        limit = min(top or MAX_K, MAX_K, index.ntotal if index else 0)
        if limit == 0:
            return []
        query, sentence = self._encode_query(query_text)
        hits, _ = self._nearest(query, limit, filters or Filters(), STUDY, {})
        if min_score is not None:
            hits = [h for h in hits if h[1] >= min_score]
        return self._describe(hits, (query[0], sentence))

    def study(self, study_uid: str) -> StudyDetail:
        with self.sessions() as session:
            return study_detail(session, study_uid)

    def cines(self, detail: StudyDetail) -> list[Cine]:
        return load_cines(self.home, detail)

    # ---- internals -----------------------------------------------------------------
    def _nearest(
        self,
        query: NDArray[np.float32],
        n: int,
        filters: Filters,
        view: str,
        timings: dict[str, float],
        excluded: set[int] | None = None,
    ) -> tuple[list[tuple[int, float]], float]:
        start = time.perf_counter()
        with self.sessions() as session:
            allowed = allowed_study_ids(session, filters)
        if excluded and allowed is not None:
            allowed -= excluded  # else dropped after the search; the caller over-fetches
        timings["catalog"] = time.perf_counter() - start
        index = self.index(view)
        if index is None or n == 0 or (allowed is not None and not allowed):
            return [], -1.0
        start = time.perf_counter()
        ids_allowed = np.fromiter(allowed, np.int64) if allowed is not None else None
        scores, ids = index.search(query, min(n, index.ntotal), allowed_ids=ids_allowed)
        timings["ann"] = time.perf_counter() - start
        hits = [
            (int(i), float(s))
            for i, s in zip(ids[0], scores[0], strict=True)
            if i >= 0 and (not excluded or int(i) not in excluded)
        ]
        return hits, (hits[0][1] if hits else -1.0)

    def _describe(
        self,
        hits: list[tuple[int, float]],
        query: tuple[NDArray[np.float32], NDArray[np.float32]] | None,
    ) -> list[Hit]:
        """Catalog facts per hit; with the query's (shared-space, sentence-space) vectors
        also the view nearest the query and the impression sentence that matches it."""
        if not hits:
            return []
        ids = [h[0] for h in hits]
        with self.sessions() as session:
            studies = {
                s.id: s
                for s in session.scalars(
                    select(Study)
                    .where(Study.id.in_(ids))
                    .options(
                        selectinload(Study.series),
                        selectinload(Study.patient),
                        selectinload(Study.report),
                    )
                )
            }
            views = self._best_views(session, ids, query[0]) if query is not None else {}
            out = [
                self._hit(studies[i], score, query[1] if query else None, views.get(i))
                for i, score in hits
                if i in studies
            ]
        return out

    def _best_views(
        self, session: Session, study_ids: list[int], query: NDArray[np.float32]
    ) -> dict[int, str]:
        best: dict[int, tuple[float, str]] = {}
        rows = session.execute(
            select(Embedding.study_id, Embedding.view, Embedding.vector).where(
                Embedding.study_id.in_(study_ids),
                Embedding.model_version_id == self.version,
                Embedding.view != STUDY,
            )
        )
        for study_id, view, vector in rows:
            score = float(np.frombuffer(vector, "<f4") @ query)
            if study_id not in best or score > best[study_id][0]:
                best[study_id] = (score, view)
        return {study_id: view for study_id, (_, view) in best.items()}

    def _hit(
        self,
        study: Study,
        score: float,
        sentence: NDArray[np.float32] | None,
        best_view: str | None = None,
    ) -> Hit:
        impression = study.report.impression if study.report else None
        return Hit(
            study_uid=study.study_uid,
            score=round(score, 4),
            accession=study.accession,
            patient=study.patient.pseudo_id if study.patient else None,
            study_date=study.study_date.isoformat() if study.study_date else None,
            institution=study.institution,
            manufacturer=study.manufacturer,
            field_strength=study.field_strength,
            views=sorted({s.view for s in study.series if s.view != "other"}),
            impression=impression,
            best_sentence=self._best_sentence(impression, sentence)
            if impression is not None and sentence is not None
            else None,
            best_view=best_view,
        )

    def _best_sentence(self, impression: str, query: NDArray[np.float32]) -> str | None:
        """The impression sentence closest to the query text, compared in the sentence
        encoder's own space (text against text), where wording is matched best."""
        sentences = split_sentences(impression)
        if not sentences:
            return None
        vectors = self._impressions.vectors(sentences, persist=False)
        return sentences[int(np.argmax(vectors @ query))]

    def warm_up(self) -> None:
        """Load what the first query would otherwise wait for: indexes, the confidence
        floor over the archive's reports, prompt vectors."""
        self.index()
        self.floor()
        checked = self._evaluation().get("prompts", {})
        for finding in FINDINGS:
            self._prompt_vectors(finding, checked)
        sentences = {s for text in self.impressions() for s in split_sentences(text)}
        if len(sentences) <= MAX_WARM_SENTENCES:  # reports repeat their sentences a lot
            self._impressions.vectors(sorted(sentences))

    def _prompt_vectors(
        self, finding: str, checked: dict[str, dict[str, list[str]]]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """``checked``: the prompts evaluation kept for this model (its thresholds were set
        on their scores); a finding it did not check scores with all of `PROMPTS`."""
        kept = checked.get(finding, {})
        pos = tuple(kept.get("positive") or PROMPTS[finding][0])
        neg = tuple(kept.get("negative") or PROMPTS[finding][1])
        with self._lock:
            if (pos, neg) not in self._prompts:
                self._prompts[pos, neg] = (
                    self.model.encode_text(list(pos)),
                    self.model.encode_text(list(neg)),
                )
            return self._prompts[pos, neg]


def _check_text(text: str) -> str:
    text = (text or "").strip()
    if not text:
        raise SearchError("the query text is empty; type what you are looking for")
    if len(text) > MAX_QUERY_CHARS:
        raise SearchError(
            f"the query is {len(text)} characters long; keep it under {MAX_QUERY_CHARS}"
        )
    return text


def _check_k(k: int) -> int:
    if not 1 <= int(k) <= MAX_K:
        raise SearchError(f"k={k} is out of range; ask for 1 to {MAX_K} results")
    return int(k)


CSV_COLUMNS = ("study_uid", "accession", "patient", "study_date", "score", "matched_sentence")


def cohort_csv(hits: list[Hit]) -> str:
    """CSV: study UID, accession, pseudonymous patient, date, score, matched sentence."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for h in hits:
        writer.writerow(
            [
                h.study_uid,
                h.accession,
                h.patient,
                h.study_date,
                f"{h.score:.4f}",
                _csv_safe(h.best_sentence or ""),
            ]
        )
    return buffer.getvalue()


def export_cohort(hits: list[Hit], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        fh.write(cohort_csv(hits))
    return path


def _csv_safe(text: str) -> str:
    # A cell starting with = + - @ runs as a formula in spreadsheets: neutralise it.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
