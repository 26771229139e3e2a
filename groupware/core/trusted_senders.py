# SPDX-License-Identifier: GPL-3.0-or-later
"""The senders whose remote images a person chose to see without asking each time.

Remote images in mail are tracking beacons as often as pictures, so the webmail
holds them back until the person asks. Asking once per message is tedious for the
newsletters of one's own school, so a person may trust a sender address; the
webmail then shows that sender's images at once. Whether a message really comes
from that address is the webmail's to judge (a ``From:`` is easily forged): this
store only remembers the person's choice. Addresses are kept in lower case (the
domain is case-insensitive, and no mail system of ours tells local parts apart by
case). Adding and forgetting are audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import Connection, Engine, delete, insert, select

from groupware.core.audit import Audit, Clock, utc_now
from groupware.core.db import mail_trusted_senders

#: The longest address remembered (RFC 5321 §4.5.3.1.3 path limit).
MAX_ADDRESS_CHARS: Final = 254


@dataclass(frozen=True, slots=True)
class TrustedSender:
    """One remembered sender."""

    address: str
    created_at: datetime


def normalized(address: str) -> str:
    """The form an address is stored and compared in."""
    return address.strip().lower()


class TrustedSenders:
    """Reads and changes a person's trusted senders."""

    def __init__(self, engine: Engine, audit: Audit, clock: Clock = utc_now) -> None:
        self._engine = engine
        self._audit = audit
        self._clock = clock

    def is_trusted(self, person_id: int, address: str) -> bool:
        """Whether the person chose to see this sender's images."""
        with self._engine.connect() as conn:
            return self._has(conn, person_id, normalized(address))

    def listed(self, person_id: int) -> list[TrustedSender]:
        """The person's trusted senders, by address."""
        query = (
            select(mail_trusted_senders.c.address, mail_trusted_senders.c.created_at)
            .where(mail_trusted_senders.c.person_id == person_id)
            .order_by(mail_trusted_senders.c.address)
        )
        with self._engine.connect() as conn:
            return [TrustedSender(row.address, row.created_at) for row in conn.execute(query)]

    def trust(self, person_id: int, address: str, *, actor: str) -> bool:
        """Remember a sender; False when it was already remembered.

        Raises:
            ValueError: the address is empty, too long or has no ``@``.
        """
        address = normalized(address)
        if not address or len(address) > MAX_ADDRESS_CHARS or "@" not in address:
            raise ValueError("not a sender address")
        with self._engine.begin() as conn:
            if self._has(conn, person_id, address):
                return False
            conn.execute(
                insert(mail_trusted_senders).values(
                    person_id=person_id, address=address, created_at=self._clock()
                )
            )
        self._audit.record("mail.sender_trusted", actor=actor, subject=address)
        return True

    def forget(self, person_id: int, address: str, *, actor: str) -> bool:
        """Forget a sender; False when it was not remembered."""
        address = normalized(address)
        with self._engine.begin() as conn:
            result = conn.execute(
                delete(mail_trusted_senders).where(
                    mail_trusted_senders.c.person_id == person_id,
                    mail_trusted_senders.c.address == address,
                )
            )
        if result.rowcount == 0:
            return False
        self._audit.record("mail.sender_forgotten", actor=actor, subject=address)
        return True

    @staticmethod
    def _has(conn: Connection, person_id: int, address: str) -> bool:
        query = select(mail_trusted_senders.c.address).where(
            mail_trusted_senders.c.person_id == person_id,
            mail_trusted_senders.c.address == address,
        )
        return conn.execute(query).first() is not None
