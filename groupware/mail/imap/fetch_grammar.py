# SPDX-License-Identifier: GPL-3.0-or-later
"""Grammar of FETCH and STORE (RFC 3501 §6.4.5-6 and §9 ``fetch-att``, ``section``).

Also ``BINARY``/``BINARY.PEEK``/``BINARY.SIZE`` (RFC 3516 §4.2) and ``MODSEQ``
(RFC 7162 §3.1.4), CHANGEDSINCE/VANISHED and UNCHANGEDSINCE (RFC 7162 §3.1.3-4,
§3.2.6). Partial fetches need both origin and length (``<0.2048>``), as in
RFC 3501; a section's part numbers are ``nz-number``.
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Final

from groupware.mail.imap import commands as c
from groupware.mail.imap.fetch_attributes import (
    MACROS,
    BinarySection,
    BinarySize,
    BodySection,
    FetchAttribute,
    FetchItem,
    Partial,
    Section,
    SectionText,
)
from groupware.mail.imap.reader import MAX_NUMBER, MAX_NUMBER64, Reader

_PART: Final = re.compile(r"[1-9][0-9]{0,9}")
_SIMPLE: Final = frozenset(item.value for item in FetchItem)


def fetch_attributes(reader: Reader) -> tuple[FetchAttribute, ...]:
    """Read a macro, one attribute, or a parenthesised list of attributes."""
    if reader.peek_char(b"("):
        return tuple(reader.paren_list(lambda: _attribute(reader)))
    name = reader.fetch_name()
    if name in MACROS:
        return MACROS[name]
    return (_attribute(reader, name),)


def _attribute(reader: Reader, name: str | None = None) -> FetchAttribute:
    if name is None:
        name = reader.fetch_name()
    if reader.peek_char(b"["):
        if name in ("BODY", "BODY.PEEK"):
            section = _section(reader)
            return BodySection(section, peek=name == "BODY.PEEK", partial=_partial(reader))
        if name in ("BINARY", "BINARY.PEEK"):
            part = _binary_part(reader)
            return BinarySection(part, peek=name == "BINARY.PEEK", partial=_partial(reader))
        if name == "BINARY.SIZE":
            return BinarySize(_binary_part(reader))
        reader.fail(f"{name[:32]} takes no section")
    if name in _SIMPLE:
        return FetchItem(name)
    if name in ("BODY.PEEK", "BINARY", "BINARY.PEEK", "BINARY.SIZE"):
        reader.fail(f"{name} needs a section")
    if name in MACROS:
        reader.fail(f"{name} cannot be used in a list")
    reader.fail(f"unknown fetch attribute {name[:32]}")


def _section(reader: Reader) -> Section:
    reader.expect(b"[", "'['")
    spec = reader.section_spec()
    part: list[int] = []
    pieces = spec.split(".") if spec else []
    while pieces and pieces[0].isdigit():
        number = pieces.pop(0)
        if not _PART.fullmatch(number) or int(number) > MAX_NUMBER:
            reader.fail("invalid section part number")
        part.append(int(number))
    text_name = ".".join(pieces)
    text: SectionText | None = None
    fields: tuple[str, ...] = ()
    if text_name:
        try:
            text = SectionText(text_name)
        except ValueError:
            reader.fail("invalid section")
        if text is SectionText.MIME and not part:
            reader.fail("MIME needs a part number")
        if text in (SectionText.HEADER_FIELDS, SectionText.HEADER_FIELDS_NOT):
            reader.sp()
            fields = tuple(
                reader.paren_list(
                    lambda: _header_field(reader, reader.astring("header field name"))
                )
            )
    elif pieces:
        reader.fail("invalid section")
    reader.expect(b"]", "']'")
    return Section(tuple(part), text, fields)


def _header_field(reader: Reader, raw: bytes) -> str:
    # RFC 5322 §3.6.8: printable US-ASCII except ":".
    if not raw or any(byte < 0x21 or byte > 0x7E or byte == 0x3A for byte in raw):
        reader.fail("invalid header field name")
    return raw.decode("ascii")


def _binary_part(reader: Reader) -> tuple[int, ...]:
    section = _section(reader)
    if section.text is not None:
        reader.fail("BINARY takes part numbers only")
    return section.part


def _partial(reader: Reader) -> Partial | None:
    if not reader.skip(b"<"):
        return None
    offset = reader.number("partial offset")
    reader.expect(b".", "'.' in partial")
    length = reader.number("partial length", minimum=1)
    reader.expect(b">", "'>'")
    return Partial(offset, length)


def fetch_modifiers(reader: Reader) -> tuple[int | None, bool]:
    """Read ``(CHANGEDSINCE n [VANISHED])`` (RFC 7162 §3.1.4.1, §3.2.6).

    Returns:
        The CHANGEDSINCE mod-sequence (or None) and whether VANISHED was given.
    """
    changed_since: int | None = None
    vanished = False

    def modifier() -> None:
        nonlocal changed_since, vanished
        name = reader.keyword("fetch modifier")
        if name == "CHANGEDSINCE" and changed_since is None:
            reader.sp()
            changed_since = reader.number(
                "mod-sequence", minimum=1, maximum=9_223_372_036_854_775_807
            )
        elif name == "VANISHED" and not vanished:
            vanished = True
        else:
            reader.fail(f"unknown or repeated fetch modifier {name[:32]}")

    reader.paren_list(modifier)
    return changed_since, vanished


def fetch_command(reader: Reader, tag: str, uid: bool) -> c.Command:
    """``FETCH set attributes [(modifiers)]`` after the command name."""
    reader.sp()
    sequence_set = reader.sequence_set()
    reader.sp()
    attributes = fetch_attributes(reader)
    changed_since, vanished = None, False
    if not reader.at_end():
        reader.sp()
        changed_since, vanished = fetch_modifiers(reader)
    if vanished and (not uid or changed_since is None):
        reader.fail("VANISHED needs UID FETCH and CHANGEDSINCE")
    return c.Fetch(tag, uid, sequence_set, attributes, changed_since, vanished)


_STORE_ITEMS: Final = MappingProxyType(
    {
        "FLAGS": (c.StoreMode.REPLACE, False),
        "FLAGS.SILENT": (c.StoreMode.REPLACE, True),
        "+FLAGS": (c.StoreMode.ADD, False),
        "+FLAGS.SILENT": (c.StoreMode.ADD, True),
        "-FLAGS": (c.StoreMode.REMOVE, False),
        "-FLAGS.SILENT": (c.StoreMode.REMOVE, True),
    }
)


def store_command(reader: Reader, tag: str, uid: bool) -> c.Command:
    """``STORE set [(UNCHANGEDSINCE n)] [+-]FLAGS[.SILENT] flags`` after the command name."""
    reader.sp()
    sequence_set = reader.sequence_set()
    reader.sp()
    unchanged_since = None
    if reader.skip(b"("):
        if reader.keyword("store modifier") != "UNCHANGEDSINCE":
            reader.fail("unknown store modifier")
        reader.sp()
        unchanged_since = reader.number("mod-sequence", maximum=MAX_NUMBER64)
        reader.expect(b")", "')' after UNCHANGEDSINCE")
        reader.sp()
    item = reader.keyword("store item")
    if item not in _STORE_ITEMS:
        reader.fail(f"unknown store item {item[:32]}")
    mode, silent = _STORE_ITEMS[item]
    reader.sp()
    if reader.peek_char(b"("):
        flags = reader.flag_list(allow_recent=False)
    else:
        flag_items = [reader.flag(allow_recent=False)]
        while not reader.at_end():
            reader.sp()
            flag_items.append(reader.flag(allow_recent=False))
        flags = tuple(flag_items)
    return c.Store(tag, uid, sequence_set, mode, silent, flags, unchanged_since)
