# SPDX-License-Identifier: GPL-3.0-or-later
"""The progress and report of calendar and contact imports, kept in the database.

An import runs in a thread of the process that received the file, but the browser
polls its progress from whichever process answers (several behind one port, or
several nodes on one PostgreSQL: DESIGN.md §8). So the state is a row of
``import_jobs``, never process memory: the running import writes its counts
(:meth:`ImportJobStore.save`, a few times a second at most, and at the end) and any
process reads them (:meth:`ImportJobStore.get`, for the job's owner only).

A process that dies mid-import leaves a row that stops moving: once nothing was
written for :data:`STALE_SECONDS`, the job reads as interrupted, so the page says so
instead of polling for ever. Rows go :data:`JOB_KEEP_SECONDS` after their last write,
when the next import starts.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.engine import Row

from groupware.core.audit import Clock, utc_now
from groupware.core.db import import_jobs, stored_utc

#: How many skipped items the report lists (all are counted).
MAX_REPORTED_SKIPS: Final = 200
#: How long a job stays readable after its last write.
JOB_KEEP_SECONDS: Final = 3600
#: A running import writes far more often than this (every half second it makes
#: progress; one item's PUT takes well under a second); silence this long means the
#: process that ran it is gone.
STALE_SECONDS: Final = 60
#: A report names items by UID, which a file may make arbitrarily long.
MAX_REPORTED_UID_CHARS: Final = 255
_ID_BYTES: Final = 12


@dataclass(slots=True)
class Progress:
    """The counts of a running import, kept by its thread between writes."""

    done: int = 0
    imported: int = 0
    skipped_count: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (uid, reason)

    def record(self, uid: str, reason: str | None) -> None:
        """Count one item: imported when ``reason`` is ``None``, else skipped for it."""
        self.done += 1
        if reason is None:
            self.imported += 1
            return
        self.skipped_count += 1
        if len(self.skipped) < MAX_REPORTED_SKIPS:
            self.skipped.append((_shortened(uid), reason))


@dataclass(frozen=True, slots=True)
class ImportJob:
    """One import as the progress page shows it (read from its row)."""

    id: str
    login: str
    total: int
    done: int
    imported: int
    skipped_count: int
    skipped: tuple[tuple[str, str], ...]  # (uid, reason), the first MAX_REPORTED_SKIPS
    is_finished: bool
    failed: bool
    #: Not finished and silent for STALE_SECONDS: its process stopped.
    is_interrupted: bool
    started_at: datetime
    updated_at: datetime

    @property
    def seconds(self) -> float:
        """How long it ran (until its last write)."""
        return (self.updated_at - self.started_at).total_seconds()


def _shortened(uid: str) -> str:
    if len(uid) <= MAX_REPORTED_UID_CHARS:
        return uid
    return uid[: MAX_REPORTED_UID_CHARS - 1] + "…"


class ImportJobStore:
    """Creates, updates and reads import jobs (thread-safe: all state is in the rows)."""

    def __init__(self, engine: Engine, clock: Clock = utc_now) -> None:
        self._engine = engine
        self._clock = clock
        self._stale = timedelta(seconds=STALE_SECONDS)

    def create(self, login: str, total: int) -> ImportJob:
        """A new job of ``total`` items for ``login``; jobs long silent are removed."""
        now = self._clock()
        job_id = secrets.token_urlsafe(_ID_BYTES)
        cutoff = now - timedelta(seconds=JOB_KEEP_SECONDS)
        with self._engine.begin() as conn:
            conn.execute(delete(import_jobs).where(import_jobs.c.updated_at < cutoff))
            conn.execute(
                insert(import_jobs).values(
                    id=job_id,
                    login=login,
                    total_count=total,
                    done_count=0,
                    imported_count=0,
                    skipped_count=0,
                    skipped="[]",
                    is_finished=False,
                    is_failed=False,
                    started_at=now,
                    updated_at=now,
                )
            )
        return ImportJob(
            id=job_id,
            login=login,
            total=total,
            done=0,
            imported=0,
            skipped_count=0,
            skipped=(),
            is_finished=False,
            failed=False,
            is_interrupted=False,
            started_at=now,
            updated_at=now,
        )

    def save(
        self, job_id: str, progress: Progress, *, is_finished: bool = False, failed: bool = False
    ) -> None:
        """Write the job's counts (one short transaction: callers choose how often)."""
        values = {
            "done_count": progress.done,
            "imported_count": progress.imported,
            "skipped_count": progress.skipped_count,
            "skipped": json.dumps(progress.skipped),
            "is_finished": is_finished,
            "is_failed": failed,
            "updated_at": self._clock(),
        }
        with self._engine.begin() as conn:
            conn.execute(update(import_jobs).where(import_jobs.c.id == job_id).values(**values))

    def get(self, job_id: str, login: str) -> ImportJob | None:
        """The job, if it is this person's (another's reads as absent)."""
        query = select(import_jobs).where(import_jobs.c.id == job_id, import_jobs.c.login == login)
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else self._from_row(row)

    def _from_row(self, row: Row[tuple[object, ...]]) -> ImportJob:
        updated_at = stored_utc(row.updated_at)
        is_finished = bool(row.is_finished)
        return ImportJob(
            id=row.id,
            login=row.login,
            total=row.total_count,
            done=row.done_count,
            imported=row.imported_count,
            skipped_count=row.skipped_count,
            skipped=tuple((str(uid), str(reason)) for uid, reason in json.loads(row.skipped)),
            is_finished=is_finished,
            failed=bool(row.is_failed),
            is_interrupted=not is_finished and self._clock() - updated_at > self._stale,
            started_at=stored_utc(row.started_at),
            updated_at=updated_at,
        )
