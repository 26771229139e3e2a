# SPDX-License-Identifier: GPL-3.0-or-later
"""Webmail pages for one message: reading pane, HTML frame, attachments, source.

The HTML body is never part of the portal's page. It is its own document
(``…/<uid>/body``), loaded in ``<iframe sandbox="allow-popups
allow-popups-to-escape-sandbox">`` and served with a Content-Security-Policy of
its own whose ``sandbox`` directive applies even when it is opened directly:

- no script can run (neither ``allow-scripts`` nor ``script-src``), and the
  document has an opaque origin, so it could read nothing of the portal anyway;
- ``img-src data:`` only (the message's ``cid:`` images are inlined as data:
  URLs), plus ``https: http:`` once the person asked to see remote images of
  this message;
- ``style-src 'unsafe-inline'``, needed by the style attributes mail layouts
  use: the sanitizer keeps no property that takes a URL, and this policy lets
  no stylesheet, font or image load from elsewhere, so styles cannot leak;
- no form can be sent, no base URL set, and only the portal may frame it.

Attachments are downloaded (``Content-Disposition: attachment``) under a
sandboxing policy too, so a hostile file opened in the browser runs nothing.
These routes belong to the ``mail`` blueprint of ``web.webmail``.
"""

from __future__ import annotations

import io
import re
from typing import Final

from flask import abort, render_template, request, send_file
from flask_babel import format_datetime, get_locale
from flask_login import login_required
from imapclient import IMAPClient  # type: ignore[import-untyped]
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from groupware.web import CONTENT_SECURITY_POLICY
from groupware.web.mail_folders import Folder, FolderNotFoundError, find_folder
from groupware.web.mail_html import CleanedHtml, clean_html, frame_document
from groupware.web.mail_reading import (
    MessageNotFoundError,
    OpenedMessage,
    fetch_part,
    header_block,
    open_message,
    raw_source,
)
from groupware.web.mail_structure import header_fields
from groupware.web.webmail import bp, folder_label, imap, session_tree, size_text
from groupware.web.webmail import folder as folder_page
from groupware.web.webmail_invitations import invitation_context
from groupware.web.webmail_senders import image_choice

SECTION: Final = re.compile(r"^[1-9][0-9]{0,3}(\.[1-9][0-9]{0,3}){0,9}$")
#: The reading page may frame its own message bodies, nothing else.
READING_POLICY: Final = CONTENT_SECURITY_POLICY + "; frame-src 'self'"
FRAME_POLICY: Final = (
    "default-src 'none'; img-src data:{remote}; style-src 'unsafe-inline'; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'self'; "
    "sandbox allow-popups allow-popups-to-escape-sandbox"
)
DOWNLOAD_POLICY: Final = "default-src 'none'; sandbox"
FALLBACK_NAME: Final = "attachment"


def _show_images() -> bool:
    return request.args.get("images") == "1"


def _opened(folder: str, uid: int, *, mark_seen: bool) -> tuple[list[Folder], OpenedMessage]:
    def read(client: IMAPClient) -> tuple[list[Folder], OpenedMessage]:
        # Opened first (an unknown folder holds no message), so that the tree's
        # counts already show it read.
        opened = open_message(client, folder, uid, mark_seen=mark_seen)
        tree = session_tree(client, folder)
        find_folder(tree, folder)
        return tree, opened

    try:
        return imap(read)
    except (FolderNotFoundError, MessageNotFoundError):
        abort(404)


def _cleaned(message: OpenedMessage, *, show_images: bool) -> CleanedHtml | None:
    if message.html is None:
        return None
    return clean_html(
        message.html, inline_images=message.inline_images, show_remote_images=show_images
    )


@bp.route("/<path:folder>/<int:uid>")
@login_required
def message(folder: str, uid: int) -> Response:
    """The reading pane: headers, body (framed HTML or text), attachments; marks it read.

    ``/mail/Projets/2026`` may also name the folder ``Projets/2026``: when there is
    no such message, the folder by that name is shown if it exists (else 404).
    """
    try:
        tree, opened = _opened(folder, uid, mark_seen=True)
    except NotFound:
        return Response(folder_page(f"{folder}/{uid}"), mimetype="text/html")
    current = find_folder(tree, folder)
    choice = image_choice(opened)
    show_images = _show_images() or choice.shows_images
    cleaned = _cleaned(opened, show_images=show_images)
    wants_text = request.args.get("view") == "text" and opened.text is not None
    page = render_template(
        "mail/message.html",
        **invitation_context(opened),
        tree=tree,
        current=current,
        message=opened,
        show_html=cleaned is not None and not wants_text,
        blocked_images_count=cleaned.blocked_images_count if cleaned else 0,
        show_images=show_images,
        image_choice=choice,
        folder_label=folder_label,
        size_text=size_text,
        format_datetime=format_datetime,
        targets=[f for f in tree if f.is_selectable and f.name != current.name],
    )
    response = Response(page, mimetype="text/html")
    response.headers["Content-Security-Policy"] = READING_POLICY
    return response


@bp.route("/<path:folder>/<int:uid>/body")
@login_required
def body(folder: str, uid: int) -> Response:
    """The sanitized HTML body, as the sandboxed frame's own document."""
    try:
        opened = imap(lambda client: open_message(client, folder, uid, mark_seen=False))
    except MessageNotFoundError:
        abort(404)
    cleaned = _cleaned(opened, show_images=_show_images())
    if cleaned is None:
        abort(404)
    document = frame_document(cleaned.html, str(get_locale() or "fr"))
    response = Response(document, mimetype="text/html")
    remote = " https: http:" if _show_images() else ""
    response.headers["Content-Security-Policy"] = FRAME_POLICY.format(remote=remote)
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def download_name(name: str, section: str) -> str:
    """A file name safe on every system: no path, no control character, not empty."""
    name = re.sub(r"[\x00-\x1f\x7f/\\:*?\"<>|]+", "_", name).strip(" ._")
    return name[:150] or f"{FALLBACK_NAME}-{section}"


@bp.route("/<path:folder>/<int:uid>/part/<section>")
@login_required
def part(folder: str, uid: int, section: str) -> Response:
    """Download one part of a message, decoded, always as an attachment."""
    if not SECTION.match(section):
        abort(404)

    def read(client: IMAPClient) -> tuple[str, str, bytes]:
        found, data = fetch_part(client, folder, uid, section)
        return found.filename, found.mime, data

    try:
        name, mime, data = imap(read)
    except MessageNotFoundError:
        abort(404)
    response = send_file(
        io.BytesIO(data),
        mimetype=mime if "/" in mime else "application/octet-stream",
        as_attachment=True,
        download_name=download_name(name, section),
        max_age=0,
    )
    response.headers["Content-Security-Policy"] = DOWNLOAD_POLICY
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/<path:folder>/<int:uid>/headers")
@login_required
def headers(folder: str, uid: int) -> Response:
    """Every header of the message, decoded, in order (beside the raw source)."""
    try:
        block = imap(lambda client: header_block(client, folder, uid))
    except MessageNotFoundError:
        abort(404)
    page = render_template("mail/headers.html", fields=header_fields(block), folder=folder, uid=uid)
    response = Response(page, mimetype="text/html")
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/<path:folder>/<int:uid>/source")
@login_required
def source(folder: str, uid: int) -> Response:
    """The raw message, as plain text (headers included), for the curious and support."""

    try:
        data = imap(lambda client: raw_source(client, folder, uid))
    except MessageNotFoundError:
        abort(404)
    response = Response(data, mimetype="text/plain")
    response.headers["Content-Type"] = "text/plain; charset=utf-8"
    response.headers["Content-Security-Policy"] = DOWNLOAD_POLICY
    response.headers["Cache-Control"] = "private, no-store"
    return response
