# SPDX-License-Identifier: GPL-3.0-or-later
"""The outbound queue: mail for other domains, retried until delivered or too old.

The queue's files are described in ``mail.outbound_queue``: one entry per
message, with per-recipient state; the id of a message's entry is its incoming
queue id, so handing the same message over twice finds the entry and writes
nothing. Entries are tried only once the incoming spool file they came from is
gone (:meth:`Outbound.release`), and after a restart only once every recovered
incoming message has been handed over (``recovered``), so a hand-off interrupted
by a crash never makes a second entry.

Attempts: the whole entry is tried at once (one connection per domain, or one to
the smarthost). After a temporary failure the next try is ``retry_initial_seconds``
later, doubling up to ``retry_max_seconds``; an entry older than
``give_up_seconds`` fails its pending recipients. Permanent failures and expiry
give the sender one RFC 3464 report; a delay warning is sent once after
``delay_warning_seconds``. An entry with the null sender (a bounce) is never
reported on: its failures are logged and audited only.

Crash windows, honestly: (1) the remote answered ``250`` to DATA and we stopped
before the state was rewritten: the message is sent again at restart (RFC 5321
§6.1's accepted duplicate). (2) An entry's results are saved before its report is
filed and the report flag saved after, so a crash between files the report again
at restart; a local report carries a delivery key and is stored once, a remote
one (bounce of a bounce is impossible, so only reports for remote senders) may go
out twice. Nothing accepted is ever lost: files are removed only after the state
that supersedes them is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from groupware.config import Config
from groupware.core.audit import Audit
from groupware.mail.dkim import DkimSigner
from groupware.mail.dsn import DELAYED, RecipientReport, build_report
from groupware.mail.dsn import FAILED as FAILED_ACTION
from groupware.mail.outbound_queue import (
    FAILED,
    PENDING,
    SENT,
    OutboundEntry,
    OutboundQueue,
    RecipientState,
)
from groupware.mail.transport import Disposition, Outcome, Transport

log = logging.getLogger(__name__)

#: ``report(sender, report, key)`` files a report for ``sender`` (blocking) and
#: returns the ids of outbound entries it made (for a remote sender), to release.
Reporter = Callable[[str, bytes, str], list[str]]
Clock = Callable[[], float]


@dataclass(slots=True)
class _Schedule:
    """In memory: when each entry is due, and which are being tried."""

    due: dict[str, float] = field(default_factory=dict)
    running: set[str] = field(default_factory=set)


class Outbound:
    """Queues messages for other domains and sends them, on the event loop."""

    def __init__(
        self,
        config: Config,
        queue: OutboundQueue,
        transport: Transport,
        audit: Audit,
        hostname: str,
        report: Reporter,
        clock: Clock = time.time,
    ) -> None:
        self.config = config.outbound
        self._config = config
        self.queue = queue
        self.transport = transport
        self.audit = audit
        self.hostname = hostname
        self.report = report
        self.clock = clock
        self.signer: DkimSigner | None = None
        self.recovered = asyncio.Event()  # set once the incoming spool is recovered
        self._schedule = _Schedule()
        self._wakeup = asyncio.Event()
        self._slots = asyncio.Semaphore(self.config.max_connections_count)
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self, stack: AsyncExitStack) -> None:
        """Load the DKIM key and the queue, then send in a background task."""
        self._loop = asyncio.get_running_loop()
        self.signer = await asyncio.to_thread(DkimSigner.from_config, self._config)
        for entry in await asyncio.to_thread(self.queue.recover):
            self._schedule.due[entry.queue_id] = entry.next_attempt_at
        log.info(
            "outbound.started entries=%d route=%s",
            len(self._schedule.due),
            self.config.smarthost or "mx",
        )
        worker = asyncio.create_task(self._run(), name="mail-outbound")
        stack.push_async_callback(self._stop, worker)

    def submit(
        self,
        queue_id: str,
        mail_from: str,
        recipients: Sequence[str],
        data: bytes,
        *,
        smtp_utf8: bool = False,
        authenticated_as: str = "",
        origin: str = "submission",
    ) -> bool:
        """Sign and queue a message (blocking); False if ``queue_id`` is queued already.

        The entry is not tried before :meth:`release` is called: the caller first
        makes its own hand-off durable (removes the incoming spool file).
        """
        if self.queue.has(queue_id):
            return False
        assert self.signer is not None, "submit() before start()"
        now = self.clock()
        entry = OutboundEntry(
            queue_id=queue_id,
            mail_from=mail_from,
            recipients=[RecipientState(address) for address in dict.fromkeys(recipients)],
            created_at=now,
            next_attempt_at=now,
            smtp_utf8=smtp_utf8,
            authenticated_as=authenticated_as,
            origin=origin,
        )
        added = self.queue.add(entry, self.signer.sign(data))
        if added:
            log.info(
                "outbound.queued queue_id=%s from=%s rcpts=%d",
                queue_id,
                mail_from or "<>",
                len(entry.recipients),
            )
        return added

    def release(self, queue_ids: Iterable[str]) -> None:
        """Let queued entries be tried now (any thread)."""
        ids = list(queue_ids)
        if ids and self._loop is not None:
            self._loop.call_soon_threadsafe(self._due_now, ids)

    def _due_now(self, queue_ids: list[str]) -> None:
        now = self.clock()
        for queue_id in queue_ids:
            self._schedule.due[queue_id] = min(self._schedule.due.get(queue_id, now), now)
        self._wakeup.set()

    async def _run(self) -> None:
        await self.recovered.wait()
        schedule = self._schedule
        while True:
            self._wakeup.clear()
            now = self.clock()
            waiting = {k: v for k, v in schedule.due.items() if k not in schedule.running}
            for queue_id, due_at in sorted(waiting.items(), key=lambda item: item[1]):
                if due_at > now:
                    break
                del schedule.due[queue_id]
                schedule.running.add(queue_id)
                task = asyncio.create_task(self._attempt(queue_id), name=f"outbound-{queue_id}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            later = [v for k, v in schedule.due.items() if k not in schedule.running]
            timeout = max(0.0, min(later) - now) if later else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)

    async def _stop(self, worker: asyncio.Task[None]) -> None:
        for task in (worker, *self._tasks):
            task.cancel()
        for task in (worker, *list(self._tasks)):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _attempt(self, queue_id: str) -> None:
        try:
            async with self._slots:
                await self._attempt_once(queue_id)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - boundary: one entry must not stop the queue
            log.exception("outbound.attempt_crashed queue_id=%s", queue_id)
            self._schedule.due[queue_id] = self.clock() + self.config.retry_max_seconds
        finally:
            self._schedule.running.discard(queue_id)
            self._wakeup.set()

    async def _attempt_once(self, queue_id: str) -> None:
        try:
            entry = await asyncio.to_thread(self.queue.load, queue_id)
            data = await asyncio.to_thread(self.queue.data, queue_id)
        except FileNotFoundError:
            return  # finished already
        pending = entry.pending()
        outcomes: list[Outcome] = []
        if pending:
            # Cancelled here (shutdown), nothing was recorded: the try did not count.
            outcomes = await self.transport.send(
                entry.mail_from, [r.address for r in pending], data, smtp_utf8=entry.smtp_utf8
            )
        settle = asyncio.ensure_future(asyncio.to_thread(self._settle, entry, data, outcomes))
        try:
            await asyncio.shield(settle)
        except asyncio.CancelledError:
            await settle  # finish writing what happened before stopping
            raise
        if entry.pending():
            self._schedule.due[queue_id] = entry.next_attempt_at

    def _backoff_seconds(self, attempts: int) -> float:
        config = self.config
        return float(
            min(config.retry_max_seconds, config.retry_initial_seconds * 2 ** (attempts - 1))
        )

    def _settle(self, entry: OutboundEntry, data: bytes, outcomes: list[Outcome]) -> None:
        """Record an attempt, report to the sender, finish or reschedule (blocking)."""
        now = self.clock()
        by_address = {outcome.recipient: outcome for outcome in outcomes}
        for recipient in entry.recipients:
            outcome = by_address.get(recipient.address)
            if outcome is None:
                continue
            recipient.status, recipient.reply, recipient.mx = (
                outcome.status,
                outcome.reply,
                outcome.mx,
            )
            if outcome.disposition is Disposition.SENT:
                recipient.state = SENT
            elif outcome.disposition is Disposition.PERMANENT:
                recipient.state = FAILED
        if outcomes:
            entry.attempts += 1
            entry.last_attempt_at = now
        deadline = entry.created_at + self.config.give_up_seconds
        if entry.pending() and now >= deadline:
            for recipient in entry.pending():
                recipient.state = FAILED
                recipient.reply = (
                    f"{recipient.reply} (gave up after {entry.attempts} attempts)".strip()
                )
                recipient.status = recipient.status or "4.4.7"
        entry.next_attempt_at = min(now + self._backoff_seconds(max(entry.attempts, 1)), deadline)
        self._account(entry, by_address)
        unreported = entry.unreported_failures()
        is_delayed = self._is_delay_due(entry, now)
        if unreported or is_delayed:
            self.queue.save(entry)  # results first: a crash now repeats the report, not the send
            released = self._report(entry, data, unreported, is_delayed)
            for recipient in unreported:
                recipient.is_reported = True
            entry.is_delay_reported = entry.is_delay_reported or is_delayed
        else:
            released = []
        if entry.pending():
            self.queue.save(entry)
        else:
            self.queue.remove(entry.queue_id)
            log.info("outbound.done queue_id=%s attempts=%d", entry.queue_id, entry.attempts)
        self.release(released)

    def _is_delay_due(self, entry: OutboundEntry, now: float) -> bool:
        warning = self.config.delay_warning_seconds
        return bool(
            warning
            and entry.mail_from
            and entry.pending()
            and not entry.is_delay_reported
            and now - entry.created_at >= warning
        )

    def _account(self, entry: OutboundEntry, by_address: dict[str, Outcome]) -> None:
        """One log line and one audit record per recipient that reached an end."""
        actor = entry.authenticated_as or entry.mail_from or "<>"
        for recipient in entry.recipients:
            outcome = by_address.get(recipient.address)
            if recipient.state == SENT and outcome is not None:
                log.info(
                    "outbound.sent queue_id=%s rcpt=%s mx=%s reply=%s",
                    entry.queue_id,
                    recipient.address,
                    recipient.mx,
                    recipient.reply,
                )
                self.audit.record(
                    "mail.sent",
                    actor=actor,
                    subject=recipient.address,
                    protocol="smtp",
                    client=recipient.mx,
                    detail=entry.queue_id,
                )
            elif recipient.state == FAILED and not recipient.is_reported:
                log.warning(
                    "outbound.failed queue_id=%s rcpt=%s status=%s reply=%s",
                    entry.queue_id,
                    recipient.address,
                    recipient.status,
                    recipient.reply,
                )
                self.audit.record(
                    "mail.failed",
                    actor=actor,
                    subject=recipient.address,
                    protocol="smtp",
                    client=recipient.mx,
                    outcome="failed",
                    detail=f"{entry.queue_id} {recipient.status} {recipient.reply}",
                )
            elif recipient.state == PENDING and outcome is not None:
                log.info(
                    "outbound.deferred queue_id=%s rcpt=%s status=%s reply=%s retry_in=%.1fs",
                    entry.queue_id,
                    recipient.address,
                    recipient.status,
                    recipient.reply,
                    max(0.0, entry.next_attempt_at - self.clock()),
                )

    def _report(
        self,
        entry: OutboundEntry,
        data: bytes,
        failed: list[RecipientState],
        is_delayed: bool,
    ) -> list[str]:
        """Failure and delay reports to the sender; none for a bounce (blocking)."""
        if not entry.mail_from:
            for recipient in failed:
                log.warning(
                    "outbound.bounce_dropped queue_id=%s rcpt=%s status=%s",
                    entry.queue_id,
                    recipient.address,
                    recipient.status,
                )
            return []
        batches: list[tuple[str, list[RecipientState], str]] = []
        if failed:
            digest = hashlib.sha256(",".join(sorted(r.address for r in failed)).encode())
            key = f"{entry.queue_id}-failed-{digest.hexdigest()[:8]}"
            batches.append((FAILED_ACTION, failed, key))
        if is_delayed:
            batches.append((DELAYED, entry.pending(), f"{entry.queue_id}-delayed"))
        released: list[str] = []
        for action, recipients, key in batches:
            released += self.report(
                entry.mail_from, self._build(entry, data, action, recipients), key
            )
            log.info(
                "outbound.reported queue_id=%s action=%s sender=%s rcpts=%d",
                entry.queue_id,
                action,
                entry.mail_from,
                len(recipients),
            )
        return released

    def _build(
        self, entry: OutboundEntry, data: bytes, action: str, recipients: list[RecipientState]
    ) -> bytes:
        return build_report(
            queue_id=entry.queue_id,
            mail_from=entry.mail_from,
            original=data,
            recipients=[
                RecipientReport(
                    recipient=r.address,
                    status=r.status or "4.0.0",
                    diagnostic=r.reply or "no reply",
                    action=action,
                    remote_mta=r.mx,
                    last_attempt_at=entry.last_attempt_at or None,
                )
                for r in recipients
            ],
            hostname=self.hostname,
            arrival_at=entry.created_at,
            retry_until=entry.created_at + self.config.give_up_seconds,
        )
