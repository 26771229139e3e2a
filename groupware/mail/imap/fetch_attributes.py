# SPDX-License-Identifier: GPL-3.0-or-later
"""What a FETCH asks for (RFC 3501 §6.4.5, MODSEQ from RFC 7162 §3.1.4, BINARY RFC 3516).

Plain items are :class:`FetchItem` members; ``BODY[section]<partial>`` and
``BODY.PEEK[...]`` are :class:`BodySection`; ``BINARY[...]``/``BINARY.PEEK[...]`` and
``BINARY.SIZE[...]`` are :class:`BinarySection` and :class:`BinarySize`. The macros
``ALL``, ``FAST`` and ``FULL`` are expanded by the parser (:data:`MACROS`).

Each attribute knows the name it carries in the FETCH response
(:meth:`BodySection.response_name`: ``BODY.PEEK[1.2]<0.100>`` answers as
``BODY[1.2]<0>``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

_ATOM_SAFE: Final = re.compile(r'[^\x00-\x20\x7f-\U0010ffff(){%*"\\\]]+')


class FetchItem(StrEnum):
    """A fetch attribute without arguments; the value is its IMAP name."""

    ENVELOPE = "ENVELOPE"
    FLAGS = "FLAGS"
    INTERNALDATE = "INTERNALDATE"
    RFC822 = "RFC822"
    RFC822_HEADER = "RFC822.HEADER"
    RFC822_SIZE = "RFC822.SIZE"
    RFC822_TEXT = "RFC822.TEXT"
    BODY = "BODY"
    BODYSTRUCTURE = "BODYSTRUCTURE"
    UID = "UID"
    MODSEQ = "MODSEQ"


class SectionText(StrEnum):
    """The part of a section after the part numbers."""

    HEADER = "HEADER"
    HEADER_FIELDS = "HEADER.FIELDS"
    HEADER_FIELDS_NOT = "HEADER.FIELDS.NOT"
    TEXT = "TEXT"
    MIME = "MIME"


@dataclass(frozen=True, slots=True)
class Section:
    """``section-spec``: ``[]`` is the whole message, ``[1.2.HEADER.FIELDS (To)]`` a subset.

    Attributes:
        part: MIME part numbers, ``()`` for the message itself.
        text: what of that part; None means the whole part.
        header_fields: the names for ``HEADER.FIELDS`` and ``HEADER.FIELDS.NOT``,
            as the client wrote them.
    """

    part: tuple[int, ...] = ()
    text: SectionText | None = None
    header_fields: tuple[str, ...] = ()

    def __str__(self) -> str:
        """The section between the brackets, e.g. ``1.2.HEADER.FIELDS (From To)``."""
        pieces = [str(number) for number in self.part]
        if self.text is not None:
            pieces.append(self.text.value)
        spec = ".".join(pieces)
        if self.text in (SectionText.HEADER_FIELDS, SectionText.HEADER_FIELDS_NOT):
            spec += " (" + " ".join(_header_name(name) for name in self.header_fields) + ")"
        return spec


@dataclass(frozen=True, slots=True)
class Partial:
    """``<offset.length>``: ``length`` octets from ``offset``."""

    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class BodySection:
    r"""``BODY[section]<partial>``; ``peek`` for ``BODY.PEEK`` (does not set ``\Seen``)."""

    section: Section = Section()
    peek: bool = False
    partial: Partial | None = None

    def response_name(self) -> str:
        """The name in the FETCH response: ``BODY[section]`` and ``<offset>`` if partial."""
        origin = "" if self.partial is None else f"<{self.partial.offset}>"
        return f"BODY[{self.section}]{origin}"


@dataclass(frozen=True, slots=True)
class BinarySection:
    """``BINARY[part]<partial>`` (RFC 3516): the part with its transfer encoding undone."""

    part: tuple[int, ...] = ()
    peek: bool = False
    partial: Partial | None = None

    def response_name(self) -> str:
        """The name in the FETCH response: ``BINARY[part]`` and ``<offset>`` if partial."""
        origin = "" if self.partial is None else f"<{self.partial.offset}>"
        return f"BINARY[{'.'.join(map(str, self.part))}]{origin}"


@dataclass(frozen=True, slots=True)
class BinarySize:
    """``BINARY.SIZE[part]`` (RFC 3516): the decoded size of a part."""

    part: tuple[int, ...] = ()

    def response_name(self) -> str:
        """The name in the FETCH response."""
        return f"BINARY.SIZE[{'.'.join(map(str, self.part))}]"


FetchAttribute = FetchItem | BodySection | BinarySection | BinarySize

MACROS: Final[Mapping[str, tuple[FetchAttribute, ...]]] = MappingProxyType(
    {
        "ALL": (FetchItem.FLAGS, FetchItem.INTERNALDATE, FetchItem.RFC822_SIZE, FetchItem.ENVELOPE),
        "FAST": (FetchItem.FLAGS, FetchItem.INTERNALDATE, FetchItem.RFC822_SIZE),
        "FULL": (
            FetchItem.FLAGS,
            FetchItem.INTERNALDATE,
            FetchItem.RFC822_SIZE,
            FetchItem.ENVELOPE,
            FetchItem.BODY,
        ),
    }
)


def _header_name(name: str) -> str:
    if _ATOM_SAFE.fullmatch(name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
