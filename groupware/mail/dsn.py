# SPDX-License-Identifier: GPL-3.0-or-later
"""Delivery status notifications: RFC 3464 inside an RFC 6522 multipart/report.

One builder for every report we send: local delivery failures (``mail.delivery``),
permanent failures, expiry and delay warnings of the outbound queue
(``mail.outbound``). A report is always sent with the null reverse-path ``<>``
(RFC 5321 §4.5.5), so that a report that cannot be delivered is never reported
again; the callers enforce it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, make_msgid
from typing import Final

from groupware.core.account_notices import NEVER_ASKS_FOR_PASSWORD

FAILED: Final = "failed"
DELAYED: Final = "delayed"

_UNPRINTABLE: Final = re.compile(r"[^\x20-\x7e]")


@dataclass(frozen=True, slots=True)
class RecipientReport:
    """What happened to one recipient (RFC 3464 §2.3)."""

    recipient: str
    status: str  # RFC 3463 code, e.g. 5.1.1
    diagnostic: str  # the remote reply ("550 5.1.1 No such user") or our reason
    action: str = FAILED
    remote_mta: str = ""
    last_attempt_at: float | None = None


def _date(timestamp: float | None) -> str:
    when = datetime.now(UTC) if timestamp is None else datetime.fromtimestamp(timestamp, UTC)
    return format_datetime(when)


def _field(text: str) -> str:
    """One header-safe line: remote replies may hold CR, LF or 8-bit bytes."""
    return _UNPRINTABLE.sub("?", " ".join(text.split()))[:900]


def _headers_of(message: bytes) -> bytes:
    end = message.find(b"\r\n\r\n")
    return message[: end + 2] if end >= 0 else message


def _human_part(
    recipients: Sequence[RecipientReport], retry_until: float | None
) -> tuple[str, list[str]]:
    """The subject and the readable text (English, then French)."""
    if all(report.action == DELAYED for report in recipients):
        subject = "Delayed Mail (still being retried) / Message en attente (nouvel essai en cours)"
        intro = [
            "Your message has not been delivered yet to these recipients; we keep trying.",
            "Votre message n'a pas encore été remis à ces destinataires ; "
            "de nouveaux essais sont en cours.",
        ]
        if retry_until is not None:
            intro.append(f"Last try / Dernier essai : {_date(retry_until)}")
    else:
        subject = "Undelivered Mail Returned to Sender / Message non remis"
        intro = [
            "Your message could not be delivered to these recipients:",
            "Votre message n'a pas pu être remis à ces destinataires :",
        ]
    listed = [
        f"  <{report.recipient}>: {_field(report.diagnostic)} ({report.status})"
        for report in recipients
    ]
    return subject, [*intro, "", *listed, "", *NEVER_ASKS_FOR_PASSWORD.splitlines()]


def _recipient_fields(report: RecipientReport, retry_until: float | None) -> list[str]:
    """One per-recipient block of the delivery-status part (RFC 3464 §2.3)."""
    lines = [
        f"Final-Recipient: rfc822; {report.recipient}",
        f"Action: {report.action}",
        f"Status: {report.status}",
    ]
    if report.remote_mta:
        lines.append(f"Remote-MTA: dns; {report.remote_mta}")
    lines.append(f"Diagnostic-Code: smtp; {_field(report.diagnostic)}")
    if report.last_attempt_at is not None:
        lines.append(f"Last-Attempt-Date: {_date(report.last_attempt_at)}")
    if report.action == DELAYED and retry_until is not None:
        lines.append(f"Will-Retry-Until: {_date(retry_until)}")
    return [*lines, ""]


def build_report(
    *,
    queue_id: str,
    mail_from: str,
    original: bytes,
    recipients: Sequence[RecipientReport],
    hostname: str,
    arrival_at: float | None = None,
    retry_until: float | None = None,
) -> bytes:
    """A multipart/report for ``recipients``, addressed to ``mail_from``.

    Args:
        queue_id: the message's queue id (kept in ``X-Queue-ID`` for support).
        mail_from: the original envelope sender, the report's recipient.
        original: the original message; only its header is returned (RFC 6522
            ``text/rfc822-headers``), never the body.
        recipients: one entry per recipient; all ``delayed`` gives a delay warning.
        hostname: our host name (``Reporting-MTA``, ``From``).
        arrival_at: when we accepted the original (``Arrival-Date``).
        retry_until: for delay warnings, when we give up (``Will-Retry-Until``).

    Returns:
        The report, CRLF line endings, ready for the store or the outbound queue.
    """
    boundary = f"dsn-{queue_id}"
    subject, text = _human_part(recipients, retry_until)
    lines = [
        f"From: Mail Delivery System <MAILER-DAEMON@{hostname}>",
        f"To: <{mail_from}>",
        f"Subject: {subject}",
        f"Date: {_date(None)}",
        f"Message-ID: {make_msgid(domain=hostname)}",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        "",
        *text,
        "",
        f"--{boundary}",
        "Content-Type: message/delivery-status",
        "",
        f"Reporting-MTA: dns; {hostname}",
        f"X-Queue-ID: {queue_id}",
    ]
    if arrival_at is not None:
        lines.append(f"Arrival-Date: {_date(arrival_at)}")
    lines.append("")
    for report in recipients:
        lines += _recipient_fields(report, retry_until)
    return (
        "\r\n".join(lines).encode()
        + f"\r\n--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n".encode()
        + _headers_of(original)
        + f"\r\n--{boundary}--\r\n".encode()
    )
