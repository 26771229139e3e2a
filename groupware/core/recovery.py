# SPDX-License-Identifier: GPL-3.0-or-later
"""Self-service recovery: "I lost my password or I don't know my identifier".

The person gives their NUMEN and birth date (and the portal a CAPTCHA). On a match
they learn their identifier and choose a new password. Nothing tells a wrong NUMEN
from a wrong birth date or a disabled account: one answer, the same work (the keyed
hash, the lookup, the comparison) whatever the input. Attempts are throttled per
client address and per NUMEN (``core.auth``'s counters), and every one is audited.
"""

from __future__ import annotations

import hmac
from datetime import date
from enum import Enum

from groupware.core.audit import Audit
from groupware.core.auth import Authenticator
from groupware.core.directory import Directory, Person

_CLIENT_ACCOUNT = "reset:client"


class Check(Enum):
    """How a recovery attempt ended."""

    MATCH = "match"
    NO_MATCH = "no_match"
    THROTTLED = "throttled"


class Recovery:
    """Checks NUMEN and birth date, under throttling and audit."""

    def __init__(self, directory: Directory, authenticator: Authenticator, audit: Audit) -> None:
        self._directory = directory
        self._authenticator = authenticator
        self._audit = audit

    def check(
        self, numen: str, birth_date: date | None, *, client: str
    ) -> tuple[Check, Person | None]:
        """Whether ``numen`` and ``birth_date`` name one active person."""
        numen = numen.strip().upper()
        numen_key = "reset:" + self._directory.numen_key.digest(numen)[:32]
        throttled = self._authenticator.is_throttled(
            _CLIENT_ACCOUNT, client
        ) or self._authenticator.is_throttled(numen_key, "*")
        if throttled:
            self._audit.record(
                "password.reset_attempt", actor="anonymous", client=client, outcome="throttled"
            )
            return Check.THROTTLED, None
        person = self._directory.by_numen(numen)
        expected = person.birth_date.isoformat() if person and person.birth_date else "-"
        given = birth_date.isoformat() if birth_date else "--"
        matches = hmac.compare_digest(expected, given) and person is not None and person.is_active
        if person is None or not matches:
            self._authenticator.count_failure(_CLIENT_ACCOUNT, client)
            self._authenticator.count_failure(numen_key, "*")
            self._audit.record(
                "password.reset_attempt",
                actor="anonymous",
                subject=person.login if person else "",
                client=client,
                outcome="refused",
            )
            return Check.NO_MATCH, None
        self._authenticator.clear_failures(numen_key, "*")
        self._audit.record(
            "password.reset_attempt", actor="anonymous", subject=person.login, client=client
        )
        return Check.MATCH, person
