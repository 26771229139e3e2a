# SPDX-License-Identifier: GPL-3.0-or-later
"""Webmail compose page: write, reply, reply to all, forward, drafts; HTML or plain text.

``/mail/compose`` starts empty; ``?folder=…&uid=…&mode=reply|all|forward|attach``
starts from a message (its text quoted; a forward keeps its attachments, which the
person may untick; ``attach`` forwards it whole as an attachment); ``?folder=…&draft=…``
resumes a draft. One form, three buttons: send (through the submission listener as
the person, ``web.mail_sending``, then the copy in Sent, the original marked
answered, the draft removed), save as draft (``web.mail_drafts``) and discard.
The "From" is one of the person's identities (``web.webmail_identity``), with
its signature put in the starting text (``web.mail_signatures``).
Attachments wait in the session's staging area (``web.mail_staging``) and are
named in the form by their staging ids, as ticked boxes. The JSON routes the
page's script uses (autosave, uploads, address completion) are in
``web.webmail_compose_api``. The route is static, so it wins over a top-level
folder that would be called "compose". These routes belong to the ``mail``
blueprint.
"""

from __future__ import annotations

import contextlib
import dataclasses
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
from wtforms.validators import AnyOf, Length, Optional

from groupware.core.mail_preferences import Identity
from groupware.web.context import services
from groupware.web.mail_compose_html import (
    clean_compose_html,
    html_to_text,
    quoted_html,
    text_to_html,
)
from groupware.web.mail_drafts import (
    ORIGIN_HEADER,
    NoDraftsFolderError,
    Origin,
    StoredDraft,
    delete_draft,
    drafts_folder,
    original_as_attachment,
    original_attachments,
    read_draft,
    save_draft,
)
from groupware.web.mail_reading import MessageNotFoundError, OpenedMessage, open_message
from groupware.web.mail_sending import (
    FORWARD_PREFIX,
    MAX_RECIPIENTS_COUNT,
    AddressError,
    Attachment,
    Draft,
    Prefill,
    SubmissionRefusedError,
    build_message,
    forward_prefill,
    parse_addresses,
    prefixed,
    reply_prefill,
    save_sent_copy,
    submit,
)
from groupware.web.mail_signatures import (
    signature_block,
    signature_html,
    with_html_signature,
    with_text_signature,
)
from groupware.web.mail_staging import StagedFile, Staging, StagingLimitError, staging_for
from groupware.web.webmail import INBOX, access, bp, imap, size_text
from groupware.web.webmail_identity import (
    default_of,
    find,
    identity_label,
    person_identities,
    posted_identity,
    replying_identity,
    sender_of,
)

ANSWERED: Final = b"\\Answered"
MODES: Final = ("reply", "all", "forward", "attach")
FORMATS: Final = ("plain", "html")
MAX_ADDRESSES_CHARS: Final = 10_000
MAX_SUBJECT_CHARS: Final = 500
MAX_BODY_CHARS: Final = 1_000_000
MAX_ATTACHMENTS_COUNT: Final = 100
#: Modes whose text quotes the original: the signature goes above the quote.
QUOTING_MODES: Final = ("reply", "all", "forward")


class ComposeForm(FlaskForm):
    """A message being written; attachments are the ticked ``attachment`` boxes."""

    to = StringField(_l("To"), validators=[Length(max=MAX_ADDRESSES_CHARS)])
    cc = StringField(_l("Cc"), validators=[Optional(), Length(max=MAX_ADDRESSES_CHARS)])
    bcc = StringField(_l("Bcc"), validators=[Optional(), Length(max=MAX_ADDRESSES_CHARS)])
    identity = StringField(_l("From"), validators=[Optional(), Length(max=MAX_ADDRESSES_CHARS)])
    subject = StringField(_l("Subject"), validators=[Length(max=MAX_SUBJECT_CHARS)])
    body = TextAreaField(_l("Message"), validators=[Length(max=MAX_BODY_CHARS)])
    html_body = HiddenField(validators=[Length(max=MAX_BODY_CHARS)])
    format = HiddenField(default="plain", validators=[Optional(), AnyOf(FORMATS)])
    in_reply_to = HiddenField()
    references = HiddenField()
    origin_folder = HiddenField()
    origin_uid = HiddenField()
    mode = HiddenField()
    draft_uid = HiddenField()


def staging() -> Staging:
    """The staging area of attachments, with the configured size limit."""
    return staging_for(services().core.config)


def attached_ids() -> list[str]:
    """The staging ids the form names (its ticked attachment boxes)."""
    values = request.form.getlist("attachment")
    if len(values) > MAX_ATTACHMENTS_COUNT:
        abort(400)
    return list(dict.fromkeys(values))


def limit_text() -> str:
    """The refusal shown when attachments would exceed the limit."""
    return _(
        "Attachments are limited to %(size)s in total: this file was not added.",
        size=size_text(staging().limit_bytes),
    )


def total_text() -> str:
    """The refusal shown when a message's attachments exceed the limit together."""
    return _(
        "Attachments are limited to %(size)s in total: untick some of them.",
        size=size_text(staging().limit_bytes),
    )


def _domain() -> str:
    return str(current_user.person.email.rpartition("@")[2])


def _original(folder: str, uid: int) -> OpenedMessage:
    try:
        return imap(lambda client: open_message(client, folder, uid, mark_seen=False))
    except MessageNotFoundError:
        abort(404)


def _forward_header(original: OpenedMessage) -> list[str]:
    when = format_datetime(original.date, "medium") if original.date else ""
    return [
        _("-------- Forwarded message --------"),
        _("Subject: %(subject)s", subject=original.subject),
        _("Date: %(date)s", date=when),
        _("From: %(sender)s", sender=", ".join(str(m) for m in original.sender)),
        _("To: %(recipients)s", recipients=", ".join(str(m) for m in original.to)),
    ]


def _prefill(original: OpenedMessage, mode: str, identities: list[Identity]) -> Prefill:
    if mode == "forward":
        lines = _forward_header(original)
        start = forward_prefill(original, "\n".join(lines))
        if original.html is None:
            return start
        header = text_to_html("\n".join(lines))
        return dataclasses.replace(
            start, html=f"<p><br></p>{header}{clean_compose_html(original.html)}"
        )
    when = format_datetime(original.date, "medium") if original.date else ""
    sender = ", ".join(str(m) for m in original.sender)
    attribution = _("On %(date)s, %(sender)s wrote:", date=when, sender=sender)
    if original.text is None and original.html is not None:
        # HTML only: the plain-text quote (for a page without script) is made from it.
        original = dataclasses.replace(
            original, text=html_to_text(clean_compose_html(original.html))
        )
    own = [current_user.person.email, *(i.address for i in identities)]
    start = reply_prefill(original, own, to_all=mode == "all", attribution=attribution)
    if original.html is None:
        return start
    return dataclasses.replace(start, html=quoted_html(original.html, attribution))


def _stage_all(attachments: list[Attachment]) -> list[StagedFile]:
    """Put a forward's or a draft's attachments in the staging area, within the limit.

    Fewer come back than were given when the limit stopped them (a message said so).
    """
    area, staged = staging(), list[StagedFile]()
    for attachment in attachments:
        try:
            staged.append(
                area.add(
                    current_user.session_id,
                    attachment.name,
                    attachment.media_type,
                    attachment.data,
                    with_ids=[f.id for f in staged],
                )
            )
        except StagingLimitError:
            flash(limit_text(), "error")
            break
    return staged


def _sign(form: ComposeForm, identity: Identity, *, above_quote: bool) -> None:
    """Put the identity's signature in the starting text (and in the HTML, if any)."""
    form.identity.data = identity.address
    form.body.data = with_text_signature(
        form.body.data or "", identity.signature, above_quote=above_quote
    )
    if form.format.data == "html":
        form.html_body.data = with_html_signature(
            form.html_body.data or "", identity.signature, above_quote=above_quote
        )


def _fill_from_message(
    form: ComposeForm, folder: str, uid: int, mode: str, identities: list[Identity]
) -> list[StagedFile]:
    original = _original(folder, uid)
    form.origin_folder.data, form.origin_uid.data, form.mode.data = folder, str(uid), mode
    is_reply = mode in ("reply", "all")
    identity = (
        replying_identity(original, folder, uid, identities) if is_reply else default_of(identities)
    )
    if mode == "attach":
        form.subject.data, form.format.data = prefixed(original.subject, FORWARD_PREFIX), "html"
        _sign(form, identity, above_quote=False)
        whole = imap(lambda c: original_as_attachment(c, folder, uid, original.subject))
        return _stage_all([whole])
    start = _prefill(original, mode, identities)
    form.to.data, form.cc.data, form.subject.data = start.to, start.cc, start.subject
    form.body.data, form.in_reply_to.data = start.body, start.in_reply_to
    form.references.data, form.html_body.data = start.references, start.html
    form.format.data = "html" if start.html else "plain"
    _sign(form, identity, above_quote=True)
    if mode != "forward" or not original.attachments:
        return []
    return _stage_all(imap(lambda client: original_attachments(client, folder, uid)))


def _fill_from_draft(
    form: ComposeForm, folder: str, uid: int, identities: list[Identity]
) -> list[StagedFile]:
    def read(client: IMAPClient) -> tuple[str, StoredDraft]:
        return drafts_folder(client), read_draft(client, folder, uid)

    try:
        drafts, stored = imap(read)
    except (MessageNotFoundError, NoDraftsFolderError):
        abort(404)
    for name in ("to", "cc", "bcc", "subject", "in_reply_to", "references"):
        getattr(form, name).data = getattr(stored, name)
    # Whatever is in Drafts may come from another client: cleaned before the editor shows it.
    form.body.data, form.html_body.data = stored.text, clean_compose_html(stored.html)
    form.format.data = "html" if stored.html else "plain"
    # Its text as saved (its signature is in it already), written as the same identity.
    form.identity.data = (find(identities, stored.sender) or default_of(identities)).address
    if stored.origin is not None:
        form.mode.data, form.origin_folder.data = stored.origin.mode, stored.origin.folder
        form.origin_uid.data = str(stored.origin.uid)
    staged = _stage_all(stored.attachments)
    # Only a draft of the Drafts folder is replaced (and removed once sent), and only
    # when all its attachments are here: else saving would lose the others.
    is_whole = len(staged) == len(stored.attachments)
    form.draft_uid.data = str(uid) if folder == drafts and is_whole else ""
    return staged


def _fill(form: ComposeForm, identities: list[Identity]) -> list[StagedFile]:
    """The form's starting values for a GET, and the attachments already staged."""
    folder, uid = request.args.get("folder", ""), request.args.get("uid", "")
    draft, mode = request.args.get("draft", ""), request.args.get("mode", "")
    if folder and draft.isdigit():
        return _fill_from_draft(form, folder, int(draft), identities)
    if folder and uid.isdigit() and mode in MODES:
        return _fill_from_message(form, folder, int(uid), mode, identities)
    form.to.data = request.args.get("to", "")
    form.format.data = "html"
    _sign(form, default_of(identities), above_quote=False)
    return []


def _parsed_fields(form: ComposeForm, *, strict: bool) -> dict[str, list[str]] | None:
    """The three address fields; strict sets errors, lenient keeps text as typed."""
    fields = {"to": form.to, "cc": form.cc, "bcc": form.bcc}
    parsed: dict[str, list[str]] = {}
    for name, field in fields.items():
        text = (field.data or "").replace("\n", " ").strip()
        try:
            parsed[name] = parse_addresses(text)
        except AddressError as exc:
            if not strict:
                parsed[name] = [text]
                continue
            field.errors = [_("“%(text)s” is not an email address.", text=exc.text)]
    return parsed if len(parsed) == len(fields) else None


def _bodies(form: ComposeForm) -> tuple[str, str]:
    """The text and the cleaned HTML (empty for a plain-text message)."""
    if form.format.data != "html":
        return form.body.data or "", ""
    cleaned = clean_compose_html(form.html_body.data or "")
    return html_to_text(cleaned), cleaned


def draft_of(form: ComposeForm, ids: list[str], *, strict: bool) -> Draft | None:
    """What the form holds, or ``None`` with the form's errors set (``strict``, to send)."""
    parsed = _parsed_fields(form, strict=strict)
    if parsed is None:
        return None
    area = staging()
    files = area.files(current_user.session_id, ids)
    if sum(f.size_bytes for f in files) > area.limit_bytes:
        # Each upload was checked; this catches files uploaded as if for separate messages.
        form.body.errors = [total_text()]
        return None
    attachments = [
        Attachment(f.name, f.media_type, area.read(current_user.session_id, f.id)) for f in files
    ]
    text, cleaned = _bodies(form)
    draft = Draft(
        to=parsed["to"],
        cc=parsed["cc"],
        bcc=parsed["bcc"],
        subject=(form.subject.data or "").replace("\n", " ").strip(),
        body=text,
        html=cleaned,
        attachments=attachments,
        in_reply_to=(form.in_reply_to.data or "").strip(),
        references=(form.references.data or "").strip(),
    )
    if strict and not draft.recipients:
        form.to.errors = [_("Give at least one recipient.")]
        return None
    if strict and len(draft.recipients) > MAX_RECIPIENTS_COUNT:
        form.to.errors = [_("At most %(count)s recipients.", count=MAX_RECIPIENTS_COUNT)]
        return None
    return draft


def keep_draft(form: ComposeForm, ids: list[str]) -> int | None:
    """Save the form in Drafts in place of its previous version; the new UID.

    ``None`` with the form's errors set when the attachments exceed the limit.

    Raises:
        NoDraftsFolderError: the mailbox has no Drafts folder.
    """
    draft = draft_of(form, ids, strict=False)
    identity = posted_identity(form.identity, person_identities(), strict=False)
    if draft is None or identity is None:
        return None
    message = build_message(draft, sender_of(identity), _domain(), keep_bcc=True)
    origin_uid = form.origin_uid.data or ""
    if form.mode.data in ("reply", "all") and origin_uid.isdigit():
        origin = Origin(form.mode.data, form.origin_folder.data or INBOX, int(origin_uid))
        message[ORIGIN_HEADER] = origin.header()
    previous = form.draft_uid.data or ""
    uid = imap(lambda c: save_draft(c, message, int(previous) if previous.isdigit() else None))
    form.draft_uid.data = str(uid)
    return uid


def _after_sending(form: ComposeForm, message: EmailMessage, ids: list[str]) -> None:
    origin_uid = form.origin_uid.data or ""
    is_reply = form.mode.data in ("reply", "all") and origin_uid.isdigit()
    draft_uid = form.draft_uid.data or ""

    def file_copy(client: IMAPClient) -> None:
        save_sent_copy(client, message)
        if draft_uid.isdigit():
            # The folder went away meanwhile: nothing to remove.
            with contextlib.suppress(NoDraftsFolderError):
                delete_draft(client, int(draft_uid))
        if is_reply:
            try:
                client.select_folder(form.origin_folder.data or INBOX)
            except IMAPClient.Error:
                return  # the original's folder went away meanwhile: nothing to mark
            client.add_flags([int(origin_uid)], [ANSWERED], silent=True)

    imap(file_copy)
    staging().remove(current_user.session_id, ids)


def _stage_uploads(form: ComposeForm, ids: list[str]) -> list[str]:
    """Files sent with the form itself (no script in the browser): staged, ids added."""
    area = staging()
    for upload in request.files.getlist("files"):
        if not upload.filename:
            continue
        try:
            staged = area.add(
                current_user.session_id,
                upload.filename,
                upload.mimetype or "",
                upload.read(area.limit_bytes + 1),  # enough to know it is too big
                with_ids=ids,
            )
        except StagingLimitError:
            form.body.errors = [*form.body.errors, limit_text()]
            continue
        ids = [*ids, staged.id]
    return ids


def _send(form: ComposeForm, ids: list[str]) -> Response | None:
    identity = posted_identity(form.identity, person_identities(), strict=True)
    draft = draft_of(form, ids, strict=True)
    if draft is None or identity is None:
        return None
    message = build_message(draft, sender_of(identity), _domain())
    person = current_user.person
    try:
        submit(access(), person.login, message, draft.recipients, envelope_sender=person.email)
    except SubmissionRefusedError as exc:
        flash(_("Not sent: refused for %(who)s.", who=", ".join(exc.refused)), "error")
        return None
    _after_sending(form, message, ids)
    flash(_("Message sent."), "success")
    return redirect(url_for("mail.folder", folder=form.origin_folder.data or INBOX))


def _discard(form: ComposeForm, ids: list[str]) -> Response:
    staging().remove(current_user.session_id, ids)
    draft_uid = form.draft_uid.data or ""
    if draft_uid.isdigit():
        with contextlib.suppress(NoDraftsFolderError):
            imap(lambda client: delete_draft(client, int(draft_uid)))
    flash(_("Message discarded."), "success")
    return redirect(url_for("mail.folder", folder=form.origin_folder.data or INBOX))


def _post(form: ComposeForm) -> tuple[Response | None, list[str]]:
    ids = attached_ids()
    action = request.form.get("action", "send")
    if action == "discard":
        return _discard(form, ids), ids
    ids = _stage_uploads(form, ids)
    if form.body.errors:
        return None, ids
    if action == "draft":
        try:
            saved = keep_draft(form, ids)
        except NoDraftsFolderError:
            flash(_("There is no Drafts folder to save the draft in."), "error")
        else:
            if saved is not None:
                flash(_("Draft saved."), "success")
        return None, ids
    return _send(form, ids), ids


@bp.route("/compose", methods=["GET", "POST"])
@login_required
def compose() -> str | Response:
    """Write a message; send it, keep it as a draft, or discard it."""
    form, identities = ComposeForm(), person_identities()
    if request.method == "GET":
        staged = _fill(form, identities)
    elif form.validate_on_submit():
        done, ids = _post(form)
        if done is not None:
            return done
        staged = staging().files(current_user.session_id, ids)
    else:
        staged = staging().files(current_user.session_id, attached_ids())
    # The script starts the editor in this format and sets the field; without the
    # script the page posts plain text, whatever the message started as.
    start_format = "html" if form.format.data == "html" else "plain"
    form.format.data = "plain"
    # Posted HTML shown again (an error to correct) goes back into the editor cleaned.
    form.html_body.data = clean_compose_html(form.html_body.data or "")
    return render_template(
        "mail/compose.html",
        form=form,
        start_format=start_format,
        staged=staged,
        size_text=size_text,
        limit_bytes=staging().limit_bytes,
        identities=identities,
        identity_label=identity_label,
        signature_block=signature_block,
        signature_html=signature_html,
        signature_at="quote" if form.mode.data in QUOTING_MODES else "end",
    )
