# SPDX-License-Identifier: GPL-3.0-or-later
"""One authentication path for every protocol (web, DAV, IMAP, SMTP AUTH).

Order of a login, the same everywhere:

1. throttling: failures are counted per (account, client address) pair; after
   ``delay_after_failures_count`` each attempt waits, after
   ``max_failures_count`` the pair is refused for ``lockout_seconds`` without
   computing any hash;
2. the person is looked up (full address or local part, any case);
3. the secret is checked: for mail and DAV, one of the person's app passwords
   (``core.app_passwords``) first; then the in-memory cache of recent successes, then
   argon2id (or, for an account still on its first login, the NUMEN's keyed hash);
4. status: a disabled account is refused; a "must change" account is refused on
   every protocol but the portal, which forces the change; an account with
   two-factor authentication is refused its password on every protocol but the
   portal (which then asks for a code): devices use app passwords;
5. the outcome goes to the audit log. DAV clients send their credentials with every
   request (a phone's sync is dozens): a success there is recorded once per
   person, client address and credential while the cache remembers it, not once
   per request (each record is a write).

Blocking (database, argon2, the throttling delay): async callers use
``asyncio.to_thread``.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from sqlalchemy import ColumnElement, Engine, Row, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from groupware.config import AuthConfig, Config
from groupware.core.app_passwords import AppPasswords
from groupware.core.audit import Audit, Clock, utc_now
from groupware.core.db import login_failures, stored_utc
from groupware.core.directory import Directory, Person
from groupware.core.second_factor import SecondFactor
from groupware.errors import ConfigError

log = logging.getLogger(__name__)

PORTAL: str = "web"
#: The portal's own identity: with SASL PLAIN and an authorization identity, it acts
#: for the signed-in user over IMAP and SMTP, so the portal never keeps a password.
PORTAL_IDENTITY: str = "groupware-portal"


#: Protocols whose clients log in on every request: a success is audited once per
#: credential cache window (``auth.cache_seconds``) for each person, client and secret.
AUDITED_ONCE_PER_WINDOW: Final = frozenset({"dav"})

#: The throttling row of one (account, client) pair: read on every login.
_FAILURES_OF_PAIR: Final = select(login_failures).where(
    login_failures.c.account == bindparam("account"),
    login_failures.c.client == bindparam("client"),
)


#: A portal password read from a file must be at least this long (it opens every mailbox).
MIN_PORTAL_PASSWORD_LENGTH: Final = 16


def portal_password(secret: bytes) -> str:
    """The portal's credential, derived from the server secret (never stored)."""
    return hmac.new(secret, b"groupware portal credential v1", hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class PortalCredential:
    """The identity the webmail logs in with to act for people, and its password."""

    identity: str
    password: str = field(repr=False)


def portal_credential(config: Config, secret: bytes) -> PortalCredential:
    """``webmail.master_login`` with the password of ``webmail.master_password_file``.

    Without a file the password is derived from the server secret. Our IMAP and
    submission servers accept exactly this credential, so that a portal set up
    for another server's master user (Dovecot's) also works against ours.

    Raises:
        ConfigError: the file is unreadable or its password too short.
    """
    identity = config.webmail.master_login.strip().lower()
    configured = config.webmail.master_password_file
    if not configured:
        return PortalCredential(identity, portal_password(secret))
    path = config.path(Path(configured))
    try:
        password = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            f"webmail.master_password_file: cannot read {path}: {exc.strerror}"
        ) from exc
    if len(password) < MIN_PORTAL_PASSWORD_LENGTH:
        raise ConfigError(
            f"webmail.master_password_file: {path} holds fewer than "
            f"{MIN_PORTAL_PASSWORD_LENGTH} characters"
        )
    return PortalCredential(identity, password)


class Outcome(enum.Enum):
    """How a login attempt ended."""

    OK = "ok"
    BAD_CREDENTIALS = "bad_credentials"
    MUST_CHANGE_PASSWORD = "must_change_password"  # noqa: S105 - an outcome name
    DISABLED = "disabled"
    THROTTLED = "throttled"
    APP_PASSWORD_REQUIRED = "app_password_required"  # noqa: S105 - an outcome name


@dataclass(frozen=True, slots=True)
class AuthResult:
    """The outcome and, when the credentials were right, the person."""

    outcome: Outcome
    person: Person | None = None

    @property
    def is_ok(self) -> bool:
        """True only for a complete, usable login."""
        return self.outcome is Outcome.OK


#: What a mail or DAV client is told when the account uses two-factor authentication.
APP_PASSWORD_MESSAGE = (
    "This account uses two-factor authentication: make an app password for this "  # noqa: S105
    "device in the web portal (Devices) and use it instead of your password."
)

#: What a protocol client is told when the account must first visit the portal.
MUST_CHANGE_MESSAGE = (
    "Your password must be changed before first use: sign in to the web portal "
    "and choose a new password."
)


class Authenticator:
    """Checks credentials for every protocol with the same limits and audit."""

    def __init__(
        self,
        directory: Directory,
        engine: Engine,
        config: AuthConfig,
        audit: Audit,
        secret: bytes,
        clock: Clock = utc_now,
        sleep: Callable[[float], None] = time.sleep,
        app_passwords: AppPasswords | None = None,
        second_factor: SecondFactor | None = None,
        portal: PortalCredential | None = None,
    ) -> None:
        self._directory = directory
        self._app_passwords = app_passwords
        self._second_factor = second_factor
        self._engine = engine
        self._config = config
        self._audit = audit
        self._clock = clock
        self._sleep = sleep
        self._cache_key = hmac.new(secret, b"groupware auth cache v1", hashlib.sha256).digest()
        self._portal = portal or PortalCredential(PORTAL_IDENTITY, portal_password(secret))
        # (person id, keyed hash of secret) -> (credential_version, expiry monotonic)
        self._cache: dict[tuple[int, bytes], tuple[int, float]] = {}
        self._cache_lock = threading.Lock()
        # (person id, credential_version, protocol, client, keyed hash of secret) ->
        # when a success was last audited (monotonic), for ``AUDITED_ONCE_PER_WINDOW``.
        self._audited: dict[tuple[int, int, str, str, bytes], float] = {}

    # --- public --------------------------------------------------------------------

    def authenticate(
        self, identifier: str, secret: str, *, protocol: str, client: str
    ) -> AuthResult:
        """Check one login attempt.

        Args:
            identifier: what the user typed as login (address or local part).
            secret: password, NUMEN (first login) or temporary password.
            protocol: ``web``, ``dav``, ``imap``, ``smtp``: for audit, and because
                only the portal accepts an account that must change its password.
            client: the client's address, for throttling and audit.
        """
        typed = identifier.strip().lower()[:255]
        client = client[:64]
        # The lookup is cheap (an indexed query); the secret check is what throttling
        # protects. Counting per person means no spelling or alias gets its own count.
        person = self._directory.find(typed)
        account = person.login if person is not None else typed
        failures = self._failures(account, client)
        if failures >= self._config.max_failures_count:
            self._audit.record(
                "login.throttled",
                actor=account,
                subject=account,
                protocol=protocol,
                client=client,
                outcome="refused",
            )
            return AuthResult(Outcome.THROTTLED)
        if failures >= self._config.delay_after_failures_count:
            self._sleep(self._config.failure_delay_seconds)

        device = None
        if person is not None and secret and protocol != PORTAL and self._app_passwords:
            device = self._app_passwords.verify(person, secret, protocol=protocol, client=client)
        if (
            person is None
            or not secret
            or (device is None and not self._secret_matches(person, secret))
        ):
            self._count_failure(account, client)
            self._audit.record(
                "login.failed",
                actor=account,
                subject=person.login if person else account,
                protocol=protocol,
                client=client,
                outcome="refused",
            )
            return AuthResult(Outcome.BAD_CREDENTIALS)

        if failures:
            # No write when nothing counts: DAV clients log in on every request.
            # (A row whose failures no longer count is harmless: the next failure
            # starts a new window over it.)
            self._clear_failures(account, client)
        if not person.is_active:
            outcome = Outcome.DISABLED
        elif person.must_change_password and protocol != PORTAL:
            outcome = Outcome.MUST_CHANGE_PASSWORD
        elif device is None and protocol != PORTAL and self._requires_app_password(person):
            outcome = Outcome.APP_PASSWORD_REQUIRED
        else:
            outcome = Outcome.OK
        if outcome is Outcome.OK and self._audited_recently(person, protocol, client, secret):
            return AuthResult(outcome, person)
        self._audit.record(
            "login.ok" if outcome is Outcome.OK else "login.refused",
            actor=person.login,
            subject=person.login,
            protocol=protocol,
            client=client,
            outcome="ok" if outcome is Outcome.OK else outcome.value,
            detail=f"app_password={device.name}" if device else "",
        )
        return AuthResult(outcome, person)

    def authenticate_for(
        self, identifier: str, secret: str, authzid: str, *, protocol: str, client: str
    ) -> AuthResult:
        """A login acting for ``authzid``: allowed for the portal's own credential only.

        The result's person is the user acted for; the audit names both.
        """
        account = identifier.strip().lower()[:255]
        client = client[:64]
        if self._failures(account, client) >= self._config.max_failures_count:
            self._audit.record(
                "login.throttled",
                actor=account,
                subject=authzid,
                protocol=protocol,
                client=client,
                outcome="refused",
            )
            return AuthResult(Outcome.THROTTLED)
        is_portal = account == self._portal.identity and hmac.compare_digest(
            secret.encode(), self._portal.password.encode()
        )
        person = self._directory.find(authzid) if is_portal else None
        if person is None:
            self._count_failure(account, client)
            self._audit.record(
                "login.failed",
                actor=account,
                subject=authzid,
                protocol=protocol,
                client=client,
                outcome="refused",
                detail="acting_for",
            )
            return AuthResult(Outcome.BAD_CREDENTIALS)
        if not person.is_active:
            outcome = Outcome.DISABLED
        elif person.must_change_password:
            outcome = Outcome.MUST_CHANGE_PASSWORD
        else:
            outcome = Outcome.OK
        self._audit.record(
            "login.ok" if outcome is Outcome.OK else "login.refused",
            actor=self._portal.identity,
            subject=person.login,
            protocol=protocol,
            client=client,
            outcome="ok" if outcome is Outcome.OK else outcome.value,
            detail="acting_for",
        )
        return AuthResult(outcome, person)

    def check_second_factor(self, person: Person, code: str, *, client: str) -> Outcome:
        """A code after the password at the portal, under the same throttling and audit."""
        client = client[:64]
        if self._second_factor is None:
            return Outcome.BAD_CREDENTIALS

        def audit(event: str, outcome: str, detail: str = "second_factor") -> None:
            self._audit.record(
                event,
                actor=person.login,
                subject=person.login,
                protocol=PORTAL,
                client=client,
                outcome=outcome,
                detail=detail,
            )

        if self._failures(person.login, client) >= self._config.max_failures_count:
            audit("login.throttled", "refused")
            return Outcome.THROTTLED
        if self._second_factor.verify(person, code, client=client):
            self._clear_failures(person.login, client)
            audit("login.second_factor", "ok", "")
            return Outcome.OK
        self._count_failure(person.login, client)
        audit("login.failed", "refused")
        return Outcome.BAD_CREDENTIALS

    def needs_second_factor(self, person: Person) -> bool:
        """Whether the portal must ask ``person`` for a code after the password."""
        return self._requires_app_password(person)

    def _requires_app_password(self, person: Person) -> bool:
        """With two-factor authentication on, a password alone opens only the portal."""
        return self._second_factor is not None and self._second_factor.is_enabled(person)

    def forget(self, person_id: int) -> None:
        """Drop cached verifications of one person (credential changes do it implicitly)."""
        with self._cache_lock:
            for key in [key for key in self._cache if key[0] == person_id]:
                del self._cache[key]
            for audited in [key for key in self._audited if key[0] == person_id]:
                del self._audited[audited]

    # --- secrets -------------------------------------------------------------------

    def _fingerprint(self, secret: str) -> bytes:
        return hmac.new(self._cache_key, secret.encode(), hashlib.sha256).digest()

    def _audited_recently(self, person: Person, protocol: str, client: str, secret: str) -> bool:
        """Whether this success needs no audit record (and note it when it does).

        Only for ``AUDITED_ONCE_PER_WINDOW`` protocols: the same person (with the same
        credentials), client and secret were recorded less than ``cache_seconds`` ago.
        """
        window = self._config.cache_seconds
        if protocol not in AUDITED_ONCE_PER_WINDOW or window <= 0:
            return False
        key = (person.id, person.credential_version, protocol, client, self._fingerprint(secret))
        now = time.monotonic()
        with self._cache_lock:
            last = self._audited.get(key)
            if last is not None and now - last < window:
                return True
            if len(self._audited) > 100_000:
                self._audited.clear()
            self._audited[key] = now
        return False

    def _secret_matches(self, person: Person, secret: str) -> bool:
        key = (person.id, self._fingerprint(secret))
        now = time.monotonic()
        with self._cache_lock:
            cached = self._cache.get(key)
        if cached is not None and cached[0] == person.credential_version and cached[1] > now:
            return True
        if person.password_hash is not None:
            matches = self._directory.hasher.verify(person.password_hash, secret)
        else:
            # First login: the NUMEN, kept only as a keyed hash.
            matches = person.must_change_password and self._directory.numen_key.matches(
                secret, person.numen_hmac
            )
        if matches and self._config.cache_seconds > 0:
            with self._cache_lock:
                if len(self._cache) > 100_000:
                    self._cache.clear()
                self._cache[key] = (person.credential_version, now + self._config.cache_seconds)
        return matches

    # --- throttling ----------------------------------------------------------------

    def is_throttled(self, account: str, client: str) -> bool:
        """Whether the pair is refused for now (for other checks: password reset)."""
        return self._failures(account[:255], client[:64]) >= self._config.max_failures_count

    def count_failure(self, account: str, client: str) -> None:
        """Count one failure of the pair, as a wrong password would be."""
        self._count_failure(account[:255], client[:64])

    def clear_failures(self, account: str, client: str) -> None:
        """Forget the pair's failures (after a success)."""
        self._clear_failures(account[:255], client[:64])

    def _failures(self, account: str, client: str) -> int:
        with self._engine.connect() as conn:
            row = conn.execute(_FAILURES_OF_PAIR, {"account": account, "client": client}).first()
        return 0 if row is None else self._counted(row, self._clock())

    def _counted(self, row: Row[Any], now: datetime) -> int:
        """The failures of a ``login_failures`` row that still count at ``now``."""
        last = stored_utc(row.last_failure_at)
        first = stored_utc(row.first_failure_at)
        if row.failures_count >= self._config.max_failures_count:
            if now - last < timedelta(seconds=self._config.lockout_seconds):
                return int(row.failures_count)
            return 0
        if now - first > timedelta(seconds=self._config.failure_window_seconds):
            return 0
        return int(row.failures_count)

    def _count_failure(self, account: str, client: str) -> None:
        now = self._clock()
        pair = _pair(account, client)
        # Added by the database, not written as a number read before: concurrent
        # failures of one pair are each counted (PostgreSQL runs them in parallel).
        increment = {"failures_count": login_failures.c.failures_count + 1, "last_failure_at": now}
        with self._engine.begin() as conn:
            # Locked until commit on PostgreSQL, so that two failures cannot both
            # start a new window (SQLite ignores FOR UPDATE; the increment still holds).
            row = conn.execute(select(login_failures).where(*pair).with_for_update()).first()
            if row is not None and self._counted(row, now) > 0:
                conn.execute(update(login_failures).where(*pair).values(**increment))
            elif row is not None:
                # The earlier failures are forgotten: a new window starts.
                conn.execute(
                    update(login_failures)
                    .where(*pair)
                    .values(failures_count=1, first_failure_at=now, last_failure_at=now)
                )
            else:
                try:
                    with conn.begin_nested():
                        conn.execute(
                            insert(login_failures).values(
                                account=account,
                                client=client,
                                failures_count=1,
                                first_failure_at=now,
                                last_failure_at=now,
                            )
                        )
                except IntegrityError:
                    # A concurrent failure of the same pair inserted first.
                    conn.execute(update(login_failures).where(*pair).values(**increment))

    def _clear_failures(self, account: str, client: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(login_failures).where(*_pair(account, client)))


def _pair(account: str, client: str) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    return (login_failures.c.account == account, login_failures.c.client == client)
