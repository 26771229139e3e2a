# SPDX-License-Identifier: GPL-3.0-or-later
"""The IMAP service: listeners with STARTTLS (``imap.listen``) and implicit TLS
(``imap.tls_listen``, RFC 8314), over the shared mail store."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from contextlib import AsyncExitStack

from groupware.config import Listen
from groupware.core.events import EventBus
from groupware.core.services import Core
from groupware.errors import ConfigError
from groupware.mail.imap.server import (
    SWEEP_SECONDS,
    TLS_READ_BUFFER_BYTES,
    ChangeDispatcher,
    Connection,
    Listener,
)
from groupware.mail.imap.session import ImapContext
from groupware.mail.smtp import tls_context
from groupware.mail.store import MailStore

log = logging.getLogger(__name__)


class ImapService:
    """Accepts IMAP connections; one protocol object each (see ``imap.server``)."""

    def __init__(self, core: Core, events: EventBus, *, require_tls: bool = True) -> None:
        """Build the service over ``core``'s database and mail folder.

        Args:
            core: the shared core services.
            events: the bus that carries ``MailboxChanged`` to IDLE sessions.
            require_tls: refuse LOGIN and AUTHENTICATE in clear. Only
                ``bench/imap_idle_memory.py`` turns it off, to measure a connection
                without TLS on loopback; the configuration has no such switch.
        """
        self.core = core
        self.events = events
        self.require_tls = require_tls
        config = core.config
        self.store = MailStore(core.engine, config.data_dir / "mail", events)
        self.addresses: dict[str, tuple[str, int]] = {}
        self._listeners: list[Listener] = []

    @property
    def connections(self) -> list[Connection]:
        """The connections open now, on every listener."""
        return [connection for listener in self._listeners for connection in listener.connections]

    async def start(self, stack: AsyncExitStack) -> None:
        """Bind the IMAP listeners."""
        config = self.core.config
        tls = tls_context(config)
        loop = asyncio.get_running_loop()
        dispatcher = ChangeDispatcher(self.events, loop, self.store)
        stack.push_async_callback(dispatcher.close)
        context = ImapContext(
            store=self.store,
            directory=self.core.directory,
            authenticator=self.core.authenticator,
            hostname=config.smtp.hostname or f"mail.{config.server.domain}",
            has_tls=self.require_tls,
        )
        # One for every TLS connection (see share_tls_read_buffer).
        tls_read_buffer = memoryview(bytearray(TLS_READ_BUFFER_BYTES))
        plans = [("imap", listen, False) for listen in config.imap.listen]
        plans += [("imaps", listen, True) for listen in config.imap.tls_listen]
        for name, listen, implicit in plans:
            listener = Listener(
                context=context,
                dispatcher=dispatcher,
                loop=loop,
                starttls=None if implicit else tls,
                is_tls=implicit,
                max_literal_bytes=config.smtp.max_message_bytes,
                tls_read_buffer=tls_read_buffer,
            )
            try:
                server = await loop.create_server(
                    functools.partial(Connection, listener),
                    listen.host,
                    listen.port,
                    ssl=tls if implicit else None,
                )
            except OSError as exc:
                key = "imap.tls_listen" if implicit else "imap.listen"
                raise ConfigError(f"{key}: cannot listen on {listen}: {exc.strerror}") from exc
            host, port = server.sockets[0].getsockname()[:2]
            label = name if name not in self.addresses else f"{name}{len(self.addresses)}"
            self.addresses[label] = (host, port)
            self._listeners.append(listener)
            stack.push_async_callback(self._close, server, listener)
            log.info("listener.started service=%s address=%s", label, Listen(host, port))
        sweeper = asyncio.create_task(self._expire_idle())
        stack.push_async_callback(_cancel, sweeper)

    async def _expire_idle(self) -> None:
        """Time out silent connections: one pass over all, every few seconds."""
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            for listener in self._listeners:
                listener.expire_idle()

    async def _close(self, server: asyncio.base_events.Server, listener: Listener) -> None:
        server.close()
        await listener.close_all()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(server.wait_closed(), timeout=5)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
