# SPDX-License-Identifier: GPL-3.0-or-later
"""Remote images allowed per sender, and the page that lists those senders.

A person may always see the remote images of a sender they trust
(``core.trusted_senders``). A ``From:`` line proves nothing, though: anyone can
write ``From: direction@our-school`` to a mailbox here and make a beacon load.
So the choice is honoured only for a message whose sender is *verified*, and
today the only verification this server performs is its own authenticated
submission: our delivery writes the topmost ``Received:`` line of every message
it files (``mail.delivery.add_trace_headers``), with ``ESMTPA``/``ESMTPSA``
(RFC 3848) when the sender logged in, and submission refuses a ``From:`` the
person does not own (``mail.smtp``). Inbound mail from elsewhere is not checked
for SPF or DKIM by our delivery and carries no ``Authentication-Results:`` of
ours (one written by the sender would be as forgeable as its ``From:``), so its
images are never shown automatically; the page says why. When inbound
verification exists (an ``Authentication-Results:`` our delivery writes after
removing the sender's), :func:`is_verified_sender` is the one place to extend.

The line is matched from its end, which only we write (the ``HELO`` name the
client chose comes first), and the host must be our delivery host name. A
message put into a mailbox by IMAP ``APPEND`` has no line of ours unless its
owner wrote one: they can only mislead themselves.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Final

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from groupware.config import Config
from groupware.core.trusted_senders import TrustedSenders
from groupware.web.context import services
from groupware.web.mail_reading import MessageNotFoundError, OpenedMessage, open_message
from groupware.web.mail_structure import header_fields
from groupware.web.webmail import bp, imap

log = logging.getLogger(__name__)

#: The end of our delivery's Received line, unfolded (see mail.delivery).
_OUR_RECEIVED: Final = re.compile(
    r" by (?P<host>\S+) \(groupware\) with (?P<protocol>ESMTPS?A?) id \S+"
    r"(?: \([^()]*\))? ; [^;]*$"
)
AUTHENTICATED_PROTOCOLS: Final = frozenset({"ESMTPA", "ESMTPSA"})


@dataclass(frozen=True, slots=True)
class ImageChoice:
    """Whether a message's remote images show by themselves, and what to offer."""

    sender: str  # the From address, lower case; "" when not exactly one
    is_verified: bool
    is_trusted: bool

    @property
    def shows_images(self) -> bool:
        """Trusted and verified: images show without asking."""
        return self.is_trusted and self.is_verified


def delivery_hostname(config: Config) -> str:
    """The name our delivery signs its Received lines with (as ``mail.service`` sets it)."""
    return config.smtp.hostname or f"mail.{config.server.domain}"


def is_verified_sender(header_block: bytes, hostname: str) -> bool:
    """Whether our delivery filed this message from an authenticated submission."""
    received = next(
        (v for n, v in header_fields(header_block, is_decoded=False) if n.lower() == "received"),
        None,
    )
    if received is None:
        return False
    found = _OUR_RECEIVED.search(received)
    return (
        found is not None
        and found.group("host").lower() == hostname.lower()
        and found.group("protocol") in AUTHENTICATED_PROTOCOLS
    )


def store() -> TrustedSenders:
    """The trusted-senders store over the portal's database."""
    core = services().core
    return TrustedSenders(core.engine, core.audit)


def image_choice(message: OpenedMessage) -> ImageChoice:
    """What the reading page does about the message's remote images."""
    if len(message.sender) != 1:
        return ImageChoice("", is_verified=False, is_trusted=False)
    sender = message.sender[0].address.lower()
    hostname = delivery_hostname(services().core.config)
    return ImageChoice(
        sender,
        is_verified=is_verified_sender(message.header_block, hostname),
        is_trusted=store().is_trusted(current_user.person.id, sender),
    )


@bp.route("/<path:folder>/<int:uid>/trust-sender", methods=["POST"])
@login_required
def trust_sender(folder: str, uid: int) -> Response:
    """Always show the remote images of this message's (verified) sender."""
    try:
        opened = imap(lambda client: open_message(client, folder, uid, mark_seen=False))
    except MessageNotFoundError:
        abort(404)
    choice = image_choice(opened)
    back = redirect(url_for("mail.message", folder=folder, uid=uid))
    if not choice.is_verified:
        flash(_("This sender could not be verified: its images are not shown."), "error")
        return back
    store().trust(current_user.person.id, choice.sender, actor=current_user.person.login)
    flash(_("Images from %(address)s will be shown.", address=choice.sender), "success")
    return back


@bp.route("/settings/senders")
@login_required
def trusted_senders() -> str:
    """The senders whose images the person sees, each with a button to forget it."""
    return render_template(
        "mail/senders.html",
        senders=store().listed(current_user.person.id),
        format_datetime=format_datetime,
    )


@bp.route("/settings/senders/forget", methods=["POST"])
@login_required
def forget_sender() -> Response:
    """Stop showing a sender's images automatically."""
    address = request.form.get("address", "")
    if store().forget(current_user.person.id, address, actor=current_user.person.login):
        flash(_("Images from %(address)s will be blocked again.", address=address), "success")
    else:
        flash(_("This sender was not in your list."), "error")
    return redirect(url_for("mail.trusted_senders"))
