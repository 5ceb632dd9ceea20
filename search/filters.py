"""Metadata filters on catalog fields, parsed from KEY=VALUE and applied in SQL.

All values reach the database as bound parameters; an unknown key or a malformed
value is a one-line error naming the key and what is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date
from typing import Any

from sqlalchemy import Select, exists, select
from sqlalchemy.orm import Session

from catalog.models import Patient, Series, Study
from cmrsearch.errors import CmrSearchError
from cmrsearch.vocabulary import VIEWS


class FilterError(CmrSearchError):
    """A filter the engine cannot apply."""


@dataclass(frozen=True)
class Filters:
    date_from: date | None = None
    date_to: date | None = None
    manufacturer: str | None = None  # case-insensitive substring
    institution: str | None = None
    field_strength: float | None = None
    sex: str | None = None
    age_min: int | None = None
    age_max: int | None = None
    views: tuple[str, ...] = ()  # every listed view must be present
    has_lge: bool | None = None
    patient: str | None = None  # pseudonymous id

    @property
    def empty(self) -> bool:
        return self == Filters()


KEYS = {f.name for f in fields(Filters)}


def _date(key: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise FilterError(f"{key}={value!r} is not a date; use YYYY-MM-DD") from None


def _number(key: str, value: str, kind: type[int] | type[float]) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise FilterError(f"{key}={value!r} is not a number") from None


def parse_filters(items: list[str] | dict[str, Any]) -> Filters:
    pairs = items.items() if isinstance(items, dict) else [_split(i) for i in items]
    values: dict[str, Any] = {}
    for key, raw in pairs:
        if key not in KEYS:
            raise FilterError(f"unknown filter {key!r}; use one of {', '.join(sorted(KEYS))}")
        value = str(raw).strip()
        if key in ("date_from", "date_to"):
            values[key] = _date(key, value)
        elif key in ("age_min", "age_max"):
            values[key] = _number(key, value, int)
        elif key == "field_strength":
            values[key] = _number(key, value, float)
        elif key == "sex":
            if value.upper() not in ("M", "F", "O"):
                raise FilterError(f"sex={value!r}; use M, F or O")
            values[key] = value.upper()
        elif key == "views":
            views = tuple(v.strip().lower() for v in value.split(",") if v.strip())
            unknown = [v for v in views if v not in VIEWS]
            if unknown:
                raise FilterError(f"unknown view {unknown[0]!r}; use {', '.join(VIEWS)}")
            values[key] = views
        elif key == "has_lge":
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise FilterError(f"has_lge={value!r}; use true or false")
            values[key] = value.lower() in ("true", "1", "yes")
        else:
            values[key] = value[:128]
    return Filters(**values)


def _split(item: str) -> tuple[str, str]:
    if "=" not in item:
        raise FilterError(f"filter {item!r} is not KEY=VALUE")
    key, value = item.split("=", 1)
    return key.strip(), value


def allowed_study_ids(session: Session, filters: Filters) -> set[int] | None:
    """Study ids passing the filters; None when there is no filter."""
    if filters.empty:
        return None
    return set(session.scalars(apply(select(Study.id), filters)))


def apply(query: Select[Any], f: Filters) -> Select[Any]:
    if f.date_from:
        query = query.where(Study.study_date >= f.date_from)
    if f.date_to:
        query = query.where(Study.study_date <= f.date_to)
    if f.manufacturer:
        query = query.where(Study.manufacturer.ilike(f"%{_escape(f.manufacturer)}%", escape="\\"))
    if f.institution:
        query = query.where(Study.institution.ilike(f"%{_escape(f.institution)}%", escape="\\"))
    if f.field_strength is not None:
        query = query.where(
            Study.field_strength.between(f.field_strength - 0.05, f.field_strength + 0.05)
        )
    if f.sex:
        query = query.where(Study.patient_sex == f.sex)
    if f.age_min is not None:
        query = query.where(Study.patient_age >= f.age_min)
    if f.age_max is not None:
        query = query.where(Study.patient_age <= f.age_max)
    for view in f.views:
        query = query.where(exists().where(Series.study_id == Study.id, Series.view == view))
    if f.has_lge is not None:
        lge = exists().where(Series.study_id == Study.id, Series.view.in_(("lge_sax", "lge_lax")))
        query = query.where(lge if f.has_lge else ~lge)
    if f.patient:
        query = query.where(
            Study.patient_id.in_(select(Patient.id).where(Patient.pseudo_id == f.patient))
        )
    return query


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
