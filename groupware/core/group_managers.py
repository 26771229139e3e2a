# SPDX-License-Identifier: GPL-3.0-or-later
"""Group managers: the people who keep a group's shared collections.

A department agenda is read by every member of the department and kept by a few
(a secretary, the head of department). A manager has ``manage`` on every collection
the group owns, now and later (``core.sharing`` reads this at each request, like
membership), and is a member too: making someone a manager adds them to the group
by hand if they were not in it, and removing them from the group
(``Directory.remove_member``) ends both. Every change is audited.

Neither membership nor management shows on a directory card (a card is the
person's own fields), so neither writes to the directory change log.
"""

from __future__ import annotations

from sqlalchemy import Engine, delete, insert, select

from groupware.core.audit import Audit
from groupware.core.db import group_managers, group_members, groups, persons
from groupware.core.directory import Directory, Person, person_from_row
from groupware.errors import ConflictError, NotFoundError


class GroupManagers:
    """Reads and changes who manages which group."""

    def __init__(self, engine: Engine, directory: Directory, audit: Audit) -> None:
        self._engine = engine
        self._directory = directory
        self._audit = audit

    def managers(self, group_name: str) -> list[Person]:
        """The managers of a group, by name."""
        group = self._directory.get_group(group_name)
        query = (
            select(persons)
            .join(group_managers, group_managers.c.person_id == persons.c.id)
            .where(group_managers.c.group_id == group.id)
            .order_by(persons.c.last_name, persons.c.first_name)
        )
        with self._engine.connect() as conn:
            return [person_from_row(row) for row in conn.execute(query)]

    def managed_by(self, person_id: int) -> list[str]:
        """The names of the groups a person manages."""
        query = (
            select(groups.c.name)
            .join(group_managers, group_managers.c.group_id == groups.c.id)
            .where(group_managers.c.person_id == person_id)
            .order_by(groups.c.name)
        )
        with self._engine.connect() as conn:
            return [str(name) for name in conn.execute(query).scalars()]

    def add(self, group_name: str, identifier: str, *, actor: str) -> None:
        """Make a person a manager of a group (and a member, if they were not).

        Raises:
            NotFoundError: no such group or person.
            ConflictError: they manage it already.
        """
        group, person = self._directory.get_group(group_name), self._directory.get(identifier)
        with self._engine.begin() as conn:
            if conn.execute(
                select(group_managers.c.person_id).where(
                    group_managers.c.group_id == group.id, group_managers.c.person_id == person.id
                )
            ).first():
                raise ConflictError(f"{person.login} already manages {group.name}")
            is_member = conn.execute(
                select(group_members.c.person_id).where(
                    group_members.c.group_id == group.id, group_members.c.person_id == person.id
                )
            ).first()
            if is_member is None:
                conn.execute(
                    insert(group_members).values(
                        group_id=group.id, person_id=person.id, source="manual"
                    )
                )
            conn.execute(insert(group_managers).values(group_id=group.id, person_id=person.id))
        if is_member is None:
            self._audit.record(
                "group.member_added", actor=actor, subject=group.name, detail=person.login
            )
        self._audit.record(
            "group.manager_added", actor=actor, subject=group.name, detail=person.login
        )

    def remove(self, group_name: str, identifier: str, *, actor: str) -> None:
        """A manager goes back to being a member.

        Raises:
            NotFoundError: no such group or person, or they do not manage it.
        """
        group, person = self._directory.get_group(group_name), self._directory.get(identifier)
        with self._engine.begin() as conn:
            result = conn.execute(
                delete(group_managers).where(
                    group_managers.c.group_id == group.id, group_managers.c.person_id == person.id
                )
            )
        if result.rowcount == 0:
            raise NotFoundError("manager", f"{person.login} of {group.name}")
        self._audit.record(
            "group.manager_removed", actor=actor, subject=group.name, detail=person.login
        )
