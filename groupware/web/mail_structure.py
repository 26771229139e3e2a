# SPDX-License-Identifier: GPL-3.0-or-later
"""What IMAP says about a message, as values: BODYSTRUCTURE parts and ENVELOPE text.

BODYSTRUCTURE (RFC 3501 §7.4.2, RFC 9051 §7.5.2) is a nest of lists whose field
positions depend on the part's type: text parts carry a line count, message/rfc822
parts an envelope, body and line count, and the extension data (MD5, disposition,
language, location) follows those. :func:`parts_of` turns it into flat
:class:`Part` values with their IMAP section numbers (``1``, ``1.2``...), which the
reader fetches with ``BODY.PEEK[section]``. ENVELOPE strings are raw header bytes,
possibly RFC 2047 encoded: :func:`header_text` decodes them. No Flask here.
"""

from __future__ import annotations

import email.errors
import email.header
import email.utils
import re
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

#: Media types shown in the reading pane rather than listed as attachments.
SHOWN_INLINE: Final = frozenset({("text", "plain"), ("text", "html")})
#: RFC 2231 continuations read at most (a file name, not a novel).
MAX_CONTINUATIONS: Final = 64
#: Control characters shown as a space in the headers view (tab stays).
_CONTROLS: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Part:
    """One leaf of a message's MIME tree."""

    section: str
    media_type: str  # lower case, e.g. "text"
    subtype: str  # lower case, e.g. "html"
    params: dict[str, str]
    content_id: str  # without angle brackets; "" when absent
    encoding: str  # lower case: "base64", "quoted-printable", "7bit"...
    size_bytes: int  # encoded size, as IMAP reports it
    disposition: str  # "attachment", "inline" or ""
    filename: str  # decoded; "" when absent

    @property
    def mime(self) -> str:
        """``type/subtype``."""
        return f"{self.media_type}/{self.subtype}"

    @property
    def charset(self) -> str:
        """The declared charset, else us-ascii (RFC 2045 §5.2)."""
        return self.params.get("charset", "us-ascii")

    @property
    def is_attachment(self) -> bool:
        """Listed for download: declared so, named, or not a text the reader shows."""
        if self.disposition == "attachment":
            return True
        if (self.media_type, self.subtype) in SHOWN_INLINE:
            return bool(self.filename) and self.disposition != "inline"
        # An image with a Content-ID is drawn by the HTML part (cid:), not listed.
        return not (self.content_id and self.media_type == "image")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _params(value: Any) -> dict[str, str]:
    """``("CHARSET" "utf-8" "NAME" "x")`` as a dict with lower-case keys."""
    if not isinstance(value, tuple | list):
        return {}
    items = [_text(v) for v in value]
    return {items[i].lower(): items[i + 1] for i in range(0, len(items) - 1, 2)}


def _disposition(value: Any) -> tuple[str, dict[str, str]]:
    if not isinstance(value, tuple | list) or not value:
        return "", {}
    params = _params(value[1]) if len(value) > 1 else {}
    return _text(value[0]).lower(), params


def _rfc2231(params: dict[str, str], name: str) -> str:
    """An RFC 2231 parameter (``name*``, or continuations ``name*0*``...), decoded."""
    if f"{name}*" in params:
        pieces = [(params[f"{name}*"], True)]
    else:
        pieces = []
        for number in range(MAX_CONTINUATIONS):
            if f"{name}*{number}*" in params:
                pieces.append((params[f"{name}*{number}*"], True))
            elif f"{name}*{number}" in params:
                pieces.append((params[f"{name}*{number}"], False))
            else:
                break
    if not pieces:
        return ""
    first, _is_encoded = pieces[0]
    charset = "utf-8"
    if pieces[0][1] and first.count("'") >= 2:
        charset, _language, first = first.split("'", 2)
        pieces[0] = (first, True)
    raw = "".join(
        urllib.parse.unquote_to_bytes(v).decode("latin-1") if encoded else v
        for v, encoded in pieces
    )
    try:
        return raw.encode("latin-1").decode(charset or "utf-8", "replace")
    except LookupError:
        return raw


def _filename(disposition_params: dict[str, str], params: dict[str, str]) -> str:
    raw = (
        _rfc2231(disposition_params, "filename")
        or disposition_params.get("filename")
        or _rfc2231(params, "name")
        or params.get("name")
        or ""
    )
    return header_text(raw).replace("/", "_").replace("\\", "_").strip()


def _leaf(body: Sequence[Any], section: str) -> Part:
    media_type, subtype = _text(body[0]).lower(), _text(body[1]).lower()
    params = _params(body[2])
    # Extension data starts after the basic fields and the type-specific ones.
    if media_type == "text":
        extension = 8
    elif (media_type, subtype) == ("message", "rfc822"):
        extension = 10
    else:
        extension = 7
    disposition, disposition_params = _disposition(
        body[extension + 1] if len(body) > extension + 1 else None
    )
    size = body[6] if len(body) > 6 and isinstance(body[6], int) else 0
    return Part(
        section=section,
        media_type=media_type,
        subtype=subtype,
        params=params,
        content_id=_text(body[3]).strip().strip("<>"),
        encoding=_text(body[5]).lower(),
        size_bytes=size,
        disposition=disposition,
        filename=_filename(disposition_params, params),
    )


def parts_of(structure: Any, prefix: str = "") -> Iterator[Part]:
    """Every leaf of an imapclient ``BodyData``, depth first, with its section number.

    A top-level single part is section ``1`` (RFC 3501 §6.4.5). An attached
    message (message/rfc822) is one leaf: it is downloaded whole, not opened here.
    """
    if isinstance(structure[0], list):  # multipart: children, then the subtype
        for number, child in enumerate(structure[0], start=1):
            yield from parts_of(child, f"{prefix}{number}.")
        return
    yield _leaf(structure, prefix.rstrip(".") or "1")


def multipart_subtypes(structure: Any) -> set[str]:
    """The subtypes of every multipart in the tree (``alternative``, ``related``...)."""
    if not isinstance(structure[0], list):
        return set()
    found = {_text(structure[1]).lower()}
    for child in structure[0]:
        found |= multipart_subtypes(child)
    return found


def has_attachments(structure: Any) -> bool:
    """Whether any part would be listed as an attachment (the list's paper-clip)."""
    return any(part.is_attachment for part in parts_of(structure))


def header_text(raw: Any) -> str:
    """A header value from ENVELOPE or BODYSTRUCTURE, RFC 2047 words decoded."""
    text = _text(raw)
    if "=?" not in text:
        return text
    try:
        return str(email.header.make_header(email.header.decode_header(text)))
    except (email.errors.HeaderParseError, LookupError, UnicodeDecodeError):
        return text


@dataclass(frozen=True, slots=True)
class Mailbox:
    """One address of an ENVELOPE field."""

    name: str
    address: str

    @property
    def shown(self) -> str:
        """The name when there is one, else the address."""
        return self.name or self.address

    def __str__(self) -> str:
        return email.utils.formataddr((self.name, self.address)) if self.name else self.address


def mailboxes(addresses: Any) -> list[Mailbox]:
    """imapclient ``Address`` tuples as mailboxes (group markers are skipped)."""
    found: list[Mailbox] = []
    for address in addresses or ():
        if address.host is None:  # start or end of a group (RFC 3501 §7.4.2)
            continue
        local, host = _text(address.mailbox), _text(address.host)
        found.append(Mailbox(header_text(address.name), f"{local}@{host}"))
    return found


def header_fields(block: bytes, *, is_decoded: bool = True) -> list[tuple[str, str]]:
    """Every field of a header block, in order, unfolded and RFC 2047 decoded.

    Read by hand rather than with ``email.parser``: a hostile block (8-bit bytes,
    lines without a colon, bare CR) must still be shown whole, as text. 8-bit
    values are read as UTF-8 (RFC 6532); a line that is no field is shown with an
    empty name. ``is_decoded=False`` leaves RFC 2047 words as they are (for checks
    on what a server wrote, which decoding could only blur).
    """
    fields: list[tuple[str, str]] = []
    for line in block.decode("utf-8", "replace").replace("\r\n", "\n").split("\n"):
        if not line.strip():
            continue
        if line[0] in " \t" and fields:  # a folded continuation (RFC 5322 §2.2.3)
            name, value = fields[-1]
            fields[-1] = (name, f"{value} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip() or " " in name.strip():
            fields.append(("", line.strip()))
        else:
            fields.append((name.strip(), value.strip()))
    if not is_decoded:
        return fields
    return [(name, _CONTROLS.sub(" ", header_text(value))) for name, value in fields]
