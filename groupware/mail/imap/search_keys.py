# SPDX-License-Identifier: GPL-3.0-or-later
"""Search criteria as a tree (RFC 3501 §6.4.4, MODSEQ from RFC 7162 §3.1.5).

The parser desugars the many IMAP keywords into a few node types, so a search engine
handles each idea once:

- ``ANSWERED``/``UNANSWERED``, ``DELETED``, ``DRAFT``, ``FLAGGED``, ``SEEN``,
  ``RECENT``, ``KEYWORD``/``UNKEYWORD`` → :class:`FlagKey`; ``NEW`` is
  ``RECENT UNSEEN`` and ``OLD`` is ``NOT RECENT``;
- ``BCC``, ``CC``, ``FROM``, ``SUBJECT``, ``TO`` and ``HEADER`` → :class:`HeaderKey`;
- ``BEFORE``/``ON``/``SINCE`` and ``SENT*`` → :class:`DateKey`;
- ``LARGER``/``SMALLER`` → :class:`SizeKey`;
- a list of keys, parenthesised or not, → :class:`AndKey`.

String values are text, already decoded from the command's charset. Matching is the
search engine's business (RFC 3501: case-insensitive substring).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from enum import StrEnum

from groupware.mail.imap.sequences import SequenceSet


class DateField(StrEnum):
    """Which date a :class:`DateKey` compares."""

    INTERNAL = "internal"  # BEFORE, ON, SINCE: the internal date
    SENT = "sent"  # SENTBEFORE, SENTON, SENTSINCE: the Date header


class DateRelation(StrEnum):
    """How a :class:`DateKey` compares (dates only, time and zone disregarded)."""

    BEFORE = "before"
    ON = "on"
    SINCE = "since"


class SizeRelation(StrEnum):
    """How a :class:`SizeKey` compares with RFC822.SIZE."""

    LARGER = "larger"
    SMALLER = "smaller"


@dataclass(frozen=True, slots=True)
class AllKey:
    """``ALL``: every message."""


@dataclass(frozen=True, slots=True)
class FlagKey:
    r"""A flag is set (``is_set``) or not: ``\Seen``, ``\Recent``, or a keyword."""

    flag: str
    is_set: bool = True


@dataclass(frozen=True, slots=True)
class HeaderKey:
    """The header ``name`` contains ``value``; an empty value means "has the header"."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class BodyKey:
    """``BODY``: the body (not the header) contains ``value``."""

    value: str


@dataclass(frozen=True, slots=True)
class TextKey:
    """``TEXT``: the header or the body contains ``value``."""

    value: str


@dataclass(frozen=True, slots=True)
class DateKey:
    """A date comparison: ``SINCE 1-Feb-1994`` is ``DateKey(INTERNAL, SINCE, date)``."""

    field: DateField
    relation: DateRelation
    date: datetime.date


@dataclass(frozen=True, slots=True)
class SizeKey:
    """``LARGER n`` / ``SMALLER n``, in octets."""

    relation: SizeRelation
    size: int


@dataclass(frozen=True, slots=True)
class SequenceKey:
    """Messages whose sequence number is in the set."""

    sequence_set: SequenceSet


@dataclass(frozen=True, slots=True)
class UidKey:
    """``UID set``: messages whose UID is in the set."""

    sequence_set: SequenceSet


@dataclass(frozen=True, slots=True)
class ModSeqKey:
    r"""``MODSEQ [entry type] n`` (RFC 7162 §3.1.5): mod-sequence at least ``modseq``.

    Attributes:
        modseq: the lowest matching mod-sequence (0 matches every message).
        entry_name: a metadata item such as ``/flags/\draft``, or None.
        entry_type: ``priv``, ``shared`` or ``all`` with ``entry_name``, else None.
    """

    modseq: int
    entry_name: str | None = None
    entry_type: str | None = None


@dataclass(frozen=True, slots=True)
class NotKey:
    """``NOT key``."""

    key: SearchKey


@dataclass(frozen=True, slots=True)
class OrKey:
    """``OR left right``."""

    left: SearchKey
    right: SearchKey


@dataclass(frozen=True, slots=True)
class AndKey:
    """Every key matches: a search program or a parenthesised list (two or more keys)."""

    keys: tuple[SearchKey, ...]


SearchKey = (
    AllKey
    | FlagKey
    | HeaderKey
    | BodyKey
    | TextKey
    | DateKey
    | SizeKey
    | SequenceKey
    | UidKey
    | ModSeqKey
    | NotKey
    | OrKey
    | AndKey
)
