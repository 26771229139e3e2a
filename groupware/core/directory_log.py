# SPDX-License-Identifier: GPL-3.0-or-later
"""The directory's change log: which people the directory address books must re-send.

Every transaction that changes what a person's directory card shows (a new person,
a name, a school, an account disabled) records ``(person, school)`` pairs under a
new revision; a person who moves records both schools, so that each school's book
hears of the arrival or the departure. The revision is one row, bumped with
``UPDATE ... RETURNING``: its row lock holds other writers until commit, so
revisions are given in commit order and a reader that saw revision ``R`` has seen
every change at or below ``R`` (on PostgreSQL as on SQLite).

The DAV directory books turn a revision into a sync token (RFC 6578): a sync costs
the changes since the token, never the whole directory.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, exc, func, insert, select, update

from groupware.core.db import directory_changes, directory_revision

_ROW_ID = 1


def record_changes(conn: Connection, entries: Iterable[tuple[int, str]]) -> int | None:
    """Log ``(person id, school)`` pairs in ``conn``'s transaction; the new revision."""
    unique = list(dict.fromkeys(entries))
    if not unique:
        return None
    revision = _next_revision(conn)
    conn.execute(
        insert(directory_changes),
        [{"revision": revision, "person_id": p, "school": school} for p, school in unique],
    )
    return revision


def _next_revision(conn: Connection) -> int:
    bump = (
        update(directory_revision)
        .where(directory_revision.c.id == _ROW_ID)
        .values(revision=directory_revision.c.revision + 1)
        .returning(directory_revision.c.revision)
    )
    found = conn.execute(bump).scalar()
    if found is not None:
        return int(found)
    try:
        with conn.begin_nested():
            conn.execute(insert(directory_revision).values(id=_ROW_ID, revision=1))
        return 1
    except exc.IntegrityError:  # another first writer made the row: bump theirs
        return int(conn.execute(bump).scalar_one())


@dataclass(frozen=True, slots=True)
class DirectoryChanges:
    """The people whose cards changed after a revision, and the revision now reached."""

    revision: int
    person_ids: frozenset[int]


class DirectoryLog:
    """Reads the change log, for all the directory or for one school's book."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def revision(self, school: str | None = None) -> int:
        """The latest revision (of ``school``'s changes when given); 0 before any."""
        with self._engine.connect() as conn:
            return _latest(conn, school)

    def changed_since(self, revision: int, school: str | None = None) -> DirectoryChanges:
        """What changed after ``revision``, up to the latest revision read here."""
        with self._engine.connect() as conn:
            latest = _latest(conn, school)
            query = select(directory_changes.c.person_id).where(
                directory_changes.c.revision > revision,
                directory_changes.c.revision <= latest,
            )
            if school is not None:
                query = query.where(directory_changes.c.school == school)
            people = frozenset(int(row[0]) for row in conn.execute(query.distinct()))
        return DirectoryChanges(max(latest, revision), people)


def _latest(conn: Connection, school: str | None) -> int:
    if school is None:
        query = select(directory_revision.c.revision).where(directory_revision.c.id == _ROW_ID)
    else:
        query = select(func.max(directory_changes.c.revision)).where(
            directory_changes.c.school == school
        )
    return int(conn.execute(query).scalar() or 0)
