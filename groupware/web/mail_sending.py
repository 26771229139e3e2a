# SPDX-License-Identifier: GPL-3.0-or-later
"""Writing mail from the webmail: build the message, submit it, keep the sent copy.

Mail leaves through the submission listener (RFC 6409) over implicit TLS
(RFC 8314), as any mail client's would, so the server's sender checks, quotas and
outbound queue apply. The webmail authenticates with SASL PLAIN (RFC 4616) as its
own identity with the person as authorization identity, as it does over IMAP. The
copy kept in Sent is APPENDed (RFC 3501 §6.3.11) with ``\\Seen``. Replies and
forwards start from the original's text, quoted. A message written in HTML is
sent as multipart/alternative (RFC 2046 §5.1.4: text first, HTML last, the
preferred); attachments make it multipart/mixed, and a message forwarded as an
attachment is a message/rfc822 part holding the original's octets unchanged
(RFC 2046 §5.2.1). No Flask here.
"""

from __future__ import annotations

import email.utils
import logging
import smtplib
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import SMTP
from typing import Final

from imapclient import SEEN, IMAPClient  # type: ignore[import-untyped]

from groupware.web.mail_access import MailAccess, MailUnavailableError
from groupware.web.mail_folders import folder_tree, special_folder
from groupware.web.mail_reading import OpenedMessage
from groupware.web.mail_structure import Mailbox

log = logging.getLogger(__name__)

#: Recipients of one message, all fields together (the server has its own limit too).
MAX_RECIPIENTS_COUNT: Final = 100
REPLY_PREFIX: Final = "Re: "
FORWARD_PREFIX: Final = "Fwd: "
SMTP_AUTH_OK: Final = 235  # RFC 4954 §6
RFC822: Final = "message/rfc822"


class AddressError(ValueError):
    """A recipient field holds something that is not an address."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class SubmissionRefusedError(Exception):
    """The submission server refused the message or some recipients."""

    def __init__(self, refused: Sequence[str]) -> None:
        super().__init__(", ".join(refused))
        self.refused = list(refused)


def parse_addresses(text: str) -> list[str]:
    """``a@x, "Name" <b@y>`` as formatted addresses.

    Raises:
        AddressError: one item has no ``local@domain`` form.
    """
    found: list[str] = []
    for name, address in email.utils.getaddresses([text.replace("\n", " ")]):
        local, at, domain = address.rpartition("@")
        if not address and not name:
            continue
        if not at or not local or "." not in domain or any(c in address for c in " <>,;"):
            raise AddressError(name or address)
        found.append(email.utils.formataddr((name, address)) if name else address)
    return found


_SPECIALS: Final = frozenset('()<>@,;:\\".[]')


def display_address(name: str, address: str) -> str:
    """``Name <address>`` as people type it (Unicode kept; quoted if the name needs it).

    ``email.utils.formataddr`` would encode a name like "Inès" as RFC 2047 words,
    which belong in a header, not in a form field.
    """
    if not name:
        return address
    if any(c in _SPECIALS for c in name):
        escaped = name.replace("\\", "\\\\").replace('"', '\\"')
        name = f'"{escaped}"'
    return f"{name} <{address}>"


def bare_address(formatted: str) -> str:
    """The address part of a formatted address (the envelope recipient)."""
    return email.utils.parseaddr(formatted)[1]


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file attached to a message: its name, media type and bytes."""

    name: str
    media_type: str
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Draft:
    """What the person wrote (``body`` is the text; ``html`` is empty for plain text)."""

    to: list[str]
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    subject: str = ""
    body: str = ""
    in_reply_to: str = ""
    references: str = ""
    html: str = ""
    attachments: list[Attachment] = field(default_factory=list)

    @property
    def recipients(self) -> list[str]:
        """Every envelope recipient, Bcc included, each once."""
        seen: dict[str, None] = {}
        for item in (*self.to, *self.cc, *self.bcc):
            seen.setdefault(bare_address(item).lower(), None)
        return list(seen)


def build_message(
    draft: Draft, sender: Mailbox, domain: str, *, keep_bcc: bool = False
) -> EmailMessage:
    """The RFC 5322 message; Bcc recipients appear in no header unless ``keep_bcc``.

    ``keep_bcc`` is for a draft kept in Drafts, which must remember them.
    """
    message = EmailMessage(policy=SMTP)
    # An Address object: the email package quotes the name or encodes it (RFC 2047).
    message["From"] = Address(display_name=sender.name, addr_spec=sender.address)
    if draft.to:
        message["To"] = ", ".join(draft.to)
    if draft.cc:
        message["Cc"] = ", ".join(draft.cc)
    if keep_bcc and draft.bcc:
        message["Bcc"] = ", ".join(draft.bcc)
    message["Subject"] = draft.subject
    message["Date"] = email.utils.formatdate(localtime=True)
    message["Message-ID"] = email.utils.make_msgid(domain=domain)
    if draft.in_reply_to:
        message["In-Reply-To"] = draft.in_reply_to
        references = draft.references.split()
        if draft.in_reply_to not in references:  # a resumed draft has it already
            references.append(draft.in_reply_to)
        message["References"] = " ".join(references)
    message["MIME-Version"] = "1.0"
    message.set_content(draft.body.replace("\r\n", "\n"))
    if draft.html:
        message.add_alternative(draft.html, subtype="html")
    for attachment in draft.attachments:
        _attach(message, attachment)
    return message


def _attach(message: EmailMessage, attachment: Attachment) -> None:
    if attachment.media_type == RFC822:
        # The original's octets as they are: the parser keeps them, the generator too.
        original = BytesParser(policy=SMTP).parsebytes(attachment.data)
        message.add_attachment(original, disposition="attachment", filename=attachment.name)
        return
    maintype, _slash, subtype = attachment.media_type.partition("/")
    message.add_attachment(
        attachment.data, maintype=maintype, subtype=subtype, filename=attachment.name
    )


def submit(
    access: MailAccess,
    login: str,
    message: EmailMessage,
    recipients: list[str],
    *,
    envelope_sender: str | None = None,
) -> None:
    """Hand the message to the submission listener, authenticated for ``login``.

    ``envelope_sender`` (MAIL FROM, where bounces go) defaults to the ``From``
    address; the webmail gives the person's own address when they write as an
    alias or a group, so that bounces come back to them.

    Raises:
        MailUnavailableError: the listener cannot be reached or refused the login.
        SubmissionRefusedError: it refused the message or some recipients.
    """
    if access.submission_address is None:
        raise MailUnavailableError("no submission server configured or running here")
    host, port = access.submission_address
    credential = f"{login}\0{access.master_login}\0{access.master_password}"
    sender = envelope_sender or bare_address(str(message["From"]))
    try:
        with smtplib.SMTP_SSL(
            host, port, context=access.tls, timeout=access.timeout_seconds
        ) as smtp:
            smtp.ehlo()  # smtplib's auth() does not say EHLO itself, unlike login()
            code, _text = smtp.auth("PLAIN", lambda _challenge=None: credential)
            if code != SMTP_AUTH_OK:  # smtplib also returns 503 as if it were success
                raise MailUnavailableError(f"submission login answered {code}")
            refused = smtp.send_message(message, from_addr=sender, to_addrs=recipients)
    except smtplib.SMTPAuthenticationError as exc:
        raise MailUnavailableError("submission login refused") from exc
    except smtplib.SMTPRecipientsRefused as exc:
        raise SubmissionRefusedError(sorted(exc.recipients)) from exc
    except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
        log.warning("webmail.submission.refused code=%s reply=%s", exc.smtp_code, exc.smtp_error)
        raise SubmissionRefusedError([sender]) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise MailUnavailableError(f"submission failed: {exc.__class__.__name__}") from exc
    if refused:
        raise SubmissionRefusedError(sorted(refused))


def save_sent_copy(client: IMAPClient, message: EmailMessage) -> bool:
    """APPEND the message to the Sent folder, read; whether there was one."""
    sent = special_folder(folder_tree(client), "sent")
    if sent is None:
        return False
    client.append(sent.name, message.as_bytes(policy=SMTP), flags=[SEEN])
    return True


def prefixed(subject: str, prefix: str) -> str:
    """``subject`` behind ``prefix`` (``Re: ``, ``Fwd: ``) unless it has it already."""
    return subject if subject.lower().startswith(prefix.lower().strip()) else prefix + subject


def quoted(text: str) -> str:
    """The original's text, each line behind ``> ``."""
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines())


@dataclass(frozen=True, slots=True)
class Prefill:
    """The compose form's starting values for a reply or forward."""

    to: str
    cc: str
    subject: str
    body: str
    in_reply_to: str
    references: str
    html: str = ""  # the editor's start when the original had HTML


def reply_prefill(
    original: OpenedMessage, own_addresses: Collection[str], *, to_all: bool, attribution: str
) -> Prefill:
    """Answer the sender (its Reply-To if any); ``to_all`` adds the other recipients.

    ``own_addresses`` (every address the person writes as) are left out of them.
    """
    own = {address.lower() for address in own_addresses}
    answer = original.reply_to or original.sender
    others = [m for m in (*original.to, *original.cc) if m.address.lower() not in own]
    to = [m for m in answer if m.address.lower() not in own] or answer
    to_addresses = {m.address.lower() for m in to}
    cc = [m for m in others if m.address.lower() not in to_addresses] if to_all else []
    body = f"\n\n{attribution}\n{quoted(original.text or '')}\n"
    return Prefill(
        to=", ".join(str(m) for m in to),
        cc=", ".join(str(m) for m in cc),
        subject=prefixed(original.subject, REPLY_PREFIX),
        body=body,
        in_reply_to=original.message_id,
        references="",  # ENVELOPE has no References; In-Reply-To is added to it
    )


def forward_prefill(original: OpenedMessage, header_block: str) -> Prefill:
    """Forward inline: the original's headers and text under the person's words."""
    return Prefill(
        to="",
        cc="",
        subject=prefixed(original.subject, FORWARD_PREFIX),
        body=f"\n\n{header_block}\n\n{original.text or ''}\n",
        in_reply_to="",
        references="",
    )
