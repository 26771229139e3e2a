# SPDX-License-Identifier: GPL-3.0-or-later
"""The audit trail: logins, failures, password and account changes.

Each record goes to the ``audit_log`` table and to the ``groupware.audit``
logger. Secrets never reach either.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, insert, select

from groupware.core.db import audit_log

log = logging.getLogger("groupware.audit")

Clock = Callable[[], datetime]


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
        at = self._clock()
        with self._engine.begin() as conn:
            conn.execute(
                insert(audit_log).values(
                    at=at,
                    event=event,
                    actor=actor,
                    subject=subject,
                    protocol=protocol,
                    client=client,
                    outcome=outcome,
                    detail=detail,
                )
            )
        log.info(
            "%s actor=%s subject=%s protocol=%s client=%s outcome=%s detail=%s",
            event,
            actor,
            subject,
            protocol,
            client,
            outcome,
            detail,
        )

    def recent(self, limit: int = 100, subject: str | None = None) -> list[AuditRecord]:
        """The newest records first, optionally about one subject."""
        query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if subject is not None:
            query = query.where(audit_log.c.subject == subject)
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
