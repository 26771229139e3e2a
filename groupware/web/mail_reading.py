# SPDX-License-Identifier: GPL-3.0-or-later
"""The webmail's IMAP conversations for one message (no Flask here).

Opening a message is two FETCHes (RFC 3501 §6.4.5): ENVELOPE, FLAGS and
BODYSTRUCTURE first, then ``BODY.PEEK[section]`` of just the parts shown (the
text and HTML bodies, and the ``cid:`` images the HTML draws), never the whole
message with its attachments. ``PEEK`` leaves ``\\Seen`` alone; opening marks the
message read with its own STORE, so the source and attachment routes do not.
Parts are decoded from their transfer encoding (RFC 2045 §6) and charset here.
The same FETCH brings the header block (``BODY.PEEK[HEADER]``: the headers view,
and our ``Received:`` line that says whether the sender was authenticated) and a
calendar invitation's part, if there is one.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import quopri
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from imapclient import SEEN, IMAPClient  # type: ignore[import-untyped]

from groupware.web.mail_invitation import MAX_INVITATION_BYTES, is_calendar_part
from groupware.web.mail_structure import Mailbox, Part, header_text, mailboxes, parts_of

FLAGGED: Final = b"\\Flagged"
SUMMARY_FIELDS: Final = ["ENVELOPE", "FLAGS", "BODYSTRUCTURE", "RFC822.SIZE"]
#: The most inline-image bytes one message may embed in its frame as data: URLs.
MAX_INLINE_IMAGES_BYTES: Final = 10 * 1024 * 1024
INLINE_IMAGE_TYPES: Final = frozenset({"png", "gif", "jpeg", "webp"})
HEADER_SECTION: Final = "HEADER"


class MessageNotFoundError(LookupError):
    """No message with that UID in the folder (or no such part in it)."""


@dataclass(frozen=True, slots=True)
class OpenedMessage:
    """A message as the reading pane shows it (bodies decoded, HTML not yet cleaned)."""

    uid: int
    subject: str
    sender: list[Mailbox]
    reply_to: list[Mailbox]
    to: list[Mailbox]
    cc: list[Mailbox]
    date: datetime | None
    message_id: str
    size_bytes: int
    is_flagged: bool
    text: str | None
    html: str | None
    attachments: list[Part]
    inline_images: dict[str, str]  # Content-ID → data: URL
    #: The raw header block, as stored (our trace lines first).
    header_block: bytes = b""
    #: The first calendar part, decoded; None when there is none (or it is too large).
    calendar_text: str | None = None
    #: Whether there is a calendar part too large to read.
    has_oversized_calendar: bool = False


def decode_transfer(data: bytes, encoding: str) -> bytes:
    """A part's octets without their Content-Transfer-Encoding."""
    if encoding == "base64":
        try:
            return base64.b64decode(data, validate=False)
        except binascii.Error:
            # Broken padding is common in the wild: decode what is there.
            return binascii.a2b_base64(data + b"==")
    if encoding == "quoted-printable":
        return quopri.decodestring(data)
    return data


def decode_text(data: bytes, charset: str) -> str:
    """Text in its declared charset; an unknown charset is read as UTF-8."""
    try:
        codecs.lookup(charset)
    except LookupError:
        charset = "utf-8"
    return data.decode(charset, "replace")


def _select(client: IMAPClient, folder: str, *, readonly: bool) -> None:
    """Select ``folder``; one that does not exist holds no such message."""
    try:
        client.select_folder(folder, readonly=readonly)
    except IMAPClient.Error as exc:
        raise MessageNotFoundError(folder) from exc


def _select_message(client: IMAPClient, folder: str, uid: int, *, readonly: bool) -> Any:
    _select(client, folder, readonly=readonly)
    found = client.fetch([uid], SUMMARY_FIELDS)
    if uid not in found:
        raise MessageNotFoundError(uid)
    return found[uid]


def _first(parts: Sequence[Part], subtype: str) -> Part | None:
    return next((p for p in parts if p.mime == f"text/{subtype}" and not p.is_attachment), None)


def _fetch_sections(client: IMAPClient, uid: int, sections: Sequence[str]) -> dict[str, bytes]:
    """The raw octets of several parts in one FETCH."""
    if not sections:
        return {}
    items = [f"BODY.PEEK[{s}]" for s in sections]
    data = client.fetch([uid], items).get(uid, {})
    return {s: bytes(data.get(f"BODY[{s}]".encode(), b"") or b"") for s in sections}


def _inline_images(parts: Sequence[Part], html: str | None) -> list[Part]:
    """The cid: images the HTML refers to, within the size budget."""
    if html is None or "cid:" not in html.lower():
        return []
    chosen, budget = [], MAX_INLINE_IMAGES_BYTES
    for part in parts:
        is_image = part.media_type == "image" and part.subtype in INLINE_IMAGE_TYPES
        if part.content_id and is_image and part.size_bytes <= budget:
            chosen.append(part)
            budget -= part.size_bytes
    return chosen


def _calendar_part(parts: Sequence[Part]) -> Part | None:
    return next((p for p in parts if is_calendar_part(p.mime, p.filename)), None)


def open_message(client: IMAPClient, folder: str, uid: int, *, mark_seen: bool) -> OpenedMessage:
    """Read a message's envelope, bodies and attachment list; mark it read if asked.

    Raises:
        MessageNotFoundError: no such UID in the folder.
    """
    summary = _select_message(client, folder, uid, readonly=not mark_seen)
    parts = list(parts_of(summary[b"BODYSTRUCTURE"]))
    text_part, html_part = _first(parts, "plain"), _first(parts, "html")
    bodies = [p for p in (text_part, html_part) if p is not None]
    calendar = _calendar_part(parts)
    # base64 grows by a third: compare the decoded size with the limit.
    is_oversized = calendar is not None and calendar.size_bytes * 3 // 4 > MAX_INVITATION_BYTES
    if calendar is not None and not is_oversized:
        bodies.append(calendar)
    raw = _fetch_sections(client, uid, [HEADER_SECTION, *(p.section for p in bodies)])
    decoded = {
        p.section: decode_text(
            decode_transfer(raw[p.section], p.encoding),
            p.params.get("charset", "utf-8") if p is calendar else p.charset,
        )
        for p in bodies
    }
    html = decoded.get(html_part.section) if html_part else None
    images = _inline_images(parts, html)
    image_raw = _fetch_sections(client, uid, [p.section for p in images])
    inline = {
        p.content_id: f"data:{p.mime};base64,"
        + base64.b64encode(decode_transfer(image_raw[p.section], p.encoding)).decode()
        for p in images
    }
    flags = set(summary.get(b"FLAGS", ()))
    if mark_seen and SEEN not in flags:
        client.add_flags([uid], [SEEN], silent=True)
    envelope = summary[b"ENVELOPE"]
    return OpenedMessage(
        uid=uid,
        subject=header_text(envelope.subject),
        sender=mailboxes(envelope.from_),
        reply_to=mailboxes(envelope.reply_to),
        to=mailboxes(envelope.to),
        cc=mailboxes(envelope.cc),
        date=envelope.date,
        message_id=header_text(envelope.message_id),
        size_bytes=int(summary.get(b"RFC822.SIZE", 0)),
        is_flagged=FLAGGED in flags,
        text=decoded.get(text_part.section) if text_part else None,
        html=html,
        attachments=[p for p in parts if p.is_attachment],
        inline_images=inline,
        header_block=raw[HEADER_SECTION],
        calendar_text=decoded.get(calendar.section) if calendar and not is_oversized else None,
        has_oversized_calendar=is_oversized,
    )


def fetch_part(client: IMAPClient, folder: str, uid: int, section: str) -> tuple[Part, bytes]:
    """One part of a message, decoded from its transfer encoding.

    Raises:
        MessageNotFoundError: no such message or no such section in it.
    """
    summary = _select_message(client, folder, uid, readonly=True)
    part = next((p for p in parts_of(summary[b"BODYSTRUCTURE"]) if p.section == section), None)
    if part is None:
        raise MessageNotFoundError(uid)
    raw = _fetch_sections(client, uid, [section])[section]
    return part, decode_transfer(raw, part.encoding)


def header_block(client: IMAPClient, folder: str, uid: int) -> bytes:
    """The message's header block as stored (``BODY.PEEK[HEADER]``).

    Raises:
        MessageNotFoundError: no such message.
    """
    _select(client, folder, readonly=True)
    data = client.fetch([uid], ["BODY.PEEK[HEADER]"]).get(uid)
    if data is None:
        raise MessageNotFoundError(uid)
    return bytes(data.get(b"BODY[HEADER]", b"") or b"")


def raw_source(client: IMAPClient, folder: str, uid: int) -> bytes:
    """The whole message as stored (``BODY.PEEK[]``).

    Raises:
        MessageNotFoundError: no such message.
    """
    _select(client, folder, readonly=True)
    data = client.fetch([uid], ["BODY.PEEK[]"]).get(uid)
    if data is None:
        raise MessageNotFoundError(uid)
    return bytes(data.get(b"BODY[]", b""))
