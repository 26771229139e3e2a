# SPDX-License-Identifier: GPL-3.0-or-later
"""The mail service: SMTP listeners, the spool and its delivery worker, in one event loop.

``start(stack)`` binds every listener (port 0 allowed; ``addresses`` shows the real
ones), recovers the spool (every accepted message not yet delivered is delivered
now, exactly once) and runs delivery in worker threads so that no file or database
work blocks the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import AsyncExitStack

from groupware.config import Listen
from groupware.core.events import EventBus
from groupware.core.services import Core
from groupware.errors import ConfigError
from groupware.mail.addressing import Recipients
from groupware.mail.delivery import Delivery
from groupware.mail.smtp import SmtpContext, protocol_factory, tls_context
from groupware.mail.spool import Spool
from groupware.mail.store import MailStore

log = logging.getLogger(__name__)


class MailService:
    """SMTP (inbound and submission), spool and delivery."""

    def __init__(self, core: Core, events: EventBus) -> None:
        config = core.config
        self.core = core
        self.hostname = config.smtp.hostname or f"mail.{config.server.domain}"
        self.store = MailStore(core.engine, config.data_dir / "mail", events)
        self.spool = Spool(config.data_dir / "spool")
        self.recipients = Recipients(core.directory)
        self.delivery = Delivery(self.store, self.recipients, core.audit, self.hostname)
        self.addresses: dict[str, tuple[str, int]] = {}
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None

    def spooled(self, queue_id: str) -> None:
        """Hand a freshly spooled message to the delivery worker (loop thread)."""
        self._queue.put_nowait(queue_id)

    async def start(self, stack: AsyncExitStack, *, smtp: bool = True) -> None:
        """Bind the SMTP listeners, recover the spool, start delivery."""
        self._loop = asyncio.get_running_loop()
        config = self.core.config
        context = SmtpContext(
            config=config,
            authenticator=self.core.authenticator,
            recipients=self.recipients,
            store=self.store,
            spool=self.spool,
            hostname=self.hostname,
            on_spooled=self.spooled,
        )
        tls = tls_context(config)
        if smtp:
            plans = [("smtp", listen, False, False) for listen in config.smtp.listen]
            plans += [("submission", listen, True, False) for listen in config.submission.listen]
            plans += [
                ("submissions", listen, True, True) for listen in config.submission.tls_listen
            ]
            for name, listen, submission, implicit in plans:
                factory = protocol_factory(
                    context, submission=submission, tls=tls, implicit_tls=implicit
                )
                await self._listen(stack, name, listen, factory, tls if implicit else None)
        for queue_id in await asyncio.to_thread(lambda: list(self.spool.pending())):
            self._queue.put_nowait(queue_id)
        worker = asyncio.create_task(self._deliver_forever(), name="mail-delivery")
        stack.push_async_callback(_cancel, worker)

    async def _listen(
        self, stack: AsyncExitStack, name: str, listen: Listen, factory: object, ssl_context: object
    ) -> None:
        loop = asyncio.get_running_loop()
        try:
            server = await loop.create_server(factory, listen.host, listen.port, ssl=ssl_context)  # type: ignore[arg-type]
        except OSError as exc:
            key = {"smtp": "smtp.listen", "submission": "submission.listen"}.get(
                name, "submission.tls_listen"
            )
            raise ConfigError(f"{key}: cannot listen on {listen}: {exc.strerror}") from exc
        host, port = server.sockets[0].getsockname()[:2]
        label = name if name not in self.addresses else f"{name}{len(self.addresses)}"
        self.addresses[label] = (host, port)
        stack.push_async_callback(_close_server, server)
        log.info("listener.started service=%s address=%s", label, Listen(host, port))

    async def _deliver_forever(self) -> None:
        while True:
            queue_id = await self._queue.get()
            try:
                await asyncio.to_thread(self._deliver_one, queue_id)
            except Exception:  # noqa: BLE001 - boundary: one message must not stop delivery
                log.exception("delivery.failed queue_id=%s", queue_id)
                # It stays in the spool and is retried at the next start.

    def _deliver_one(self, queue_id: str) -> None:
        try:
            message = self.spool.load(queue_id)
        except FileNotFoundError:
            return  # delivered already (recovery queued it twice)
        job = self.delivery.deliver(message)
        if job.remote:
            log.warning("delivery.remote_pending queue_id=%s rcpts=%d", queue_id, len(job.remote))
            return  # kept in the spool until the outbound queue takes it
        self.spool.done(queue_id)
        log.info(
            "delivery.done queue_id=%s delivered=%d failed=%d",
            queue_id,
            len(job.delivered),
            len(job.failures),
        )


async def _close_server(server: asyncio.base_events.Server) -> None:
    server.close()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(server.wait_closed(), timeout=5)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
