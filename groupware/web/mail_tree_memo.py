# SPDX-License-Identifier: GPL-3.0-or-later
"""Each web session's folder tree, reused for a while; the open folder is always asked.

The tree is one LIST with the STATUS of every folder (``web.mail_folders``): on every
page of the list it cost our IMAP server and the portal more than the page itself
when the page cache answered. As Roundcube does (its folder counts refresh every
minute), the tree of a connection is kept ``TREE_MAX_AGE_SECONDS``, and each page
asks only the folder it shows for its counts and CONDSTORE state: the list, its
unread count and the page cache's key are exact on every page; the counts of the
other folders are at most that old. Any change the session makes (every POST of
the webmail, see ``webmail.imap``) drops its tree, so what the person did shows at
once; what other clients do to other folders shows within that time.

No Flask here: keyed by the pooled imapclient connection itself (weakly: a
connection the pool closes takes its tree with it).
"""

from __future__ import annotations

import dataclasses
import threading
import time
import weakref
from collections.abc import Callable
from typing import Final

from imapclient import IMAPClient  # type: ignore[import-untyped]

from groupware.web.mail_folders import Folder, counted_status, folder_tree

#: How long a session's folder tree is reused (Roundcube refreshes every 60 s).
TREE_MAX_AGE_SECONDS: Final = 30.0


class TreeMemo:
    """The folder tree of each IMAP connection, with its open folder asked afresh."""

    def __init__(
        self,
        max_age_seconds: float = TREE_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_age_seconds = max_age_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._trees: weakref.WeakKeyDictionary[IMAPClient, tuple[float, list[Folder]]] = (
            weakref.WeakKeyDictionary()
        )

    def tree(self, client: IMAPClient, current: str) -> list[Folder]:
        """The tree, with the folder ``current`` as the server has it now.

        Read in full when none is kept, when it is older than the limit, or when it
        does not know ``current`` as a selectable folder (a folder made elsewhere, or
        a wrong name: the full tree then says which).
        """
        with self._lock:
            kept = self._trees.get(client)
        now = self._clock()
        if kept is not None and now - kept[0] <= self._max_age_seconds:
            at, tree = kept
            index = next(
                (i for i, f in enumerate(tree) if f.name == current and f.is_selectable), None
            )
            if index is not None:
                total, unseen, state = counted_status(client, current)
                fresh = dataclasses.replace(tree[index], total=total, unseen=unseen, state=state)
                tree = [*tree[:index], fresh, *tree[index + 1 :]]
                with self._lock:
                    self._trees[client] = (at, tree)
                return tree
        tree = folder_tree(client)
        with self._lock:
            self._trees[client] = (now, tree)
        return tree

    def forget(self, client: IMAPClient) -> None:
        """Drop the tree of ``client`` (its session changed something)."""
        with self._lock:
            self._trees.pop(client, None)
