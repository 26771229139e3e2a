# SPDX-License-Identifier: GPL-3.0-or-later
"""The webmail's IMAP conversations for folders and message lists (no Flask here).

Each function takes a logged-in imapclient connection (from ``web.mail_access``)
and speaks plain IMAP, so they work against any server with the usual extensions:

- the folder tree is one LIST (special folders from the SPECIAL-USE attributes,
  RFC 6154) returning the counts too (LIST-STATUS, RFC 5819), or, on a server
  without it, one STATUS per folder (RFC 3501 §6.3.10);
- a page of the list is one SORT (RFC 5256; without it, SEARCH in UID order),
  then ONE ``UID FETCH`` of just that page's UIDs for ENVELOPE, FLAGS, RFC822.SIZE
  and BODYSTRUCTURE: no round trip per message;
- actions are one ``UID STORE``, ``UID MOVE`` (RFC 6851) or ``UID EXPUNGE``
  (RFC 4315) over the selected UIDs.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from imapclient import DELETED, FLAGGED, SEEN, IMAPClient  # type: ignore[import-untyped]
from imapclient.imap_utf7 import decode as decode_utf7  # type: ignore[import-untyped]
from imapclient.response_parser import parse_response  # type: ignore[import-untyped]

from groupware.web.mail_structure import Mailbox, has_attachments, header_text, mailboxes
from groupware.web.recent import RecentAnswers

#: SPECIAL-USE attribute → our name for the folder, in the order the tree shows them.
SPECIAL_USES: Final = {
    b"\\Drafts": "drafts",
    b"\\Sent": "sent",
    b"\\Archive": "archive",
    b"\\Junk": "junk",
    b"\\Trash": "trash",
}
SPECIAL_ORDER: Final = ("inbox", "drafts", "sent", "archive", "junk", "trash")
#: The list's sort orders and the SORT key of each (RFC 5256 §3).
SORT_KEYS: Final = {"date": "DATE", "from": "FROM", "subject": "SUBJECT", "size": "SIZE"}
DEFAULT_SORT: Final = "date"
PAGE_FIELDS: Final = ["ENVELOPE", "FLAGS", "RFC822.SIZE", "BODYSTRUCTURE"]
ANSWERED: Final = b"\\Answered"
#: Sorted folders remembered by the process (a 10,000-message folder is ~80 KB).
SORT_CACHE_ENTRIES_COUNT: Final = 256
NOSELECT: Final = frozenset({b"\\Noselect", b"\\NonExistent"})
#: STATUS items that tell whether a folder changed at all (CONDSTORE, RFC 7162).
STATE_ITEMS: Final = ("UIDVALIDITY", "UIDNEXT", "MESSAGES", "HIGHESTMODSEQ")
STATUS_COUNTS: Final = ("MESSAGES", "UNSEEN")
#: (MESSAGES, UNSEEN, state) of one folder.
Counted = tuple[int, int, tuple[int, int, int, int] | None]


class FolderNotFoundError(LookupError):
    """The folder named in the URL does not exist (or is not selectable)."""


@dataclass(frozen=True, slots=True)
class Folder:
    """One folder of the tree."""

    name: str  # the IMAP name (imapclient decodes modified UTF-7)
    parts: tuple[str, ...]  # the name split at the hierarchy delimiter
    special: str  # one of SPECIAL_ORDER, or ""
    is_selectable: bool
    total: int
    unseen: int
    delimiter: str = "/"  # the server's hierarchy delimiter ("" for a flat namespace)
    #: (UIDVALIDITY, UIDNEXT, MESSAGES, HIGHESTMODSEQ) when the server said (CONDSTORE).
    state: tuple[int, int, int, int] | None = None

    @property
    def depth(self) -> int:
        """How deep it is nested (0 at the top)."""
        return len(self.parts) - 1

    @property
    def leaf(self) -> str:
        """The last segment of its name."""
        return self.parts[-1]


def _special(name: str, flags: Sequence[bytes]) -> str:
    if name.upper() == "INBOX":
        return "inbox"
    for flag in flags:
        found = SPECIAL_USES.get(flag) or SPECIAL_USES.get(flag.capitalize())
        if found:
            return found
    return ""


def _tree_key(folder: Folder, rank_of_top: dict[str, int]) -> tuple[int, tuple[str, ...]]:
    """Special folders first (in SPECIAL_ORDER), children right under their parent."""
    rank = rank_of_top.get(folder.parts[0], len(SPECIAL_ORDER))
    return (rank, tuple(part.casefold() for part in folder.parts))


def folder_tree(client: IMAPClient) -> list[Folder]:
    """Every folder with its counts, in the order the tree shows them."""
    if client.has_capability("LIST-STATUS"):
        listed, counts = _list_with_status(client)
    else:
        listed = client.list_folders()
        counts = {}
    found: list[Folder] = []
    for flags, delimiter, raw_name in listed:
        name = str(raw_name)
        parts = tuple(name.split(delimiter.decode())) if delimiter else (name,)
        selectable = not (NOSELECT & {bytes(f) for f in flags})
        total = unseen = 0
        state = None
        if selectable:
            if name not in counts:
                counts[name] = counted_status(client, name)
            total, unseen, state = counts[name]
        special = _special(name, flags)
        shown_delimiter = delimiter.decode() if delimiter else ""
        found.append(
            Folder(name, parts, special, selectable, total, unseen, shown_delimiter, state)
        )
    rank_of_top = {
        f.parts[0]: SPECIAL_ORDER.index(f.special) for f in found if f.special and f.depth == 0
    }
    return sorted(found, key=lambda f: _tree_key(f, rank_of_top))


def _list_with_status(
    client: IMAPClient,
) -> tuple[list[tuple[Any, bytes, str]], dict[str, Counted]]:
    """LIST with ``RETURN (STATUS ...)`` (RFC 5819): the tree and its counts at once.

    imapclient has no call for it, so this goes one level down, to the imaplib
    connection imapclient wraps and to imapclient's own response parser; a folder
    the server gave no STATUS for is asked with STATUS by the caller.
    """
    connection = client._imap  # noqa: SLF001 - see the docstring
    # RFC 6154 lets a server leave special-use attributes out unless asked (Dovecot does).
    special = "SPECIAL-USE " if client.has_capability("SPECIAL-USE") else ""
    items = " ".join(_status_items(client))
    typ, data = connection._simple_command(  # noqa: SLF001
        "LIST", '""', '"*"', "RETURN", f"({special}STATUS ({items}))"
    )
    client._checkok("list", typ, data)  # noqa: SLF001
    _typ, listed = connection._untagged_response(typ, data, "LIST")  # noqa: SLF001
    statuses = connection.untagged_responses.pop("STATUS", [])
    counts: dict[str, Counted] = {}
    found = [item for item in statuses if item not in (b"", None)]
    parsed = parse_response(found) if found else ()
    for raw_name, values in zip(parsed[::2], parsed[1::2], strict=False):
        name = decode_utf7(raw_name) if isinstance(raw_name, bytes) else str(raw_name)
        pairs = dict(zip(values[::2], values[1::2], strict=False))
        counts[name] = _counted({bytes(k).decode(): v for k, v in pairs.items()})
    return client._proc_folder_list(listed), counts  # noqa: SLF001


def counted_status(client: IMAPClient, name: str) -> Counted:
    """(MESSAGES, UNSEEN, state) of one folder: one STATUS."""
    status = client.folder_status(name, list(_status_items(client)))
    return _counted({k.decode(): v for k, v in status.items()})


def _status_items(client: IMAPClient) -> tuple[str, ...]:
    """The counts, and the folder's state where the server keeps one (CONDSTORE)."""
    return (*STATE_ITEMS, "UNSEEN") if client.has_capability("CONDSTORE") else STATUS_COUNTS


def _counted(status: dict[str, Any]) -> Counted:
    """(MESSAGES, UNSEEN, state or None) from one STATUS answer."""
    total, unseen = int(status.get("MESSAGES", 0)), int(status.get("UNSEEN", 0))
    try:
        state = tuple(int(status[item]) for item in STATE_ITEMS)
    except (KeyError, TypeError, ValueError):
        return total, unseen, None
    return total, unseen, (state[0], state[1], state[2], state[3])


def special_folder(folders: Sequence[Folder], special: str) -> Folder | None:
    """The folder with that special use, if the server has one."""
    return next((f for f in folders if f.special == special), None)


def find_folder(folders: Sequence[Folder], name: str) -> Folder:
    """The selectable folder called ``name``.

    Raises:
        FolderNotFoundError: there is none.
    """
    for folder in folders:
        if folder.name == name and folder.is_selectable:
            return folder
    raise FolderNotFoundError(name)


@dataclass(frozen=True, slots=True)
class Summary:
    """One line of the message list."""

    uid: int
    subject: str
    sender: Mailbox | None
    recipients: list[Mailbox]
    date: datetime | None
    size_bytes: int
    is_seen: bool
    is_flagged: bool
    is_answered: bool
    has_attachments: bool
    keywords: tuple[str, ...] = ()  # the FLAGS that are not system flags (labels)


@dataclass(frozen=True, slots=True)
class MessagePage:
    """One page of a folder's list."""

    summaries: list[Summary]
    total: int
    page: int  # 1-based
    pages: int
    sort: str
    is_reverse: bool


def sorted_uids(client: IMAPClient, sort: str, is_reverse: bool) -> list[int]:
    """Every UID of the selected folder in the asked order (server-side SORT)."""
    key = SORT_KEYS.get(sort, SORT_KEYS[DEFAULT_SORT])
    if client.has_capability("SORT"):
        criteria = [f"REVERSE {key}" if is_reverse else key]
        return [int(uid) for uid in client.sort(criteria, "ALL", charset="UTF-8")]
    # Without SORT, arrival order (UIDs ascend with arrival, RFC 3501 §2.3.1.1).
    uids = sorted(int(uid) for uid in client.search("ALL"))
    return uids[::-1] if is_reverse else uids


def summary_of(uid: int, data: dict[bytes, Any]) -> Summary:
    """A list line from one FETCH response."""
    envelope = data[b"ENVELOPE"]
    flags = set(data.get(b"FLAGS", ()))
    senders = mailboxes(envelope.from_)
    structure = data.get(b"BODYSTRUCTURE")
    return Summary(
        uid=uid,
        subject=header_text(envelope.subject),
        sender=senders[0] if senders else None,
        recipients=mailboxes(envelope.to),
        date=envelope.date,
        size_bytes=int(data.get(b"RFC822.SIZE", 0)),
        is_seen=SEEN in flags,
        is_flagged=FLAGGED in flags,
        is_answered=ANSWERED in flags,
        has_attachments=bool(structure) and has_attachments(structure),
        # In the server's order (a set's would change from one process to the next).
        keywords=tuple(_text(f) for f in data.get(b"FLAGS", ()) if not _text(f).startswith("\\")),
    )


def _text(flag: bytes | str) -> str:
    return flag.decode("ascii", "replace") if isinstance(flag, bytes) else str(flag)


class SortedUidsCache(RecentAnswers[tuple[Any, ...], Any]):
    """Recent SORT answers, reused while the folder holds the same messages.

    A folder's messages never change (IMAP messages are immutable), so their
    order by date, sender, subject or size changes only when messages arrive or
    go. Any arrival raises UIDNEXT, and any expunge without an arrival lowers
    EXISTS: while ``(UIDVALIDITY, UIDNEXT, EXISTS)`` from SELECT is unchanged,
    the sorted UIDs are the same and paging needs no new SORT. Flags do not take
    part in these orders. Shared by the process's web sessions, keyed by login.
    Also holds the threads of ``web.mail_threads`` (their key says which).
    """

    def __init__(self, max_entries_count: int = SORT_CACHE_ENTRIES_COUNT) -> None:
        super().__init__(max_entries_count)


def state_key(selected: dict[bytes, Any]) -> tuple[int, int, int] | None:
    """What identifies a folder's messages for the cache: UIDVALIDITY, UIDNEXT, EXISTS."""
    try:
        return (
            int(selected[b"UIDVALIDITY"]),
            int(selected[b"UIDNEXT"]),
            int(selected[b"EXISTS"]),
        )
    except (KeyError, TypeError, ValueError):
        return None  # a server that does not say: sort every time


def message_page(
    client: IMAPClient,
    folder: str,
    *,
    sort: str,
    is_reverse: bool,
    page: int,
    per_page: int,
    cache: tuple[SortedUidsCache, str] | None = None,
) -> MessagePage:
    """One page of ``folder``: one SORT (unless ``cache`` knows it), then one FETCH.

    ``cache`` is the process's cache and the login it is used for.
    """
    selected = client.select_folder(folder, readonly=True)
    state = state_key(selected)
    key = (cache[1], folder, sort, is_reverse, state) if cache and state else None
    uids = cache[0].get(key) if cache and key else None
    if uids is None:
        uids = sorted_uids(client, sort, is_reverse)
        if cache and key:
            cache[0].put(key, uids)
    pages = max(1, math.ceil(len(uids) / per_page))
    page = min(max(page, 1), pages)
    shown = uids[(page - 1) * per_page : page * per_page]
    fetched = client.fetch(shown, PAGE_FIELDS) if shown else {}
    summaries = [summary_of(uid, fetched[uid]) for uid in shown if uid in fetched]
    return MessagePage(summaries, len(uids), page, pages, sort, is_reverse)


class Action(enum.Enum):
    """What the list's buttons do to the selected messages."""

    READ = "read"
    UNREAD = "unread"
    FLAG = "flag"
    UNFLAG = "unflag"
    MOVE = "move"
    DELETE = "delete"


def apply_action(
    client: IMAPClient,
    folders: Sequence[Folder],
    folder: Folder,
    uids: Sequence[int],
    action: Action,
    target: Folder | None = None,
) -> None:
    """Change the selected messages; a delete outside Trash is a move to Trash.

    Safe to repeat (the pool may rerun it on a fresh connection): flags are set,
    not toggled, and UIDs already moved or expunged are simply no longer there.
    """
    client.select_folder(folder.name)
    if action is Action.READ:
        client.add_flags(uids, [SEEN], silent=True)
    elif action is Action.UNREAD:
        client.remove_flags(uids, [SEEN], silent=True)
    elif action is Action.FLAG:
        client.add_flags(uids, [FLAGGED], silent=True)
    elif action is Action.UNFLAG:
        client.remove_flags(uids, [FLAGGED], silent=True)
    elif action is Action.MOVE:
        assert target is not None  # the view checked it
        _move(client, uids, target.name)
    else:
        trash = special_folder(folders, "trash")
        if trash is None or trash.name == folder.name:
            _expunge(client, uids)
        else:
            _move(client, uids, trash.name)


def _move(client: IMAPClient, uids: Sequence[int], target: str) -> None:
    if client.has_capability("MOVE"):
        client.move(uids, target)
        return
    client.copy(uids, target)
    _expunge(client, uids)


def _expunge(client: IMAPClient, uids: Sequence[int]) -> None:
    """Delete for good just these UIDs (UID EXPUNGE when the server has UIDPLUS)."""
    client.add_flags(uids, [DELETED], silent=True)
    if client.has_capability("UIDPLUS"):
        client.uid_expunge(uids)
    else:
        client.expunge()
