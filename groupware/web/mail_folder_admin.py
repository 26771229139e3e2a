# SPDX-License-Identifier: GPL-3.0-or-later
"""Creating, renaming, moving and deleting folders, and emptying Trash (no Flask here).

Plain IMAP, as the rest of the webmail: CREATE, RENAME (a move under another parent is
a RENAME too, RFC 3501 §6.3.5, and takes the subfolders along), DELETE, SUBSCRIBE and
UNSUBSCRIBE (RFC 3501 §6.3.3-§6.3.7); emptying is one ``UID STORE +FLAGS (\\Deleted)``
and one ``UID EXPUNGE`` (RFC 4315) of the folder's UIDs.

Names are checked here, before the server sees them, so that a person reads why a
name is refused instead of a server's NO. Special folders and INBOX are never renamed,
moved or deleted: other clients (phones, Thunderbird) find them by their name or
SPECIAL-USE attribute, and a server may refuse anyway.

Subscriptions follow the folders: a new folder is subscribed (clients that show only
subscribed folders see it), a renamed one is subscribed under its new name and no
longer under the old one, and a deleted one is unsubscribed. Servers differ (ours
keeps a subscription with its folder, Dovecot keeps subscriptions by name): both end
in the same state.
"""

from __future__ import annotations

import contextlib
import enum
import unicodedata
from collections.abc import Sequence
from typing import Final

from imapclient import DELETED, IMAPClient  # type: ignore[import-untyped]

from groupware.web.mail_folders import Folder

#: Longest leaf a person may type (servers allow longer whole names; this keeps the tree readable).
MAX_LEAF_LENGTH: Final = 100
#: Characters an IMAP LIST pattern gives a meaning to (RFC 3501 §6.3.8): never in a name.
WILDCARDS: Final = frozenset("*%")
#: Folders whose messages "empty" deletes for good.
EMPTIABLE: Final = frozenset({"trash", "junk"})


class NameProblem(enum.Enum):
    """Why a folder name is refused (the view words each one)."""

    EMPTY = "empty"
    DELIMITER = "delimiter"
    WILDCARD = "wildcard"
    CONTROL = "control"
    TOO_LONG = "too-long"
    DUPLICATE = "duplicate"
    RESERVED = "reserved"


class FolderNameError(ValueError):
    """A folder name cannot be used, and why."""

    def __init__(self, problem: NameProblem, name: str, delimiter: str = "") -> None:
        super().__init__(f"{problem.value}: {name!r}")
        self.problem = problem
        self.name = name
        self.delimiter = delimiter


class FolderChangeError(ValueError):
    """A change the webmail refuses to make to this folder (special, INBOX, into itself)."""

    def __init__(self, reason: str, folder: str) -> None:
        super().__init__(f"{reason}: {folder!r}")
        self.reason = reason
        self.folder = folder


def is_protected(folder: Folder) -> bool:
    """INBOX and the special folders keep their name and place."""
    return bool(folder.special) or folder.name.upper() == "INBOX"


def descendants(folders: Sequence[Folder], folder: Folder) -> list[Folder]:
    """The folders under ``folder``, deepest first (the order they can be deleted in)."""
    if not folder.delimiter:
        return []
    prefix = folder.name + folder.delimiter
    under = [f for f in folders if f.name.startswith(prefix)]
    return sorted(under, key=lambda f: f.depth, reverse=True)


def check_leaf(leaf: str, delimiter: str) -> str:
    """The leaf a person typed, trimmed and NFC-normalised.

    Raises:
        FolderNameError: empty, too long, or with the delimiter, a wildcard or a
            control character in it.
    """
    leaf = unicodedata.normalize("NFC", leaf.strip())
    if not leaf:
        raise FolderNameError(NameProblem.EMPTY, leaf)
    if delimiter and delimiter in leaf:
        raise FolderNameError(NameProblem.DELIMITER, leaf, delimiter)
    if WILDCARDS & set(leaf):
        raise FolderNameError(NameProblem.WILDCARD, leaf)
    if any(unicodedata.category(ch).startswith("C") for ch in leaf):
        raise FolderNameError(NameProblem.CONTROL, leaf)
    if len(leaf) > MAX_LEAF_LENGTH:
        raise FolderNameError(NameProblem.TOO_LONG, leaf)
    return leaf


def full_name(folders: Sequence[Folder], parent: tuple[str, ...], leaf: str) -> str:
    """The IMAP name of ``leaf`` under the folder of name parts ``parent`` (``()``: the top).

    Raises:
        FolderNameError: a bad leaf, or a folder of that name exists already.
    """
    delimiter = _delimiter(folders)
    leaf = check_leaf(leaf, delimiter)
    if not parent and leaf.upper() == "INBOX":
        raise FolderNameError(NameProblem.RESERVED, leaf)
    if parent and not delimiter:
        raise FolderNameError(NameProblem.DELIMITER, leaf)
    name = delimiter.join([*parent, leaf])
    if any(f.name == name for f in folders):
        raise FolderNameError(NameProblem.DUPLICATE, leaf)
    return name


def _delimiter(folders: Sequence[Folder]) -> str:
    return next((f.delimiter for f in folders if f.delimiter), "")


def create_folder(
    client: IMAPClient, folders: Sequence[Folder], parent: Folder | None, leaf: str
) -> str:
    """CREATE the folder and SUBSCRIBE to it; its IMAP name."""
    name = full_name(folders, parent.parts if parent else (), leaf)
    client.create_folder(name)
    client.subscribe_folder(name)
    return name


def rename_folder(client: IMAPClient, folders: Sequence[Folder], folder: Folder, leaf: str) -> str:
    """RENAME ``folder`` to ``leaf`` where it is (see :func:`relocate_folder`)."""
    return _relocate(client, folders, folder, folder.parts[:-1], leaf)


def relocate_folder(
    client: IMAPClient,
    folders: Sequence[Folder],
    folder: Folder,
    parent: Folder | None,
    leaf: str,
) -> str:
    """RENAME ``folder`` to ``leaf`` under ``parent`` (None: the top).

    Its subfolders go with it (RFC 3501 §6.3.5); their subscriptions follow.

    Raises:
        FolderChangeError: a special folder or INBOX, or a move into itself.
        FolderNameError: the new name is unusable or taken.
    """
    if parent is not None and (parent == folder or parent in descendants(folders, folder)):
        raise FolderChangeError("into-itself", folder.name)
    return _relocate(client, folders, folder, parent.parts if parent else (), leaf)


def _relocate(
    client: IMAPClient,
    folders: Sequence[Folder],
    folder: Folder,
    parent: tuple[str, ...],
    leaf: str,
) -> str:
    if is_protected(folder):
        raise FolderChangeError("protected", folder.name)
    under = descendants(folders, folder)
    if parent == folder.parts[:-1] and check_leaf(leaf, folder.delimiter) == folder.leaf:
        return folder.name  # nothing to change
    new = full_name(folders, parent, leaf)
    subscribed = {str(name) for _flags, _delimiter, name in client.list_sub_folders()}
    client.rename_folder(folder.name, new)
    for old in [folder, *under]:
        renamed = new + old.name[len(folder.name) :]
        if old.name in subscribed:
            _unsubscribe(client, old.name)
            client.subscribe_folder(renamed)
    return new


def delete_folder(client: IMAPClient, folders: Sequence[Folder], folder: Folder) -> int:
    """DELETE ``folder`` and its subfolders, with their messages; how many folders went.

    Raises:
        FolderChangeError: it or a subfolder is INBOX or special.
    """
    under = descendants(folders, folder)
    if is_protected(folder) or any(is_protected(f) for f in under):
        raise FolderChangeError("protected", folder.name)
    for gone in [*under, folder]:
        client.delete_folder(gone.name)
        _unsubscribe(client, gone.name)
    return len(under) + 1


def _unsubscribe(client: IMAPClient, name: str) -> None:
    """UNSUBSCRIBE, where a NO means the subscription went with the folder already."""
    # Our server keeps a subscription with its folder row (renamed or deleted with it);
    # Dovecot keeps subscriptions by name, so there the old name must be dropped.
    with contextlib.suppress(IMAPClient.Error):
        client.unsubscribe_folder(name)


def empty_folder(client: IMAPClient, folder: Folder) -> int:
    """Delete for good every message of ``folder`` (Trash or Junk); how many went.

    Raises:
        FolderChangeError: it is not Trash or Junk.
    """
    if folder.special not in EMPTIABLE:
        raise FolderChangeError("not-emptiable", folder.name)
    client.select_folder(folder.name)
    uids = sorted(int(uid) for uid in client.search("ALL"))
    if not uids:
        return 0
    # The UIDs listed, not 1:*: a message moved here meanwhile was not confirmed.
    wanted = uid_ranges(uids)
    client.add_flags(wanted, [DELETED], silent=True)
    if client.has_capability("UIDPLUS"):
        client.uid_expunge(wanted)
    else:
        client.expunge()
    return len(uids)


def uid_ranges(uids: Sequence[int]) -> str:
    """Ascending UIDs as an IMAP sequence set (``1:4,9``): a short command line."""
    parts: list[str] = []
    start = previous = uids[0]
    for uid in [*uids[1:], None]:
        if uid is not None and uid == previous + 1:
            previous = uid
            continue
        parts.append(str(start) if start == previous else f"{start}:{previous}")
        if uid is not None:
            start = previous = uid
    return ",".join(parts)
