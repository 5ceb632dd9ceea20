"""Audit trail: who searched, viewed or exported what, and when.

The event is committed before the action it records goes ahead; when it cannot be
written the action must not happen, so the failure is raised, never swallowed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from catalog.models import AuditEvent
from cmrsearch.errors import CmrSearchError

MAX_DETAIL_CHARS = 2000


class AuditError(CmrSearchError):
    """The audit event could not be stored, so the action was refused."""


def record(sessions: sessionmaker[Session], user: str, action: str, **details: Any) -> None:
    clipped = {
        key: value[:MAX_DETAIL_CHARS] if isinstance(value, str) else value
        for key, value in details.items()
    }
    try:
        json.dumps(clipped)
    except (TypeError, ValueError):
        raise AuditError(
            f"the audit details of {action!r} are not JSON (a programming error); "
            "the action was not performed"
        ) from None
    try:
        with sessions.begin() as session:
            session.add(AuditEvent(user=user[:128], action=action[:32], details=clipped))
    except SQLAlchemyError as exc:
        raise AuditError(
            f"the audit log could not be written ({type(exc).__name__}), so the {action} was "
            "not performed; check that the catalog database is reachable"
        ) from None


def failed_logins(session: Session, user: str, window: timedelta) -> int:
    """Failed sign-ins of ``user`` within ``window``, since their last successful one."""
    since = datetime.now(UTC) - window
    last_ok = session.scalar(
        select(func.max(AuditEvent.created_at)).where(
            AuditEvent.user == user[:128], AuditEvent.action == "login"
        )
    )
    if last_ok is not None:
        last_ok = last_ok if last_ok.tzinfo else last_ok.replace(tzinfo=UTC)  # SQLite: naive
        since = max(since, last_ok)
    return int(
        session.scalar(
            select(func.count()).where(
                AuditEvent.user == user[:128],
                AuditEvent.action == "login_failed",
                AuditEvent.created_at > since,
            )
        )
        or 0
    )


def recent(session: Session, limit: int = 100) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)))
