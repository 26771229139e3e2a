# SPDX-License-Identifier: GPL-3.0-or-later
"""What the connections of one listening socket share, and the shared TLS read buffer.

Split out of ``imap.server``, which re-exports :class:`Listener` and
:func:`share_tls_read_buffer`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from groupware.mail.imap.idle_dispatch import ChangeDispatcher
from groupware.mail.imap.session import ImapContext

if TYPE_CHECKING:
    from groupware.mail.imap.server import Connection

CLOSE_WAIT_SECONDS: Final = 5.0


@dataclass(slots=True, kw_only=True)
class Listener:
    """What the connections of one listening socket share."""

    context: ImapContext
    dispatcher: ChangeDispatcher
    loop: asyncio.AbstractEventLoop
    starttls: ssl.SSLContext | None  # None on implicit TLS listeners
    is_tls: bool
    max_literal_bytes: int
    tls_read_buffer: memoryview  # of a bytearray (see share_tls_read_buffer)
    connections: set[Connection] = field(default_factory=set)
    all_closed: asyncio.Event = field(default_factory=asyncio.Event)

    def expire_idle(self) -> None:
        """Log out the connections silent for longer than their state allows."""
        now = self.loop.time()
        for connection in list(self.connections):
            connection.expire(now)

    async def close_all(self) -> None:
        """Shutdown: stop every connection; abort those that do not close in time."""
        if self.connections:
            self.all_closed.clear()
        tasks = [task for connection in list(self.connections) if (task := connection.shutdown())]
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.connections:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.all_closed.wait(), CLOSE_WAIT_SECONDS)
        for connection in list(self.connections):
            connection.transport.abort()

    def forget(self, connection: Connection) -> None:
        """A connection is gone."""
        self.connections.discard(connection)
        if not self.connections:
            self.all_closed.set()


def share_tls_read_buffer(transport: asyncio.BaseTransport, buffer: memoryview) -> None:
    """Give an asyncio TLS transport the listener's read buffer instead of its own.

    asyncio's ``SSLProtocol`` (3.11 and later) keeps a 256 KiB buffer per connection
    for the socket to read into, and copies out of it into OpenSSL at once, in the same
    callback (``get_buffer`` then ``buffer_updated``): one buffer can serve every
    connection on the loop. That is 256 KiB less per TLS connection. The attributes are
    asyncio's own; where they are not found (another asyncio), nothing is changed.
    """
    protocol = getattr(transport, "_ssl_protocol", None)
    if protocol is None or not isinstance(getattr(protocol, "_ssl_buffer", None), bytearray):
        return
    if getattr(protocol, "max_size", None) != len(buffer):
        return
    protocol._ssl_buffer = buffer.obj  # noqa: SLF001 - see the docstring
    protocol._ssl_buffer_view = buffer  # noqa: SLF001
