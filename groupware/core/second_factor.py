# SPDX-License-Identifier: GPL-3.0-or-later
"""Two-factor authentication: TOTP (RFC 6238, ``pyotp``) and one-use recovery codes.

Turning it on takes two steps: :meth:`SecondFactor.begin` makes a secret (shown as a
QR code by the portal), :meth:`SecondFactor.confirm` checks a first code from the
person's app and only then enables it, returning ten recovery codes to print. With it
on, the portal asks for a code after the password, and mail and DAV clients are
accepted only with app passwords (``core.auth``). A code is valid in its 30-second
step and the neighbouring ones (clocks drift), once: a step already used is refused.

The TOTP secret is kept encrypted (Fernet) with a key derived from the server
secret; recovery codes as argon2id hashes (DESIGN.md §9). Every change is audited.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from typing import Any, Final

import pyotp
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import Connection, Engine, Row, bindparam, delete, insert, select, update

from groupware.core.audit import Audit, Clock, utc_now
from groupware.core.db import recovery_codes, second_factors
from groupware.core.directory import Person
from groupware.core.passwords import Hasher
from groupware.errors import GroupwareError

RECOVERY_CODES_COUNT: Final = 10
_STEP_SECONDS: Final = 30
_DRIFT_STEPS: Final = 1
_RECOVERY_ALPHABET: Final = "abcdefghijkmnpqrstuvwxyz23456789"


def _normalize(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch not in " -")


#: Read on every login and DAV request (is the password alone enough?), built once.
_ENABLED_AT: Final = select(second_factors.c.enabled_at).where(
    second_factors.c.person_id == bindparam("person_id")
)


class SecondFactor:
    """TOTP and recovery codes of every account."""

    def __init__(
        self,
        engine: Engine,
        hasher: Hasher,
        audit: Audit,
        secret: bytes,
        *,
        issuer: str,
        clock: Clock = utc_now,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._hasher = hasher
        self._audit = audit
        key = hmac.new(secret, b"groupware totp secrets v1", hashlib.sha256).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(key))
        self._issuer = issuer
        self._clock = clock
        self._now = now

    # --- state -----------------------------------------------------------------------

    def is_enabled(self, person: Person) -> bool:
        with self._engine.connect() as conn:
            enabled = conn.execute(_ENABLED_AT, {"person_id": person.id}).scalar()
        return enabled is not None

    def recovery_codes_left(self, person: Person) -> int:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(recovery_codes.c.id).where(
                    recovery_codes.c.person_id == person.id, recovery_codes.c.used_at.is_(None)
                )
            )
            return len(rows.all())

    # --- turning it on and off ---------------------------------------------------------

    def begin(self, person: Person) -> str:
        """A new secret for ``person`` (not yet in force); its ``otpauth://`` URI."""
        secret = pyotp.random_base32()
        values = {
            "secret_encrypted": self._fernet.encrypt(secret.encode()).decode(),
            "enabled_at": None,
            "last_step": 0,
        }
        with self._engine.begin() as conn:
            if self._row(conn, person) is not None:
                if self._enabled(conn, person):
                    raise GroupwareError("two-factor authentication is already on")
                conn.execute(
                    update(second_factors)
                    .where(second_factors.c.person_id == person.id)
                    .values(**values)
                )
            else:
                conn.execute(insert(second_factors).values(person_id=person.id, **values))
        return self.provisioning_uri(person, secret)

    def pending_uri(self, person: Person) -> str | None:
        """The URI of the secret being set up, if any."""
        with self._engine.connect() as conn:
            row = self._row(conn, person)
        if row is None or row.enabled_at is not None:
            return None
        return self.provisioning_uri(person, self._decrypt(row.secret_encrypted))

    def provisioning_uri(self, person: Person, secret: str) -> str:
        return pyotp.TOTP(secret).provisioning_uri(name=person.email, issuer_name=self._issuer)

    def confirm(self, person: Person, code: str, *, actor: str) -> list[str]:
        """Turn it on if ``code`` is right for the pending secret; the recovery codes."""
        with self._engine.begin() as conn:
            row = self._row(conn, person)
            if row is None or row.enabled_at is not None:
                raise GroupwareError("nothing to confirm: start again")
            step = self._matching_step(self._decrypt(row.secret_encrypted), code, 0)
            if step is None:
                raise GroupwareError("wrong code")
            conn.execute(
                update(second_factors)
                .where(second_factors.c.person_id == person.id)
                .values(enabled_at=self._clock(), last_step=step)
            )
            codes = self._new_recovery_codes(conn, person)
        self._audit.record("second_factor.enabled", actor=actor, subject=person.login)
        return codes

    def regenerate_recovery_codes(self, person: Person, *, actor: str) -> list[str]:
        """New recovery codes; the old ones stop working."""
        with self._engine.begin() as conn:
            if not self._enabled(conn, person):
                raise GroupwareError("two-factor authentication is off")
            codes = self._new_recovery_codes(conn, person)
        self._audit.record("second_factor.recovery_codes", actor=actor, subject=person.login)
        return codes

    def disable(self, person: Person, *, actor: str) -> None:
        """Turn it off (the person, after a code, or an administrator)."""
        with self._engine.begin() as conn:
            conn.execute(delete(second_factors).where(second_factors.c.person_id == person.id))
            conn.execute(delete(recovery_codes).where(recovery_codes.c.person_id == person.id))
        self._audit.record("second_factor.disabled", actor=actor, subject=person.login)

    # --- checking a code -----------------------------------------------------------------

    def verify(self, person: Person, code: str, *, client: str = "") -> bool:
        """Whether ``code`` (TOTP, or an unused recovery code) is right, and spend it."""
        code = _normalize(code)
        with self._engine.begin() as conn:
            row = self._row(conn, person)
            if row is None or row.enabled_at is None:
                return False
            if code.isdigit() and len(code) == 6:
                step = self._matching_step(
                    self._decrypt(row.secret_encrypted), code, int(row.last_step)
                )
                if step is None:
                    return False
                # Only if no concurrent login spent this step first.
                spent = conn.execute(
                    update(second_factors)
                    .where(
                        second_factors.c.person_id == person.id,
                        second_factors.c.last_step < step,
                    )
                    .values(last_step=step)
                )
                return bool(spent.rowcount)
            left = self._spend_recovery_code(conn, person, code)
        if left is None:
            return False
        # Audited once the transaction is over (SQLite has one writer at a time).
        self._audit.record(
            "second_factor.recovery_code_used",
            actor=person.login,
            subject=person.login,
            client=client,
            detail=f"left={left}",
        )
        return True

    def _matching_step(self, secret: str, code: str, after_step: int) -> int | None:
        code = _normalize(code)
        if not (code.isdigit() and len(code) == 6):
            return None
        totp = pyotp.TOTP(secret, interval=_STEP_SECONDS)
        current = int(self._now()) // _STEP_SECONDS
        for step in range(current - _DRIFT_STEPS, current + _DRIFT_STEPS + 1):
            expected = totp.at(step * _STEP_SECONDS)
            if step > after_step and hmac.compare_digest(expected, code):
                return step
        return None

    def _spend_recovery_code(self, conn: Connection, person: Person, code: str) -> int | None:
        """Spend ``code`` if it is one of the unused ones; how many are left then."""
        rows = conn.execute(
            select(recovery_codes).where(
                recovery_codes.c.person_id == person.id, recovery_codes.c.used_at.is_(None)
            )
        ).all()
        for row in rows:
            if self._hasher.verify(row.code_hash, code):
                conn.execute(
                    update(recovery_codes)
                    .where(recovery_codes.c.id == row.id)
                    .values(used_at=self._clock())
                )
                return len(rows) - 1
        return None

    # --- rows ----------------------------------------------------------------------------

    def _new_recovery_codes(self, conn: Connection, person: Person) -> list[str]:
        conn.execute(delete(recovery_codes).where(recovery_codes.c.person_id == person.id))
        codes = []
        for _ in range(RECOVERY_CODES_COUNT):
            raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
            codes.append(f"{raw[:5]}-{raw[5:]}")
            conn.execute(
                insert(recovery_codes).values(
                    person_id=person.id, code_hash=self._hasher.hash(raw), used_at=None
                )
            )
        return codes

    @staticmethod
    def _row(conn: Connection, person: Person) -> Row[Any] | None:
        return conn.execute(
            select(second_factors).where(second_factors.c.person_id == person.id)
        ).first()

    def _enabled(self, conn: Connection, person: Person) -> bool:
        row = self._row(conn, person)
        return row is not None and row.enabled_at is not None

    def _decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise GroupwareError(
                "the two-factor secret cannot be read (server secret changed?)"
            ) from None
