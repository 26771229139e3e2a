# SPDX-License-Identifier: GPL-3.0-or-later
"""RCPT acceptances of local recipients, remembered for a few seconds.

Accepting ``RCPT TO`` for a local address asks the directory (who is it, are they
active, is it a group open to outside senders) and the mail store (is the mailbox
full already): two queries and a worker-thread hop, for every message. A flood to
one address (a school's list, a parent writing to a teacher) asks the same question
hundreds of times a second. :class:`RecentAcceptances` keeps each *acceptance* for
:data:`ACCEPTANCE_SECONDS`, so that the listener answers those from memory, on the
event loop.

Only acceptances are kept: an unknown address, a group closed to outside senders or
a full mailbox is asked again every time, so that a new person, a new alias or a
freed mailbox is accepted at once. What is traded: for at most
:data:`ACCEPTANCE_SECONDS` after a person is deactivated or their mailbox fills,
RCPT still says 250; delivery checks both again (``mail.delivery``) and the sender
gets a delivery status notification instead of the 550 or 452.

In memory, used on the event loop only (not thread-safe); no I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

#: How long an acceptance answers for the same recipient.
ACCEPTANCE_SECONDS: Final = 2.0
#: Most addresses remembered; past that the memory starts over (a flood to many
#: addresses gains little from it anyway).
MAX_ADDRESSES_COUNT: Final = 10_000


class RecentAcceptances:
    """Recipients accepted in the last :data:`ACCEPTANCE_SECONDS`, per sender kind."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._until: dict[tuple[str, bool], float] = {}

    def is_accepted(self, address: str, *, is_authenticated: bool) -> bool:
        """Whether ``address`` was accepted for such a sender less than the delay ago."""
        key = (address.lower(), is_authenticated)
        until = self._until.get(key)
        if until is None:
            return False
        if until <= self._clock():
            del self._until[key]
            return False
        return True

    def remember(self, address: str, *, is_authenticated: bool) -> None:
        """``address`` was just accepted after asking the directory and the store."""
        if len(self._until) >= MAX_ADDRESSES_COUNT:
            self._until.clear()
        key = (address.lower(), is_authenticated)
        self._until[key] = self._clock() + ACCEPTANCE_SECONDS
