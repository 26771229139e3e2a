# SPDX-License-Identifier: GPL-3.0-or-later
"""Who may do what with a calendar or an address book: the one ACL every edge reads.

A collection is named by its owner's principal and its path segment: ``alice.martin``
and ``calendar``, or ``@lycee-joffre.lettres`` and ``agenda`` for a group's (department
agenda). Principals are stable for ever (logins and group names are never reused).

Levels, each including the one before: ``read`` (free/busy and items), ``write``
(create, change, delete items), ``manage`` (share further). Deny unless a rule allows:

- the owner of a personal collection may do everything;
- a grant to a person, or to a group they belong to *now*, gives its level (the
  highest of several);
- every member of a group reads the group's collections, and its managers
  (``core.group_managers``) manage them;
- free/busy time (never details) is visible to colleagues as each owner chooses:
  nobody, their school (the default, configurable) or everyone.

Membership is read on every request (:meth:`Sharing.view`), so a removed member
loses access on their next one. Every grant and revocation is audited.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import Engine, bindparam, delete, insert, select, update

from groupware.core.audit import Audit, Clock, utc_now
from groupware.core.db import (
    dav_share_views,
    dav_shares,
    freebusy_policies,
    group_managers,
)
from groupware.core.db import groups as db_groups
from groupware.core.directory import Directory, Person
from groupware.errors import ConflictError, GroupwareError, NotFoundError

GROUP_PREFIX: Final = "@"
FREEBUSY_SCOPES: Final = ("nobody", "school", "everyone")


class Level(enum.IntEnum):
    """What a rule allows; each level includes the ones below it."""

    FREEBUSY = 1
    READ = 2
    WRITE = 3
    MANAGE = 4
    OWNER = 5

    @classmethod
    def parse(cls, text: str) -> Level:
        """``read``, ``write`` or ``manage`` (the levels a grant can give)."""
        try:
            level = cls[text.strip().upper()]
        except KeyError:
            level = None
        if level not in GRANTABLE:
            raise GroupwareError(f"unknown level {text!r}: use read, write or manage")
        return level

    @property
    def label(self) -> str:
        return self.name.lower()


GRANTABLE: Final = (Level.READ, Level.WRITE, Level.MANAGE)


@dataclass(frozen=True, slots=True)
class CollectionRef:
    """A collection by owner principal and path segment."""

    owner: str  # "alice.martin" or "@lycee-joffre.lettres"
    name: str

    @property
    def is_group_owned(self) -> bool:
        return self.owner.startswith(GROUP_PREFIX)

    @property
    def key(self) -> str:
        """``owner/name``: how views and audit records name it."""
        return f"{self.owner}/{self.name}"


@dataclass(frozen=True, slots=True)
class Grant:
    """One row of the ACL."""

    collection: CollectionRef
    grantee: str  # a login or "@group"
    level: Level
    created_at: datetime
    created_by: str


def is_group_principal(principal: str) -> bool:
    return principal.startswith(GROUP_PREFIX)


class AccessView:
    """What one person may do, read once per request (their groups, grants to them)."""

    def __init__(
        self,
        sharing: Sharing,
        person: Person,
        groups: Iterable[str],
        grants: list[Grant],
        managed: Iterable[str] = (),
    ) -> None:
        self._sharing = sharing
        self.person = person
        self.group_names = frozenset(groups)
        #: The principals of the groups this person manages (``core.group_managers``).
        self.managed_principals = frozenset(GROUP_PREFIX + g for g in managed)
        self.grants = grants  # to the person or to one of their groups
        self._freebusy: dict[str, bool] = {}
        #: The person's own principal and those of their groups.
        self.principals = frozenset({person.login, *(GROUP_PREFIX + g for g in self.group_names)})

    def level(self, collection: CollectionRef) -> Level | None:
        """The highest level a rule gives on ``collection``, or ``None`` (no access)."""
        if collection.owner == self.person.login:
            return Level.OWNER
        best: Level | None = None
        if collection.owner in self.managed_principals:  # a group they manage owns it
            best = Level.MANAGE
        elif collection.owner in self.principals:  # a group of theirs owns it
            best = Level.READ
        for grant in self.grants:
            if grant.collection == collection and (best is None or grant.level > best):
                best = grant.level
        if best is None and not collection.is_group_owned and self.sees_freebusy(collection.owner):
            best = Level.FREEBUSY
        return best

    def sees_freebusy(self, owner_login: str) -> bool:
        """Whether the owner lets this person see when they are busy."""
        if owner_login == self.person.login:
            return True
        if owner_login not in self._freebusy:
            self._freebusy[owner_login] = self._sharing.freebusy_visible(self.person, owner_login)
        return self._freebusy[owner_login]

    def shared_with_me(self) -> list[tuple[CollectionRef, Level]]:
        """Collections others granted to this person or their groups, best level each."""
        best: dict[CollectionRef, Level] = {}
        for grant in self.grants:
            if grant.collection.owner == self.person.login:
                continue
            if grant.level > best.get(grant.collection, Level.FREEBUSY):
                best[grant.collection] = grant.level
        return sorted(best.items(), key=lambda pair: (pair[0].owner, pair[0].name))


# Read for every DAV request (the access view), built once.
_GRANTS_TO: Final = select(dav_shares).where(
    dav_shares.c.grantee.in_(bindparam("principals", expanding=True))
)
_MANAGED_BY: Final = (
    select(db_groups.c.name)
    .join(group_managers, group_managers.c.group_id == db_groups.c.id)
    .where(group_managers.c.person_id == bindparam("person_id"))
)


class Sharing:
    """The ACL and the per-person views of shared collections, in SQL."""

    def __init__(
        self,
        engine: Engine,
        directory: Directory,
        audit: Audit,
        *,
        freebusy_default: str = "school",
        clock: Clock = utc_now,
    ) -> None:
        if freebusy_default not in FREEBUSY_SCOPES:
            raise GroupwareError(f"unknown free/busy scope {freebusy_default!r}")
        self._engine = engine
        self._directory = directory
        self._audit = audit
        self._freebusy_default = freebusy_default
        self._clock = clock

    # --- principals ------------------------------------------------------------------

    def principal(self, text: str) -> str:
        """A login, an address or ``@group`` made canonical; unknown ones are errors."""
        text = text.strip()
        if is_group_principal(text):
            return GROUP_PREFIX + self._directory.get_group(text[len(GROUP_PREFIX) :]).name
        return self._directory.get(text).login

    def display_name(self, principal: str) -> str:
        """How people see a principal: a person's name or a group's display name."""
        if is_group_principal(principal):
            group = self._directory.find_group(principal[len(GROUP_PREFIX) :])
            return group.display_name if group else principal
        person = self._directory.find(principal)
        return person.display_name if person else principal

    # --- grants ----------------------------------------------------------------------

    def grant(self, collection: CollectionRef, grantee: str, level: Level, *, actor: str) -> Grant:
        """Give ``grantee`` ``level`` on ``collection`` (replacing an earlier level)."""
        grantee = self.principal(grantee)
        if level not in GRANTABLE:
            raise GroupwareError("a grant gives read, write or manage")
        if grantee == collection.owner:
            raise ConflictError(f"{grantee} owns {collection.key} already")
        now = self._clock()
        key = _grant_key(collection, grantee)
        with self._engine.begin() as conn:
            existing = conn.execute(select(dav_shares.c.id).where(*key)).first()
            if existing is None:
                conn.execute(
                    insert(dav_shares).values(
                        owner=collection.owner,
                        collection=collection.name,
                        grantee=grantee,
                        level=level.label,
                        created_at=now,
                        created_by=actor,
                    )
                )
            else:
                conn.execute(
                    update(dav_shares)
                    .where(dav_shares.c.id == existing.id)
                    .values(level=level.label, created_at=now, created_by=actor)
                )
        self._audit.record(
            "dav.share_granted",
            actor=actor,
            subject=collection.key,
            detail=f"to={grantee} level={level.label}",
        )
        return Grant(collection, grantee, level, now, actor)

    def revoke(self, collection: CollectionRef, grantee: str, *, actor: str) -> None:
        """Withdraw ``grantee``'s grant on ``collection``."""
        grantee = self.principal(grantee)
        with self._engine.begin() as conn:
            result = conn.execute(delete(dav_shares).where(*_grant_key(collection, grantee)))
            conn.execute(
                delete(dav_share_views).where(
                    dav_share_views.c.target == collection.key,
                    dav_share_views.c.login == grantee,
                )
            )
        if result.rowcount == 0:
            raise NotFoundError("share", f"{collection.key} with {grantee}")
        self._audit.record(
            "dav.share_revoked", actor=actor, subject=collection.key, detail=f"to={grantee}"
        )

    def forget_collection(self, collection: CollectionRef, *, actor: str) -> int:
        """Drop every grant on a deleted collection; how many there were."""
        with self._engine.begin() as conn:
            result = conn.execute(
                delete(dav_shares).where(
                    dav_shares.c.owner == collection.owner,
                    dav_shares.c.collection == collection.name,
                )
            )
            conn.execute(delete(dav_share_views).where(dav_share_views.c.target == collection.key))
        if result.rowcount:
            self._audit.record(
                "dav.shares_dropped",
                actor=actor,
                subject=collection.key,
                detail=f"count={result.rowcount}",
            )
        return int(result.rowcount)

    def grants(
        self, *, owner: str | None = None, collection: CollectionRef | None = None
    ) -> list[Grant]:
        """Grants, all or of one owner's collections or of one collection."""
        query = select(dav_shares).order_by(
            dav_shares.c.owner, dav_shares.c.collection, dav_shares.c.grantee
        )
        if collection is not None:
            query = query.where(
                dav_shares.c.owner == collection.owner,
                dav_shares.c.collection == collection.name,
            )
        elif owner is not None:
            query = query.where(dav_shares.c.owner == owner)
        with self._engine.connect() as conn:
            return [_grant_from_row(row) for row in conn.execute(query)]

    def view(self, person: Person, group_names: Iterable[str] | None = None) -> AccessView:
        """This person's access, read now (groups as they are at this moment).

        Args:
            person: whose access.
            group_names: the person's groups when the caller read them already in
                this request (the DAV front does, to make department agendas); read
                here otherwise.
        """
        groups = (
            [group.name for group in self._directory.groups_of(person.id)]
            if group_names is None
            else list(group_names)
        )
        principals = [person.login, *(GROUP_PREFIX + g for g in groups)]
        with self._engine.connect() as conn:
            rows = conn.execute(_GRANTS_TO, {"principals": principals})
            grants = [_grant_from_row(row) for row in rows]
            managed = [
                str(name) for name in conn.execute(_MANAGED_BY, {"person_id": person.id}).scalars()
            ]
        return AccessView(self, person, groups, grants, managed)

    # --- free/busy -------------------------------------------------------------------

    def freebusy_scope(self, login: str) -> str:
        """Who may see ``login``'s free/busy time: nobody, school or everyone."""
        with self._engine.connect() as conn:
            scope = conn.execute(
                select(freebusy_policies.c.scope).where(freebusy_policies.c.login == login)
            ).scalar()
        return scope or self._freebusy_default

    def set_freebusy_scope(self, login: str, scope: str, *, actor: str) -> None:
        """Choose who may see ``login``'s free/busy time."""
        if scope not in FREEBUSY_SCOPES:
            raise GroupwareError(f"unknown free/busy scope {scope!r}: use {FREEBUSY_SCOPES}")
        login = self.principal(login)
        with self._engine.begin() as conn:
            conn.execute(delete(freebusy_policies).where(freebusy_policies.c.login == login))
            conn.execute(insert(freebusy_policies).values(login=login, scope=scope))
        self._audit.record("dav.freebusy_scope", actor=actor, subject=login, detail=scope)

    def freebusy_visible(self, viewer: Person, owner_login: str) -> bool:
        """Whether ``viewer`` may see when ``owner_login`` is busy."""
        scope = self.freebusy_scope(owner_login)
        if scope == "everyone":
            return True
        if scope == "school":
            owner = self._directory.find(owner_login)
            return bool(
                owner and owner.is_active and owner.school and owner.school == viewer.school
            )
        return False

    # --- each person's view of what is shared with them --------------------------------

    def view_props(self, login: str, collection: CollectionRef) -> dict[str, str | None]:
        """The properties ``login`` set for themselves on a shared collection."""
        with self._engine.connect() as conn:
            text = conn.execute(
                select(dav_share_views.c.props).where(
                    dav_share_views.c.login == login, dav_share_views.c.target == collection.key
                )
            ).scalar()
        return json.loads(text) if text else {}

    def hidden_collections(self, login: str) -> frozenset[str]:
        """The keys (``owner/name``) of shared collections ``login`` chose to hide."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(dav_share_views.c.target).where(
                    dav_share_views.c.login == login, dav_share_views.c.is_hidden.is_(True)
                )
            )
            return frozenset(row[0] for row in rows)

    def set_view(
        self,
        login: str,
        collection: CollectionRef,
        *,
        props: Mapping[str, str | None] | None = None,
        is_hidden: bool | None = None,
    ) -> None:
        """Change ``login``'s own view of a shared collection (never the owner's)."""
        where = (dav_share_views.c.login == login, dav_share_views.c.target == collection.key)
        with self._engine.begin() as conn:
            row = conn.execute(select(dav_share_views).where(*where)).first()
            merged = json.loads(row.props) if row else {}
            if props is not None:
                merged.update(props)
            values = {
                "props": json.dumps(merged, sort_keys=True),
                "is_hidden": bool(row.is_hidden if row and is_hidden is None else is_hidden),
            }
            if row is None:
                conn.execute(
                    insert(dav_share_views).values(login=login, target=collection.key, **values)
                )
            else:
                conn.execute(update(dav_share_views).where(*where).values(**values))


def _grant_key(collection: CollectionRef, grantee: str) -> tuple[object, ...]:
    return (
        dav_shares.c.owner == collection.owner,
        dav_shares.c.collection == collection.name,
        dav_shares.c.grantee == grantee,
    )


def _grant_from_row(row: object) -> Grant:
    return Grant(
        CollectionRef(row.owner, row.collection),  # type: ignore[attr-defined]
        row.grantee,  # type: ignore[attr-defined]
        Level[row.level.upper()],  # type: ignore[attr-defined]
        row.created_at,  # type: ignore[attr-defined]
        row.created_by,  # type: ignore[attr-defined]
    )
