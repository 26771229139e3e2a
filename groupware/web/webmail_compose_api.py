# SPDX-License-Identifier: GPL-3.0-or-later
"""The compose page's JSON routes: autosave, attachment uploads, address completion.

The page's script (``static/mail-compose.js``) calls them with ``fetch`` and
``XMLHttpRequest``; every POST carries the page's CSRF token (checked by
``CSRFProtect`` before these run, as for forms). Autosave stores the form in
Drafts exactly as the "Save draft" button does and answers the new UID, which
the page keeps so the next save replaces that version. An upload is one file,
staged for the session within the size limit. Address completion looks in the
person's own address books (CardDAV addressbook-query through the DAV front as
the person, as the contacts pages do) and in the institutional directory (as the
agenda's attendee picker does), at least two characters, a bounded number of
answers. These routes belong to the ``mail`` blueprint.
"""

from __future__ import annotations

import email.utils
from typing import Final

from flask import jsonify, request
from flask_babel import format_time
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from groupware.web import contact_data
from groupware.web.agenda import client as dav_client
from groupware.web.contacts import DIRECTORY_MARK
from groupware.web.context import services
from groupware.web.dav_client import DavClientError
from groupware.web.mail_drafts import NoDraftsFolderError
from groupware.web.mail_sending import display_address
from groupware.web.mail_staging import StagingLimitError
from groupware.web.webmail import bp, size_text
from groupware.web.webmail_compose import (
    ComposeForm,
    attached_ids,
    keep_draft,
    limit_text,
    staging,
    total_text,
)

MIN_QUERY_CHARS: Final = 2
MAX_QUERY_CHARS: Final = 100
#: Most suggestions one completion answers (the dropdown shows them all).
MAX_SUGGESTIONS_COUNT: Final = 10
HTTP_BAD_REQUEST: Final = 400
HTTP_TOO_LARGE: Final = 413
HTTP_CONFLICT: Final = 409


@bp.route("/compose/autosave", methods=["POST"])
@login_required
def autosave() -> Response | tuple[Response, int]:
    """Keep the form in Drafts (replacing its previous version); answer the new UID."""
    form = ComposeForm()
    if not form.validate_on_submit():
        return jsonify({"error": _("The draft could not be saved.")}), HTTP_BAD_REQUEST
    try:
        uid = keep_draft(form, attached_ids())
    except NoDraftsFolderError:
        message = _("There is no Drafts folder to save the draft in.")
        return jsonify({"error": message}), HTTP_CONFLICT
    if uid is None:
        return jsonify({"error": total_text()}), HTTP_TOO_LARGE
    saved = _("Draft saved at %(time)s.", time=format_time(format="short"))
    return jsonify({"draft_uid": uid, "message": saved})


@bp.route("/compose/attachments", methods=["POST"])
@login_required
def upload() -> Response | tuple[Response, int]:
    """Stage one uploaded file for the message that already has ``attachment`` ids."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return jsonify({"error": _("Choose a file first.")}), HTTP_BAD_REQUEST
    area = staging()
    try:
        staged = area.add(
            current_user.session_id,
            upload.filename,
            upload.mimetype or "",
            upload.read(area.limit_bytes + 1),  # enough to know it is too big
            with_ids=attached_ids(),
        )
    except StagingLimitError:
        return jsonify({"error": limit_text()}), HTTP_TOO_LARGE
    return jsonify({"id": staged.id, "name": staged.name, "size": size_text(staged.size_bytes)})


@bp.route("/compose/attachments/<file_id>/remove", methods=["POST"])
@login_required
def remove_upload(file_id: str) -> Response:
    """Take a staged file off the message (and off the disk)."""
    staging().remove(current_user.session_id, [file_id])
    return jsonify({"removed": file_id})


def _formatted(name: str, address: str) -> str:
    return display_address(name, address)


def _personal(text: str) -> list[str]:
    """Addresses from the person's own address books whose name or address has ``text``."""
    dav = dav_client()
    found: list[str] = []
    try:
        books = [c for c in dav.collections() if c.kind == "addressbook"]
        books = [b for b in books if DIRECTORY_MARK not in b.segment]
        for book in books:
            cards = contact_data.read_all(dav.address_cards(book.path, text))
            for contact in contact_data.search(cards, text):
                found += [_formatted(contact.full_name, a) for a in contact.emails]
    except DavClientError:
        return found  # the address books cannot be read now: the directory still answers
    return found


def _directory(text: str) -> list[str]:
    people, _groups = services().core.directory.search(text, limit=MAX_SUGGESTIONS_COUNT)
    return [_formatted(p.display_name, p.email) for p in people if p.is_active and p.email]


@bp.route("/compose/addresses")
@login_required
def addresses() -> Response:
    """Suggestions for a To/Cc/Bcc field: ``["Name <address>", …]``, personal ones first."""
    text = request.args.get("q", "").strip()[:MAX_QUERY_CHARS]
    if len(text) < MIN_QUERY_CHARS:
        return jsonify([])
    seen: dict[str, str] = {}
    for suggestion in (*_personal(text), *_directory(text)):
        key = email.utils.parseaddr(suggestion)[1].lower()
        seen.setdefault(key, suggestion)
        if len(seen) >= MAX_SUGGESTIONS_COUNT:
            break
    return jsonify(list(seen.values()))
