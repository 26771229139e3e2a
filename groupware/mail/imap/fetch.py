# SPDX-License-Identifier: GPL-3.0-or-later
"""FETCH response data: ENVELOPE, BODY/BODYSTRUCTURE and body sections.

RFC 3501 §7.4.2 (ENVELOPE, BODYSTRUCTURE), §6.4.5 (sections, partial fetches);
RFC 3516 (BINARY). Structures come from the index (``mail.mime.Part``); section bytes
are exact ranges of the stored file, so ``RFC822.SIZE`` equals what ``BODY[]``
returns and partial fetches cut the same octets a client would count.
"""

from __future__ import annotations

import base64
import binascii
import quopri
from typing import Any

from groupware.mail import mime
from groupware.mail.imap import wire
from groupware.mail.imap.fetch_attributes import Partial, Section, SectionText

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
