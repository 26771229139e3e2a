# SPDX-License-Identifier: GPL-3.0-or-later
"""The staff directory: people, their addresses, groups and memberships.

One directory serves every protocol. People are keyed by the keyed hash of
their NUMEN; their login is the local part of their address, which once given
never moves to another person (``addresses`` keeps every address ever issued).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import Connection, Engine, Row, bindparam, delete, func, insert, select, update

from groupware.config import Config
from groupware.core.audit import Audit, Clock, utc_now
from groupware.core.db import addresses, group_managers, group_members, groups, persons
from groupware.core.directory_log import record_changes
from groupware.core.names import ascii_fold, base_local_part, group_slug, unique_local_part
from groupware.core.passwords import (
    Hasher,
    NumenKey,
    check_policy,
    is_valid_numen,
    temporary_password,
)
from groupware.errors import ConflictError, GroupwareError, NotFoundError

log = logging.getLogger(__name__)

GROUP_KINDS = ("school", "department", "role", "custom")


def _length(column: Any) -> int:
    length = getattr(column.type, "length", None)
    assert isinstance(length, int), column  # every bounded column below has one
    return length


#: The longest value of each text field of a person: its column's length (PostgreSQL
#: refuses longer strings; SQLite would keep them).
PERSON_MAX_CHARS: Final[dict[str, int]] = {
    name: _length(persons.c[name])
    for name in ("first_name", "last_name", "role", "school", "discipline", "service")
}
#: A group name leaves room in its column for the ``.<kind>`` that a clash of names adds.
MAX_GROUP_NAME_CHARS: Final = _length(groups.c.name) - len(".department")
MAX_GROUP_DISPLAY_CHARS: Final = _length(groups.c.display_name)


@dataclass(frozen=True, slots=True)
class Person:
    """A member of staff as the directory knows them."""

    id: int
    login: str
    email: str
    first_name: str
    last_name: str
    birth_date: date | None
    role: str
    school: str
    discipline: str
    service: str
    is_active: bool
    is_admin: bool
    must_change_password: bool
    quota_bytes: int
    language: str
    credential_version: int
    numen_hmac: str
    password_hash: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def display_name(self) -> str:
        """``First Last`` as people write it."""
        return f"{self.first_name} {self.last_name}"


@dataclass(frozen=True, slots=True)
class Group:
    """A school, a department within a school, a role, or a hand-made group."""

    id: int
    name: str
    display_name: str
    kind: str
    school: str


@dataclass(frozen=True, slots=True)
class NewPerson:
    """What it takes to create a person (from the HR file or by hand)."""

    numen: str
    first_name: str
    last_name: str
    birth_date: date | None
    role: str
    school: str
    discipline: str = ""
    service: str = ""


_IN_SLICE: Final = 500


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def person_from_row(row: Row[Any]) -> Person:
    """Map a ``persons`` row."""
    return Person(
        id=row.id,
        login=row.login,
        email=row.email,
        first_name=row.first_name,
        last_name=row.last_name,
        birth_date=row.birth_date,
        role=row.role,
        school=row.school,
        discipline=row.discipline,
        service=row.service,
        is_active=row.is_active,
        is_admin=row.is_admin,
        must_change_password=row.must_change_password,
        quota_bytes=row.quota_bytes,
        language=row.language,
        credential_version=row.credential_version,
        numen_hmac=row.numen_hmac,
        password_hash=row.password_hash,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _group_from_row(row: Row[Any]) -> Group:
    return Group(
        id=row.id, name=row.name, display_name=row.display_name, kind=row.kind, school=row.school
    )


def group_names_problem(school: str, role: str, departments: Iterable[str]) -> str | None:
    """Why the import groups of such a person cannot be made, or None when they can.

    A group name is a slug of the school and department, which together can be
    longer than a name may be.
    """
    for name, _display_name, kind, _school in import_group_specs(school, role, departments):
        if len(name) > MAX_GROUP_NAME_CHARS:
            return (
                f"the {kind} group name {name[:40]}... is longer than "
                f"{MAX_GROUP_NAME_CHARS} characters"
            )
    return None


def person_problem(new: NewPerson) -> str | None:
    """Why ``new`` cannot be stored (a value too long for its column), or None."""
    for name, max_chars in PERSON_MAX_CHARS.items():
        if len(getattr(new, name)) > max_chars:
            return f"{name} longer than {max_chars} characters"
    return group_names_problem(new.school, new.role, (new.discipline, new.service))


def department_display_name(department: str, school: str) -> str:
    """``Lettres — Lycée Joffre``."""
    return f"{department} — {school}"


def import_group_specs(
    school: str, role: str, departments: Iterable[str]
) -> list[tuple[str, str, str, str]]:
    """The groups a person of the HR file belongs to: ``(name, display, kind, school)``."""
    specs = []
    if school and group_slug(school):
        specs.append((group_slug(school), school, "school", school))
        for department in departments:
            if department and group_slug(department):
                specs.append(
                    (
                        group_slug(school, department),
                        department_display_name(department, school),
                        "department",
                        school,
                    )
                )
    if role and group_slug(role):
        specs.append((group_slug(role), role, "role", ""))
    return specs


# Lookups made on every login and DAV request, built once: SQLAlchemy then reuses
# their compiled form without building and hashing a new statement each time.
_PERSON_BY_LOGIN: Final = select(persons).where(persons.c.login == bindparam("identifier"))
_PERSON_BY_ADDRESS: Final = (
    select(persons)
    .join(addresses, addresses.c.person_id == persons.c.id)
    .where(addresses.c.address == bindparam("identifier"))
)
_PERSON_BY_ID: Final = select(persons).where(persons.c.id == bindparam("person_id"))
_GROUPS_OF_PERSON: Final = (
    select(groups)
    .join(group_members, group_members.c.group_id == groups.c.id)
    .where(group_members.c.person_id == bindparam("person_id"))
    .order_by(groups.c.kind, groups.c.name)
)


class Directory:
    """People and groups in SQL; every change that matters is audited."""

    def __init__(
        self,
        engine: Engine,
        config: Config,
        numen_key: NumenKey,
        hasher: Hasher,
        audit: Audit,
        clock: Clock = utc_now,
    ) -> None:
        self.engine = engine
        self.config = config
        self.numen_key = numen_key
        self.hasher = hasher
        self.audit = audit
        self.clock = clock
        self.domain = config.server.domain.lower()

    # --- lookups -------------------------------------------------------------------

    def find(self, identifier: str) -> Person | None:
        """The person a login identifier names: full address or local part, any case."""
        identifier = identifier.strip().lower()
        if not identifier:
            return None
        query = _PERSON_BY_ADDRESS if "@" in identifier else _PERSON_BY_LOGIN
        with self.engine.connect() as conn:
            row = conn.execute(query, {"identifier": identifier}).first()
        return person_from_row(row) if row else None

    def get(self, identifier: str) -> Person:
        """Like :meth:`find`, but a missing person is an error."""
        person = self.find(identifier)
        if person is None:
            raise NotFoundError("person", identifier)
        return person

    def by_id(self, person_id: int) -> Person | None:
        """The person with this database id."""
        with self.engine.connect() as conn:
            row = conn.execute(_PERSON_BY_ID, {"person_id": person_id}).first()
        return person_from_row(row) if row else None

    def by_numen(self, numen: str) -> Person | None:
        """The person with this NUMEN (through its keyed hash)."""
        digest = self.numen_key.digest(numen)
        with self.engine.connect() as conn:
            row = conn.execute(select(persons).where(persons.c.numen_hmac == digest)).first()
        return person_from_row(row) if row else None

    def list_persons(self, *, active_only: bool = False, school: str | None = None) -> list[Person]:
        """Everyone, ordered by last then first name."""
        query = select(persons).order_by(persons.c.last_name, persons.c.first_name, persons.c.login)
        if active_only:
            query = query.where(persons.c.is_active.is_(True))
        if school is not None:
            query = query.where(persons.c.school == school)
        with self.engine.connect() as conn:
            return [person_from_row(row) for row in conn.execute(query)]

    def persons_by_logins(self, logins: Iterable[str]) -> list[Person]:
        """The people with these logins (unknown ones left out), in no set order."""
        return self._persons_where(persons.c.login, sorted(set(logins)))

    def persons_by_ids(self, ids: Iterable[int]) -> list[Person]:
        """The people with these ids (unknown ones left out), in no set order."""
        return self._persons_where(persons.c.id, sorted(set(ids)))

    def _persons_where(self, column: Any, values: list[Any]) -> list[Person]:
        found: list[Person] = []
        with self.engine.connect() as conn:
            # In slices: SQLite bounds the number of parameters of one statement.
            for start in range(0, len(values), _IN_SLICE):
                query = select(persons).where(column.in_(values[start : start + _IN_SLICE]))
                found += (person_from_row(row) for row in conn.execute(query))
        return found

    def search(
        self, text: str, *, limit: int = 20, include_disabled: bool = False
    ) -> tuple[list[Person], list[Group]]:
        """People (active ones unless asked) and groups whose names, login or address
        contain every word."""
        words = [w for w in text.casefold().split() if w][:5]
        if not words:
            return [], []
        people_query = select(persons)
        if not include_disabled:
            people_query = people_query.where(persons.c.is_active.is_(True))
        group_query = select(groups)
        for word in words:
            pattern = f"%{_like_escape(word)}%"
            # Logins are the names folded to ASCII: "helene" finds "Hélène" there.
            folded = f"%{_like_escape(ascii_fold(word))}%"
            people_query = people_query.where(
                func.lower(persons.c.first_name).like(pattern, escape="\\")
                | func.lower(persons.c.last_name).like(pattern, escape="\\")
                | persons.c.login.like(folded, escape="\\")
                | persons.c.email.like(folded, escape="\\")
            )
            group_query = group_query.where(
                func.lower(groups.c.display_name).like(pattern, escape="\\")
                | groups.c.name.like(pattern, escape="\\")
            )
        people_query = people_query.order_by(persons.c.last_name, persons.c.first_name)
        with self.engine.connect() as conn:
            people = [person_from_row(r) for r in conn.execute(people_query.limit(limit))]
            found_groups = [
                _group_from_row(r)
                for r in conn.execute(group_query.order_by(groups.c.name).limit(limit))
            ]
        return people, found_groups

    def newest_update(self, *, school: str | None = None) -> datetime | None:
        """When an active person (of ``school``) last changed, or ``None``."""
        query = select(func.max(persons.c.updated_at)).where(persons.c.is_active.is_(True))
        if school is not None:
            query = query.where(persons.c.school == school)
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    def count_persons(self) -> int:
        """How many people the directory holds."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(persons)).scalar_one())

    def add_alias(self, identifier: str, address: str, *, actor: str) -> str:
        """Give a person another address of our domain (mail to it reaches them; they
        may send as it). Like every address, it never moves to anyone else.

        Raises:
            GroupwareError: not an address of our domain, or malformed.
            ConflictError: the address was ever given, or names a group list.
        """
        person = self.get(identifier)
        address = address.strip().lower()
        local, sep, domain = address.rpartition("@")
        if not sep or domain != self.domain:
            raise GroupwareError(f"an alias must be an address @{self.domain}")
        if (
            not local
            or len(address) > _length(addresses.c.address)
            or local != ".".join(part for part in local.split(".") if part)
            or any(not (ch.isascii() and (ch.isalnum() or ch in "._-")) for ch in local)
        ):
            raise GroupwareError(f"invalid alias {address!r}: letters, digits, '.', '-', '_'")
        with self.engine.begin() as conn:
            if conn.execute(
                select(addresses.c.address).where(addresses.c.address == address)
            ).first():
                raise ConflictError(f"{address} was already given")
            if conn.execute(select(groups.c.id).where(groups.c.name == local)).first():
                raise ConflictError(f"{address} is the address of a group list")
            conn.execute(
                insert(addresses).values(
                    address=address, person_id=person.id, kind="alias", created_at=self.clock()
                )
            )
        self.audit.record("account.alias_added", actor=actor, subject=person.login, detail=address)
        return address

    def addresses_of(self, person_id: int) -> list[str]:
        """Every address given to a person, primary first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(addresses.c.address, addresses.c.kind)
                .where(addresses.c.person_id == person_id)
                .order_by(addresses.c.kind.desc(), addresses.c.address)
            ).all()
        return [row.address for row in rows]

    # --- people --------------------------------------------------------------------

    def add_person(self, new: NewPerson, *, actor: str, is_admin: bool = False) -> Person:
        """Create one person with the NUMEN as first-login credential.

        Raises:
            ConflictError: the NUMEN is already in the directory.
            GroupwareError: the NUMEN or the names are unusable.
        """
        if not is_valid_numen(new.numen):
            raise GroupwareError("NUMEN must be 13 digits or uppercase letters")
        base = base_local_part(new.first_name, new.last_name)
        if not base:
            raise GroupwareError("first and last name must contain letters or digits")
        problem = person_problem(new)
        if problem is not None:
            raise GroupwareError(problem)
        digest = self.numen_key.digest(new.numen)
        now = self.clock()
        with self.engine.begin() as conn:
            if conn.execute(select(persons.c.id).where(persons.c.numen_hmac == digest)).first():
                raise ConflictError("a person with this NUMEN already exists")
            local = unique_local_part(base, lambda cand: self._address_taken(conn, cand))
            person_id = self.insert_person(conn, new, digest, local, now, is_admin=is_admin)
            # A set: discipline and service may name the same department.
            group_ids = {
                self._ensure_group(conn, *spec, now=now)
                for spec in import_group_specs(new.school, new.role, (new.discipline, new.service))
            }
            for group_id in sorted(group_ids):
                conn.execute(
                    insert(group_members).values(
                        group_id=group_id, person_id=person_id, source="import"
                    )
                )
        self.audit.record("account.created", actor=actor, subject=local)
        return self.get(local)

    def _address_taken(self, conn: object, local: str) -> bool:
        address = f"{local}@{self.domain}"
        return (
            conn.execute(  # type: ignore[attr-defined]
                select(addresses.c.address).where(addresses.c.address == address)
            ).first()
            is not None
        )

    def person_values(
        self, new: NewPerson, digest: str, local: str, now: datetime, *, is_admin: bool = False
    ) -> dict[str, object]:
        """The ``persons`` row of a new person whose address is ``local@domain``."""
        return {
            "numen_hmac": digest,
            "login": local,
            "email": f"{local}@{self.domain}",
            "first_name": new.first_name,
            "last_name": new.last_name,
            "birth_date": new.birth_date,
            "role": new.role,
            "school": new.school,
            "discipline": new.discipline,
            "service": new.service,
            "is_active": True,
            "is_admin": is_admin,
            "must_change_password": True,
            "password_hash": None,
            "quota_bytes": self.config.accounts.default_quota_bytes,
            "language": self.config.accounts.default_language,
            "credential_version": 0,
            "created_at": now,
            "updated_at": now,
        }

    def insert_person(
        self,
        conn: Connection,
        new: NewPerson,
        digest: str,
        local: str,
        now: datetime,
        *,
        is_admin: bool = False,
    ) -> int:
        """Insert a new person and their primary address; return their id."""
        values = self.person_values(new, digest, local, now, is_admin=is_admin)
        person_id = int(conn.execute(insert(persons).returning(persons.c.id), values).scalar_one())
        conn.execute(
            insert(addresses),
            {
                "address": values["email"],
                "person_id": person_id,
                "kind": "primary",
                "created_at": now,
            },
        )
        record_changes(conn, [(person_id, new.school)])
        return person_id

    def _update(self, login: str, *, card_of: Person | None = None, **values: object) -> None:
        """Change a person's row; ``card_of`` when their directory card changes with it."""
        values.setdefault("updated_at", self.clock())
        with self.engine.begin() as conn:
            result = conn.execute(update(persons).where(persons.c.login == login).values(**values))
            if result.rowcount and card_of is not None:
                record_changes(conn, [(card_of.id, card_of.school)])
        if result.rowcount == 0:
            raise NotFoundError("person", login)

    def set_active(self, identifier: str, is_active: bool, *, actor: str) -> Person:
        """Disable or enable an account (a disabled account cannot log in)."""
        person = self.get(identifier)
        self._update(
            person.login,
            card_of=person,
            is_active=is_active,
            credential_version=person.credential_version + 1,
        )
        self.audit.record(
            "account.enabled" if is_active else "account.disabled",
            actor=actor,
            subject=person.login,
        )
        return self.get(person.login)

    def set_admin(self, identifier: str, is_admin: bool, *, actor: str) -> Person:
        """Grant or withdraw the administrator role."""
        person = self.get(identifier)
        self._update(
            person.login, is_admin=is_admin, credential_version=person.credential_version + 1
        )
        self.audit.record(
            "account.admin_granted" if is_admin else "account.admin_revoked",
            actor=actor,
            subject=person.login,
        )
        return self.get(person.login)

    def set_quota(self, identifier: str, quota_bytes: int, *, actor: str) -> Person:
        """Change the mail quota."""
        if quota_bytes < 0:
            raise GroupwareError("quota must not be negative")
        person = self.get(identifier)
        self._update(person.login, quota_bytes=quota_bytes)
        self.audit.record(
            "account.quota", actor=actor, subject=person.login, detail=str(quota_bytes)
        )
        return self.get(person.login)

    def set_language(self, identifier: str, language: str) -> None:
        """Remember the person's language (portal and default collection names)."""
        if language not in ("fr", "en"):
            raise GroupwareError(f"unsupported language {language!r}")
        self._update(self.get(identifier).login, language=language)

    def password_problems(self, person: Person, password: str) -> None:
        """Check the policy for this person.

        Raises:
            PasswordPolicyError: with the keys of every rule broken.
        """
        check_policy(
            password,
            min_length=self.config.accounts.min_password_length,
            numen_digest=person.numen_hmac,
            numen_key=self.numen_key,
            names=(person.first_name, person.last_name),
            birth_date=person.birth_date,
        )

    def set_password(
        self,
        identifier: str,
        password: str,
        *,
        actor: str,
        must_change: bool = False,
        enforce_policy: bool = True,
        client: str = "",
        protocol: str = "",
    ) -> Person:
        """Hash and store a new password (argon2id: call it off any event loop).

        Raises:
            PasswordPolicyError: when ``enforce_policy`` and the password is weak.
        """
        person = self.get(identifier)
        if enforce_policy:
            self.password_problems(person, password)
        now = self.clock()
        self._update(
            person.login,
            password_hash=self.hasher.hash(password),
            must_change_password=must_change,
            credential_version=person.credential_version + 1,
            password_changed_at=now,
            updated_at=now,
        )
        self.audit.record(
            "password.changed" if actor == person.login else "password.set",
            actor=actor,
            subject=person.login,
            client=client,
            protocol=protocol,
            detail="must_change" if must_change else "",
        )
        return self.get(person.login)

    def reset_password(self, identifier: str, *, actor: str) -> str:
        """Issue a temporary password that must be changed at next login."""
        temporary = temporary_password()
        self.set_password(
            identifier, temporary, actor=actor, must_change=True, enforce_policy=False
        )
        return temporary

    # --- groups --------------------------------------------------------------------

    def _ensure_group(
        self, conn: object, name: str, display_name: str, kind: str, school: str, *, now: datetime
    ) -> int:
        row = conn.execute(select(groups.c.id, groups.c.kind).where(groups.c.name == name)).first()  # type: ignore[attr-defined]
        if row is not None and row.kind == kind:
            return int(row.id)
        if row is not None:
            # A school and a role with the same name: keep both, apart.
            return self._ensure_group(conn, f"{name}.{kind}", display_name, kind, school, now=now)
        result = conn.execute(  # type: ignore[attr-defined]
            insert(groups).values(
                name=name, display_name=display_name, kind=kind, school=school, created_at=now
            )
        )
        return int(result.inserted_primary_key[0])

    def find_group(self, name: str) -> Group | None:
        """A group by its name (``lycee-joffre.lettres``), case-insensitive."""
        with self.engine.connect() as conn:
            row = conn.execute(select(groups).where(groups.c.name == name.strip().lower())).first()
        return _group_from_row(row) if row else None

    def get_group(self, name: str) -> Group:
        """Like :meth:`find_group`, but a missing group is an error."""
        group = self.find_group(name)
        if group is None:
            raise NotFoundError("group", name)
        return group

    def add_group(
        self, name: str, display_name: str, *, actor: str, kind: str = "custom", school: str = ""
    ) -> Group:
        """Create a group by hand (``school``: the school a department belongs to)."""
        name = name.strip().lower()
        if not name or group_slug(*name.split(".")) != name:
            raise GroupwareError(
                f"invalid group name {name!r}: use lowercase letters, digits, '-' and '.'"
            )
        if kind not in GROUP_KINDS:
            raise GroupwareError(f"unknown group kind {kind!r}")
        if (
            len(name) > MAX_GROUP_NAME_CHARS
            or len(display_name) > MAX_GROUP_DISPLAY_CHARS
            or len(school) > _length(groups.c.school)
        ):
            raise GroupwareError(
                f"group name longer than {MAX_GROUP_NAME_CHARS} characters "
                f"or display name longer than {MAX_GROUP_DISPLAY_CHARS} (or school name too long)"
            )
        with self.engine.begin() as conn:
            if conn.execute(select(groups.c.id).where(groups.c.name == name)).first():
                raise ConflictError(f"group {name} already exists")
            self._ensure_group(conn, name, display_name or name, kind, school, now=self.clock())
        self.audit.record("group.created", actor=actor, subject=name, detail=f"kind={kind}")
        return self.get_group(name)

    def list_groups(self) -> list[tuple[Group, int]]:
        """Every group with its number of members."""
        counts = (
            select(group_members.c.group_id, func.count().label("members"))
            .group_by(group_members.c.group_id)
            .subquery()
        )
        query = (
            select(groups, func.coalesce(counts.c.members, 0).label("members"))
            .outerjoin(counts, counts.c.group_id == groups.c.id)
            .order_by(groups.c.kind, groups.c.name)
        )
        with self.engine.connect() as conn:
            return [(_group_from_row(row), int(row.members)) for row in conn.execute(query)]

    def groups_of_kind(self, kind: str) -> list[Group]:
        """The groups of one kind (``school`` ...), by name; no member counts."""
        query = select(groups).where(groups.c.kind == kind).order_by(groups.c.name)
        with self.engine.connect() as conn:
            return [_group_from_row(row) for row in conn.execute(query)]

    def members(self, name: str) -> list[Person]:
        """The people in a group."""
        group = self.get_group(name)
        query = (
            select(persons)
            .join(group_members, group_members.c.person_id == persons.c.id)
            .where(group_members.c.group_id == group.id)
            .order_by(persons.c.last_name, persons.c.first_name)
        )
        with self.engine.connect() as conn:
            return [person_from_row(row) for row in conn.execute(query)]

    def groups_of(self, person_id: int) -> list[Group]:
        """The groups a person belongs to."""
        with self.engine.connect() as conn:
            return [
                _group_from_row(row)
                for row in conn.execute(_GROUPS_OF_PERSON, {"person_id": person_id})
            ]

    def add_member(self, group_name: str, identifier: str, *, actor: str) -> None:
        """Add a person to a group by hand (kept across imports)."""
        group, person = self.get_group(group_name), self.get(identifier)
        with self.engine.begin() as conn:
            existing = conn.execute(
                select(group_members.c.source).where(
                    group_members.c.group_id == group.id, group_members.c.person_id == person.id
                )
            ).first()
            if existing is not None:
                raise ConflictError(f"{person.login} is already a member of {group.name}")
            conn.execute(
                insert(group_members).values(
                    group_id=group.id, person_id=person.id, source="manual"
                )
            )
        self.audit.record(
            "group.member_added", actor=actor, subject=group.name, detail=person.login
        )

    def remove_member(self, group_name: str, identifier: str, *, actor: str) -> None:
        """Remove a person from a group."""
        group, person = self.get_group(group_name), self.get(identifier)
        with self.engine.begin() as conn:
            result = conn.execute(
                delete(group_members).where(
                    group_members.c.group_id == group.id, group_members.c.person_id == person.id
                )
            )
            # A manager keeps the group as one of its members: leaving ends both.
            conn.execute(
                delete(group_managers).where(
                    group_managers.c.group_id == group.id, group_managers.c.person_id == person.id
                )
            )
        if result.rowcount == 0:
            raise NotFoundError("membership", f"{person.login} in {group.name}")
        self.audit.record(
            "group.member_removed", actor=actor, subject=group.name, detail=person.login
        )
