# SPDX-License-Identifier: GPL-3.0-or-later
"""The message list grouped by conversation: one ``UID THREAD`` and one FETCH a page.

The server threads the folder (RFC 5256 THREAD=REFERENCES); the answer is a tree of
UIDs per conversation. Conversations are ordered by their newest message, read as
the highest UID: UIDs rise with arrival (RFC 3501 §2.3.1.1), so this needs no dates
and no second command. The threads of a folder are remembered like its sorted UIDs
(``SortedUidsCache``, same key on SELECT's UIDVALIDITY/UIDNEXT/EXISTS), so paging
costs SELECT and one FETCH of just the page's messages. No Flask here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from imapclient import IMAPClient  # type: ignore[import-untyped]

from groupware.web.mail_folders import (
    PAGE_FIELDS,
    SortedUidsCache,
    Summary,
    state_key,
    summary_of,
)

THREAD_ALGORITHM: Final = "REFERENCES"
THREAD_CAPABILITY: Final = "THREAD=" + THREAD_ALGORITHM


@dataclass(frozen=True, slots=True)
class ThreadEntry:
    """One message of a conversation, at its depth in the reply tree."""

    summary: Summary
    depth: int


@dataclass(frozen=True, slots=True)
class Conversation:
    """One conversation of the list: its messages in thread order."""

    entries: list[ThreadEntry]

    @property
    def newest(self) -> Summary:
        """The most recently arrived message (the highest UID)."""
        return max((e.summary for e in self.entries), key=lambda s: s.uid)

    @property
    def first(self) -> Summary:
        """The message that started it (the first in thread order)."""
        return self.entries[0].summary

    @property
    def uids(self) -> list[int]:
        """All its UIDs, for actions on the whole conversation."""
        return [e.summary.uid for e in self.entries]

    @property
    def unseen_count(self) -> int:
        """How many of its messages are unread."""
        return sum(1 for e in self.entries if not e.summary.is_seen)


@dataclass(frozen=True, slots=True)
class ThreadPage:
    """One page of conversations."""

    conversations: list[Conversation]
    total: int  # conversations in the folder
    page: int
    pages: int


def can_thread(client: IMAPClient) -> bool:
    """The server threads by references (else the list offers no conversation view)."""
    return bool(client.has_capability(THREAD_CAPABILITY))


def flatten(node: Any, depth: int = 0) -> list[tuple[int, int]]:
    """``(uid, depth)`` in thread order from imapclient's nested tuples.

    ``(3, 6, (4, 23), (44, 7))`` is 3, its child 6, whose children are the branches
    4→23 and 44→7. A branch starting with a tuple is a missing parent (RFC 5256 §4):
    its branches are siblings at that depth.
    """
    out: list[tuple[int, int]] = []
    level = depth
    for part in node:
        if isinstance(part, tuple | list):
            out.extend(flatten(part, level))
        else:
            out.append((int(part), level))
            level += 1
    return out


def folder_threads(client: IMAPClient) -> list[list[tuple[int, int]]]:
    """Every conversation of the selected folder, newest first."""
    answer = client.thread(algorithm=THREAD_ALGORITHM, criteria="ALL", charset="UTF-8")
    threads = [flatten(thread) for thread in answer]
    threads = [t for t in threads if t]
    threads.sort(key=lambda t: max(uid for uid, _depth in t), reverse=True)
    return threads


def thread_page(
    client: IMAPClient,
    folder: str,
    *,
    page: int,
    per_page: int,
    cache: tuple[SortedUidsCache, str] | None = None,
) -> ThreadPage:
    """One page of ``per_page`` conversations: one THREAD (unless cached), one FETCH."""
    selected = client.select_folder(folder, readonly=True)
    state = state_key(selected)
    key = (cache[1], folder, "threads", state) if cache and state else None
    threads = cache[0].get(key) if cache and key else None
    if threads is None:
        threads = folder_threads(client)
        if cache and key:
            cache[0].put(key, threads)
    pages = max(1, math.ceil(len(threads) / per_page))
    page = min(max(page, 1), pages)
    shown = threads[(page - 1) * per_page : page * per_page]
    uids = [uid for thread in shown for uid, _depth in thread]
    fetched = client.fetch(uids, PAGE_FIELDS) if uids else {}
    conversations = [_conversation(thread, fetched) for thread in shown]
    return ThreadPage([c for c in conversations if c.entries], len(threads), page, pages)


def _conversation(thread: Sequence[tuple[int, int]], fetched: dict[int, Any]) -> Conversation:
    entries = [
        ThreadEntry(summary_of(uid, fetched[uid]), depth) for uid, depth in thread if uid in fetched
    ]
    return Conversation(entries)
