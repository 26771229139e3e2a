# SPDX-License-Identifier: GPL-3.0-or-later
"""Webmail pages: the folder tree, a folder's message list and its actions.

Everything goes over IMAP as the signed-in person, through the web session's
pooled connection (``web.mail_access``); the IMAP conversations themselves are in
``web.mail_folders``. The folder is the URL path
(``/mail/INBOX``, ``/mail/Projets/2026``), a message adds its UID
(``/mail/INBOX/42``). Changes are CSRF-protected POSTs that redirect back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Final, TypeVar

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import get_locale, get_timezone
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from imapclient import IMAPClient  # type: ignore[import-untyped]
from markupsafe import Markup
from werkzeug.wrappers import Response

from groupware.core.mail_preferences import DisplaySettings
from groupware.web.context import services
from groupware.web.formatting import (
    FORMATTED_ENTRIES_COUNT,
    datetime_text,
    decimal_text,
    remembered_url_for,
)
from groupware.web.mail_access import MailAccess, MailBusyError, MailUnavailableError
from groupware.web.mail_folders import (
    DEFAULT_SORT,
    SORT_KEYS,
    Action,
    Folder,
    FolderNotFoundError,
    MessagePage,
    apply_action,
    find_folder,
    folder_tree,
)
from groupware.web.mail_page_cache import listed_page
from groupware.web.mail_staging import staging_for
from groupware.web.mail_threads import can_thread, thread_page

log = logging.getLogger(__name__)

bp = Blueprint("mail", __name__, url_prefix="/mail")

T = TypeVar("T")
INBOX: Final = "INBOX"
#: Most messages one action may name (a page is far fewer; this bounds the request).
MAX_SELECTED_COUNT: Final = 1000
KILO: Final = 1000  # SI units, as mail clients show sizes
#: How long the browser shows a 503 before a retry makes sense.
RETRY_AFTER_SECONDS: Final = 30
#: Requests that change nothing: they may use the session's kept folder tree.
_READING_METHODS: Final = frozenset({"GET", "HEAD"})


def special_labels() -> dict[str, Any]:
    """The special folders' names in the person's language, whatever the server calls them."""
    return {
        "inbox": _l("Inbox"),
        "drafts": _l("Drafts"),
        "sent": _l("Sent"),
        "archive": _l("Archive"),
        "junk": _l("Junk"),
        "trash": _l("Trash"),
    }


def sort_labels() -> dict[str, Any]:
    """The list's sort orders, as its column headers name them."""
    return {"date": _l("Date"), "from": _l("From"), "subject": _l("Subject"), "size": _l("Size")}


def size_text(size_bytes: int) -> str:
    """A message or attachment size as people read it (kB up to a megabyte, then MB)."""
    return _size_text(size_bytes, str(get_locale()))


@lru_cache(maxsize=FORMATTED_ENTRIES_COUNT)
def _size_text(size_bytes: int, locale: str) -> str:
    # ``locale`` is the request's: it keys the cache, gettext uses it.
    if size_bytes < KILO * KILO:
        return _("%(size)s kB", size=decimal_text(max(1, round(size_bytes / KILO))))
    return _("%(size)s MB", size=decimal_text(round(size_bytes / KILO / KILO, 1)))


def display_settings() -> DisplaySettings:
    """The person's page size and reading pane, read once per request."""
    if "mail_display" not in g:
        g.mail_display = services().core.mail_preferences.display(current_user.person)
    found: DisplaySettings = g.mail_display
    return found


def folder_label(folder: Folder) -> str:
    """How the tree names a folder: special ones translated, others by their last segment."""
    if folder.special and folder.depth == 0:
        return _special_label(folder.special, str(get_locale()))
    return folder.leaf


@lru_cache(maxsize=FORMATTED_ENTRIES_COUNT)
def _special_label(special: str, locale: str) -> str:
    # ``locale`` is the request's: it keys the cache (a page names each folder
    # several times: tree, title, move menu), gettext uses it.
    return str(special_labels()[special])


def access() -> MailAccess:
    """The process's IMAP access (503 when the portal was built without one)."""
    found = services().mail
    if found is None:
        raise MailUnavailableError("the portal runs without webmail")
    return found


def imap(operation: Callable[[IMAPClient], T]) -> T:
    """Run ``operation`` on the web session's IMAP connection, as the signed-in person.

    A request that may change something (any but GET and HEAD) drops the session's
    kept folder tree (``web.mail_tree_memo``), before and after, so that the next
    page shows the change in every folder's counts.
    """
    if request.method in _READING_METHODS:
        return access().run(current_user.session_id, current_user.person.login, operation)

    def changing(client: IMAPClient) -> T:
        access().trees.forget(client)
        try:
            return operation(client)
        finally:
            access().trees.forget(client)

    return access().run(current_user.session_id, current_user.person.login, changing)


def session_tree(client: IMAPClient, current: str) -> list[Folder]:
    """The folder tree for a page showing ``current``: kept a while, ``current`` fresh."""
    return access().trees.tree(client, current)


def forget_session(session_id: int) -> None:
    """Log out the IMAP connection of a web session that ends (sign-out); drop its uploads."""
    found = services().mail
    if found is not None:
        found.pool.discard(session_id)
    staging_for(services().core.config).discard_session(session_id)


@bp.errorhandler(MailUnavailableError)
@bp.errorhandler(MailBusyError)
def _unavailable(exc: Exception) -> tuple[str, int, dict[str, str]]:
    log.warning("webmail.unavailable reason=%s", exc)
    page = render_template("mail/unavailable.html")
    return page, 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}


@bp.errorhandler(IMAPClient.Error)
def _refused(exc: Exception) -> tuple[str, int]:
    # The server said NO or BAD: log it (never shown: it may name internals).
    log.warning("webmail.imap.refused error=%s", exc.__class__.__name__)
    return render_template("mail/unavailable.html"), 502


@bp.route("/")
@login_required
def index() -> Response:
    """The mailbox opens on the inbox (or on ``?folder=``, the phone's folder menu)."""
    return redirect(url_for("mail.folder", folder=request.args.get("folder") or INBOX))


def _list_arguments() -> tuple[str, bool, int]:
    sort = request.args.get("sort", DEFAULT_SORT)
    if sort not in SORT_KEYS:
        sort = DEFAULT_SORT
    is_reverse = request.args.get("order", "desc") != "asc"
    page = request.args.get("page", 1, type=int) or 1
    return sort, is_reverse, page


@bp.route("/<path:folder>")
@login_required
def folder(folder: str) -> str:
    """A folder's message list beside the folder tree (``?threads=1``: by conversation)."""
    sort, is_reverse, page = _list_arguments()
    wants_threads = request.args.get("threads") == "1"
    # The person's choice (settings page), else webmail.messages_per_page_count.
    per_page = display_settings().messages_per_page
    cache = (access().sorted_uids, current_user.person.login)

    def read(client: IMAPClient) -> tuple[list[Folder], Folder, Any, Any, bool]:
        tree = session_tree(client, folder)
        current = find_folder(tree, folder)
        threading = can_thread(client)
        if wants_threads and threading:
            threads = thread_page(client, current.name, page=page, per_page=per_page, cache=cache)
            listing = MessagePage([], threads.total, threads.page, threads.pages, "date", True)
            return tree, current, listing, threads, threading
        listing = listed_page(
            client,
            current,
            login=current_user.person.login,
            sort=sort,
            is_reverse=is_reverse,
            page=page,
            per_page=per_page,
            pages=access().pages,
            orders=access().sorted_uids,
        )
        return tree, current, listing, None, threading

    try:
        tree, current, listing, threads, threading = imap(read)
    except FolderNotFoundError:
        abort(404)

    def page_url(number: int) -> str:
        if threads is not None:
            return remembered_url_for("mail.folder", folder=current.name, threads=1, page=number)
        order = "desc" if listing.is_reverse else "asc"
        return remembered_url_for(
            "mail.folder", folder=current.name, sort=sort, order=order, page=number
        )

    return render_template(
        "mail/folder.html",
        tree=tree,
        current=current,
        listing=listing,
        threads=threads,
        rows=_rows(current, listing, threads),
        can_thread=threading,
        confirm_empty=request.args.get("empty") == "1",
        page_url=page_url,
        folder_label=folder_label,
        size_text=size_text,
        format_datetime=datetime_text,
        sort_labels=sort_labels(),
        targets=[f for f in tree if f.is_selectable and f.name != current.name],
    )


def _rows(current: Folder, listing: MessagePage, threads: Any) -> Markup:
    """The list's rows, rendered once per page of the page cache, language and labels.

    A page the cache gives again is the same object, so the rows made from it are
    the same too while the person's language, time zone and labels are: they are
    reused (about half of the page's rendering). The entry keeps the page itself,
    so a new object at a reused ``id`` is never taken for it.
    """

    def render() -> Markup:
        return Markup(  # noqa: S704 - our own autoescaped template's output
            render_template(
                "mail/_list_rows.html",
                current=current,
                listing=listing,
                threads=threads,
                size_text=size_text,
                format_datetime=datetime_text,
            )
        )

    if threads is not None:
        return render()
    from groupware.web.webmail_settings import person_labels  # it imports this module

    labels = tuple((lb.keyword, lb.name, lb.colour) for lb in person_labels())
    key = (id(listing), current.name, str(get_locale()), str(get_timezone()), labels)
    found = access().rows.get(key)
    if found is not None and found[0] is listing:
        return found[1]
    rows = render()
    access().rows.put(key, (listing, rows))
    return rows


def _selected_uids() -> list[int]:
    """The ticked messages: ``uid`` boxes, and ``thread`` boxes (a conversation's UIDs)."""
    values = request.form.getlist("uid")
    for thread in request.form.getlist("thread"):
        values.extend(thread.split(","))
    if len(values) > MAX_SELECTED_COUNT or not all(v.isdigit() for v in values):
        abort(400)
    return sorted({int(v) for v in values if int(v) > 0})


@bp.route("/<path:folder>/actions", methods=["POST"])
@login_required
def act(folder: str) -> Response:
    """Mark, flag, move or delete the messages ticked in the list."""
    try:
        action = Action(request.form.get("action", ""))
    except ValueError:
        abort(400)
    uids = _selected_uids()
    back = request.form.get("back", "")
    if not back.startswith("/mail/") or back.startswith("//"):
        back = url_for("mail.folder", folder=folder)
    if not uids:
        flash(_("Select at least one message first."), "error")
        return redirect(back)
    target_name = request.form.get("target", "")

    def change(client: IMAPClient) -> None:
        tree = folder_tree(client)
        current = find_folder(tree, folder)
        target = find_folder(tree, target_name) if action is Action.MOVE else None
        apply_action(client, tree, current, uids, action, target)

    try:
        imap(change)
    except FolderNotFoundError:
        abort(404)
    flash(_action_done(action, len(uids)), "success")
    return redirect(back)


def _action_done(action: Action, count: int) -> str:
    """The confirmation shown after an action."""
    texts = {
        Action.READ: _("Marked as read: %(count)s.", count=count),
        Action.UNREAD: _("Marked as unread: %(count)s.", count=count),
        Action.FLAG: _("Flagged: %(count)s.", count=count),
        Action.UNFLAG: _("Flag removed: %(count)s.", count=count),
        Action.MOVE: _("Moved: %(count)s.", count=count),
        Action.DELETE: _("Deleted: %(count)s.", count=count),
    }
    return texts[action]
