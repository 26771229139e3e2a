# SPDX-License-Identifier: GPL-3.0-or-later
"""IMAP commands as values: one frozen dataclass per command (RFC 3501 §6).

Extensions covered: ENABLE (RFC 5161), ID (RFC 2971), SASL-IR (RFC 4959), UNSELECT
(RFC 3691), UIDPLUS ``UID EXPUNGE`` (RFC 4315), MULTIAPPEND (RFC 3502), BINARY
(RFC 3516), LIST-EXTENDED and LIST-STATUS (RFC 5258, RFC 5819), SPECIAL-USE
(RFC 6154), CONDSTORE/QRESYNC (RFC 7162), ESEARCH and SEARCHRES (RFC 4731,
RFC 5182), SORT/ESORT and THREAD (RFC 5256, RFC 5267), MOVE (RFC 6851), IDLE (RFC 2177) and
QUOTA (RFC 9208).

Every command carries the client's ``tag``; the ``UID`` prefix is the ``uid`` field of
the commands that take it. Mailbox names are text: ``INBOX`` in any case is
``"INBOX"``, other names are already decoded from modified UTF-7 (or taken as UTF-8
after ``ENABLE UTF8=ACCEPT``, see :mod:`groupware.mail.imap.parser`).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar

from groupware.mail.imap.fetch_attributes import FetchAttribute
from groupware.mail.imap.search_keys import SearchKey
from groupware.mail.imap.sequences import SequenceSet
from groupware.mail.imap.threads import ThreadAlgorithm


class StatusItem(StrEnum):
    """A STATUS data item (RFC 3501 §6.3.10, RFC 7162, RFC 8438, RFC 9051)."""

    MESSAGES = "MESSAGES"
    RECENT = "RECENT"
    UIDNEXT = "UIDNEXT"
    UIDVALIDITY = "UIDVALIDITY"
    UNSEEN = "UNSEEN"
    HIGHESTMODSEQ = "HIGHESTMODSEQ"
    SIZE = "SIZE"
    DELETED = "DELETED"


class StoreMode(StrEnum):
    """``FLAGS`` replaces, ``+FLAGS`` adds, ``-FLAGS`` removes."""

    REPLACE = "replace"
    ADD = "add"
    REMOVE = "remove"


class SearchReturn(StrEnum):
    """An ESEARCH return option (RFC 4731 §3.1, SAVE from RFC 5182)."""

    MIN = "MIN"
    MAX = "MAX"
    ALL = "ALL"
    COUNT = "COUNT"
    SAVE = "SAVE"


class SortKey(StrEnum):
    """A SORT key (RFC 5256 §3, DISPLAYFROM/DISPLAYTO from RFC 5957)."""

    ARRIVAL = "ARRIVAL"
    CC = "CC"
    DATE = "DATE"
    FROM = "FROM"
    SIZE = "SIZE"
    SUBJECT = "SUBJECT"
    TO = "TO"
    DISPLAYFROM = "DISPLAYFROM"
    DISPLAYTO = "DISPLAYTO"


@dataclass(frozen=True, slots=True)
class SortCriterion:
    """``[REVERSE] key``."""

    key: SortKey
    reverse: bool = False


@dataclass(frozen=True, slots=True)
class QresyncParams:
    """``QRESYNC (uidvalidity modseq [known-uids] [(seqs uids)])`` (RFC 7162 §3.2.5).

    Attributes:
        uid_validity: the UIDVALIDITY the client last knew.
        known_modseq: the last HIGHESTMODSEQ the client knew.
        known_uids: the UIDs the client knows (never ``*``), or None for all.
        sequence_match: ``(sequence numbers, their UIDs)`` the client remembers.
    """

    uid_validity: int
    known_modseq: int
    known_uids: SequenceSet | None = None
    sequence_match: tuple[SequenceSet, SequenceSet] | None = None


@dataclass(frozen=True, slots=True)
class ListSelectOptions:
    """LIST selection options (RFC 5258 §3.1; SPECIAL-USE from RFC 6154)."""

    subscribed: bool = False
    remote: bool = False
    recursive_match: bool = False
    special_use: bool = False


@dataclass(frozen=True, slots=True)
class ListReturnOptions:
    """LIST return options (RFC 5258 §3.2, STATUS from RFC 5819, SPECIAL-USE RFC 6154).

    Attributes:
        status: the STATUS items to send for each listed mailbox, or None.
    """

    subscribed: bool = False
    children: bool = False
    special_use: bool = False
    status: tuple[StatusItem, ...] | None = None


@dataclass(frozen=True, slots=True)
class AppendMessage:
    r"""One message of an APPEND (several with MULTIAPPEND, RFC 3502).

    Attributes:
        flags: flags to set, system flags in canonical case (``\Seen``).
        internal_date: the date-time given, or None for "now".
        data: the message octets.
        is_binary: sent as ``literal8`` (``~{n}``, RFC 3516) or ``UTF8 (~{n})``
            (RFC 6855 §4): may hold NUL and 8-bit headers.
    """

    flags: tuple[str, ...]
    internal_date: datetime.datetime | None
    data: bytes = field(repr=False)
    is_binary: bool = False


@dataclass(frozen=True, slots=True)
class Command:
    """Base of every command: the tag the response must echo."""

    name: ClassVar[str] = ""
    tag: str


# --- any state -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Capability(Command):
    """``CAPABILITY`` (RFC 3501 §6.1.1)."""

    name: ClassVar[str] = "CAPABILITY"


@dataclass(frozen=True, slots=True)
class Noop(Command):
    """``NOOP`` (RFC 3501 §6.1.2)."""

    name: ClassVar[str] = "NOOP"


@dataclass(frozen=True, slots=True)
class Logout(Command):
    """``LOGOUT`` (RFC 3501 §6.1.3)."""

    name: ClassVar[str] = "LOGOUT"


@dataclass(frozen=True, slots=True)
class Id(Command):
    """``ID (...)`` or ``ID NIL`` (RFC 2971); values may be None (``NIL``)."""

    name: ClassVar[str] = "ID"
    params: Mapping[str, str | None] | None = None


@dataclass(frozen=True, slots=True)
class Enable(Command):
    """``ENABLE cap...`` (RFC 5161); capability names upper-cased."""

    name: ClassVar[str] = "ENABLE"
    capabilities: tuple[str, ...] = ()


# --- not authenticated -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Starttls(Command):
    """``STARTTLS`` (RFC 3501 §6.2.1)."""

    name: ClassVar[str] = "STARTTLS"


@dataclass(frozen=True, slots=True)
class Authenticate(Command):
    """``AUTHENTICATE mech [initial-response]`` (RFC 3501 §6.2.2, SASL-IR RFC 4959).

    Attributes:
        mechanism: upper-cased SASL mechanism name.
        initial_response: the decoded initial response (``=`` is ``b""``), or None.
    """

    name: ClassVar[str] = "AUTHENTICATE"
    mechanism: str
    initial_response: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Login(Command):
    """``LOGIN userid password`` (RFC 3501 §6.2.3)."""

    name: ClassVar[str] = "LOGIN"
    userid: str
    password: str = field(repr=False)


# --- authenticated ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Select(Command):
    """``SELECT mailbox [(CONDSTORE | QRESYNC (...))]`` (RFC 3501 §6.3.1, RFC 7162)."""

    name: ClassVar[str] = "SELECT"
    mailbox: str
    condstore: bool = False
    qresync: QresyncParams | None = None


@dataclass(frozen=True, slots=True)
class Examine(Command):
    """``EXAMINE``: SELECT read-only (RFC 3501 §6.3.2), same parameters."""

    name: ClassVar[str] = "EXAMINE"
    mailbox: str
    condstore: bool = False
    qresync: QresyncParams | None = None


@dataclass(frozen=True, slots=True)
class Create(Command):
    r"""``CREATE mailbox [(USE (\Sent ...))]`` (RFC 3501 §6.3.3, RFC 6154 §3)."""

    name: ClassVar[str] = "CREATE"
    mailbox: str
    special_use: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Delete(Command):
    """``DELETE mailbox`` (RFC 3501 §6.3.4)."""

    name: ClassVar[str] = "DELETE"
    mailbox: str


@dataclass(frozen=True, slots=True)
class Rename(Command):
    """``RENAME old new`` (RFC 3501 §6.3.5)."""

    name: ClassVar[str] = "RENAME"
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class Subscribe(Command):
    """``SUBSCRIBE mailbox`` (RFC 3501 §6.3.6)."""

    name: ClassVar[str] = "SUBSCRIBE"
    mailbox: str


@dataclass(frozen=True, slots=True)
class Unsubscribe(Command):
    """``UNSUBSCRIBE mailbox`` (RFC 3501 §6.3.7)."""

    name: ClassVar[str] = "UNSUBSCRIBE"
    mailbox: str


@dataclass(frozen=True, slots=True)
class List(Command):
    """``LIST [(select)] reference pattern(s) [RETURN (...)]`` (RFC 3501 §6.3.8, RFC 5258).

    Attributes:
        reference: the reference name, decoded like a mailbox name but never
            normalised to INBOX.
        patterns: one or more patterns with ``*``/``%`` wildcards; ``""`` asks for
            the hierarchy delimiter.
    """

    name: ClassVar[str] = "LIST"
    reference: str
    patterns: tuple[str, ...]
    selection_options: ListSelectOptions = ListSelectOptions()
    return_options: ListReturnOptions = ListReturnOptions()


@dataclass(frozen=True, slots=True)
class Lsub(Command):
    """``LSUB reference pattern`` (RFC 3501 §6.3.9)."""

    name: ClassVar[str] = "LSUB"
    reference: str
    pattern: str


@dataclass(frozen=True, slots=True)
class Namespace(Command):
    """``NAMESPACE`` (RFC 2342)."""

    name: ClassVar[str] = "NAMESPACE"


@dataclass(frozen=True, slots=True)
class Status(Command):
    """``STATUS mailbox (items)`` (RFC 3501 §6.3.10)."""

    name: ClassVar[str] = "STATUS"
    mailbox: str
    items: tuple[StatusItem, ...]


@dataclass(frozen=True, slots=True)
class Append(Command):
    """``APPEND mailbox [flags] [date-time] literal...`` (RFC 3501 §6.3.11, RFC 3502)."""

    name: ClassVar[str] = "APPEND"
    mailbox: str
    messages: tuple[AppendMessage, ...]


@dataclass(frozen=True, slots=True)
class Idle(Command):
    """``IDLE`` (RFC 2177); the session then waits for a ``DONE`` raw line."""

    name: ClassVar[str] = "IDLE"


@dataclass(frozen=True, slots=True)
class GetQuota(Command):
    """``GETQUOTA root`` (RFC 9208 §4.2)."""

    name: ClassVar[str] = "GETQUOTA"
    root: str


@dataclass(frozen=True, slots=True)
class GetQuotaRoot(Command):
    """``GETQUOTAROOT mailbox`` (RFC 9208 §4.3)."""

    name: ClassVar[str] = "GETQUOTAROOT"
    mailbox: str


@dataclass(frozen=True, slots=True)
class SetQuota(Command):
    """``SETQUOTA root (STORAGE 512 ...)`` (RFC 9208 §4.1); resources upper-cased."""

    name: ClassVar[str] = "SETQUOTA"
    root: str
    limits: tuple[tuple[str, int], ...] = ()


# --- selected --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check(Command):
    """``CHECK`` (RFC 3501 §6.4.1)."""

    name: ClassVar[str] = "CHECK"


@dataclass(frozen=True, slots=True)
class Close(Command):
    """``CLOSE`` (RFC 3501 §6.4.2)."""

    name: ClassVar[str] = "CLOSE"


@dataclass(frozen=True, slots=True)
class Unselect(Command):
    """``UNSELECT`` (RFC 3691)."""

    name: ClassVar[str] = "UNSELECT"


@dataclass(frozen=True, slots=True)
class Expunge(Command):
    """``EXPUNGE`` (RFC 3501 §6.4.3) or ``UID EXPUNGE set`` (RFC 4315 §2.1)."""

    name: ClassVar[str] = "EXPUNGE"
    uid_set: SequenceSet | None = None


@dataclass(frozen=True, slots=True)
class Search(Command):
    """``[UID] SEARCH [RETURN (...)] [CHARSET c] keys`` (RFC 3501 §6.4.4, RFC 4731).

    Attributes:
        charset: the CHARSET given, upper-cased, or None; strings in ``key`` are
            already decoded with it.
        return_options: None for a classic SEARCH response; ESEARCH options
            otherwise (``RETURN ()`` means ``(ALL)``, RFC 4731 §3.1).
    """

    name: ClassVar[str] = "SEARCH"
    uid: bool
    charset: str | None
    key: SearchKey
    return_options: frozenset[SearchReturn] | None = None


@dataclass(frozen=True, slots=True)
class Sort(Command):
    """``[UID] SORT [RETURN (...)] (criteria) charset keys`` (RFC 5256 §3, RFC 5267)."""

    name: ClassVar[str] = "SORT"
    uid: bool
    criteria: tuple[SortCriterion, ...]
    charset: str
    key: SearchKey
    return_options: frozenset[SearchReturn] | None = None


@dataclass(frozen=True, slots=True)
class Thread(Command):
    """``[UID] THREAD algorithm charset keys`` (RFC 5256 §3)."""

    name: ClassVar[str] = "THREAD"
    uid: bool
    algorithm: ThreadAlgorithm
    charset: str
    key: SearchKey


@dataclass(frozen=True, slots=True)
class Fetch(Command):
    """``[UID] FETCH set attrs [(CHANGEDSINCE n [VANISHED])]`` (RFC 3501 §6.4.5, RFC 7162).

    Attributes:
        attributes: requested items in order, macros expanded, duplicates kept.
        changed_since: the CHANGEDSINCE mod-sequence, or None.
        vanished: VANISHED was given (only with ``UID FETCH`` and CHANGEDSINCE).
    """

    name: ClassVar[str] = "FETCH"
    uid: bool
    sequence_set: SequenceSet
    attributes: tuple[FetchAttribute, ...]
    changed_since: int | None = None
    vanished: bool = False


@dataclass(frozen=True, slots=True)
class Store(Command):
    """``[UID] STORE set [(UNCHANGEDSINCE n)] [+-]FLAGS[.SILENT] flags`` (RFC 3501 §6.4.6)."""

    name: ClassVar[str] = "STORE"
    uid: bool
    sequence_set: SequenceSet
    mode: StoreMode
    silent: bool
    flags: tuple[str, ...]
    unchanged_since: int | None = None


@dataclass(frozen=True, slots=True)
class Copy(Command):
    """``[UID] COPY set mailbox`` (RFC 3501 §6.4.7)."""

    name: ClassVar[str] = "COPY"
    uid: bool
    sequence_set: SequenceSet
    mailbox: str


@dataclass(frozen=True, slots=True)
class Move(Command):
    """``[UID] MOVE set mailbox`` (RFC 6851 §3)."""

    name: ClassVar[str] = "MOVE"
    uid: bool
    sequence_set: SequenceSet
    mailbox: str
