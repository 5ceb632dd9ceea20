"""Training pairs from the catalog: cached clips + report impressions, split by patient."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Engine, select

from catalog.db import session_factory
from catalog.models import Clip, Patient, Report, Study
from cmrclip.clipfile import load_clips
from cmrsearch.errors import CmrSearchError

Clips = dict[str, NDArray[np.uint8]]
TRAIN_STUDIES = "train_studies.json"  # beside a checkpoint: the studies it learned from


class TrainingDataError(CmrSearchError):
    """The catalog cannot provide training pairs."""


@dataclass
class Pair:
    study_id: int
    study_uid: str
    patient: str
    impression: str
    clips: Clips


def load_pairs(engine: Engine, home: Path) -> list[Pair]:
    """Every study with clips and a linked report, its clips loaded into memory."""
    with session_factory(engine)() as session:
        rows = session.execute(
            select(Study.id, Study.study_uid, Patient.pseudo_id, Report.impression)
            .join(Report, Report.study_id == Study.id)
            .outerjoin(Patient, Patient.id == Study.patient_id)
            .order_by(Study.id)
        ).all()
        paths = dict(session.execute(select(Clip.study_id, Clip.path).distinct()).all())
    studies_with_clips = [r for r in rows if r[0] in paths]
    if not studies_with_clips:
        raise TrainingDataError(
            "the catalog holds no study with both clips and a linked report; run "
            "`cmrsearch index PATH --reports FILE` first"
        )
    pairs = []
    for study_id, uid, patient, impression in studies_with_clips:
        path = home / paths[study_id]
        if not path.is_file():
            raise TrainingDataError(
                f"clip file {paths[study_id]} is missing; re-run `cmrsearch index` on the archive"
            )
        pairs.append(Pair(study_id, uid, patient or uid, impression.strip(), load_clips(path)))
    return pairs


def split_by_patient(
    pairs: list[Pair], val_fraction: float, seed: int
) -> tuple[list[Pair], list[Pair]]:
    """A patient's studies all land on one side (follow-ups never leak into validation)."""

    def bucket(patient: str) -> float:
        digest = hashlib.sha256(f"{seed}:{patient}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    cut = val_fraction
    patients = sorted({p.patient for p in pairs}, key=bucket)
    if val_fraction > 0 and len(patients) >= 5 and bucket(patients[0]) >= cut:
        cut = bucket(patients[0]) + 1e-12  # a small archive still gets one validation patient
    train = [p for p in pairs if bucket(p.patient) >= cut]
    val = [p for p in pairs if bucket(p.patient) < cut]
    if not train:
        raise TrainingDataError(
            f"all {len(pairs)} studies fell into validation; index more "
            "studies or lower the validation fraction"
        )
    return train, val


_NUMBERS = re.compile(r"\d+(\.\d+)?")
_PUNCT = re.compile(r"[^a-z ]+")
_ITEM_NUMBER = re.compile(r"^\s*\d+[.)]\s*")  # "2. " or "2) " of a numbered impression
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")  # "62%. No LGE": not "2.5 cm"


def text_key(text: str) -> str:
    """Case, numbers and punctuation ignored: "LVEF 62%." and "LVEF 65%." say one thing."""
    return " ".join(_PUNCT.sub(" ", _NUMBERS.sub(" ", text.lower())).split())


def impression_groups(impressions: list[str]) -> NDArray[np.int64]:
    """Group ids of impressions with equal keys; the loss treats a group as positives."""
    keys: dict[str, int] = {}
    return np.array(
        [keys.setdefault(text_key(text), len(keys)) for text in impressions], dtype=np.int64
    )


def impression_statements(impression: str) -> list[str]:
    """The statements of an impression, in order: numbered items, then sentences."""
    out = []
    for line in impression.splitlines():
        line = _ITEM_NUMBER.sub("", line).strip()
        out += [s.strip() for s in _SENTENCE_END.split(line) if s.strip()]
    return out


@dataclass
class Statements:
    """Distinct statements of a set of impressions and which impression makes which."""

    texts: list[str]  # one wording per key (the first seen)
    made: NDArray[np.bool_]  # (impressions, statements)


def statement_table(impressions: list[str]) -> Statements:
    keys: dict[str, int] = {}
    texts: list[str] = []
    rows: list[set[int]] = []
    for impression in impressions:
        row = set()
        for statement in impression_statements(impression):
            key = text_key(statement)
            if key and key not in keys:
                keys[key] = len(texts)
                texts.append(statement)
            if key:
                row.add(keys[key])
        rows.append(row)
    made = np.zeros((len(impressions), len(texts)), bool)
    for i, row in enumerate(rows):
        made[i, list(row)] = True
    return Statements(texts, made)


def write_train_studies(checkpoint: Path, pairs: list[Pair]) -> None:
    """Evaluation must know which studies a model saw (thresholds come only from them)."""
    (checkpoint / TRAIN_STUDIES).write_text(json.dumps(sorted(p.study_uid for p in pairs)))


def read_train_studies(checkpoint: Path) -> set[str]:
    path = checkpoint / TRAIN_STUDIES
    return set(json.loads(path.read_text())) if path.is_file() else set()
