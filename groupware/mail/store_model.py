# SPDX-License-Identifier: GPL-3.0-or-later
"""The mail store's values: names, errors, and what its reads return.

Split out of ``mail.store`` so that the store's parts (``store_mailboxes``,
``store_append``, ``store_read``, ``store_sync``, ``store_update``) and its callers
share them without importing the :class:`~groupware.mail.store.MailStore` class;
``mail.store`` re-exports every public name here, which is where callers import them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from groupware.errors import GroupwareError

INBOX: Final = "INBOX"
MAX_UID: Final = 4_294_967_295
DELIMITER: Final = "/"
SYSTEM_FLAGS: Final = frozenset({"\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"})
# RFC 6154 special-use folders, named in the account's language.
SPECIAL_FOLDERS: Final = {
    "fr": (
        ("Brouillons", "\\Drafts"),
        ("Envoyés", "\\Sent"),
        ("Indésirables", "\\Junk"),
        ("Corbeille", "\\Trash"),
        ("Archives", "\\Archive"),
    ),
    "en": (
        ("Drafts", "\\Drafts"),
        ("Sent", "\\Sent"),
        ("Junk", "\\Junk"),
        ("Trash", "\\Trash"),
        ("Archive", "\\Archive"),
    ),
}
SPECIAL_USES: Final = frozenset(use for folders in SPECIAL_FOLDERS.values() for _n, use in folders)


class QuotaExceededError(GroupwareError):
    """The message would take the person over their quota."""

    def __init__(self, login: str, used_bytes: int, limit_bytes: int) -> None:
        super().__init__(f"quota exceeded for {login}: {used_bytes} of {limit_bytes} bytes used")
        self.login = login
        self.used_bytes = used_bytes
        self.limit_bytes = limit_bytes


class MailboxNameError(GroupwareError):
    """A mailbox name that cannot be used (empty level, reserved, too long)."""


@dataclass(frozen=True, slots=True)
class Mailbox:
    """A folder of one person."""

    id: int
    person_id: int
    name: str
    special_use: str
    uidvalidity: int
    uid_next: int
    highest_modseq: int
    is_subscribed: bool


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """What the index knows of one message in a mailbox."""

    uid: int
    modseq: int
    flags: frozenset[str]
    internal_date: datetime
    size: int
    blob_id: int
    blob_path: str
    is_recent: bool


@dataclass(slots=True)
class IndexRow:
    """Index data of one message, with only the fields a command asked for.

    :meth:`MailStore.rows` reads the columns named in its ``fields``; the other
    attributes keep their defaults. The ``*_imap`` bytes are None for blobs indexed
    before those columns existed: the reader renders from ``envelope``/``structure``.
    """

    uid: int
    blob_id: int
    modseq: int = 0
    flags: frozenset[str] = frozenset()
    internal_date: datetime | None = None
    size: int = 0
    blob_path: str = ""
    envelope: str | None = None  # JSON
    structure: str | None = None  # JSON, see mail.mime.Part.to_json
    envelope_imap: bytes | None = None
    body_imap: bytes | None = None
    bodystructure_imap: bytes | None = None
    sent_date: datetime | None = None
    subject_sort: str = ""
    from_sort: str = ""
    to_sort: str = ""
    cc_sort: str = ""
    message_id: str = ""
    thread_refs: str | None = None  # None: indexed before the column existed


INDEX_FIELDS: Final = frozenset(
    {
        *("modseq", "flags", "internal_date", "size", "blob_path", "envelope", "structure"),
        *("envelope_imap", "body_imap", "bodystructure_imap", "sent_date"),
        *("subject_sort", "from_sort", "to_sort", "cc_sort", "message_id", "thread_refs"),
    }
)


@dataclass(frozen=True, slots=True)
class Changes:
    """What changed in a mailbox since a mod-sequence (:meth:`MailStore.changed_flags`).

    Attributes:
        messages: changed or new messages (UID, MODSEQ, flags), in UID order.
        expunged: UIDs expunged since.
        highest_modseq: the mod-sequence both lists are complete up to.
        recent: the UIDs whose \\Recent this caller took (``take_recent_after``).
    """

    messages: list[IndexRow]
    expunged: list[int]
    highest_modseq: int
    recent: list[int]


@dataclass(frozen=True, slots=True)
class MailboxView:
    """What SELECT announces, read in one go (RFC 3501 §6.3.1).

    Attributes:
        mailbox: the mailbox, read after the messages (its UIDNEXT is above them all).
        known_modseq: HIGHESTMODSEQ read before the messages: a change between the two
            reads is announced by the next refresh instead of being lost.
        uids: every UID, ascending.
        keywords: the keywords in use.
        first_unseen: the sequence number of the first message without \\Seen, or None.
        recent: the UIDs with \\Recent for this session.
    """

    mailbox: Mailbox
    known_modseq: int
    uids: list[int]
    keywords: frozenset[str]
    first_unseen: int | None
    recent: frozenset[int]


@dataclass(frozen=True, slots=True)
class BlobIn:
    """Prefilter: the message's blob is one of ``blob_ids`` (a full-text match)."""

    blob_ids: frozenset[int]


@dataclass(frozen=True, slots=True)
class HeaderContains:
    """Prefilter: some SEARCH header field may contain ``value`` (``text.header_text``)."""

    value: str


@dataclass(frozen=True, slots=True)
class AnyOf:
    """Prefilter: any of the parts."""

    parts: tuple[Prefilter, ...]


@dataclass(frozen=True, slots=True)
class AllOf:
    """Prefilter: all of the parts."""

    parts: tuple[Prefilter, ...]


# A condition every match of a search satisfies, cheap in SQL: :meth:`MailStore.rows`
# returns a superset of the matches, which the searcher then tests exactly.
Prefilter = BlobIn | HeaderContains | AnyOf | AllOf


def normalize_flags(flags: Iterable[str]) -> frozenset[str]:
    """System flags in their canonical case; keywords as given; \\Recent dropped."""
    canonical = {flag.lower(): flag for flag in SYSTEM_FLAGS}
    found = set()
    for flag in flags:
        if flag.startswith("\\"):
            known = canonical.get(flag.lower())
            if known:
                found.add(known)
        elif flag:
            found.add(flag)
    return frozenset(found)


def flags_text(flags: Iterable[str]) -> str:
    return " ".join(sorted(flags))


def flags_set(value: str) -> frozenset[str]:
    return frozenset(value.split()) if value else frozenset()


def check_mailbox_name(name: str) -> str:
    """The canonical form of a mailbox name (INBOX in upper case).

    Raises:
        MailboxNameError: empty levels, leading/trailing delimiter, control characters.
    """
    if name.upper() == INBOX:
        return INBOX
    if name.upper().startswith(INBOX + DELIMITER):
        name = INBOX + name[len(INBOX) :]
    if not name or len(name) > 500 or any(ord(ch) < 32 or ch == "\x7f" for ch in name):
        raise MailboxNameError(f"invalid mailbox name {name!r}")
    if any(not level for level in name.split(DELIMITER)) or "*" in name or "%" in name:
        raise MailboxNameError(f"invalid mailbox name {name!r}")
    return name


def mailbox_from_row(row: Any) -> Mailbox:
    return Mailbox(
        id=row.id,
        person_id=row.person_id,
        name=row.name,
        special_use=row.special_use,
        uidvalidity=row.uidvalidity,
        uid_next=row.uid_next,
        highest_modseq=row.highest_modseq,
        is_subscribed=row.is_subscribed,
    )


def aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
