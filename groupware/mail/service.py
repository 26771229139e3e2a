# SPDX-License-Identifier: GPL-3.0-or-later
"""The mail service: SMTP listeners, the spool, delivery and the outbound queue, in one loop.

``start(stack)`` binds every listener (port 0 allowed; ``addresses`` shows the real
ones), recovers the spool (every accepted message not yet delivered is delivered
now, exactly once) and runs delivery in worker threads so that no file or database
work blocks the loop. Remote recipients, and bounces for remote senders, are
handed to the outbound queue (``mail.outbound``) before the incoming spool file is
removed; the queue sends them from its own task on this loop, and only once the
recovered incoming messages have been handed over (so that a message whose
hand-off was interrupted is never queued twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from contextlib import AsyncExitStack

from groupware.config import Listen
from groupware.core.events import EventBus
from groupware.core.services import Core
from groupware.errors import ConfigError
from groupware.mail.addressing import Recipients
from groupware.mail.delivery import Delivery
from groupware.mail.outbound import Outbound, OutboundQueue
from groupware.mail.smtp import SmtpContext, protocol_factory, tls_context
from groupware.mail.spool import Spool
from groupware.mail.store import MailStore
from groupware.mail.transport import DnsPythonResolver, Resolver, Transport

log = logging.getLogger(__name__)


class MailService:
    """SMTP (inbound and submission), spool and delivery."""

    def __init__(self, core: Core, events: EventBus, resolver: Resolver | None = None) -> None:
        config = core.config
        self.core = core
        self.hostname = config.smtp.hostname or f"mail.{config.server.domain}"
        self.store = MailStore(core.engine, config.data_dir / "mail", events)
        self.spool = Spool(config.data_dir / "spool")
        self.recipients = Recipients(core.directory)
        self.delivery = Delivery(self.store, self.recipients, core.audit, self.hostname)
        transport = Transport(
            config,
            resolver or DnsPythonResolver(config.outbound.dns_nameservers),
            self.hostname,
            config.read_smarthost_password(),
        )
        self.outbound = Outbound(
            config,
            OutboundQueue(config.data_dir / "spool"),
            transport,
            core.audit,
            self.hostname,
            self._report_to_sender,
        )
        self.addresses: dict[str, tuple[str, int]] = {}
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._recovering: set[str] = set()
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
        # Outbound recovery runs first: it removes half-written entries, which the
        # incoming messages they came from then hand over again.
        await self.outbound.start(stack)
        recovered = await asyncio.to_thread(lambda: list(self.spool.pending()))
        self._recovering = set(recovered)
        for queue_id in recovered:
            self._queue.put_nowait(queue_id)
        if not self._recovering:
            self.outbound.recovered.set()
        # Several workers: file and database waits (fsync, commits) overlap.
        for number in range(self.core.config.smtp.delivery_workers_count):
            worker = asyncio.create_task(self._deliver_forever(), name=f"mail-delivery-{number}")
            stack.push_async_callback(_cancel, worker)

    async def _listen(
        self,
        stack: AsyncExitStack,
        name: str,
        listen: Listen,
        factory: Callable[[], asyncio.BaseProtocol],
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        loop = asyncio.get_running_loop()
        try:
            server = await loop.create_server(factory, listen.host, listen.port, ssl=ssl_context)
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
            if queue_id in self._recovering:
                self._recovering.discard(queue_id)
                if not self._recovering:
                    # Every recovered message is handed over: outbound may send now.
                    self.outbound.recovered.set()

    def _deliver_one(self, queue_id: str) -> None:
        try:
            message = self.spool.load(queue_id)
        except FileNotFoundError:
            return  # delivered already (recovery queued it twice)
        job = self.delivery.deliver(message)
        envelope = message.envelope
        released: list[str] = []
        if job.remote:
            # Same id as the spool file: a second hand-off after a crash writes nothing.
            self.outbound.submit(
                queue_id,
                envelope.mail_from,
                job.remote,
                job.relay_data,
                smtp_utf8=envelope.smtp_utf8,
                authenticated_as=envelope.authenticated_as,
            )
            released.append(queue_id)
        if job.bounce is not None:
            # Never bounce a bounce: delivery reports only on messages with a sender.
            released += self._queue_report(envelope.mail_from, job.bounce, f"{queue_id}-dsn")
        self.spool.done(queue_id)
        # Released only now: a message still in the incoming spool is never being sent.
        self.outbound.release(released)
        log.info(
            "delivery.done queue_id=%s delivered=%d failed=%d remote=%d",
            queue_id,
            len(job.delivered),
            len(job.failures),
            len(job.remote),
        )

    def _queue_report(self, sender: str, report: bytes, key: str) -> list[str]:
        """A report for a remote sender, sent with the null sender (blocking)."""
        self.outbound.submit(key, "", (sender,), report, origin="bounce")
        return [key]

    def _report_to_sender(self, sender: str, report: bytes, key: str) -> list[str]:
        """The outbound queue's reports: into a local INBOX, or out again (blocking)."""
        if self.delivery.file_report(sender, report, key):
            return []
        return self._queue_report(sender, report, key)


async def _close_server(server: asyncio.base_events.Server) -> None:
    server.close()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(server.wait_closed(), timeout=5)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
