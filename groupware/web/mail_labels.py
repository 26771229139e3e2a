# SPDX-License-Identifier: GPL-3.0-or-later
"""The webmail's IMAP conversations for labels (no Flask here).

A label is an IMAP keyword (RFC 3501 §2.3.2): applying or removing it is one
``UID STORE +FLAGS.SILENT`` / ``-FLAGS.SILENT`` over the selected UIDs. Taking a
deleted label off every message is, per folder, one ``UID SEARCH KEYWORD`` and one
``UID STORE``. Showing labels needs no IMAP at all: the list's one FETCH already
returns FLAGS (``mail_folders.Summary.keywords``).
"""

from __future__ import annotations

from collections.abc import Sequence

from imapclient import IMAPClient  # type: ignore[import-untyped]

from groupware.web.mail_folders import Folder


def store_keyword(
    client: IMAPClient, folder: Folder, uids: Sequence[int], keyword: str, *, is_added: bool
) -> None:
    """Add ``keyword`` to, or remove it from, the messages ``uids`` of ``folder``.

    Safe to repeat (the pool may rerun it): keywords are set, not toggled.
    """
    client.select_folder(folder.name)
    if is_added:
        client.add_flags(uids, [keyword], silent=True)
    else:
        client.remove_flags(uids, [keyword], silent=True)


def remove_keyword_everywhere(client: IMAPClient, folders: Sequence[Folder], keyword: str) -> int:
    """Take ``keyword`` off every message of every folder; how many messages had it."""
    count = 0
    for folder in folders:
        if not folder.is_selectable or not folder.total:
            continue
        client.select_folder(folder.name)
        uids = client.search(["KEYWORD", keyword])
        if uids:
            client.remove_flags(uids, [keyword], silent=True)
            count += len(uids)
    return count
