# SPDX-License-Identifier: GPL-3.0-or-later
"""Webmail compose page: write, reply, reply to all, forward (plain text for now).

``/mail/compose`` starts empty; ``?folder=…&uid=…&mode=reply|all|forward`` starts
from a message (its text quoted). Sending goes through the submission listener as
the person (``web.mail_sending``), then the copy is filed in Sent and the original
marked answered. The route is static, so it wins over a top-level folder that
would be called "compose". These routes belong to the ``mail`` blueprint.
"""

from __future__ import annotations

from email.message import EmailMessage
from typing import Final

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from imapclient import IMAPClient  # type: ignore[import-untyped]
from werkzeug.wrappers import Response
from wtforms import HiddenField, StringField, TextAreaField
from wtforms.validators import Length, Optional

from groupware.web.mail_reading import MessageNotFoundError, OpenedMessage, open_message
from groupware.web.mail_sending import (
    MAX_RECIPIENTS_COUNT,
    AddressError,
    Draft,
    Prefill,
    SubmissionRefusedError,
    build_message,
    forward_prefill,
    parse_addresses,
    reply_prefill,
    save_sent_copy,
    submit,
)
from groupware.web.mail_structure import Mailbox
from groupware.web.webmail import INBOX, access, bp, imap

ANSWERED: Final = b"\\Answered"
MODES: Final = ("reply", "all", "forward")
MAX_ADDRESSES_CHARS: Final = 10_000
MAX_SUBJECT_CHARS: Final = 500
MAX_BODY_CHARS: Final = 1_000_000


class ComposeForm(FlaskForm):
    """A plain-text message."""

    to = StringField(_l("To"), validators=[Length(max=MAX_ADDRESSES_CHARS)])
    cc = StringField(_l("Cc"), validators=[Optional(), Length(max=MAX_ADDRESSES_CHARS)])
    bcc = StringField(_l("Bcc"), validators=[Optional(), Length(max=MAX_ADDRESSES_CHARS)])
    subject = StringField(_l("Subject"), validators=[Length(max=MAX_SUBJECT_CHARS)])
    body = TextAreaField(_l("Message"), validators=[Length(max=MAX_BODY_CHARS)])
    in_reply_to = HiddenField()
    references = HiddenField()
    origin_folder = HiddenField()
    origin_uid = HiddenField()
    mode = HiddenField()


def _sender() -> Mailbox:
    person = current_user.person
    return Mailbox(person.display_name, person.email)


def _original(folder: str, uid: int) -> OpenedMessage:
    try:
        return imap(lambda client: open_message(client, folder, uid, mark_seen=False))
    except MessageNotFoundError:
        abort(404)


def _prefill(original: OpenedMessage, mode: str) -> Prefill:
    when = format_datetime(original.date, "medium") if original.date else ""
    sender = ", ".join(str(m) for m in original.sender)
    if mode == "forward":
        lines = [
            _("-------- Forwarded message --------"),
            _("Subject: %(subject)s", subject=original.subject),
            _("Date: %(date)s", date=when),
            _("From: %(sender)s", sender=sender),
            _("To: %(recipients)s", recipients=", ".join(str(m) for m in original.to)),
        ]
        return forward_prefill(original, "\n".join(lines))
    attribution = _("On %(date)s, %(sender)s wrote:", date=when, sender=sender)
    return reply_prefill(
        original, current_user.person.email, to_all=mode == "all", attribution=attribution
    )


def _fill(form: ComposeForm) -> None:
    folder, uid = request.args.get("folder", ""), request.args.get("uid", "")
    mode = request.args.get("mode", "")
    if not (folder and uid.isdigit() and mode in MODES):
        form.to.data = request.args.get("to", "")
        return
    start = _prefill(_original(folder, int(uid)), mode)
    form.to.data, form.cc.data, form.subject.data = start.to, start.cc, start.subject
    form.body.data, form.in_reply_to.data = start.body, start.in_reply_to
    form.references.data = start.references
    form.origin_folder.data, form.origin_uid.data, form.mode.data = folder, uid, mode


def _draft(form: ComposeForm) -> Draft | None:
    """The draft, or ``None`` with the form's errors set."""
    fields = {"to": form.to, "cc": form.cc, "bcc": form.bcc}
    parsed: dict[str, list[str]] = {}
    for name, field in fields.items():
        try:
            parsed[name] = parse_addresses(field.data or "")
        except AddressError as exc:
            field.errors = [_("“%(text)s” is not an email address.", text=exc.text)]
    if len(parsed) < len(fields):
        return None
    draft = Draft(
        to=parsed["to"],
        cc=parsed["cc"],
        bcc=parsed["bcc"],
        subject=(form.subject.data or "").replace("\n", " ").strip(),
        body=form.body.data or "",
        in_reply_to=(form.in_reply_to.data or "").strip(),
        references=(form.references.data or "").strip(),
    )
    if not draft.recipients:
        form.to.errors = [_("Give at least one recipient.")]
        return None
    if len(draft.recipients) > MAX_RECIPIENTS_COUNT:
        form.to.errors = [_("At most %(count)s recipients.", count=MAX_RECIPIENTS_COUNT)]
        return None
    return draft


def _after_sending(form: ComposeForm, message: EmailMessage) -> None:
    origin_uid = form.origin_uid.data or ""
    is_reply = form.mode.data in ("reply", "all") and origin_uid.isdigit()

    def file_copy(client: IMAPClient) -> None:
        save_sent_copy(client, message)
        if is_reply:
            try:
                client.select_folder(form.origin_folder.data or INBOX)
            except IMAPClient.Error:
                return  # the original's folder went away meanwhile: nothing to mark
            client.add_flags([int(origin_uid)], [ANSWERED], silent=True)

    imap(file_copy)


@bp.route("/compose", methods=["GET", "POST"])
@login_required
def compose() -> str | Response:
    """Write a message; on send, submit it, keep the copy in Sent, back to the inbox."""
    form = ComposeForm()
    if request.method == "GET":
        _fill(form)
    elif form.validate_on_submit():
        draft = _draft(form)
        if draft is not None:
            message = build_message(draft, _sender(), current_user.person.email.rpartition("@")[2])
            try:
                submit(access(), current_user.person.login, message, draft.recipients)
            except SubmissionRefusedError as exc:
                flash(_("Not sent: refused for %(who)s.", who=", ".join(exc.refused)), "error")
            else:
                _after_sending(form, message)
                flash(_("Message sent."), "success")
                return redirect(url_for("mail.folder", folder=form.origin_folder.data or INBOX))
    return render_template("mail/compose.html", form=form)
