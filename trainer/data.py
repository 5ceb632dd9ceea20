"""Training pairs from the catalog: cached clips + report impressions, split by patient."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Engine, select

from catalog.db import session_factory
from catalog.models import Clip, Patient, Report, Study
from cmrclip.clipfile import load_clips
from cmrsearch.errors import CmrSearchError
from trainer.statements import text_key

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
    report: str  # the whole text: its findings section adds statements to the impression's
    clips: Clips


def load_pairs(engine: Engine, home: Path) -> list[Pair]:
    """Every study with clips and a linked report, its clips loaded into memory."""
    with session_factory(engine)() as session:
        rows = session.execute(
            select(Study.id, Study.study_uid, Patient.pseudo_id, Report.impression, Report.text)
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
    for study_id, uid, patient, impression, text in studies_with_clips:
        path = home / paths[study_id]
        if not path.is_file():
            raise TrainingDataError(
                f"clip file {paths[study_id]} is missing; re-run `cmrsearch index` on the archive"
            )
        pairs.append(
            Pair(study_id, uid, patient or uid, impression.strip(), text, load_clips(path))
        )
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


def impression_groups(impressions: list[str]) -> NDArray[np.int64]:
    """Group ids of impressions with equal keys; the loss treats a group as positives."""
    keys: dict[str, int] = {}
    return np.array(
        [keys.setdefault(text_key(text), len(keys)) for text in impressions], dtype=np.int64
    )


def write_train_studies(checkpoint: Path, pairs: list[Pair]) -> None:
    """Evaluation must know which studies a model saw (thresholds come only from them)."""
    (checkpoint / TRAIN_STUDIES).write_text(json.dumps(sorted(p.study_uid for p in pairs)))


def read_train_studies(checkpoint: Path) -> set[str]:
    path = checkpoint / TRAIN_STUDIES
    return set(json.loads(path.read_text())) if path.is_file() else set()
