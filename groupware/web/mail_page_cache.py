# SPDX-License-Identifier: GPL-3.0-or-later
"""Pages of the message list remembered while their folder is unchanged (no Flask here).

Listing a page costs a SELECT (the server reads every UID of the folder to number
the messages), a SORT and a FETCH. People page back and forth, reopen the inbox
after reading a message, and the page reloads itself: the answer is usually the
one given a moment ago. A server with CONDSTORE (RFC 7162) says in the folder
tree's LIST-STATUS whether anything changed: any arrival raises UIDNEXT, any flag
change or expunge raises HIGHESTMODSEQ. While ``(UIDVALIDITY, UIDNEXT, MESSAGES,
HIGHESTMODSEQ)`` is the same, the page is the same, so it is served without any
more IMAP. The state is the one read *before* the page was fetched: the page is at
least that fresh, and any later change moves the state on, so an entry can only
be reused for as long as nothing changed. Without CONDSTORE nothing is cached.
"""

from __future__ import annotations

from typing import Final

from imapclient import IMAPClient  # type: ignore[import-untyped]

from groupware.web.mail_folders import Folder, MessagePage, SortedUidsCache, message_page
from groupware.web.recent import RecentAnswers

#: Pages remembered by the process (one page of 50 lines is some 50 KB).
PAGE_CACHE_ENTRIES_COUNT: Final = 256


class PageCache(RecentAnswers[tuple[object, ...], MessagePage]):
    """Recent pages of the list, shared by the process's web sessions, keyed by login."""

    def __init__(self, max_entries_count: int = PAGE_CACHE_ENTRIES_COUNT) -> None:
        super().__init__(max_entries_count)


def listed_page(
    client: IMAPClient,
    folder: Folder,
    *,
    login: str,
    sort: str,
    is_reverse: bool,
    page: int,
    per_page: int,
    pages: PageCache,
    orders: SortedUidsCache,
) -> MessagePage:
    """A page of ``folder`` as the tree found it: remembered, or listed and remembered."""
    key = (login, folder.name, sort, is_reverse, page, per_page, folder.state)
    if folder.state is not None:
        found = pages.get(key)
        if found is not None:
            return found
    listed = message_page(
        client,
        folder.name,
        sort=sort,
        is_reverse=is_reverse,
        page=page,
        per_page=per_page,
        cache=(orders, login),
    )
    if folder.state is not None:
        pages.put(key, listed)
    return listed
