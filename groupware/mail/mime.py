# SPDX-License-Identifier: GPL-3.0-or-later
"""MIME structure of a stored message, with byte offsets, computed once at delivery.

The IMAP server answers ENVELOPE, BODYSTRUCTURE and ``BODY[section]`` from this
structure (kept as JSON in the index) and the message file's bytes: no message is
re-parsed to list a folder, and every section is an exact byte range of the file.

RFC 3501 §6.4.5 (section numbering), §7.4.2 (ENVELOPE, BODYSTRUCTURE); RFC 2045/2046
(MIME); RFC 5322 §3.4 (address lists, groups). Malformed messages never raise: a
multipart without a usable boundary is treated as one opaque part, headers that do not
parse are kept raw.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from typing import Any, Final

CRLF: Final = b"\r\n"
_HEADER_PARSER: Final = HeaderParser(policy=compat32)
_FOLD: Final = re.compile(r"\r?\n(?=[ \t])")
_BARE_LF: Final = re.compile(rb"(?<!\r)\n")
_BARE_CR: Final = re.compile(rb"\r(?!\n)")
MAX_DEPTH: Final = 32  # nested multiparts beyond this are kept opaque


def to_crlf(data: bytes) -> bytes:
    """Every line ending as CRLF (bare LF and bare CR converted)."""
    return _BARE_LF.sub(b"\r\n", _BARE_CR.sub(b"\r\n", data))


@dataclass(slots=True)
class Part:
    """One MIME entity: its header and body as byte ranges of the message file."""

    header_start: int
    header_end: int  # exclusive, includes the blank line
    body_start: int
    body_end: int  # exclusive
    maintype: str = "text"
    subtype: str = "plain"
    params: list[tuple[str, str]] = field(default_factory=list)
    content_id: str | None = None
    description: str | None = None
    encoding: str = "7BIT"
    md5: str | None = None
    disposition: tuple[str, list[tuple[str, str]]] | None = None
    language: list[str] | None = None
    location: str | None = None
    lines: int = 0
    children: list[Part] = field(default_factory=list)
    # message/rfc822: the encapsulated message's envelope and top part
    envelope: dict[str, Any] | None = None
    message: Part | None = None

    @property
    def is_multipart(self) -> bool:
        """Whether this part holds child parts."""
        return self.maintype == "multipart"

    @property
    def body_size(self) -> int:
        """Octets of the body as stored."""
        return self.body_end - self.body_start

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable form (see :func:`part_from_json`)."""
        return {
            "h": [self.header_start, self.header_end],
            "b": [self.body_start, self.body_end],
            "t": [self.maintype, self.subtype],
            "p": self.params,
            "id": self.content_id,
            "de": self.description,
            "e": self.encoding,
            "md5": self.md5,
            "di": [self.disposition[0], self.disposition[1]] if self.disposition else None,
            "la": self.language,
            "lo": self.location,
            "l": self.lines,
            "c": [child.to_json() for child in self.children],
            "env": self.envelope,
            "m": self.message.to_json() if self.message else None,
        }


def part_from_json(data: dict[str, Any]) -> Part:
    """The inverse of :meth:`Part.to_json`."""
    disposition = data["di"]
    return Part(
        header_start=data["h"][0],
        header_end=data["h"][1],
        body_start=data["b"][0],
        body_end=data["b"][1],
        maintype=data["t"][0],
        subtype=data["t"][1],
        params=[(k, v) for k, v in data["p"]],
        content_id=data["id"],
        description=data["de"],
        encoding=data["e"],
        md5=data["md5"],
        disposition=(disposition[0], [(k, v) for k, v in disposition[1]]) if disposition else None,
        language=data["la"],
        location=data["lo"],
        lines=data["l"],
        children=[part_from_json(child) for child in data["c"]],
        envelope=data["env"],
        message=part_from_json(data["m"]) if data["m"] else None,
    )


def part_from_json_text(raw: str) -> Part:
    """A part from its JSON text, as the index stores it."""
    return part_from_json(json.loads(raw))


# --- headers -----------------------------------------------------------------------


def _header_block_end(data: bytes, start: int, end: int) -> tuple[int, int]:
    """``(header_end, body_start)``: the header includes the blank line."""
    if data.startswith(CRLF, start):
        return start + 2, start + 2
    blank = data.find(b"\r\n\r\n", start, end)
    if blank < 0:
        return end, end
    return blank + 4, blank + 4


def _unfold(value: str) -> str:
    return _FOLD.sub("", value).strip()


def _header(message: Message, name: str) -> str | None:
    value = message.get(name)
    if value is None:
        return None
    return _unfold(str(value))


def parse_headers(block: bytes) -> Message:
    """A header block as a Message whose values are plain text.

    Raw 8-bit headers are read as UTF-8 (RFC 6532), else as Latin-1, so that no value
    ever becomes an opaque ``Header`` object.
    """
    try:
        decoded = block.decode("utf-8")
    except UnicodeDecodeError:
        decoded = block.decode("latin-1")
    return _HEADER_PARSER.parsestr(decoded)


def _split_params(value: str) -> list[str]:
    """The ``;``-separated pieces of a header value, quotes respected."""
    pieces, current, quoted, escaped = [], [], False, False
    for ch in value:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\" and quoted:
            current.append(ch)
            escaped = True
        elif ch == '"':
            current.append(ch)
            quoted = not quoted
        elif ch == ";" and not quoted:
            pieces.append("".join(current))
            current = []
        else:
            current.append(ch)
    pieces.append("".join(current))
    return pieces


def _params(message: Message, header: str) -> list[tuple[str, str]]:
    """Parameters as written: RFC 2231 forms (``FILENAME*``) are passed on raw, as
    Dovecot does, for clients to decode; only quoting is undone."""
    value = _header(message, header)
    if value is None:
        return []
    found: list[tuple[str, str]] = []
    for piece in _split_params(value)[1:]:
        key, sep, raw = piece.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or not key:
            continue
        if len(raw) >= 2 and raw.startswith('"') and raw.endswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        found.append((key.upper(), raw))
    return found


def param(params: list[tuple[str, str]], name: str) -> str | None:
    """A parameter's value, its RFC 2231 form (``NAME*``, ``NAME*0``...) decoded."""
    values = dict(params)
    if name in values:
        return values[name]
    pieces = sorted((key, value) for key, value in params if key.startswith(name + "*"))
    if not pieces:
        return None
    encoded = "".join(value for _key, value in pieces)
    if pieces[0][0].endswith("*") and "'" in encoded:
        charset, _language, text = encoded.split("'", 2)
        try:
            return urllib.parse.unquote(text, encoding=charset or "utf-8", errors="replace")
        except LookupError:
            return urllib.parse.unquote(text)
    return encoded


def _describe(part: Part, headers: Message, default_type: str) -> None:
    content_type = headers.get("content-type")
    maintype, subtype = default_type.split("/")
    if content_type is not None:
        ctype = str(content_type).split(";", 1)[0].strip().lower()
        if ctype.count("/") == 1 and all(ctype.split("/")):
            maintype, subtype = ctype.split("/")
        part.params = _params(headers, "content-type")
    elif (maintype, subtype) == ("text", "plain"):
        part.params = [("CHARSET", "us-ascii")]
    part.maintype, part.subtype = maintype, subtype
    part.content_id = _header(headers, "content-id")
    part.description = _header(headers, "content-description")
    part.encoding = (_header(headers, "content-transfer-encoding") or "7BIT").upper()
    part.md5 = _header(headers, "content-md5")
    disposition = _header(headers, "content-disposition")
    if disposition:
        kind = disposition.split(";", 1)[0].strip().lower()
        if kind:
            part.disposition = (kind, _params(headers, "content-disposition"))
    language = _header(headers, "content-language")
    if language:
        part.language = [item.strip() for item in language.split(",") if item.strip()]
    part.location = _header(headers, "content-location")


# --- structure ---------------------------------------------------------------------


def _boundary_ranges(data: bytes, boundary: bytes, start: int, end: int) -> list[tuple[int, int]]:
    """Byte ranges of the parts between ``--boundary`` delimiter lines (RFC 2046 §5.1.1)."""
    delimiter = b"--" + boundary
    ranges: list[tuple[int, int]] = []
    current: int | None = None
    position = start
    while position <= end:
        line_end = data.find(CRLF, position, end)
        next_position = end + 1 if line_end < 0 else line_end + 2
        line = data[position : end if line_end < 0 else line_end]
        if line.startswith(delimiter):
            rest = line[len(delimiter) :]
            is_close = rest.startswith(b"--")
            if is_close:
                rest = rest[2:]
            if not rest.strip(b" \t"):
                if current is not None:
                    # The CRLF before a delimiter belongs to the delimiter.
                    ranges.append((current, max(current, position - 2)))
                if is_close:
                    return ranges
                current = min(next_position, end)
        position = next_position
    if current is not None:  # no closing delimiter: the last part runs to the end
        ranges.append((current, end))
    return ranges


def _count_lines(data: bytes, start: int, end: int) -> int:
    return data.count(b"\n", start, end) + (
        1 if end > start and not data[start:end].endswith(b"\n") else 0
    )


def parse_part(
    data: bytes, start: int, end: int, default_type: str = "text/plain", depth: int = 0
) -> Part:
    """The structure of the entity ``data[start:end]``."""
    header_end, body_start = _header_block_end(data, start, end)
    part = Part(header_start=start, header_end=header_end, body_start=body_start, body_end=end)
    headers = parse_headers(data[start:header_end])
    _describe(part, headers, default_type)
    if part.maintype == "multipart" and depth < MAX_DEPTH:
        boundary = param(part.params, "BOUNDARY")
        ranges = (
            _boundary_ranges(data, boundary.encode("utf-8", "surrogateescape"), body_start, end)
            if boundary
            else []
        )
        if ranges:
            child_default = "message/rfc822" if part.subtype == "digest" else "text/plain"
            part.children = [parse_part(data, s, e, child_default, depth + 1) for s, e in ranges]
        else:
            # Unusable multipart: present it as opaque application data.
            part.maintype, part.subtype = "application", "octet-stream"
    elif (
        (part.maintype, part.subtype) == ("message", "rfc822")
        and part.encoding in ("7BIT", "8BIT", "BINARY")
        and depth < MAX_DEPTH
    ):
        inner = parse_part(data, body_start, end, "text/plain", depth + 1)
        inner_header_end = inner.header_end
        part.message = inner
        part.envelope = envelope(parse_headers(data[body_start:inner_header_end]))
        part.lines = _count_lines(data, body_start, end)
    if part.maintype == "text":
        part.lines = _count_lines(data, body_start, end)
    return part


def parse_message(data: bytes) -> tuple[Part, dict[str, Any]]:
    """The top-level part and the envelope of a whole message."""
    top = parse_part(data, 0, len(data))
    headers = parse_headers(data[: top.header_end])
    return top, envelope(headers)


def find_section(top: Part, numbers: list[int]) -> Part | None:
    """The part a section number names (RFC 3501 §6.4.5), or None.

    For a message that is not multipart, part 1 is its body. The children of a
    message/rfc822 part are those of the message it encapsulates.
    """
    current = top
    for number in numbers:
        if current.message is not None:
            current = current.message
        if current.is_multipart:
            if not 1 <= number <= len(current.children):
                return None
            current = current.children[number - 1]
        elif number != 1:
            return None
    return current


def walk(part: Part) -> Iterator[Part]:
    """The part and all parts below it, depth first."""
    yield part
    for child in part.children:
        yield from walk(child)
    if part.message is not None:
        yield from walk(part.message)


def has_attachment(top: Part) -> bool:
    """Whether any part is an attachment (disposition, or a named non-text part)."""
    for part in walk(top):
        if part.disposition and part.disposition[0] == "attachment":
            return True
        named = param(part.params, "NAME") or (
            param(part.disposition[1], "FILENAME") if part.disposition else None
        )
        if named and part.maintype not in ("multipart", "text"):
            return True
    return False


# --- envelope ----------------------------------------------------------------------

_SPECIALS_IN_ADDRESSES: Final = '()<>@,;:\\".[]'


def _tokens(text: str) -> Iterator[tuple[str, str]]:
    """RFC 5322 tokens: ('q', quoted), ('c', comment), ('s', special), ('a', atom)."""
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in " \t\r\n":
            i += 1
        elif ch == '"':
            j, out = i + 1, []
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                out.append(text[j])
                j += 1
            yield ("q", "".join(out))
            i = j + 1
        elif ch == "(":
            depth, j = 1, i + 1
            while j < n and depth:
                if text[j] == "\\":
                    j += 1
                elif text[j] == "(":
                    depth += 1
                elif text[j] == ")":
                    depth -= 1
                j += 1
            yield ("c", text[i + 1 : j - 1])
            i = j
        elif ch in _SPECIALS_IN_ADDRESSES:
            yield ("s", ch)
            i += 1
        else:
            j = i
            while j < n and text[j] not in _SPECIALS_IN_ADDRESSES and text[j] not in " \t\r\n":
                j += 1
            yield ("a", text[i:j])
            i = j


def _address(words: list[tuple[str, str]]) -> list[Any] | None:
    """``[name, adl, mailbox, host]`` from the tokens of one address."""
    comments = [value for kind, value in words if kind == "c"]
    words = [(kind, value) for kind, value in words if kind != "c"]
    if not words:
        return None
    if ("s", "<") in words:
        at = words.index(("s", "<"))
        name = " ".join(value for kind, value in words[:at] if kind in ("a", "q")) or None
        inner = words[at + 1 :]
        if ("s", ">") in inner:
            inner = inner[: inner.index(("s", ">"))]
        route = None
        if ("s", ":") in inner:  # obsolete source route @a,@b:user@host
            colon = inner.index(("s", ":"))
            route = "".join(value for _kind, value in inner[:colon]) or None
            inner = inner[colon + 1 :]
        spec = inner
    else:
        name, route, spec = None, None, words
        if comments:
            name = comments[-1] or None
    if ("s", "@") in spec:
        at = len(spec) - 1 - spec[::-1].index(("s", "@"))
        local = "".join(value for _kind, value in spec[:at])
        domain = "".join(value for _kind, value in spec[at + 1 :])
    else:
        local = "".join(value for _kind, value in spec)
        domain = None
    if not local and not domain:
        return None
    return [name, route, local or None, domain or None]


def parse_addresses(text: str | None) -> list[list[Any]] | None:
    """An address list as IMAP ENVELOPE address structures, groups included.

    A group ``team: a@x, b@y;`` becomes ``[NIL NIL "team" NIL]``, its members, then
    ``[NIL NIL NIL NIL]`` (RFC 3501 §7.4.2). Display names stay as written
    (encoded words are not decoded: clients do that).
    """
    if text is None:
        return None
    result: list[list[Any]] = []
    current: list[tuple[str, str]] = []
    in_group = False
    in_angle = False
    for kind, value in _tokens(text):
        if kind == "s" and value == "<":
            in_angle = True
        elif kind == "s" and value == ">":
            in_angle = False
        if kind == "s" and value == ":" and not in_angle and not in_group:
            name = " ".join(v for k, v in current if k in ("a", "q"))
            result.append([None, None, name, None])
            in_group, current = True, []
        elif kind == "s" and value == "," and not in_angle:
            address = _address(current)
            if address:
                result.append(address)
            current = []
        elif kind == "s" and value == ";" and in_group and not in_angle:
            address = _address(current)
            if address:
                result.append(address)
            result.append([None, None, None, None])
            in_group, current = False, []
        else:
            current.append((kind, value))
    address = _address(current)
    if address:
        result.append(address)
    if in_group:
        result.append([None, None, None, None])
    return result or None


def envelope(headers: Message) -> dict[str, Any]:
    """The ENVELOPE fields (RFC 3501 §7.4.2) from a header block."""
    from_ = parse_addresses(_header(headers, "from"))
    sender = parse_addresses(_header(headers, "sender")) or from_
    reply_to = parse_addresses(_header(headers, "reply-to")) or from_
    return {
        "date": _header(headers, "date"),
        "subject": _header(headers, "subject"),
        "from": from_,
        "sender": sender,
        "reply-to": reply_to,
        "to": parse_addresses(_header(headers, "to")),
        "cc": parse_addresses(_header(headers, "cc")),
        "bcc": parse_addresses(_header(headers, "bcc")),
        "in-reply-to": _header(headers, "in-reply-to"),
        "message-id": _header(headers, "message-id"),
    }


def header_fields(data: bytes, part: Part, names: set[str], *, negate: bool = False) -> bytes:
    """``HEADER.FIELDS`` / ``HEADER.FIELDS.NOT`` of a part: the chosen header lines, as stored.

    The result ends with the blank line, as RFC 3501 §6.4.5 requires.
    """
    block = data[part.header_start : part.header_end]
    out: list[bytes] = []
    keep = False
    for line in block.split(b"\r\n"):
        if not line:
            continue
        if line[:1] in (b" ", b"\t"):
            if keep:
                out.append(line)
            continue
        name = line.split(b":", 1)[0].strip().decode("ascii", "replace").lower()
        keep = (name in names) != negate
        if keep:
            out.append(line)
    return b"".join(line + b"\r\n" for line in out) + b"\r\n"
