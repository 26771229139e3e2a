# SPDX-License-Identifier: GPL-3.0-or-later
"""Web sessions kept on the server: who is signed in where, and the power to end it.

The portal's cookie carries a random token (256 bits); the table keeps only its
SHA-256 (a stolen database opens no session; the token is random, so a plain
hash is enough), with the person, the credential version the session was opened
under, when it began and was last active, the client's address and the browser and
system read from its ``User-Agent``. Every request checks its record
(:meth:`WebSessions.check`): a deleted record (signed out from another device), a
credential version that moved on (password changed, account locked or reset by an
administrator) or an idle time over ``http.session_idle_seconds`` ends it.

Last activity is written at most once a minute (less for a short idle timeout), not
once per request. Expired and outdated records go at each sign-in (:meth:`purge`,
one indexed ``DELETE``). The token changes at sign-in and whenever the session's
power changes (second factor, password, two-factor authentication on or off):
:meth:`rotate` replaces the record, and the old token opens nothing.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import Engine, bindparam, delete, insert, or_, select, update

from groupware.core.audit import Audit, Clock, utc_now
from groupware.core.db import persons, stored_utc, web_sessions
from groupware.core.directory import Person

#: Last activity is recorded at most this often (a write per request would cost more).
TOUCH_SECONDS: Final = 60
_TOKEN_BYTES: Final = 32
_MAX_CLIENT_CHARS: Final = 64

# Browsers in the order to test them: each of these also names the ones after it in
# its User-Agent (Edge says Chrome and Safari; Chrome says Safari).
_BROWSERS: Final = (
    ("Edge", re.compile(r"\bEdg(?:e|A|iOS)?/")),
    ("Opera", re.compile(r"\b(?:OPR|Opera)/")),
    ("Samsung Internet", re.compile(r"\bSamsungBrowser/")),
    ("Firefox", re.compile(r"\b(?:Firefox|FxiOS)/")),
    ("Chrome", re.compile(r"\b(?:HeadlessChrome|Chrome|CriOS)/")),
    ("Chromium", re.compile(r"\bChromium/")),
    ("Safari", re.compile(r"\bVersion/[\d.]+.*\bSafari/")),
)
_SYSTEMS: Final = (
    ("Android", re.compile(r"\bAndroid\b")),
    ("iPhone", re.compile(r"\biPhone\b")),
    ("iPad", re.compile(r"\biPad\b")),
    ("ChromeOS", re.compile(r"\bCrOS\b")),
    ("Windows", re.compile(r"\bWindows\b")),
    ("macOS", re.compile(r"\bMac OS X\b|\bMacintosh\b")),
    ("Linux", re.compile(r"\bLinux\b|\bX11\b")),
)


class SessionState(enum.Enum):
    """What a request's token amounts to."""

    ACTIVE = "active"
    IDLE = "idle"  # no request for longer than the idle timeout
    ENDED = "ended"  # signed out elsewhere, or the credentials changed


@dataclass(frozen=True, slots=True)
class WebSession:
    """One signed-in browser, as its owner sees it (never the token)."""

    id: int
    person_id: int
    credential_version: int
    created_at: datetime
    last_seen_at: datetime
    client: str
    browser: str
    system: str


@dataclass(frozen=True, slots=True)
class Checked:
    """The outcome of :meth:`WebSessions.check`: the state and, when active, the record."""

    state: SessionState
    record: WebSession | None = None


def describe_device(user_agent: str) -> tuple[str, str]:
    """``(browser, system)`` read from a ``User-Agent``; ``""`` for what is unknown.

    Only names people recognise, from a few stable markers: no version numbers,
    nothing that would make the label a fingerprint.
    """
    text = user_agent[:512]
    browser = next((name for name, pattern in _BROWSERS if pattern.search(text)), "")
    system = next((name for name, pattern in _SYSTEMS if pattern.search(text)), "")
    return browser, system


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


#: Read on every signed-in page, built once.
_SESSION_OF: Final = select(web_sessions).where(
    web_sessions.c.token_hash == bindparam("token_hash")
)


class WebSessions:
    """Opens, checks, lists, rotates and ends web sessions."""

    def __init__(
        self, engine: Engine, audit: Audit, *, idle_seconds: int, clock: Clock = utc_now
    ) -> None:
        self._engine = engine
        self._audit = audit
        self._idle = timedelta(seconds=idle_seconds)
        # Short timeouts (tests, kiosks) need fresher records than once a minute.
        self._touch = timedelta(seconds=min(TOUCH_SECONDS, idle_seconds / 4))
        self._clock = clock

    def open(self, person: Person, *, client: str, user_agent: str) -> tuple[str, WebSession]:
        """A new session for ``person``: the token for the cookie and its record."""
        self.purge()
        token = secrets.token_urlsafe(_TOKEN_BYTES)
        browser, system = describe_device(user_agent)
        client = client[:_MAX_CLIENT_CHARS]
        now = self._clock()
        values = {
            "token_hash": _digest(token),
            "person_id": person.id,
            "credential_version": person.credential_version,
            "created_at": now,
            "last_seen_at": now,
            "client": client,
            "browser": browser,
            "system": system,
        }
        with self._engine.begin() as conn:
            new_id = conn.execute(
                insert(web_sessions).values(**values).returning(web_sessions.c.id)
            ).scalar_one()
        return token, WebSession(
            int(new_id), person.id, person.credential_version, now, now, client, browser, system,
        )  # fmt: skip

    def check(self, token: str, person: Person | None) -> Checked:
        """The state of the session ``token`` opens for ``person`` (as the directory has
        them now); an active one has its last activity recorded, an ended one is deleted.
        """
        with self._engine.connect() as conn:
            row = conn.execute(_SESSION_OF, {"token_hash": _digest(token)}).first()
        if row is None:
            return Checked(SessionState.ENDED)
        record = _from_row(row)
        now = self._clock()
        state = SessionState.ACTIVE
        if (
            person is None
            or not person.is_active
            or person.id != record.person_id
            or person.credential_version != record.credential_version
        ):
            state = SessionState.ENDED
        elif now - record.last_seen_at > self._idle:
            state = SessionState.IDLE
        if state is not SessionState.ACTIVE:
            self._delete(web_sessions.c.id == record.id)
            return Checked(state)
        if now - record.last_seen_at >= self._touch:
            with self._engine.begin() as conn:
                conn.execute(
                    update(web_sessions)
                    .where(web_sessions.c.id == record.id)
                    .values(last_seen_at=now)
                )
        return Checked(state, record)

    def rotate(
        self, token: str | None, person: Person, *, client: str, user_agent: str
    ) -> tuple[str, WebSession]:
        """Replace the session ``token`` (if any) by a new one for ``person``."""
        if token:
            self._delete(web_sessions.c.token_hash == _digest(token))
        return self.open(person, client=client, user_agent=user_agent)

    def close(self, token: str) -> None:
        """Sign out: the session ``token`` ends."""
        self._delete(web_sessions.c.token_hash == _digest(token))

    def list(self, person: Person) -> list[WebSession]:
        """The person's live sessions, most recently active first."""
        cutoff = self._clock() - self._idle
        query = (
            select(web_sessions)
            .where(
                web_sessions.c.person_id == person.id,
                web_sessions.c.credential_version == person.credential_version,
                web_sessions.c.last_seen_at >= cutoff,
            )
            .order_by(web_sessions.c.last_seen_at.desc(), web_sessions.c.id.desc())
        )
        with self._engine.connect() as conn:
            return [_from_row(row) for row in conn.execute(query)]

    def revoke(self, person: Person, session_id: int, *, actor: str, client: str = "") -> bool:
        """End one of the person's sessions; whether there was such a session."""
        count = self._delete(web_sessions.c.id == session_id, web_sessions.c.person_id == person.id)
        if count:
            self._audit.record(
                "auth.session_revoked",
                actor=actor,
                subject=person.login,
                protocol="web",
                client=client,
                detail=f"session={session_id}",
            )
        return bool(count)

    def revoke_others(
        self, person: Person, keep_id: int, *, actor: str, client: str = "", reason: str = ""
    ) -> int:
        """End every session of the person but ``keep_id``; how many ended."""
        count = self._delete(web_sessions.c.person_id == person.id, web_sessions.c.id != keep_id)
        self._audit.record(
            "auth.sessions_revoked",
            actor=actor,
            subject=person.login,
            protocol="web",
            client=client,
            detail=f"others count={count}" + (f" reason={reason}" if reason else ""),
        )
        return count

    def end_all(self, person: Person, *, actor: str, reason: str) -> int:
        """End every session of the person (an administrator's lock or reset)."""
        count = self._delete(web_sessions.c.person_id == person.id)
        self._audit.record(
            "auth.sessions_revoked",
            actor=actor,
            subject=person.login,
            protocol="web",
            detail=f"all count={count} reason={reason}",
        )
        return count

    def carry_over(self, person: Person, *, from_version: int) -> int:
        """Keep the person's other sessions across a credential change they made.

        Sessions opened under ``from_version`` move to the person's current version;
        older ones stay ended. How many were kept.
        """
        with self._engine.begin() as conn:
            result = conn.execute(
                update(web_sessions)
                .where(
                    web_sessions.c.person_id == person.id,
                    web_sessions.c.credential_version == from_version,
                )
                .values(credential_version=person.credential_version)
            )
        return int(result.rowcount)

    def purge(self) -> int:
        """Delete idle records and those whose credentials changed; how many."""
        current_version = (
            select(persons.c.credential_version)
            .where(persons.c.id == web_sessions.c.person_id)
            .scalar_subquery()
        )
        return self._delete(
            or_(
                web_sessions.c.last_seen_at < self._clock() - self._idle,
                web_sessions.c.credential_version != current_version,
            )
        )

    def _delete(self, *conditions: object) -> int:
        with self._engine.begin() as conn:
            result = conn.execute(delete(web_sessions).where(*conditions))  # type: ignore[arg-type]
        return int(result.rowcount)


def _from_row(row: object) -> WebSession:
    return WebSession(
        id=row.id,  # type: ignore[attr-defined]
        person_id=row.person_id,  # type: ignore[attr-defined]
        credential_version=row.credential_version,  # type: ignore[attr-defined]
        created_at=stored_utc(row.created_at),  # type: ignore[attr-defined]
        last_seen_at=stored_utc(row.last_seen_at),  # type: ignore[attr-defined]
        client=row.client,  # type: ignore[attr-defined]
        browser=row.browser,  # type: ignore[attr-defined]
        system=row.system,  # type: ignore[attr-defined]
    )
