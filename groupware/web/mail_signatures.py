# SPDX-License-Identifier: GPL-3.0-or-later
"""Identities on the compose page: the signature put in the text, and the reply's sender.

A signature is the plain text the person set for an identity
(``core.mail_preferences``). In a plain-text message it follows the usual
separator line ``-- `` (RFC 3676 §4.3), at the end of a new message and above the
quoted original of a reply or forward (where the person writes, as Thunderbird
and Roundcube put it). In the HTML editor it is a ``<div class="signature">``
block, escaped from the same text with line breaks, which the page's script
finds again to swap it when the person changes identity. A reply starts as the
identity the original was sent to (its To, then Cc, then ``Delivered-To``), when
the person has it. No Flask here.
"""

from __future__ import annotations

import email.utils
import html
from collections.abc import Iterable, Sequence
from typing import Final

from imapclient import IMAPClient  # type: ignore[import-untyped]

from groupware.core.mail_preferences import SIGNATURE_SEPARATOR, Identity

SIGNATURE_CLASS: Final = "signature"
#: The editor's empty first line, which a reply's and a forward's HTML start with.
EMPTY_PARAGRAPH: Final = "<p><br></p>"
DELIVERED_TO: Final = "Delivered-To"
_DELIVERED_FETCH: Final = f"BODY.PEEK[HEADER.FIELDS ({DELIVERED_TO.upper()})]"
_DELIVERED_KEY: Final = f"BODY[HEADER.FIELDS ({DELIVERED_TO.upper()})]".encode()


def signature_block(signature: str) -> str:
    """The signature behind its separator line ("" for no signature).

    A signature the person already started with the separator keeps only theirs.
    """
    if not signature.strip():
        return ""
    if signature == SIGNATURE_SEPARATOR or signature.startswith(SIGNATURE_SEPARATOR + "\n"):
        return signature
    return f"{SIGNATURE_SEPARATOR}\n{signature}"


def signature_html(signature: str) -> str:
    """The HTML editor's signature block: the text escaped, one ``<br>`` per line end."""
    block = signature_block(signature)
    if not block:
        return ""
    inner = "<br>".join(html.escape(line, quote=False) for line in block.split("\n"))
    return f'<div class="{SIGNATURE_CLASS}">{inner}</div>'


def with_text_signature(body: str, signature: str, *, above_quote: bool) -> str:
    """A plain-text start with the signature: at the end, or above the quoted original."""
    block = signature_block(signature)
    if not block:
        return body
    if above_quote:
        return f"\n\n{block}\n\n{body.lstrip(chr(10))}"
    return f"{body.rstrip(chr(10))}\n\n{block}\n"


def with_html_signature(fragment: str, signature: str, *, above_quote: bool) -> str:
    """An HTML start with the signature block: at the end, or under the first empty line."""
    block = signature_html(signature)
    if not block:
        return fragment
    if not above_quote:
        return f"{fragment or EMPTY_PARAGRAPH}{block}"
    rest = fragment.removeprefix(EMPTY_PARAGRAPH)
    return f"{EMPTY_PARAGRAPH}{block}{rest}"


def reply_identity(identities: Sequence[Identity], addressed_to: Iterable[str]) -> Identity | None:
    """The identity a reply is written as: the first address the original was sent to.

    ``None`` when none of them is the person's (the default identity then).
    """
    by_address = {identity.address.lower(): identity for identity in identities}
    for address in addressed_to:
        found = by_address.get(address.strip().lower())
        if found is not None:
            return found
    return None


def delivered_to(client: IMAPClient, folder: str, uid: int) -> list[str]:
    """The ``Delivered-To`` addresses of a message (none when it has no such header)."""
    client.select_folder(folder, readonly=True)
    fetched = client.fetch([uid], [_DELIVERED_FETCH]).get(uid, {})
    raw = fetched.get(_DELIVERED_KEY) or b""
    lines = raw.decode("utf-8", "replace").replace("\r\n ", " ").splitlines()
    values = [line.partition(":")[2] for line in lines if ":" in line]
    return [address for _name, address in email.utils.getaddresses(values) if address]
