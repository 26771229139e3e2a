# SPDX-License-Identifier: GPL-3.0-or-later
"""Calendar invitations in the reading pane, and "Add to my agenda".

The reading page shows a message's invitation above its body
(:func:`invitation_context`, template ``mail/_invitation.html``). Adding it is a
CSRF-protected POST that reads the calendar part again from IMAP (never from the
form: the page could be stale or forged) and PUTs it into the person's default
calendar (their own first writable one) through the DAV front as the person,
``If-None-Match: *``, under a name derived from the event's UID. So the same
invitation added twice is refused by DAV itself (412), and so is an event whose
UID the calendar already holds under another name (Radicale's UID check): both
are reported as "already in your agenda".

Answering (accept, maybe, decline) sends the organiser an iTIP REPLY (RFC 5546
§3.2.3, in mail as RFC 6047 §2.4 says: a ``text/calendar; method=REPLY`` part
beside a text for people) through the submission listener as the person
(``mail_sending.submit``), with a copy in Sent. Only an attendee the invitation
names may answer, with the address it names. Routes of the ``mail`` blueprint.
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any, Final
from zoneinfo import ZoneInfo

from flask import abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from groupware.web import mail_invitation_text as texts
from groupware.web.context import services
from groupware.web.dav_client import (
    ChangedElsewhereError,
    Collection,
    DavClient,
    DavClientError,
    ForbiddenError,
)
from groupware.web.mail_access import MailUnavailableError
from groupware.web.mail_invitation import (
    REPLY_ANSWERS,
    Invitation,
    InvitationError,
    Participant,
    agenda_object,
    attendee_for,
    read_invitation,
    reply_object,
)
from groupware.web.mail_reading import MessageNotFoundError, OpenedMessage, open_message
from groupware.web.mail_sending import SubmissionRefusedError, save_sent_copy, submit
from groupware.web.webmail import bp, imap

log = logging.getLogger(__name__)

CALENDAR_TYPE: Final = "text/calendar; charset=utf-8"
#: DAV statuses that mean the calendar already holds an event with this UID.
ALREADY_THERE_STATUSES: Final = frozenset({409, 412})
ITEM_NAME_CHARS: Final = 40


def person_zone() -> ZoneInfo:
    """The zone the person reads times in (the agenda's)."""
    return ZoneInfo(services().core.config.accounts.default_time_zone)


def invitation_of(message: OpenedMessage) -> tuple[Invitation | None, bool]:
    """The message's invitation, and whether it has one that could not be read."""
    if message.has_oversized_calendar:
        return None, True
    if message.calendar_text is None:
        return None, False
    try:
        return read_invitation(message.calendar_text, person_zone()), False
    except InvitationError:
        log.info("web.mail.invitation.unreadable uid=%s", message.uid)
        return None, True


def invitation_context(message: OpenedMessage) -> dict[str, Any]:
    """What ``mail/_invitation.html`` needs."""
    invitation, is_unreadable = invitation_of(message)
    return {
        "invitation": invitation,
        "invitation_error": is_unreadable,
        "invitation_texts": {
            "heading": texts.heading_text,
            "when": texts.when_text,
            "rule": texts.rule_text,
            "moment": texts.moment_text,
        },
        "answer_labels": texts.answer_labels(),
        "can_answer": _can_answer(invitation),
        "time_zone": services().core.config.accounts.default_time_zone,
    }


def _can_answer(invitation: Invitation | None) -> bool:
    return (
        invitation is not None
        and invitation.method == "REQUEST"
        and not invitation.is_cancelled
        and invitation.organizer is not None
        and _me_in(invitation) is not None
    )


def _me_in(invitation: Invitation) -> Participant | None:
    return attendee_for(invitation, [current_user.person.email])


def default_calendar(dav: DavClient) -> Collection | None:
    """The person's own first writable calendar (not a shared or department one)."""
    return next(
        (c for c in dav.collections() if c.kind == "calendar" and c.is_writable and not c.is_mount),
        None,
    )


def item_name(uid: str) -> str:
    """The resource name of an invitation's event: the same for the same UID."""
    return hashlib.sha256(uid.encode("utf-8")).hexdigest()[:ITEM_NAME_CHARS] + ".ics"


@bp.route("/<path:folder>/<int:uid>/invitation", methods=["POST"])
@login_required
def add_invitation(folder: str, uid: int) -> Response:
    """Put the message's invitation into the person's default calendar."""
    back = redirect(url_for("mail.message", folder=folder, uid=uid))
    try:
        opened = imap(lambda client: open_message(client, folder, uid, mark_seen=False))
    except MessageNotFoundError:
        abort(404)
    invitation, _is_unreadable = invitation_of(opened)
    if invitation is None or not invitation.can_be_added or opened.calendar_text is None:
        flash(_("This message has no invitation to add."), "error")
        return back
    try:
        text, event_uid = agenda_object(opened.calendar_text)
    except InvitationError:
        flash(_("This message has no invitation to add."), "error")
        return back
    dav = DavClient(services().dav_requests, current_user.person)
    calendar = default_calendar(dav)
    if calendar is None:
        flash(_("You have no calendar of your own to add this event to."), "error")
        return back
    try:
        dav.put(calendar.path + item_name(event_uid), text, CALENDAR_TYPE, etag=None)
    except ChangedElsewhereError:
        flash(_("This event is already in your agenda."), "error")
        return back
    except ForbiddenError:
        abort(403)
    except DavClientError as exc:
        if exc.status in ALREADY_THERE_STATUSES:
            flash(_("This event is already in your agenda."), "error")
        else:
            flash(_("Your agenda refused this event."), "error")
        return back
    log.info("web.mail.invitation.added user=%s uid=%s", current_user.person.login, event_uid)
    flash(_("The event was added to your agenda."), "success")
    return back


def _reply_message(invitation: Invitation, me: Participant, answer: str, ics: str) -> EmailMessage:
    """The mail carrying the REPLY: a line for people, the calendar part for programs."""
    assert invitation.organizer is not None
    person = current_user.person
    subjects = {
        "accepted": _("Accepted: %(title)s", title=invitation.title),
        "tentative": _("Maybe: %(title)s", title=invitation.title),
        "declined": _("Declined: %(title)s", title=invitation.title),
    }
    message = EmailMessage(policy=SMTP)
    message["From"] = email.utils.formataddr((person.display_name, me.address))
    message["To"] = invitation.organizer.address
    message["Subject"] = subjects[answer]
    message["Date"] = email.utils.formatdate(localtime=True)
    message["Message-ID"] = email.utils.make_msgid(domain=services().core.config.server.domain)
    message["MIME-Version"] = "1.0"
    name = person.display_name
    bodies = {
        "accepted": _("%(name)s accepted your invitation.", name=name),
        "tentative": _("%(name)s may come to your event.", name=name),
        "declined": _("%(name)s declined your invitation.", name=name),
    }
    message.set_content(bodies[answer] + "\n")
    message.add_alternative(
        ics.encode("utf-8"),
        maintype="text",
        subtype="calendar",
        params={"method": "REPLY", "charset": "utf-8"},
    )
    return message


@bp.route("/<path:folder>/<int:uid>/invitation/answer", methods=["POST"])
@login_required
def answer_invitation(folder: str, uid: int) -> Response:
    """Send the organiser the person's answer (iTIP REPLY), as the person."""
    back = redirect(url_for("mail.message", folder=folder, uid=uid))
    answer = request.form.get("answer", "")
    if answer not in REPLY_ANSWERS:
        abort(400)
    try:
        opened = imap(lambda client: open_message(client, folder, uid, mark_seen=False))
    except MessageNotFoundError:
        abort(404)
    invitation, _is_unreadable = invitation_of(opened)
    if invitation is None or opened.calendar_text is None or not _can_answer(invitation):
        flash(_("You cannot answer this invitation."), "error")
        return back
    me = _me_in(invitation)
    assert me is not None
    assert invitation.organizer is not None
    ics = reply_object(opened.calendar_text, me, answer, datetime.now(UTC))
    message = _reply_message(invitation, me, answer, ics)
    access = services().mail
    assert access is not None
    try:
        submit(access, current_user.person.login, message, [invitation.organizer.address])
    except (SubmissionRefusedError, MailUnavailableError):
        log.warning("web.mail.invitation.reply_failed user=%s", current_user.person.login)
        flash(_("Your answer could not be sent. Try again in a moment."), "error")
        return back
    imap(lambda client: save_sent_copy(client, message))
    organizer = invitation.organizer.address
    flash(_("Your answer was sent to %(address)s.", address=organizer), "success")
    return back
