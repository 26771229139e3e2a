# SPDX-License-Identifier: GPL-3.0-or-later
"""The delivery pipeline: from the spool into mailboxes.

Messages are delivered in batches (one or more spooled messages); each step is a
function over the batch's :class:`DeliveryJob` list:

1. :func:`add_trace_headers`: ``Return-Path:`` and ``Received:`` (RFC 5321 §4.4);
2. :func:`resolve_recipients`: addresses, aliases and group lists (members
   expanded, each person once per message; each address looked up once per batch);
3. filters (Sieve, anti-spam, anti-virus) go here, between resolution and filing;
4. :func:`file_into_inboxes`: each person's INBOX in the mail store, with a
   delivery key so that a redelivery after a crash stores nothing twice; a person
   over quota gets nothing and the sender a bounce (RFC 3464) — checked again here
   because the quota may have filled since RCPT. The whole batch is one store
   write (``MailStore.deliver_many``: shared fsyncs, one durable commit);
5. the store publishes ``MailboxChanged``, which wakes IMAP sessions in IDLE.

Remote recipients are left in ``job.remote`` with the message as it goes on the
wire (``job.relay_data``: our ``Received:`` but no ``Return-Path:``); a bounce for a
remote sender is left in ``job.bounce``. The caller (``mail.service``) hands both
to the outbound queue: this module never sends anything itself.

Blocking (files and database): the service runs it in a worker thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime

from groupware.core.audit import Audit, AuditEntry
from groupware.core.directory import Person
from groupware.mail.addressing import LocalRecipient, Recipients, parse_address
from groupware.mail.dsn import RecipientReport, build_report
from groupware.mail.spool import SpooledMessage
from groupware.mail.store import INBOX, InboxDelivery, MailStore, QuotaExceededError

log = logging.getLogger(__name__)


@dataclass(slots=True)
class DeliveryJob:
    """One spooled message on its way through the steps."""

    message: SpooledMessage
    hostname: str
    data: bytes = b""
    relay_data: bytes = b""
    bounce: bytes | None = None
    persons: dict[int, Person] = field(default_factory=dict)
    remote: list[str] = field(default_factory=list)
    delivered: list[str] = field(default_factory=list)
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # rcpt, status, text


def add_trace_headers(jobs: Sequence[DeliveryJob], _pipeline: Delivery) -> None:
    """Prepend Return-Path and Received, as the delivering MTA must."""
    for job in jobs:
        envelope = job.message.envelope
        when = format_datetime(datetime.fromtimestamp(envelope.received_at, UTC))
        # RFC 3848: ESMTP, ESMTPS (TLS), ESMTPA (authenticated), ESMTPSA (both).
        protocol = (
            "ESMTP" + ("S" if envelope.tls else "") + ("A" if envelope.authenticated_as else "")
        )
        received = (
            f"Received: from {envelope.helo or 'unknown'} ({envelope.peer})\r\n"
            f"\tby {job.hostname} (groupware) with {protocol} id {job.message.queue_id}\r\n"
            f"\t{'(' + envelope.tls + ') ' if envelope.tls else ''}; {when}\r\n"
        )
        return_path = f"Return-Path: <{envelope.mail_from}>\r\n"
        data = job.message.data
        while data.lower().startswith(b"return-path:"):
            # A Return-Path from the sender is replaced by ours (RFC 5321 §4.4).
            _line, _sep, data = data.partition(b"\n")
        job.relay_data = received.encode() + data
        job.data = return_path.encode() + job.relay_data


def resolve_recipients(jobs: Sequence[DeliveryJob], pipeline: Delivery) -> None:
    """Local people for every local recipient; others are left for outbound.

    An address is looked up once per batch: a flood to one person costs one lookup.
    """
    found_for: dict[str, LocalRecipient | None] = {}
    for job in jobs:
        for rcpt in job.message.envelope.rcpt_tos:
            address = parse_address(rcpt)
            if address is None:
                job.failures.append((rcpt, "5.1.3", "malformed address"))
                continue
            if (
                not pipeline.recipients.is_local_domain(address.domain)
                or address.has_routing_tricks
            ):
                job.remote.append(rcpt)
                continue
            key = f"{address.local.lower()}@{address.domain}"
            if key not in found_for:
                found_for[key] = pipeline.recipients.resolve(address)
            found = found_for[key]
            if found is None:
                job.failures.append((rcpt, "5.1.1", "no such user"))
                continue
            for person in found.persons:
                job.persons.setdefault(person.id, person)


def file_into_inboxes(jobs: Sequence[DeliveryJob], pipeline: Delivery) -> None:
    """Store one copy per person and message, idempotently, in one store write."""
    wanted: list[tuple[DeliveryJob, Person]] = []
    for job in jobs:
        for person in job.persons.values():
            pipeline.ensure_mailboxes(person)
            wanted.append((job, person))
    results = pipeline.store.deliver_many(
        [
            InboxDelivery(person, job.data, delivery_key=f"{job.message.queue_id}:{person.id}")
            for job, person in wanted
        ]
    )
    for (job, person), result in zip(wanted, results, strict=True):
        if result is None:
            job.failures.append((person.email, "5.2.2", "mailbox full"))
        else:
            job.delivered.append(person.email)


Step = Callable[[Sequence[DeliveryJob], "Delivery"], None]
STEPS: tuple[Step, ...] = (add_trace_headers, resolve_recipients, file_into_inboxes)


class Delivery:
    """Runs the steps for spooled messages."""

    def __init__(
        self,
        store: MailStore,
        recipients: Recipients,
        audit: Audit,
        hostname: str,
        steps: tuple[Step, ...] = STEPS,
    ) -> None:
        self.store = store
        self.recipients = recipients
        self.audit = audit
        self.hostname = hostname
        self.steps = steps
        self._ensured: set[int] = set()
        self._ensured_lock = threading.Lock()

    def ensure_mailboxes(self, person: Person) -> None:
        """The person's folders, made once per process (every delivery needs them)."""
        if person.id in self._ensured:
            return
        self.store.ensure_mailboxes(person)
        with self._ensured_lock:
            self._ensured.add(person.id)

    def deliver(self, message: SpooledMessage) -> DeliveryJob:
        """Deliver one message to its local recipients; bounce failures to the sender."""
        return self.deliver_batch([message])[0]

    def deliver_batch(self, messages: Sequence[SpooledMessage]) -> list[DeliveryJob]:
        """Deliver messages together (one store write for them all), then report each.

        Args:
            messages: spooled messages, each once.

        Returns:
            Their jobs, in order: who got each, who failed, what goes out.
        """
        jobs = [DeliveryJob(message=message, hostname=self.hostname) for message in messages]
        for step in self.steps:
            step(jobs, self)
        # One audit transaction for the batch: a row each was an eighth of the time.
        self.audit.record_many([entry for job in jobs for entry in _audit_entries(job)])
        for job in jobs:
            if job.failures and job.message.envelope.mail_from:
                self._bounce(job)
        return jobs

    def _bounce(self, job: DeliveryJob) -> None:
        """A delivery status notification (RFC 3464) for the sender.

        A local sender finds it in their INBOX; for a remote one it is left in
        ``job.bounce`` for the outbound queue.
        """
        report = build_dsn(job, self.hostname)
        if not self.file_report(job.message.envelope.mail_from, report, f"{job.message.queue_id}"):
            job.bounce = report

    def file_report(self, sender: str, report: bytes, key: str) -> bool:
        """Put a report into a local sender's INBOX, once per ``key`` (blocking).

        Args:
            sender: the envelope sender the report is for.
            report: the report (``mail.dsn``).
            key: unique per report; a second call with it stores nothing.

        Returns:
            False when the sender is not local (the report must go out instead).
        """
        address = parse_address(sender)
        if address is None or not self.recipients.is_local_domain(address.domain):
            return False
        found = self.recipients.resolve(address)
        if found is None:
            log.warning("delivery.report_unowned sender=%s key=%s", sender, key)
            return True  # a local address no one holds any more: nowhere to send it
        for person in found.persons:
            self.store.ensure_mailboxes(person)
            try:
                self.store.append(person, INBOX, report, delivery_key=f"{key}:dsn:{person.id}")
            except QuotaExceededError:
                log.warning("delivery.bounce_over_quota sender=%s", person.login)
        return True


def _audit_entries(job: DeliveryJob) -> list[AuditEntry]:
    """The audit trail of one message: a line per recipient, delivered or failed."""
    envelope = job.message.envelope
    delivered = [
        AuditEntry(
            "mail.delivered",
            actor=envelope.authenticated_as or envelope.mail_from or "<>",
            subject=rcpt,
            protocol=envelope.listener,
            client=envelope.peer,
            detail=job.message.queue_id,
        )
        for rcpt in job.delivered
    ]
    failed = [
        AuditEntry(
            "mail.failed",
            actor=envelope.mail_from or "<>",
            subject=rcpt,
            protocol=envelope.listener,
            client=envelope.peer,
            outcome="failed",
            detail=f"{job.message.queue_id} {status} {reason}",
        )
        for rcpt, status, reason in job.failures
    ]
    return delivered + failed


def build_dsn(job: DeliveryJob, hostname: str) -> bytes:
    """A multipart/report delivery status notification for the job's failures."""
    return build_report(
        queue_id=job.message.queue_id,
        mail_from=job.message.envelope.mail_from,
        original=job.message.data,
        recipients=[
            RecipientReport(recipient=rcpt, status=status, diagnostic=reason)
            for rcpt, status, reason in job.failures
        ],
        hostname=hostname,
        arrival_at=job.message.envelope.received_at,
    )
