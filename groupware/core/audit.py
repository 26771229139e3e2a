# SPDX-License-Identifier: GPL-3.0-or-later
"""The audit trail: logins, failures, password and account changes.

Each record goes to the ``audit_log`` table and to the ``groupware.audit``
logger. Secrets never reach either.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import Engine, String, insert, select

from groupware.core.db import audit_log

log = logging.getLogger("groupware.audit")

Clock = Callable[[], datetime]

#: The length of each bounded text column of ``audit_log``.
_MAX_CHARS: Final[dict[str, int]] = {
    column.name: column.type.length
    for column in audit_log.columns
    if isinstance(column.type, String) and column.type.length is not None
}


def utc_now() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One line of the audit trail."""

    at: datetime
    event: str
    actor: str
    subject: str
    protocol: str
    client: str
    outcome: str
    detail: str


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """A record to write (its time is the writer's clock)."""

    event: str
    actor: str
    outcome: str = "ok"
    subject: str = ""
    protocol: str = ""
    client: str = ""
    detail: str = ""


class Audit:
    """Writes and reads the audit trail."""

    def __init__(self, engine: Engine, clock: Clock = utc_now) -> None:
        self._engine = engine
        self._clock = clock

    def record(
        self,
        event: str,
        *,
        actor: str,
        outcome: str = "ok",
        subject: str = "",
        protocol: str = "",
        client: str = "",
        detail: str = "",
    ) -> None:
        """Append one record (its own transaction, so it survives a caller's rollback)."""
        self.record_many(
            [
                AuditEntry(
                    event,
                    actor=actor,
                    outcome=outcome,
                    subject=subject,
                    protocol=protocol,
                    client=client,
                    detail=detail,
                )
            ]
        )

    def record_many(self, entries: Sequence[AuditEntry]) -> None:
        """Append several records in one transaction of their own (a delivery batch's).

        Values longer than their column are cut to fit: they come from clients (a
        sender address, an MX host name) and PostgreSQL, unlike SQLite, refuses an
        over-long string, which would lose the record and fail the caller.
        """
        if not entries:
            return
        at = self._clock()
        rows = [
            {"at": at, "detail": entry.detail}
            | {name: getattr(entry, name)[:limit] for name, limit in _MAX_CHARS.items()}
            for entry in entries
        ]
        with self._engine.begin() as conn:
            conn.execute(insert(audit_log), rows)
        for entry in entries:
            log.info(
                "%s actor=%s subject=%s protocol=%s client=%s outcome=%s detail=%s",
                entry.event,
                entry.actor,
                entry.subject,
                entry.protocol,
                entry.client,
                entry.outcome,
                entry.detail,
            )

    def recent(
        self,
        limit: int = 100,
        subject: str | None = None,
        *,
        event_prefix: str = "",
        actor: str = "",
        since: datetime | None = None,
    ) -> list[AuditRecord]:
        """The newest records first, optionally filtered (subject, event, actor, date)."""
        query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if subject is not None:
            query = query.where(audit_log.c.subject == subject)
        if event_prefix:
            query = query.where(audit_log.c.event.startswith(event_prefix, autoescape=True))
        if actor:
            query = query.where(audit_log.c.actor == actor)
        if since is not None:
            query = query.where(audit_log.c.at >= since)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            AuditRecord(
                at=row.at,
                event=row.event,
                actor=row.actor,
                subject=row.subject,
                protocol=row.protocol,
                client=row.client,
                outcome=row.outcome,
                detail=row.detail,
            )
            for row in rows
        ]
