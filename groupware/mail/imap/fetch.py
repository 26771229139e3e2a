# SPDX-License-Identifier: GPL-3.0-or-later
"""FETCH response data: ENVELOPE, BODY/BODYSTRUCTURE and body sections.

RFC 3501 §7.4.2 (ENVELOPE, BODYSTRUCTURE), §6.4.5 (sections, partial fetches);
RFC 3516 (BINARY). Structures come from the index (``mail.mime.Part``); section bytes
are exact ranges of the stored file, so ``RFC822.SIZE`` equals what ``BODY[]``
returns and partial fetches cut the same octets a client would count.

ENVELOPE, BODY and BODYSTRUCTURE are rendered once, at delivery (``mail.store``
keeps them): a FETCH of them is concatenation. :func:`render` builds the responses of
a batch of messages in a worker thread, reading each file at most once.
"""

from __future__ import annotations

import base64
import binascii
import json
import quopri
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from groupware.mail import mime
from groupware.mail.imap import wire
from groupware.mail.imap.fetch_attributes import (
    BinarySection,
    BinarySize,
    BodySection,
    FetchAttribute,
    FetchItem,
    Partial,
    Section,
    SectionText,
)

if TYPE_CHECKING:
    from groupware.mail.store import IndexRow

NIL = b"NIL"


def _ns(value: str | None, utf8: bool) -> bytes:
    return wire.nstring(value, utf8=utf8)


def _address_list(addresses: list[list[Any]] | None, utf8: bool) -> bytes:
    if not addresses:
        return NIL
    return wire.paren_list(
        wire.paren_list(_ns(field, utf8) for field in address) for address in addresses
    )


def envelope(data: dict[str, Any], *, utf8: bool = False) -> bytes:
    """The ENVELOPE structure from the indexed envelope fields."""
    return wire.paren_list(
        [
            _ns(data.get("date"), utf8),
            _ns(data.get("subject"), utf8),
            _address_list(data.get("from"), utf8),
            _address_list(data.get("sender"), utf8),
            _address_list(data.get("reply-to"), utf8),
            _address_list(data.get("to"), utf8),
            _address_list(data.get("cc"), utf8),
            _address_list(data.get("bcc"), utf8),
            _ns(data.get("in-reply-to"), utf8),
            _ns(data.get("message-id"), utf8),
        ]
    )


def _params(params: list[tuple[str, str]], utf8: bool) -> bytes:
    if not params:
        return NIL
    return wire.paren_list(
        item
        for key, value in params
        for item in (wire.string(key, utf8=utf8), wire.string(value, utf8=utf8))
    )


def _disposition(part: mime.Part, utf8: bool) -> bytes:
    if part.disposition is None:
        return NIL
    kind, params = part.disposition
    return wire.paren_list([wire.string(kind.upper(), utf8=utf8), _params(params, utf8)])


def _language(part: mime.Part, utf8: bool) -> bytes:
    if not part.language:
        return NIL
    if len(part.language) == 1:
        return wire.string(part.language[0], utf8=utf8)
    return wire.paren_list(wire.string(item, utf8=utf8) for item in part.language)


def body_structure(part: mime.Part, *, extensible: bool, utf8: bool = False) -> bytes:
    """``BODY`` (``extensible=False``) or ``BODYSTRUCTURE`` of a part."""
    if part.is_multipart and part.children:
        items = [body_structure(child, extensible=extensible, utf8=utf8) for child in part.children]
        out = b"(" + b"".join(items) + b" " + wire.string(part.subtype.upper(), utf8=utf8)
        if extensible:
            out += b" " + b" ".join(
                [
                    _params(part.params, utf8),
                    _disposition(part, utf8),
                    _language(part, utf8),
                    _ns(part.location, utf8),
                ]
            )
        return out + b")"
    fields = [
        wire.string(part.maintype.upper(), utf8=utf8),
        wire.string(part.subtype.upper(), utf8=utf8),
        _params(part.params, utf8),
        _ns(part.content_id, utf8),
        _ns(part.description, utf8),
        wire.string(part.encoding, utf8=utf8),
        wire.number(part.body_size),
    ]
    if part.message is not None and part.envelope is not None:
        fields.append(envelope(part.envelope, utf8=utf8))
        fields.append(body_structure(part.message, extensible=extensible, utf8=utf8))
        fields.append(wire.number(part.lines))
    elif part.maintype == "text":
        fields.append(wire.number(part.lines))
    if extensible:
        fields += [
            _ns(part.md5, utf8),
            _disposition(part, utf8),
            _language(part, utf8),
            _ns(part.location, utf8),
        ]
    return wire.paren_list(fields)


def section_bytes(data: bytes, top: mime.Part, section: Section) -> bytes:
    """The octets a ``BODY[section]`` names; empty when the part does not exist.

    RFC 3501 §6.4.5: HEADER/TEXT of the message or of an encapsulated message,
    MIME of a part, bare part numbers for a part's body.
    """
    if not section.part:
        target = top
    else:
        found = mime.find_section(top, list(section.part))
        if found is None:
            return b""
        target = found
    text = section.text
    if text is None:
        if not section.part:
            return data
        return data[target.body_start : target.body_end]
    if text is SectionText.MIME:
        return data[target.header_start : target.header_end]
    message = target if not section.part else target.message
    if message is None:
        return b""
    if text is SectionText.HEADER:
        return data[message.header_start : message.header_end]
    if text is SectionText.TEXT:
        return data[message.body_start : message.body_end]
    names = {name.lower() for name in section.header_fields}
    return mime.header_fields(data, message, names, negate=text is SectionText.HEADER_FIELDS_NOT)


def cut(octets: bytes, partial: Partial | None) -> bytes:
    """A partial fetch: ``length`` octets from ``offset`` (empty past the end)."""
    if partial is None:
        return octets
    return octets[partial.offset : partial.offset + partial.length]


def decoded_part(data: bytes, top: mime.Part, part_numbers: tuple[int, ...]) -> bytes | None:
    """The body of a part with its transfer encoding undone (RFC 3516), or None.

    None means the encoding is unknown: the server answers ``[UNKNOWN-CTE]``.
    """
    target = top if not part_numbers else mime.find_section(top, list(part_numbers))
    if target is None:
        return b""
    body = (
        data[target.body_start : target.body_end] if part_numbers or not top.is_multipart else data
    )
    encoding = target.encoding.lower()
    if encoding in ("7bit", "8bit", "binary"):
        return body
    if encoding == "base64":
        try:
            return base64.b64decode(b"".join(body.split()), validate=False)
        except (binascii.Error, ValueError):
            return None
    if encoding == "quoted-printable":
        return quopri.decodestring(body)
    return None


# --- whole responses -----------------------------------------------------------------

#: A batch of responses is sent once it reaches this size (or holds one big message).
BATCH_BYTES: Final = 1 << 20
_SYSTEM_ORDER: Final = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
_SYSTEM: Final = frozenset(_SYSTEM_ORDER)
_PRE_RENDERED: Final = {
    FetchItem.ENVELOPE: "envelope_imap",
    FetchItem.BODY: "body_imap",
    FetchItem.BODYSTRUCTURE: "bodystructure_imap",
}


class FetchError(Exception):
    """A message cannot be fetched as asked: the command ends ``status [code] text``."""

    def __init__(self, status: str, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


@dataclass(frozen=True, slots=True)
class FetchPlan:
    """What one FETCH command returns for each message.

    Attributes:
        attributes: the attributes, in the client's order.
        with_uid: UID FETCH: ``UID`` comes first even when not asked.
        with_modseq: CONDSTORE: ``MODSEQ`` even when not asked.
        flags_changed: the command set ``\\Seen``: ``FLAGS`` even when not asked.
        utf8: UTF8=ACCEPT is enabled.
    """

    attributes: tuple[FetchAttribute, ...]
    with_uid: bool
    with_modseq: bool
    flags_changed: bool
    utf8: bool

    def fields(self) -> set[str]:
        """The index fields (``mail.store.IndexRow``) the responses are made of."""
        fields: set[str] = set()
        if self.with_modseq:
            fields.add("modseq")
        if self.flags_changed:
            fields.add("flags")
        for attribute in self.attributes:
            if attribute is FetchItem.FLAGS:
                fields.add("flags")
            elif attribute is FetchItem.INTERNALDATE:
                fields.add("internal_date")
            elif attribute is FetchItem.RFC822_SIZE:
                fields.add("size")
            elif attribute is FetchItem.MODSEQ:
                fields.add("modseq")
            elif attribute in _PRE_RENDERED:
                fields.add(_PRE_RENDERED[attribute])
            elif attribute is not FetchItem.UID:
                fields.update(("blob_path", "size"))
                if _needs_structure(attribute):
                    fields.add("structure")
        return fields

    def pre_rendered(self) -> list[tuple[str, str]]:
        """``(pre-rendered field, JSON field it is rendered from)`` of the attributes."""
        return [
            (
                _PRE_RENDERED[attribute],
                "envelope" if attribute is FetchItem.ENVELOPE else "structure",
            )
            for attribute in self.attributes
            if isinstance(attribute, FetchItem) and attribute in _PRE_RENDERED
        ]

    def missing(self, rows: Iterable[IndexRow]) -> dict[int, set[str]]:
        """UID -> the JSON fields a row still needs: pre-rendered bytes absent or unusable."""
        fields = self.pre_rendered()
        lacking: dict[int, set[str]] = {}
        if not fields:
            return lacking
        for row in rows:
            for field, source in fields:
                rendered = getattr(row, field)
                # Without 8-bit text the UTF8=ACCEPT form is the same octets.
                if rendered is None or (self.utf8 and not rendered.isascii()):
                    lacking.setdefault(row.uid, set()).add(source)
        return lacking


def _needs_structure(attribute: FetchAttribute) -> bool:
    if isinstance(attribute, BodySection):
        return bool(attribute.section.part) or attribute.section.text is not None
    return attribute is not FetchItem.RFC822


def ordered_flags(flags: Collection[str]) -> list[str]:
    """System flags in their usual order, then keywords sorted."""
    system = [flag for flag in _SYSTEM_ORDER if flag in flags]
    return system + sorted(flag for flag in flags if flag not in _SYSTEM)


def flags_item(row: IndexRow, recent: Collection[int]) -> bytes:
    """``FLAGS (...)``, with ``\\Recent`` when this session has it."""
    flags = ordered_flags(row.flags)
    if row.uid in recent:
        flags.append("\\Recent")
    return b"FLAGS " + wire.flag_list(flags)


def render(
    targets: Sequence[tuple[int, int]],
    start: int,
    rows: Mapping[int, IndexRow],
    plan: FetchPlan,
    read_file: Callable[[str, int], bytes],
    recent: Collection[int],
) -> tuple[bytes, int, FetchError | None]:
    """The responses for ``targets[start:]``, up to about :data:`BATCH_BYTES`.

    Blocking (reads files): run in a worker thread.

    Returns:
        ``(responses, where the next batch starts, error)``; on an error, the
        responses of the messages before the failing one, and the error.
    """
    out: list[bytes] = []
    size = 0
    position = start
    while position < len(targets) and size < BATCH_BYTES:
        seq, uid = targets[position]
        position += 1
        row = rows.get(uid)
        if row is None:
            continue  # expunged by another session, or skipped by CHANGEDSINCE
        try:
            response = b"* %d FETCH (" % seq + b" ".join(_items(row, plan, read_file, recent))
        except FetchError as error:
            return b"".join(out), position, error
        out.append(response + b")\r\n")
        size += len(response)
    return b"".join(out), position, None


def _items(
    row: IndexRow,
    plan: FetchPlan,
    read_file: Callable[[str, int], bytes],
    recent: Collection[int],
) -> Iterable[bytes]:
    names = set(plan.attributes)
    if plan.with_uid and FetchItem.UID not in names:
        yield b"UID %d" % row.uid
    data: bytes | None = None
    top: mime.Part | None = None
    for attribute in plan.attributes:
        if attribute is FetchItem.UID:
            yield b"UID %d" % row.uid
        elif attribute is FetchItem.FLAGS:
            yield flags_item(row, recent)
        elif attribute is FetchItem.INTERNALDATE:
            assert row.internal_date is not None
            yield b"INTERNALDATE " + wire.internal_date(row.internal_date)
        elif attribute is FetchItem.RFC822_SIZE:
            yield b"RFC822.SIZE %d" % row.size
        elif attribute is FetchItem.MODSEQ:
            yield b"MODSEQ (%d)" % row.modseq
        elif attribute is FetchItem.ENVELOPE:
            rendered = row.envelope_imap
            if rendered is None or (plan.utf8 and not rendered.isascii()):
                rendered = envelope(json.loads(row.envelope or "{}"), utf8=plan.utf8)
            yield b"ENVELOPE " + rendered
        elif attribute is FetchItem.BODY or attribute is FetchItem.BODYSTRUCTURE:
            rendered = getattr(row, _PRE_RENDERED[attribute])
            if rendered is None or (plan.utf8 and not rendered.isascii()):
                top = top or mime.part_from_json_text(row.structure or "")
                rendered = body_structure(
                    top, extensible=attribute is FetchItem.BODYSTRUCTURE, utf8=plan.utf8
                )
            yield attribute.value.encode() + b" " + rendered
        else:
            if data is None:
                data = read_file(row.blob_path, row.size)
            if top is None and _needs_structure(attribute):
                top = mime.part_from_json_text(row.structure or "")
            yield section_item(attribute, data, top)
    if plan.with_modseq and FetchItem.MODSEQ not in names:
        yield b"MODSEQ (%d)" % row.modseq
    if plan.flags_changed and FetchItem.FLAGS not in names:
        yield flags_item(row, recent)


def section_item(attribute: FetchAttribute, data: bytes, top: mime.Part | None) -> bytes:
    """One body item: ``RFC822``, ``BODY[...]``, ``BINARY[...]`` or ``BINARY.SIZE[...]``.

    ``top`` may be None only where :func:`_needs_structure` says so.

    Raises:
        FetchError: a BINARY item of an unknown transfer encoding (``UNKNOWN-CTE``).
    """
    if attribute is FetchItem.RFC822:
        return b"RFC822 " + wire.literal(data)
    if isinstance(attribute, BodySection):
        # BODY[] needs no structure: the whole file is the answer.
        octets = data if top is None else section_bytes(data, top, attribute.section)
        return (
            attribute.response_name().encode() + b" " + wire.literal(cut(octets, attribute.partial))
        )
    assert top is not None
    if attribute is FetchItem.RFC822_HEADER:
        return b"RFC822.HEADER " + wire.literal(data[: top.header_end])
    if attribute is FetchItem.RFC822_TEXT:
        return b"RFC822.TEXT " + wire.literal(data[top.body_start :])
    if isinstance(attribute, BinarySection):
        decoded = decoded_part(data, top, attribute.part)
        if decoded is None:
            raise FetchError("NO", "Unknown content transfer encoding", "UNKNOWN-CTE")
        body = cut(decoded, attribute.partial)
        return attribute.response_name().encode() + b" ~{%d}\r\n" % len(body) + body
    if isinstance(attribute, BinarySize):
        decoded = decoded_part(data, top, attribute.part)
        if decoded is None:
            raise FetchError("NO", "Unknown content transfer encoding", "UNKNOWN-CTE")
        return attribute.response_name().encode() + b" %d" % len(decoded)
    raise FetchError("BAD", f"Unsupported fetch item {attribute}")
