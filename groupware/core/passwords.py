# SPDX-License-Identifier: GPL-3.0-or-later
"""Password hashing (argon2id), NUMEN keyed hashes, and the password policy.

See DESIGN.md §9: argon2id at full cost only for secrets people choose or are
given, computed when set; the NUMEN is kept as an HMAC-SHA256 with the server
secret, so the import hashes no passwords and a stolen database reveals no NUMEN.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import date
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from groupware.config import AuthConfig
from groupware.core.names import ascii_fold
from groupware.errors import PasswordPolicyError

NUMEN_PATTERN: Final = re.compile(r"[0-9A-Z]{13}")
# Policy problems, as stable keys that the portal and the CLI turn into sentences.
TOO_SHORT: Final = "too_short"
CONTAINS_NUMEN: Final = "contains_numen"
CONTAINS_NAME: Final = "contains_name"
CONTAINS_BIRTH_DATE: Final = "contains_birth_date"
POLICY_MESSAGES: Final = {
    TOO_SHORT: "The password must have at least {min_length} characters.",
    CONTAINS_NUMEN: "The password must not contain your NUMEN.",
    CONTAINS_NAME: "The password must not contain your first or last name.",
    CONTAINS_BIRTH_DATE: "The password must not contain your birth date.",
}
# Readable temporary passwords: no 0/O, 1/l/I.
_TEMP_ALPHABET: Final = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class Hasher:
    """argon2id hashing with the configured cost."""

    def __init__(self, config: AuthConfig) -> None:
        self._hasher = PasswordHasher(
            time_cost=config.argon2_time_cost,
            memory_cost=config.argon2_memory_kib,
            parallelism=config.argon2_parallelism,
        )

    def hash(self, secret: str) -> str:
        """Hash a secret (tens of milliseconds at full cost)."""
        return self._hasher.hash(secret)

    def verify(self, stored_hash: str, secret: str) -> bool:
        """Whether ``secret`` matches ``stored_hash``; malformed hashes never match."""
        try:
            return self._hasher.verify(stored_hash, secret)
        except (VerificationError, InvalidHashError):
            return False


class NumenKey:
    """Keyed hashes of NUMENs (HMAC-SHA256 with the server secret)."""

    def __init__(self, secret: bytes) -> None:
        self._key = hmac.new(secret, b"groupware numen v1", hashlib.sha256).digest()

    def digest(self, numen: str) -> str:
        """Hex HMAC of a NUMEN (case and surrounding blanks ignored)."""
        return hmac.new(self._key, numen.strip().upper().encode(), hashlib.sha256).hexdigest()

    def matches(self, candidate: str, stored_digest: str) -> bool:
        """Constant-time comparison of a candidate NUMEN with a stored digest."""
        return hmac.compare_digest(self.digest(candidate), stored_digest)

    def contained_in(self, text: str, stored_digest: str) -> bool:
        """Whether any 13-character window of ``text`` is the NUMEN."""
        upper = text.upper()
        return any(self.matches(upper[i : i + 13], stored_digest) for i in range(len(upper) - 12))


def is_valid_numen(numen: str) -> bool:
    """13 characters, digits and uppercase letters only."""
    return NUMEN_PATTERN.fullmatch(numen) is not None


def temporary_password(length: int = 14) -> str:
    """A random temporary password that reads well aloud and on paper."""
    return "".join(secrets.choice(_TEMP_ALPHABET) for _ in range(length))


def name_parts(names: tuple[str, ...]) -> set[str]:
    """The parts of ``names`` a password must not contain (folded, three letters or more)."""
    return {
        part
        for name in names
        for part in re.split(r"[^a-z0-9]+", ascii_fold(name))
        if len(part) >= 3
    }


def date_forms(day: date) -> set[str]:
    """The ways of writing ``day`` that a password must not contain."""
    return _date_forms(day)


def _date_forms(day: date) -> set[str]:
    d, m, y = f"{day.day:02d}", f"{day.month:02d}", f"{day.year:04d}"
    return {
        d + m + y,
        y + m + d,
        d + m + y[2:],
        y[2:] + m + d,
        f"{d}/{m}/{y}",
        f"{d}-{m}-{y}",
        f"{d}.{m}.{y}",
        f"{y}-{m}-{d}",
        f"{d}/{m}/{y[2:]}",
    }


def policy_problems(
    password: str,
    *,
    min_length: int,
    numen_digest: str,
    numen_key: NumenKey,
    names: tuple[str, ...],
    birth_date: date | None,
) -> list[str]:
    """The policy keys that ``password`` breaks, empty when it is acceptable."""
    problems: list[str] = []
    if len(password) < min_length:
        problems.append(TOO_SHORT)
    if numen_key.contained_in(password, numen_digest):
        problems.append(CONTAINS_NUMEN)
    folded = ascii_fold(password)
    if any(part in folded for part in name_parts(names)):
        problems.append(CONTAINS_NAME)
    if birth_date is not None and any(form in password for form in _date_forms(birth_date)):
        problems.append(CONTAINS_BIRTH_DATE)
    return problems


def check_policy(
    password: str,
    *,
    min_length: int,
    numen_digest: str,
    numen_key: NumenKey,
    names: tuple[str, ...],
    birth_date: date | None,
) -> None:
    """Raise :class:`PasswordPolicyError` when ``password`` breaks the policy."""
    problems = policy_problems(
        password,
        min_length=min_length,
        numen_digest=numen_digest,
        numen_key=numen_key,
        names=names,
        birth_date=birth_date,
    )
    if problems:
        raise PasswordPolicyError(problems, min_length)
