# SPDX-License-Identifier: GPL-3.0-or-later
"""The IMAP service: listeners with STARTTLS (``imap.listen``) and implicit TLS
(``imap.tls_listen``, RFC 8314), over the shared mail store."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import AsyncExitStack

from groupware.config import Listen
from groupware.core.events import EventBus
from groupware.core.services import Core
from groupware.errors import ConfigError
from groupware.mail.imap.server import ChangeDispatcher, Connection
from groupware.mail.imap.session import ImapContext
from groupware.mail.smtp import tls_context
from groupware.mail.store import MailStore

log = logging.getLogger(__name__)


class ImapService:
    """Accepts IMAP connections; one coroutine each."""

    def __init__(self, core: Core, events: EventBus) -> None:
        self.core = core
        self.events = events
        config = core.config
        self.store = MailStore(core.engine, config.data_dir / "mail", events)
        self.addresses: dict[str, tuple[str, int]] = {}
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, stack: AsyncExitStack) -> None:
        """Bind the IMAP listeners."""
        config = self.core.config
        tls = tls_context(config)
        dispatcher = ChangeDispatcher(self.events, asyncio.get_running_loop())
        stack.callback(dispatcher.close)
        context = ImapContext(
            store=self.store,
            directory=self.core.directory,
            authenticator=self.core.authenticator,
            hostname=config.smtp.hostname or f"mail.{config.server.domain}",
            has_tls=True,
        )
        max_literal = config.smtp.max_message_bytes
        plans = [("imap", listen, False) for listen in config.imap.listen]
        plans += [("imaps", listen, True) for listen in config.imap.tls_listen]
        for name, listen, implicit in plans:

            async def serve(
                reader: asyncio.StreamReader,
                writer: asyncio.StreamWriter,
                implicit: bool = implicit,
            ) -> None:
                task = asyncio.current_task()
                assert task is not None
                self._connections.add(task)
                try:
                    connection = Connection(
                        context,
                        dispatcher,
                        reader,
                        writer,
                        tls=None if implicit else tls,
                        is_tls=implicit,
                        max_literal_bytes=max_literal,
                    )
                    await connection.run()
                except asyncio.CancelledError:
                    # Shutdown: asyncio's stream callback would log a cancelled task.
                    pass
                finally:
                    self._connections.discard(task)

            try:
                server = await asyncio.start_server(
                    serve,
                    listen.host,
                    listen.port,
                    ssl=tls if implicit else None,
                    limit=256 * 1024,
                )
            except OSError as exc:
                key = "imap.tls_listen" if implicit else "imap.listen"
                raise ConfigError(f"{key}: cannot listen on {listen}: {exc.strerror}") from exc
            host, port = server.sockets[0].getsockname()[:2]
            label = name if name not in self.addresses else f"{name}{len(self.addresses)}"
            self.addresses[label] = (host, port)
            stack.push_async_callback(self._close, server)
            log.info("listener.started service=%s address=%s", label, Listen(host, port))

    async def _close(self, server: asyncio.base_events.Server) -> None:
        server.close()
        for task in list(self._connections):
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(server.wait_closed(), timeout=5)
