# SPDX-License-Identifier: GPL-3.0-or-later
"""Drafts in the Drafts folder, and what a resumed draft or a forward starts from.

A draft is an ordinary message APPENDed to the Drafts special folder (RFC 6154)
with ``\\Draft`` and ``\\Seen`` (RFC 3501 §2.3.2), so any mail client shows it.
Saving again APPENDs the new version first, learns its UID from the
``APPENDUID`` response code (UIDPLUS, RFC 4315 §3), then deletes the previous
version and expunges it by UID (``UID EXPUNGE``), which touches no other message
marked deleted: there is one copy at a time, and never none. Resuming parses the
stored message back into recipients, subject, text, HTML and attachments. A
draft of a reply also keeps, in its own ``X-Groupware-Reply-To-Message`` header,
which message it answers (folder and UID), so that sending it later still marks
that one answered; a sent message never has the header. Its ``From`` is the
identity it is written as, read back on resuming. No Flask here.
"""

from __future__ import annotations

import email.utils
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import SMTP, default
from typing import Final, cast

from imapclient import SEEN, IMAPClient  # type: ignore[import-untyped]

from groupware.web.mail_folders import folder_tree, special_folder
from groupware.web.mail_reading import MessageNotFoundError, raw_source
from groupware.web.mail_sending import RFC822, Attachment, display_address
from groupware.web.mail_staging import clean_name

DRAFT: Final = b"\\Draft"
DELETED: Final = b"\\Deleted"
_APPENDUID: Final = re.compile(rb"\[APPENDUID (\d+) (\d+)\]", re.IGNORECASE)
FORWARDED_NAME_CHARS: Final = 80
ORIGIN_HEADER: Final = "X-Groupware-Reply-To-Message"


@dataclass(frozen=True, slots=True)
class Origin:
    """The message a reply answers: ``mode`` is ``reply`` or ``all``."""

    mode: str
    folder: str
    uid: int

    def header(self) -> str:
        """The header value: mode, UID, and the folder as a JSON string (ASCII)."""
        return f"{self.mode} {self.uid} {json.dumps(self.folder)}"

    @classmethod
    def parse(cls, value: str) -> Origin | None:
        """The origin a header names, or ``None`` when it is not one of ours."""
        mode, _space, rest = value.strip().partition(" ")
        uid, _space, folder = rest.partition(" ")
        try:
            name = json.loads(folder)
        except ValueError:
            return None
        if mode not in ("reply", "all") or not uid.isdigit() or not isinstance(name, str):
            return None
        return cls(mode, name, int(uid))


class NoDraftsFolderError(LookupError):
    """The mailbox has no folder marked ``\\Drafts``."""


def drafts_folder(client: IMAPClient) -> str:
    """The Drafts folder's name.

    Raises:
        NoDraftsFolderError: there is none.
    """
    found = special_folder(folder_tree(client), "drafts")
    if found is None:
        raise NoDraftsFolderError
    return str(found.name)


def save_draft(client: IMAPClient, message: EmailMessage, replaces: int | None) -> int:
    """Keep ``message`` in Drafts in place of draft ``replaces``; its new UID.

    Raises:
        NoDraftsFolderError: the mailbox has no Drafts folder.
        IMAPClient.Error: the server refused the APPEND or gave no APPENDUID.
    """
    folder = drafts_folder(client)
    answer = client.append(folder, message.as_bytes(policy=SMTP), flags=[DRAFT, SEEN])
    found = _APPENDUID.search(answer if isinstance(answer, bytes) else str(answer).encode())
    if found is None:
        raise IMAPClient.Error("the server gave no APPENDUID (UIDPLUS is required)")
    uid = int(found.group(2))
    if replaces is not None and replaces != uid:
        delete_draft(client, replaces, folder)
    return uid


def delete_draft(client: IMAPClient, uid: int, folder: str | None = None) -> None:
    """Remove draft ``uid`` for good (sent, discarded or replaced by a newer version)."""
    client.select_folder(folder or drafts_folder(client))
    client.add_flags([uid], [DELETED], silent=True)
    client.uid_expunge([uid])


@dataclass(frozen=True, slots=True)
class StoredDraft:
    """A draft read back from Drafts."""

    to: str
    cc: str
    bcc: str
    subject: str
    text: str
    html: str
    in_reply_to: str
    references: str
    attachments: list[Attachment] = field(default_factory=list)
    origin: Origin | None = None
    sender: str = ""  # the From address: the identity the draft was written as


def _header(message: EmailMessage, name: str) -> str:
    return str(message.get(name, "") or "").strip()


def _addresses(message: EmailMessage, name: str) -> str:
    values = message.get_all(name) or []
    pairs = email.utils.getaddresses([str(v) for v in values])
    return ", ".join(display_address(*p) for p in pairs if p[1])


def _body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_type() != f"text/{subtype}":
        return ""
    content = part.get_content()
    return content if isinstance(content, str) else ""


def _leaves(part: EmailMessage) -> Iterator[EmailMessage]:
    """Every part that is not a multipart, depth first (an attached message is one leaf)."""
    if part.get_content_maintype() == "multipart":
        for child in part.iter_parts():
            yield from _leaves(cast(EmailMessage, child))
        return
    yield part


def _is_attachment(part: EmailMessage) -> bool:
    """The reading pane's rule (``mail_structure.Part.is_attachment``), on a parsed part."""
    disposition = part.get_content_disposition() or ""
    if disposition == "attachment":
        return True
    if part.get_content_type() in ("text/plain", "text/html"):
        return bool(part.get_filename()) and disposition != "inline"
    return not (part["Content-ID"] and part.get_content_maintype() == "image")


def attachments_of(message: EmailMessage) -> list[Attachment]:
    """The attachments of a parsed message, decoded (an attached message as its octets)."""
    found: list[Attachment] = []
    for part in _leaves(message):
        if not _is_attachment(part):
            continue
        media_type = part.get_content_type()
        if media_type == RFC822:
            inner = part.get_payload(0)
            data = inner.as_bytes(policy=SMTP) if isinstance(inner, EmailMessage) else b""
        else:
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
        found.append(Attachment(clean_name(part.get_filename() or ""), media_type, data))
    return found


def parse_message(raw: bytes) -> EmailMessage:
    """Octets as a message with the modern API."""
    # policy=default makes EmailMessage objects; the stubs only know Message.
    return cast(EmailMessage, BytesParser(policy=default).parsebytes(raw))


def read_draft(client: IMAPClient, folder: str, uid: int) -> StoredDraft:
    """A stored draft as the compose form shows it.

    Raises:
        MessageNotFoundError: no such message.
    """
    message = parse_message(raw_source(client, folder, uid))
    return StoredDraft(
        to=_addresses(message, "To"),
        cc=_addresses(message, "Cc"),
        bcc=_addresses(message, "Bcc"),
        subject=_header(message, "Subject"),
        text=_body(message, "plain"),
        html=_body(message, "html"),
        in_reply_to=_header(message, "In-Reply-To"),
        references=_header(message, "References"),
        attachments=attachments_of(message),
        origin=Origin.parse(_header(message, ORIGIN_HEADER)),
        sender=email.utils.parseaddr(_header(message, "From"))[1],
    )


def original_attachments(client: IMAPClient, folder: str, uid: int) -> list[Attachment]:
    """The attachments of a message being forwarded."""
    return attachments_of(parse_message(raw_source(client, folder, uid)))


def original_as_attachment(client: IMAPClient, folder: str, uid: int, subject: str) -> Attachment:
    """The whole message, as a message/rfc822 attachment named after its subject."""
    raw = raw_source(client, folder, uid)
    if not raw:
        raise MessageNotFoundError(uid)
    name = clean_name((subject or "message")[:FORWARDED_NAME_CHARS] + ".eml")
    return Attachment(name, RFC822, raw)
