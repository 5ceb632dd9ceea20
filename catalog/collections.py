"""Collections: teaching files and saved cohorts, an ordered list of studies with notes."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from catalog.db import transaction
from catalog.models import Collection, CollectionItem, Study, utcnow
from cmrsearch.errors import CmrSearchError

MAX_NAME = 200
MAX_NOTE = 5000
KINDS = ("teaching", "cohort")


class CollectionError(CmrSearchError):
    """A collection operation that cannot be done as asked."""


@dataclass(frozen=True)
class CollectionSummary:
    id: int
    name: str
    kind: str
    owner: str | None
    items: int
    updated_at: datetime


def check_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise CollectionError("the collection name is empty; type a name")
    if len(name) > MAX_NAME:
        raise CollectionError(f"the collection name is longer than {MAX_NAME} characters")
    if any(ch in name for ch in "/\\") or name in (".", ".."):
        raise CollectionError(
            "collection names cannot contain / or \\ (they name export files); use a dash instead"
        )
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise CollectionError("the collection name contains control characters; retype it")
    return name


def _note(note: str | None) -> str | None:
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise CollectionError(f"the note is longer than {MAX_NOTE} characters; shorten it")
    return note or None


def create(
    sessions: sessionmaker[Session],
    name: str,
    owner: str | None,
    kind: str = "teaching",
    description: str | None = None,
) -> int:
    name = check_name(name)
    if kind not in KINDS:
        raise CollectionError(f"unknown collection kind {kind!r}; use {' or '.join(KINDS)}")
    try:
        with transaction(sessions) as session:
            collection = Collection(name=name, kind=kind, owner=owner, description=description)
            session.add(collection)
            session.flush()
            return collection.id
    except IntegrityError:
        raise CollectionError(
            f"a collection named {name!r} exists already; choose another name"
        ) from None


def summaries(session: Session) -> list[CollectionSummary]:
    counts = (
        select(CollectionItem.collection_id, func.count().label("n"))
        .group_by(CollectionItem.collection_id)
        .subquery()
    )
    rows = session.execute(
        select(Collection, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.collection_id == Collection.id)
        .order_by(Collection.updated_at.desc(), Collection.id.desc())
    )
    return [CollectionSummary(c.id, c.name, c.kind, c.owner, int(n), c.updated_at) for c, n in rows]


def get(session: Session, collection_id: int) -> Collection:
    collection = session.scalars(
        select(Collection)
        .where(Collection.id == collection_id)
        .options(
            selectinload(Collection.items)
            .selectinload(CollectionItem.study)
            .selectinload(Study.report)
        )
    ).first()
    if collection is None:
        raise CollectionError("that collection no longer exists; it may have been deleted")
    return collection


def _study_id(session: Session, study_uid: str) -> int:
    study_id = session.scalar(select(Study.id).where(Study.study_uid == study_uid))
    if study_id is None:
        raise CollectionError(
            "that study is no longer in the catalog (it may have been deleted); "
            "search again and pick another"
        )
    return study_id


def _item(session: Session, collection_id: int, study_uid: str) -> CollectionItem:
    item = session.scalars(
        select(CollectionItem)
        .join(Study, Study.id == CollectionItem.study_id)
        .where(CollectionItem.collection_id == collection_id, Study.study_uid == study_uid)
    ).first()
    if item is None:
        raise CollectionError("that study is not in this collection (any more)")
    return item


def _touch(session: Session, collection_id: int) -> None:
    collection = session.get(Collection, collection_id)
    if collection is None:
        raise CollectionError("that collection no longer exists; it may have been deleted")
    collection.updated_at = utcnow()


def add(
    sessions: sessionmaker[Session],
    collection_id: int,
    study_uid: str,
    note: str | None = None,
    score: float | None = None,
) -> None:
    note = _note(note)
    try:
        with transaction(sessions) as session:
            _touch(session, collection_id)
            study_id = _study_id(session, study_uid)
            last = session.scalar(
                select(func.max(CollectionItem.position)).where(
                    CollectionItem.collection_id == collection_id
                )
            )
            session.add(
                CollectionItem(
                    collection_id=collection_id,
                    study_id=study_id,
                    position=(last if last is not None else -1) + 1,
                    note=note,
                    score=score,
                )
            )
    except IntegrityError:
        raise CollectionError("that study is in this collection already") from None


def set_note(
    sessions: sessionmaker[Session], collection_id: int, study_uid: str, note: str | None
) -> None:
    note = _note(note)
    with transaction(sessions) as session:
        _touch(session, collection_id)
        _item(session, collection_id, study_uid).note = note


def move(sessions: sessionmaker[Session], collection_id: int, study_uid: str, step: int) -> None:
    """Move a study up (step < 0) or down (step > 0) in the collection's order."""
    with transaction(sessions) as session:
        _touch(session, collection_id)
        items = list(
            session.scalars(
                select(CollectionItem)
                .where(CollectionItem.collection_id == collection_id)
                .order_by(CollectionItem.position, CollectionItem.id)
            )
        )
        item = _item(session, collection_id, study_uid)
        here = items.index(item)
        there = min(max(here + step, 0), len(items) - 1)
        items.insert(there, items.pop(here))
        for position, each in enumerate(items):
            each.position = position


def remove(sessions: sessionmaker[Session], collection_id: int, study_uid: str) -> None:
    with transaction(sessions) as session:
        _touch(session, collection_id)
        session.delete(_item(session, collection_id, study_uid))


def delete(sessions: sessionmaker[Session], collection_id: int) -> None:
    with transaction(sessions) as session:
        collection = session.get(Collection, collection_id)
        if collection is not None:
            session.delete(collection)
