# SPDX-License-Identifier: GPL-3.0-or-later
"""Radicale auth plugin: accepts only logins our front (``dav.service``) vouched for.

Credentials are checked once, by ``core.auth`` in :class:`groupware.dav.service.DavService`,
which can answer precise refusals (must change password, throttled) that a
Radicale plugin cannot. The front hands Radicale a single-use ticket through the
WSGI environ; this plugin redeems it. A request that did not pass through the
front carries no ticket and is treated as anonymous (denied by our rights).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping
from typing import Any

from radicale.auth import BaseAuth

TICKET_ENVIRON_KEY = "groupware.dav.ticket"
USER_ENVIRON_KEY = "groupware.dav.user"


class TicketBook:
    """Single-use tickets mapping a request to the user the front authenticated."""

    def __init__(self) -> None:
        self._tickets: dict[str, str] = {}
        self._lock = threading.Lock()

    def issue(self, user: str) -> str:
        """A new ticket for ``user``."""
        ticket = secrets.token_urlsafe(24)
        with self._lock:
            self._tickets[ticket] = user
        return ticket

    def redeem(self, ticket: str) -> str:
        """The user of ``ticket`` (then forgotten), or ``""``."""
        with self._lock:
            return self._tickets.pop(ticket, "")

    def discard(self, ticket: str) -> None:
        """Forget ``ticket`` whether or not it was redeemed."""
        with self._lock:
            self._tickets.pop(ticket, None)

    def __len__(self) -> int:
        """How many tickets are issued and not yet redeemed or discarded."""
        with self._lock:
            return len(self._tickets)


class Auth(BaseAuth):
    """Radicale's auth hook; the class name is what Radicale's loader expects."""

    def __init__(self, configuration: Any, *, tickets: TicketBook) -> None:  # Radicale seam
        super().__init__(configuration)
        self._book = tickets

    def get_external_login(self, environ: Mapping[str, Any]) -> tuple[str, str] | tuple[()]:
        """The vouched user and ticket, or anonymous."""
        user = environ.get(USER_ENVIRON_KEY, "")
        ticket = environ.get(TICKET_ENVIRON_KEY, "")
        return (user, ticket) if user and ticket else ()

    def _login(self, login: str, password: str) -> str:
        user = self._book.redeem(password)
        return login if user and user == login else ""
