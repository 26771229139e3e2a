# SPDX-License-Identifier: GPL-3.0-or-later
"""App passwords: one per device, for mail (IMAP, SMTP), calendars and contacts, or both.

A person makes one for each phone or program, sees when and from where each was last
used, and revokes any; with two-factor authentication on, mail and DAV clients
accept only these (``core.auth``). The portal itself never accepts one.

The secret is 16 random letters and digits in four groups (``k7cd-pq2m-...``, about
80 bits), shown once. It is kept as a keyed hash of the whole secret, indexed, which
finds its row in one lookup whatever the number of a person's devices, and as an
argon2id hash (DESIGN.md §9), which is what is checked. Revocation deletes the row:
the next login with it fails, in every process.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import Engine, delete, insert, select, update

from groupware.core.audit import Audit, Clock, utc_now
from groupware.core.db import app_passwords
from groupware.core.directory import Person
from groupware.core.passwords import Hasher
from groupware.errors import GroupwareError, NotFoundError

SCOPES: Final = ("mail", "dav", "all")
#: Which scopes each protocol accepts.
PROTOCOL_SCOPES: Final = {"imap": ("mail", "all"), "smtp": ("mail", "all"), "dav": ("dav", "all")}
MAX_PER_PERSON: Final = 50
_ALPHABET: Final = "abcdefghijkmnpqrstuvwxyz23456789"  # no l, o, 0, 1: read aloud, typed on phones
_GROUPS: Final = 4
_GROUP_LENGTH: Final = 4


@dataclass(frozen=True, slots=True)
class AppPassword:
    """One device's password, as its owner sees it (never the secret)."""

    id: int
    person_id: int
    name: str
    scope: str
    created_at: datetime
    last_used_at: datetime | None
    last_used_protocol: str
    last_used_from: str


def normalize(secret: str) -> str:
    """What the user typed, without spaces or dashes, lowercase."""
    return "".join(ch for ch in secret.lower() if ch not in " -")


class AppPasswords:
    """Makes, checks, lists and revokes app passwords."""

    def __init__(
        self,
        engine: Engine,
        hasher: Hasher,
        audit: Audit,
        secret: bytes,
        *,
        cache_seconds: int = 300,
        clock: Clock = utc_now,
    ) -> None:
        self._engine = engine
        # (row id, lookup hash) -> monotonic expiry: argon2 once per device every few
        # minutes; the row itself is read at every login, so revocation is immediate.
        self._verified: dict[tuple[int, str], float] = {}
        self._cache_seconds = cache_seconds
        self._hasher = hasher
        self._audit = audit
        self._key = hmac.new(secret, b"groupware app passwords v1", hashlib.sha256).digest()
        self._clock = clock

    def create(
        self, person: Person, name: str, scope: str, *, actor: str
    ) -> tuple[AppPassword, str]:
        """A new app password for ``person``: its record and the secret to show once."""
        name = " ".join(name.split())[:64]
        if not name:
            raise GroupwareError("give the device a name")
        if scope not in SCOPES:
            raise GroupwareError(f"unknown scope {scope!r}: use mail, dav or all")
        if len(self.list(person)) >= MAX_PER_PERSON:
            raise GroupwareError(f"at most {MAX_PER_PERSON} app passwords per account")
        raw = "".join(secrets.choice(_ALPHABET) for _ in range(_GROUPS * _GROUP_LENGTH))
        shown = "-".join(raw[i : i + _GROUP_LENGTH] for i in range(0, len(raw), _GROUP_LENGTH))
        now = self._clock()
        with self._engine.begin() as conn:
            new_id = conn.execute(
                insert(app_passwords)
                .values(
                    person_id=person.id,
                    name=name,
                    scope=scope,
                    lookup_hmac=self._lookup(raw),
                    password_hash=self._hasher.hash(raw),
                    created_at=now,
                    last_used_protocol="",
                    last_used_from="",
                )
                .returning(app_passwords.c.id)
            ).scalar_one()
        self._audit.record(
            "app_password.created", actor=actor, subject=person.login, detail=f"{name} ({scope})"
        )
        return AppPassword(int(new_id), person.id, name, scope, now, None, "", ""), shown

    def verify(
        self, person: Person, secret: str, *, protocol: str, client: str
    ) -> AppPassword | None:
        """The app password ``secret`` is, if it is ``person``'s and valid for ``protocol``.

        A success is recorded as the device's last use (when, protocol, client).
        """
        scopes = PROTOCOL_SCOPES.get(protocol)
        found = self.owned(person, secret) if scopes is not None else None
        if found is None or scopes is None or found.scope not in scopes:
            return None
        with self._engine.begin() as conn:
            conn.execute(
                update(app_passwords)
                .where(app_passwords.c.id == found.id)
                .values(
                    last_used_at=self._clock(),
                    last_used_protocol=protocol,
                    last_used_from=client[:64],
                )
            )
        return found

    def owned(self, person: Person, secret: str) -> AppPassword | None:
        """The app password ``secret`` is, if it is ``person``'s (no use recorded)."""
        raw = normalize(secret)
        if len(raw) != _GROUPS * _GROUP_LENGTH:
            return None
        lookup = self._lookup(raw)
        with self._engine.connect() as conn:
            row = conn.execute(
                select(app_passwords).where(app_passwords.c.lookup_hmac == lookup)
            ).first()
        if row is None or row.person_id != person.id:
            return None
        key = (int(row.id), lookup)
        if self._verified.get(key, 0.0) < time.monotonic():
            if not self._hasher.verify(row.password_hash, raw):
                return None
            if len(self._verified) > 100_000:
                self._verified.clear()
            self._verified[key] = time.monotonic() + self._cache_seconds
        return _from_row(row)

    def list(self, person: Person) -> list[AppPassword]:
        """The person's app passwords, newest first."""
        query = (
            select(app_passwords)
            .where(app_passwords.c.person_id == person.id)
            .order_by(app_passwords.c.created_at.desc(), app_passwords.c.id.desc())
        )
        with self._engine.connect() as conn:
            return [_from_row(row) for row in conn.execute(query)]

    def revoke(self, person: Person, app_id: int, *, actor: str) -> AppPassword:
        """Delete one of the person's app passwords: it stops working at once."""
        found = next((a for a in self.list(person) if a.id == app_id), None)
        if found is None:
            raise NotFoundError("app password", str(app_id))
        with self._engine.begin() as conn:
            conn.execute(delete(app_passwords).where(app_passwords.c.id == app_id))
        self._audit.record(
            "app_password.revoked", actor=actor, subject=person.login, detail=found.name
        )
        return found

    def _lookup(self, raw: str) -> str:
        return hmac.new(self._key, raw.encode(), hashlib.sha256).hexdigest()


def _from_row(row: object) -> AppPassword:
    return AppPassword(
        id=row.id,  # type: ignore[attr-defined]
        person_id=row.person_id,  # type: ignore[attr-defined]
        name=row.name,  # type: ignore[attr-defined]
        scope=row.scope,  # type: ignore[attr-defined]
        created_at=row.created_at,  # type: ignore[attr-defined]
        last_used_at=row.last_used_at,  # type: ignore[attr-defined]
        last_used_protocol=row.last_used_protocol,  # type: ignore[attr-defined]
        last_used_from=row.last_used_from,  # type: ignore[attr-defined]
    )
