# SPDX-License-Identifier: GPL-3.0-or-later
"""Mail the system itself sends to an account (a password reset notice...).

A notice is written to the incoming spool like any accepted message (durably), so
the delivery pipeline files it into the person's INBOX: at once when the mail
service runs in this process (``wake``); otherwise the mail service running in
another process on the same data folder finds it within its scan period
(``mail.service.SCAN_PERIOD_SECONDS``), or, if none runs, delivers it when it next
starts and recovers the spool. Every notice ends with the reminder that the IT
department never asks for a password by mail (``core.account_notices``), whatever
its body.

A command-line process (``groupware users reset``) has no delivery worker:
:func:`deliver_here` files its notices into the INBOX itself, with the delivery key
that makes a later pass of the running server's recovery store nothing twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formataddr, formatdate, make_msgid

from groupware.config import Config
from groupware.core.account_notices import with_reminder
from groupware.core.directory import Person
from groupware.core.events import EventBus
from groupware.core.services import Core
from groupware.mail.addressing import Recipients
from groupware.mail.delivery import Delivery
from groupware.mail.spool import Envelope, Spool, SpooledMessage
from groupware.mail.store import MailStore


class Notices:
    """Writes system notices into the spool."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self.spool = Spool(config.data_dir / "spool")
        #: Set by the composition root when delivery runs here: given the spooled message.
        self.wake: Callable[[SpooledMessage], None] | None = None

    def send(self, person: Person, subject: str, body: str) -> str:
        """Spool one notice to ``person``; its queue id. Blocking (fsync)."""
        domain = self._config.server.domain
        message = EmailMessage(policy=SMTP)
        message["From"] = formataddr((self._config.server.institution_name, f"postmaster@{domain}"))
        message["To"] = formataddr((person.display_name, person.email))
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=domain)
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no automatic replies
        message.set_content(with_reminder(body))
        envelope = Envelope(
            mail_from="",  # a notice bounces nowhere (RFC 5321 §4.5.5)
            rcpt_tos=(person.email,),
            peer="portal",
            helo="localhost",
            received_at=time.time(),
            listener="notice",
        )
        data = message.as_bytes()
        queue_id = self.spool.accept(envelope, data)
        if self.wake is not None:
            self.wake(SpooledMessage(queue_id, envelope, data))
        return queue_id


def deliver_here(core: Core, notices: Notices) -> Callable[[SpooledMessage], None]:
    """A ``wake`` for ``notices`` that delivers each notice in this process, at once.

    For processes without the mail service (the CLI): a notice is local mail, so
    the delivery pipeline files it into the person's INBOX and the spool file goes.
    """
    delivery = Delivery(
        MailStore(core.engine, core.config.data_dir / "mail", EventBus()),
        Recipients(core.directory),
        core.audit,
        core.config.smtp.hostname or f"mail.{core.config.server.domain}",
    )

    def deliver(message: SpooledMessage) -> None:
        delivery.deliver(message)
        notices.spool.done(message.queue_id)

    return deliver
