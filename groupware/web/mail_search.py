# SPDX-License-Identifier: GPL-3.0-or-later
"""The webmail's search conversations over IMAP (no Flask here).

A search is answered by the server, never by reading messages in the portal:

- one folder: one ``UID SORT`` (RFC 5256) with the search keys (RFC 3501 §6.4.4),
  CHARSET UTF-8, then ONE ``UID FETCH`` of the page's UIDs, as the folder list
  does (``web.mail_folders``); a server without SORT gets ``UID SEARCH`` and the
  UIDs in arrival order;
- all folders: the same per selectable folder (Trash and Junk only when asked),
  each bounded to its newest :data:`MAX_PER_FOLDER_COUNT` matches, merged by date.

The quick search is ``OR OR FROM x SUBJECT x BODY x``. "Has an attachment" has no
IMAP key: it is asked as ``KEYWORD $HasAttachment`` (the keyword Dovecot sets with
``mail_attachment_detection_options = add-flags``) or a Content-Type that carries
attachments (``multipart/mixed``, a lone ``application/...`` part), as Roundcube
does; any server answers that from the headers.

Every value the person typed that is not a plain word or address is sent as an
IMAP literal (``{n}`` then the bytes, RFC 3501 §4.3): imapclient quotes only values
with spaces, quotes or backslashes and would send ``(`` or ``*`` bare, so a literal
is the one form that needs no escaping. Control characters are refused before
(``SearchQuery.problems``).
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Final

from imapclient import IMAPClient  # type: ignore[import-untyped]
from imapclient.imapclient import _literal  # type: ignore[import-untyped]

from groupware.web.mail_folders import (
    DEFAULT_SORT,
    PAGE_FIELDS,
    SORT_KEYS,
    Folder,
    MessagePage,
    Summary,
    summary_of,
)
from groupware.web.recent import RecentAnswers

#: Longest text a search field accepts (a search string, not a document).
MAX_TEXT_CHARS: Final = 200
#: Longest keyword (IMAP flag-keyword) a label search accepts.
MAX_KEYWORD_CHARS: Final = 64
#: An all-folders search keeps the newest this many matches of each folder.
MAX_PER_FOLDER_COUNT: Final = 200
#: Folders an all-folders search skips unless asked.
SKIPPED_SPECIALS: Final = frozenset({"trash", "junk"})
#: Search pages remembered by the process (a page of 50 matches is some 50 KB).
SEARCH_CACHE_ENTRIES_COUNT: Final = 256
HAS_ATTACHMENT_KEYWORD: Final = "$HasAttachment"
#: Content-Type values (substrings) of messages that carry attachments.
ATTACHMENT_CONTENT_TYPES: Final = ("multipart/mixed", "application/")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
#: flag-keyword = atom (RFC 3501 §9): no space, control, ( ) { % * " \ ].
_KEYWORD: Final = re.compile(r"[!#&'+,\-./0-9:;<=>?@A-Z^_`a-z|~$\[]+")
#: Values sent as they are: letters, digits and what addresses hold, all ASCII.
_PLAIN_ATOM: Final = re.compile(r"[A-Za-z0-9@._+\-]+")
_TEXT_FIELDS: Final = ("text", "sender", "recipient", "subject", "body")


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """What the person asks for; empty strings and None mean "any"."""

    text: str = ""  # the quick search: sender, subject or body
    sender: str = ""
    recipient: str = ""
    subject: str = ""
    body: str = ""
    since: datetime.date | None = None
    before: datetime.date | None = None
    keyword: str = ""
    has_attachment: bool = False
    is_unread: bool = False
    is_flagged: bool = False

    @property
    def is_empty(self) -> bool:
        """Whether nothing narrows the search (then it is not run)."""
        return not any(getattr(self, f.name) for f in fields(self))

    def problems(self) -> list[tuple[str, str]]:
        """``(field, reason)`` for every value the server must not be sent.

        Reasons are ``too-long``, ``control``, ``keyword`` and ``date-order``; the
        web layer words them in the person's language.
        """
        found = []
        for name in _TEXT_FIELDS:
            value = getattr(self, name)
            if len(value) > MAX_TEXT_CHARS:
                found.append((name, "too-long"))
            elif _CONTROL.search(value):
                found.append((name, "control"))
        if self.keyword and (
            len(self.keyword) > MAX_KEYWORD_CHARS or not _KEYWORD.fullmatch(self.keyword)
        ):
            found.append(("keyword", "keyword"))
        if self.since and self.before and self.since >= self.before:
            found.append(("before", "date-order"))
        return found


def imap_string(value: str) -> str | bytes:
    """``value`` as a plain atom when that is safe, else as a literal (see the module doc).

    A literal costs a round trip on a server without LITERAL+ (RFC 7888); plain
    words and addresses need none.
    """
    if _PLAIN_ATOM.fullmatch(value):
        return value
    return _literal(value.encode("utf-8"))  # type: ignore[no-any-return]


def criteria(query: SearchQuery) -> list[Any]:
    """The search keys of ``query``, flat (prefix ``OR``), for imapclient's search/sort.

    Flat, because imapclient encodes nested lists as US-ASCII whatever the charset.
    Cheap keys (flags, dates) come first: a server that tests keys in order, as ours
    does, then reads headers only for the messages that passed them.
    """
    keys: list[Any] = []
    if query.is_unread:
        keys.append("UNSEEN")
    if query.is_flagged:
        keys.append("FLAGGED")
    if query.keyword:
        keys += ["KEYWORD", query.keyword]
    if query.since:
        keys += ["SENTSINCE", query.since]
    if query.before:
        keys += ["SENTBEFORE", query.before]
    if query.text:
        quick = imap_string(query.text)
        keys += ["OR", "OR", "FROM", quick, "SUBJECT", quick, "BODY", quick]
    for key, value in (
        ("FROM", query.sender),
        ("TO", query.recipient),
        ("SUBJECT", query.subject),
        ("BODY", query.body),
    ):
        if value:
            keys += [key, imap_string(value)]
    if query.has_attachment:
        keys += ["OR", "KEYWORD", HAS_ATTACHMENT_KEYWORD]
        for content_type in ATTACHMENT_CONTENT_TYPES[:-1]:
            keys += ["OR", "HEADER", "Content-Type", content_type]
        keys += ["HEADER", "Content-Type", ATTACHMENT_CONTENT_TYPES[-1]]
    return keys or ["ALL"]


@dataclass(frozen=True, slots=True)
class Found:
    """One message a search found, with what the list shows beside it."""

    summary: Summary
    folder: str  # the IMAP name
    keywords: tuple[str, ...]  # its IMAP keywords (labels), system flags left out


@dataclass(frozen=True, slots=True)
class FolderCount:
    """How many messages one folder of an all-folders search matched."""

    folder: str
    total: int
    is_cut: bool  # more than MAX_PER_FOLDER_COUNT: only the newest are listed


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of results (one folder, or all folders merged by date)."""

    found: list[Found]
    page: MessagePage  # total, page, pages, sort, order (its summaries are found's)
    counts: list[FolderCount]  # all folders only: one per folder searched


def matching_uids(
    client: IMAPClient, keys: Sequence[Any], sort: str, is_reverse: bool
) -> list[int]:
    """The selected folder's UIDs matching ``keys``, in the asked order (one command)."""
    key = SORT_KEYS.get(sort, SORT_KEYS[DEFAULT_SORT])
    if client.has_capability("SORT"):
        order = [f"REVERSE {key}" if is_reverse else key]
        return [int(uid) for uid in client.sort(order, list(keys), charset="UTF-8")]
    uids = sorted(int(uid) for uid in client.search(list(keys), charset="UTF-8"))
    return uids[::-1] if is_reverse else uids


def _found(client: IMAPClient, folder: str, uids: Sequence[int]) -> list[Found]:
    """One FETCH for ``uids`` of the selected ``folder``, in the order given."""
    fetched = client.fetch(list(uids), PAGE_FIELDS) if uids else {}
    return [
        Found(summary_of(uid, fetched[uid]), folder, keywords_of(fetched[uid]))
        for uid in uids
        if uid in fetched
    ]


def keywords_of(data: dict[bytes, Any]) -> tuple[str, ...]:
    """The keywords among a FETCH response's FLAGS (system flags start with ``\\``)."""
    found = []
    for flag in data.get(b"FLAGS", ()):
        name = flag.decode("utf-8", "replace") if isinstance(flag, bytes) else str(flag)
        if not name.startswith("\\"):
            found.append(name)
    return tuple(sorted(found, key=str.casefold))


def _paged(total: int, page: int, per_page: int) -> tuple[int, int, slice]:
    pages = max(1, math.ceil(total / per_page))
    page = min(max(page, 1), pages)
    return page, pages, slice((page - 1) * per_page, page * per_page)


def search_folder(
    client: IMAPClient,
    folder: str,
    query: SearchQuery,
    *,
    sort: str,
    is_reverse: bool,
    page: int,
    per_page: int,
) -> SearchPage:
    """One page of ``folder``'s matches: one SORT, then one FETCH of that page."""
    client.select_folder(folder, readonly=True)
    uids = matching_uids(client, criteria(query), sort, is_reverse)
    page, pages, window = _paged(len(uids), page, per_page)
    found = _found(client, folder, uids[window])
    listing = MessagePage([f.summary for f in found], len(uids), page, pages, sort, is_reverse)
    return SearchPage(found, listing, [])


class SearchCache(RecentAnswers[tuple[object, ...], SearchPage]):
    """Recent pages of searches of one folder, shared by the process's web sessions.

    Keyed by login, folder, query, order and page, and by the folder's CONDSTORE
    state (UIDVALIDITY, UIDNEXT, MESSAGES, HIGHESTMODSEQ) as the page's STATUS just
    gave it: any arrival, expunge or flag change moves it on, so a page is the one
    the server would give now. The same search again (paging back, the result list
    after reading a message, another tab) then costs no SORT.
    """

    def __init__(self, max_entries_count: int = SEARCH_CACHE_ENTRIES_COUNT) -> None:
        super().__init__(max_entries_count)


def searched_page(
    client: IMAPClient,
    folder: Folder,
    query: SearchQuery,
    *,
    login: str,
    sort: str,
    is_reverse: bool,
    page: int,
    per_page: int,
    cache: SearchCache,
) -> SearchPage:
    """:func:`search_folder`, remembered while ``folder.state`` (fresh) is unchanged."""
    key = (login, folder.name, query, sort, is_reverse, page, per_page, folder.state)
    if folder.state is not None:
        found = cache.get(key)
        if found is not None:
            return found
    searched = search_folder(
        client, folder.name, query, sort=sort, is_reverse=is_reverse, page=page, per_page=per_page
    )
    if folder.state is not None:
        cache.put(key, searched)
    return searched


def searched_folders(tree: Sequence[Folder], *, with_trash_and_junk: bool) -> list[Folder]:
    """The folders an all-folders search goes through, in tree order."""
    return [
        f
        for f in tree
        if f.is_selectable
        and f.total > 0
        and (with_trash_and_junk or f.special not in SKIPPED_SPECIALS)
    ]


def _newest_first(found: Found) -> tuple[bool, datetime.datetime]:
    moment = found.summary.date
    if moment is None:
        return (False, datetime.datetime.min.replace(tzinfo=datetime.UTC))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return (True, moment)


def search_all(
    client: IMAPClient,
    folders: Sequence[Folder],
    query: SearchQuery,
    *,
    page: int,
    per_page: int,
) -> SearchPage:
    """A page of the matches of every folder, newest first.

    Per folder: one SORT by date, then one FETCH of its newest
    :data:`MAX_PER_FOLDER_COUNT` matches (what the page can be merged from without
    knowing the dates of the others); the pages are cut from the merged list.
    """
    keys = criteria(query)
    merged: list[Found] = []
    counts: list[FolderCount] = []
    for folder in folders:
        client.select_folder(folder.name, readonly=True)
        uids = matching_uids(client, keys, "date", True)
        if not uids:
            continue
        kept = uids[:MAX_PER_FOLDER_COUNT]
        merged += _found(client, folder.name, kept)
        counts.append(FolderCount(folder.name, len(uids), len(uids) > len(kept)))
    merged.sort(key=_newest_first, reverse=True)
    page, pages, window = _paged(len(merged), page, per_page)
    shown = merged[window]
    listing = MessagePage([f.summary for f in shown], len(merged), page, pages, "date", True)
    return SearchPage(shown, listing, counts)
