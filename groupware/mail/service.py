# SPDX-License-Identifier: GPL-3.0-or-later
"""The mail service: SMTP listeners, the spool, delivery and the outbound queue, in one loop.

``start(stack)`` binds every listener (port 0 allowed; ``addresses`` shows the real
ones), recovers the spool (every accepted message not yet delivered is delivered
now, exactly once) and runs delivery in worker threads of its own so that no file
or database work blocks the loop, and the SMTP handlers' short calls (default
executor) never queue behind a delivery. A worker takes every message waiting, up to
:data:`MAX_BATCH_COUNT`, and delivers them together (one store transaction, shared
fsyncs, one spool folder fsync for their removal); a batch that fails is delivered
again one message at a time, so that one bad message holds back no other.

Other processes on the same data folder write to the spool too (the portal's notices,
from ``serve --only http``): every :data:`SCAN_PERIOD_SECONDS` the service lists the
spool's complete files and queues those it has not queued itself. It remembers the
messages it has queued until their batch ends, so a scan during a flood adds nothing
twice; a message whose delivery failed is tried again by the scan after
:data:`RETRY_FAILED_SECONDS` (or at the next start).

Remote recipients, and bounces for remote senders, are handed to the outbound
queue (``mail.outbound``) before the incoming spool file is removed; the queue
sends them from its own task on this loop, and only once the recovered incoming
messages have been handed over (so that a message whose hand-off was interrupted
is never queued twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable, Mapping, Sequence, Set
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from typing import Final

from groupware.config import Listen
from groupware.core.events import EventBus
from groupware.core.services import Core
from groupware.errors import ConfigError
from groupware.mail.addressing import Recipients
from groupware.mail.delivery import Delivery, DeliveryJob
from groupware.mail.outbound import Outbound, OutboundQueue
from groupware.mail.smtp import SmtpContext, protocol_factory, tls_context
from groupware.mail.spool import Spool, SpooledMessage
from groupware.mail.store import MailStore
from groupware.mail.transport import DnsPythonResolver, Resolver, Transport

log = logging.getLogger(__name__)

#: Most spooled messages one worker delivers together: enough to share the fsyncs
#: and the commit of a flood, few enough that one batch stays short.
MAX_BATCH_COUNT: Final = 32
#: A queued message up to this size waits in memory as well as in the spool, and up to
#: this total: beyond, delivery reads it back from its spool file.
MAX_HELD_BYTES: Final = 256 * 1024
MAX_HELD_TOTAL_BYTES: Final = 64 * 1024 * 1024
#: How often the spool is listed for messages other processes wrote: the longest a
#: portal notice from another process waits; one directory listing each time.
SCAN_PERIOD_SECONDS: Final = 2.0
#: How long a message whose delivery failed waits before the scan tries it again:
#: a transient fault heals without a restart, a bad message is not retried in a loop.
RETRY_FAILED_SECONDS: Final = 300.0


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
        # Queued or being delivered by this process: each is in the queue once at most.
        self._tracked: set[str] = set()
        self._failed_at: dict[str, float] = {}  # delivery failed (monotonic time)
        self._settled_while_listing: set[str] | None = None  # see _adopt_forever
        self._recovering: set[str] = set()
        self._held: dict[str, SpooledMessage] = {}  # queued, with their bytes (see spooled)
        self._held_bytes = 0
        self._batches_running = 0
        self._batch_may_start = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def spooled(self, message: SpooledMessage) -> None:
        """Hand a freshly spooled message to the delivery workers (loop thread).

        A small one is kept in memory until its batch starts, so that delivery does
        not read back the file just written (it is on disk all the same).
        """
        if message.queue_id in self._tracked:
            return  # the scan found its file first
        size = len(message.data)
        if size <= MAX_HELD_BYTES and self._held_bytes + size <= MAX_HELD_TOTAL_BYTES:
            self._held[message.queue_id] = message
            self._held_bytes += size
        self._enqueue(message.queue_id)

    def _enqueue(self, queue_id: str) -> None:
        self._tracked.add(queue_id)
        self._queue.put_nowait(queue_id)
        if self._queue.qsize() >= MAX_BATCH_COUNT - 1:
            self._batch_may_start.set()  # a full batch waits (see _next_batch)

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
        # A message accepted meanwhile (the listeners are up) may be queued already.
        recovered = [queue_id for queue_id in recovered if queue_id not in self._tracked]
        self._recovering = set(recovered)
        for queue_id in recovered:
            self._enqueue(queue_id)
        if not self._recovering:
            self.outbound.recovered.set()
        # Several workers: one's file waits (fsync) overlap another's work.
        count = self.core.config.smtp.delivery_workers_count
        executor = ThreadPoolExecutor(max_workers=max(1, count), thread_name_prefix="mail-delivery")
        stack.push_async_callback(_shut_down, executor)
        for number in range(count):
            worker = asyncio.create_task(
                self._deliver_forever(executor), name=f"mail-delivery-{number}"
            )
            stack.push_async_callback(_cancel, worker)
        # Only now: recovery has queued what was there at start (see outbound.recovered).
        scan = asyncio.create_task(self._adopt_forever(), name="mail-spool-scan")
        stack.push_async_callback(_cancel, scan)

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

    async def _deliver_forever(self, executor: ThreadPoolExecutor) -> None:
        loop = asyncio.get_running_loop()
        while True:
            queue_ids = await self._next_batch()
            held = self._take_held(queue_ids)
            self._batches_running += 1
            failed: Sequence[str] = queue_ids
            try:
                failed = await loop.run_in_executor(executor, self._deliver_batch, queue_ids, held)
            except Exception:  # noqa: BLE001 - boundary: one batch must not stop delivery
                log.exception("delivery.failed queue_ids=%s", ",".join(queue_ids))
                # They stay in the spool: the scan tries them again later (see _settle).
            finally:
                self._batches_running -= 1
                self._batch_may_start.set()
                self._settle(queue_ids, failed)
            if self._recovering.intersection(queue_ids):
                self._recovering.difference_update(queue_ids)
                if not self._recovering:
                    # Every recovered message is handed over: outbound may send now.
                    self.outbound.recovered.set()

    async def _next_batch(self) -> list[str]:
        """The next messages to deliver together: every one waiting, up to a full batch.

        While another batch runs, a second one starts only once a full batch waits
        (that one is falling behind): otherwise the workers would share a flood out in
        small batches, each paying the fsyncs and the commit a large one shares, and
        queue for SQLite's one writer. So a flood is delivered in full batches, one
        after the other, and several at a time only when one worker cannot keep up.
        """
        queue_ids = [await self._queue.get()]
        while self._batches_running and self._queue.qsize() + 1 < MAX_BATCH_COUNT:
            self._batch_may_start.clear()
            await self._batch_may_start.wait()
        while len(queue_ids) < MAX_BATCH_COUNT and not self._queue.empty():
            queue_ids.append(self._queue.get_nowait())  # each once (see _tracked)
        return queue_ids

    def _settle(self, queue_ids: Sequence[str], failed: Sequence[str]) -> None:
        """A batch has ended: its messages may be queued again, the failed ones later.

        Those left in the spool are found by the scan again, the failed ones only after
        :data:`RETRY_FAILED_SECONDS`.
        """
        self._tracked.difference_update(queue_ids)
        if self._settled_while_listing is not None:
            self._settled_while_listing.update(queue_ids)
        now = time.monotonic()
        for queue_id in failed:
            self._failed_at[queue_id] = now

    async def _adopt_forever(self) -> None:
        """Every few seconds, queue the spool files that no one queued here."""
        while True:
            await asyncio.sleep(SCAN_PERIOD_SECONDS)
            # A batch that ends while the folder is listed may have removed its files
            # after the listing saw them: those are not queued again.
            settled = self._settled_while_listing = set()
            try:
                listed = await asyncio.to_thread(self.spool.waiting)
            except OSError:
                log.exception("spool.scan_failed folder=%s", self.spool.incoming)
                continue
            finally:
                self._settled_while_listing = None
            self._adopt(listed, settled)

    def _adopt(self, listed: Sequence[str], settled: Set[str]) -> None:
        """Queue the listed messages not queued nor in flight here (loop thread).

        Args:
            listed: the spool's complete files, oldest first.
            settled: the messages whose batch ended while the folder was listed.
        """
        now = time.monotonic()
        adopted = []
        for queue_id in listed:
            if queue_id in self._tracked or queue_id in settled:
                continue
            failed_at = self._failed_at.get(queue_id)
            if failed_at is not None:
                if now - failed_at < RETRY_FAILED_SECONDS:
                    continue
                del self._failed_at[queue_id]
            self._enqueue(queue_id)
            adopted.append(queue_id)
        if self._failed_at:
            present = set(listed)  # forget the failures whose file is gone
            for queue_id in [key for key in self._failed_at if key not in present]:
                del self._failed_at[queue_id]
        if adopted:
            log.info("spool.adopted queue_ids=%s", ",".join(adopted))

    def _take_held(self, queue_ids: Sequence[str]) -> dict[str, SpooledMessage]:
        """The messages of a batch kept in memory (see :meth:`spooled`), no longer kept."""
        held = {}
        for queue_id in queue_ids:
            message = self._held.pop(queue_id, None)
            if message is not None:
                held[queue_id] = message
                self._held_bytes -= len(message.data)
        return held

    def _deliver_batch(
        self, queue_ids: Sequence[str], held: Mapping[str, SpooledMessage]
    ) -> list[str]:
        """Deliver spooled messages together; one at a time if that fails (blocking).

        Args:
            queue_ids: the messages, in spool order.
            held: those of them kept in memory (the others are read from the spool).

        Returns:
            The messages not delivered (still in the spool).
        """
        messages, failed = self._load(queue_ids, held)
        if not messages:
            return failed
        try:
            jobs = self.delivery.deliver_batch(messages)
        except Exception:  # noqa: BLE001 - boundary: the others must not wait for a bad one
            if len(messages) == 1:
                raise
            log.exception("delivery.batch_failed count=%d (one at a time now)", len(messages))
            for message in messages:
                try:
                    self._hand_over([self.delivery.deliver(message)])
                except Exception:  # noqa: BLE001 - boundary: one message must not stop delivery
                    log.exception("delivery.failed queue_id=%s", message.queue_id)
                    failed.append(message.queue_id)
            return failed
        self._hand_over(jobs)
        return failed

    def _load(
        self, queue_ids: Sequence[str], held: Mapping[str, SpooledMessage]
    ) -> tuple[list[SpooledMessage], list[str]]:
        """The messages still in the spool, and those whose file cannot be read."""
        messages, unreadable = [], []
        for queue_id in queue_ids:
            if queue_id in held:
                # Gone if the scan delivered its file before it was handed here.
                if self.spool.contains(queue_id):
                    messages.append(held[queue_id])
                continue
            try:
                messages.append(self.spool.load(queue_id))
            except FileNotFoundError:
                continue  # delivered already (a scan's listing was a little old)
            except (OSError, ValueError, TypeError, KeyError):
                # Left in the spool; the others of the batch must not wait for it.
                log.exception("spool.unreadable queue_id=%s", queue_id)
                unreadable.append(queue_id)
        return messages, unreadable

    def _hand_over(self, jobs: Sequence[DeliveryJob]) -> None:
        """Remote recipients and bounces to the outbound queue, then out of the spool."""
        released: list[str] = []
        for job in jobs:
            queue_id, envelope = job.message.queue_id, job.message.envelope
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
        # The store's commit is durable already: a crash from here on delivers again,
        # which stores nothing twice (delivery keys) and hands over nothing twice.
        self.spool.done(*(job.message.queue_id for job in jobs))
        # Released only now: a message still in the incoming spool is never being sent.
        self.outbound.release(released)
        # One line per batch (each delivery has its audit line already).
        log.info(
            "delivery.done queue_ids=%s delivered=%d failed=%d remote=%d",
            ",".join(job.message.queue_id for job in jobs),
            sum(len(job.delivered) for job in jobs),
            sum(len(job.failures) for job in jobs),
            sum(len(job.remote) for job in jobs),
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


async def _shut_down(executor: ThreadPoolExecutor) -> None:
    """Wait, off the loop, for the batch a cancelled worker left running."""
    await asyncio.to_thread(executor.shutdown, wait=True)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
