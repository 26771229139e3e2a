# SPDX-License-Identifier: GPL-3.0-or-later
"""Webmail search pages: the quick search of a folder and the advanced search form.

Both are ``GET /mail/search``: the form's state is the URL's query string, so a
search can be bookmarked, shared between tabs and paged. The quick search box of
a folder sends ``folder`` and ``q``; the advanced form adds from, to, subject,
body, a date range (in the person's date format), label, attachment, unread and
flagged, over one folder or all of them (``folder`` empty). What the person typed
is checked here and worded in their language; the IMAP conversation is
``web.mail_search``.
"""

from __future__ import annotations

import datetime
from typing import Any, Final

from babel.dates import ParseError, parse_date
from flask import abort, render_template, request
from flask_babel import format_date, format_datetime, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from imapclient import IMAPClient  # type: ignore[import-untyped]

from groupware.web.context import services
from groupware.web.mail_folders import (
    DEFAULT_SORT,
    SORT_KEYS,
    Folder,
    FolderNotFoundError,
    find_folder,
)
from groupware.web.mail_search import (
    MAX_KEYWORD_CHARS,
    MAX_PER_FOLDER_COUNT,
    MAX_TEXT_CHARS,
    SearchPage,
    SearchQuery,
    search_all,
    searched_folders,
    searched_page,
)
from groupware.web.webmail import (
    INBOX,
    access,
    bp,
    folder_label,
    imap,
    session_tree,
    size_text,
    sort_labels,
)

#: The query-string names of the form's fields (the URL is the form's state).
TEXT_ARGS: Final = {
    "q": "text",
    "from": "sender",
    "to": "recipient",
    "subject": "subject",
    "body": "body",
    "label": "keyword",
}
CHECK_ARGS: Final = {"attachment": "has_attachment", "unread": "is_unread", "flagged": "is_flagged"}
DATE_ARGS: Final = {"since": "since", "before": "before"}
OTHER_ARGS: Final = ("folder", "all_specials", "sort", "order")
#: Dates before this are typing mistakes (and IMAP servers disagree about them).
FIRST_YEAR: Final = 1970
LAST_YEAR: Final = 9999
#: The day the date fields' hint is written with, in the person's format.
EXAMPLE_DAY: Final = datetime.date(2026, 3, 31)


def field_labels() -> dict[str, Any]:
    """The form's fields as its labels name them (error messages name them too)."""
    return {
        "text": _l("Search"),
        "sender": _l("From"),
        "recipient": _l("To"),
        "subject": _l("Subject"),
        "body": _l("Message text"),
        "keyword": _l("Label"),
        "since": _l("Sent since"),
        "before": _l("Sent before"),
    }


def _reason_text(name: str, reason: str) -> str:
    label = field_labels()[name]
    if reason == "too-long":
        return _("%(field)s: at most %(count)s characters.", field=label, count=MAX_TEXT_CHARS)
    if reason == "control":
        return _("%(field)s: line breaks and control characters cannot be searched.", field=label)
    if reason == "keyword":
        return _(
            "%(field)s: one word without spaces or brackets, at most %(count)s characters.",
            field=label,
            count=MAX_KEYWORD_CHARS,
        )
    return _("“Sent before” must be a later day than “Sent since”.")


def date_hint() -> str:
    """How a date is written in the person's language (the fields' placeholder)."""
    return str(format_date(EXAMPLE_DAY, "short"))


def _parsed_date(name: str, value: str, errors: list[str]) -> datetime.date | None:
    """The day typed in the person's format (ISO too), or None with a message."""
    if not value:
        return None
    try:
        day = parse_date(value, locale=get_locale(), format="short")
    except (ParseError, ValueError, IndexError):
        day = None
    if day is None or not FIRST_YEAR <= day.year <= LAST_YEAR:
        errors.append(
            _(
                "%(field)s: “%(value)s” is not a date; write it as %(example)s.",
                field=field_labels()[name],
                value=value,
                example=date_hint(),
            )
        )
        return None
    return day


def query_from_args() -> tuple[SearchQuery, list[str], dict[str, str]]:
    """The search the URL asks for, the problems with it, and the URL's fields kept.

    The kept fields are the non-empty ones, for the pager and sort links.
    """
    args = request.args
    kept = {name: args.get(name, "").strip() for name in (*TEXT_ARGS, *DATE_ARGS)}
    kept.update({name: "1" for name in CHECK_ARGS if args.get(name)})
    kept.update({name: args.get(name, "") for name in OTHER_ARGS})
    kept = {name: value for name, value in kept.items() if value}
    errors: list[str] = []
    values: dict[str, Any] = {attr: kept.get(name, "") for name, attr in TEXT_ARGS.items()}
    values.update({attr: name in kept for name, attr in CHECK_ARGS.items()})
    for name, attr in DATE_ARGS.items():
        values[attr] = _parsed_date(attr, kept.get(name, ""), errors)
    query = SearchQuery(**values)
    errors += [_reason_text(name, reason) for name, reason in query.problems()]
    return query, errors, kept


def _sort_arguments(kept: dict[str, str]) -> tuple[str, bool, int]:
    sort = kept.get("sort", DEFAULT_SORT)
    if sort not in SORT_KEYS:
        sort = DEFAULT_SORT
    is_reverse = kept.get("order", "desc") != "asc"
    page = request.args.get("page", 1, type=int) or 1
    return sort, is_reverse, page


@bp.route("/search")
@login_required
def search() -> tuple[str, int]:
    """The search form and, when something is asked, one page of what the server found."""
    query, errors, kept = query_from_args()
    sort, is_reverse, page = _sort_arguments(kept)
    per_page = services().core.config.webmail.messages_per_page_count
    folder_name = kept.get("folder", "")
    is_run = not errors and not query.is_empty
    login = current_user.person.login

    def run(client: IMAPClient) -> tuple[list[Folder], Folder | None, SearchPage | None]:
        tree = session_tree(client, folder_name or INBOX)
        current = find_folder(tree, folder_name) if folder_name else None
        if not is_run:
            return tree, current, None
        if current is not None:
            found = searched_page(
                client,
                current,
                query,
                login=login,
                sort=sort,
                is_reverse=is_reverse,
                page=page,
                per_page=per_page,
                cache=access().searches,
            )
        else:
            folders = searched_folders(tree, with_trash_and_junk=bool(kept.get("all_specials")))
            found = search_all(client, folders, query, page=page, per_page=per_page)
        return tree, current, found

    try:
        tree, current, results = imap(run)
    except FolderNotFoundError:
        abort(404)
    page_text = render_template(
        "mail/search.html",
        tree=tree,
        current=current,
        results=results,
        errors=errors,
        kept=kept,
        by_name={f.name: f for f in tree},
        folder_label=folder_label,
        size_text=size_text,
        format_datetime=format_datetime,
        sort_labels=sort_labels(),
        field_labels=field_labels(),
        date_hint=date_hint(),
        max_text_chars=MAX_TEXT_CHARS,
        max_per_folder=MAX_PER_FOLDER_COUNT,
    )
    return page_text, 400 if errors else 200
