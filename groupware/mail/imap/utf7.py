# SPDX-License-Identifier: GPL-3.0-or-later
"""Modified UTF-7 for mailbox names (RFC 3501 §5.1.3).

Printable US-ASCII other than ``&`` stands for itself; ``&`` is written ``&-``; every
other character is UTF-16BE encoded in a modified base64 (``,`` instead of ``/``, no
padding) between ``&`` and ``-``. :func:`decode` is strict: it refuses what the RFC
forbids (8-bit or control characters, an unterminated shift, bad base64, leftover bits,
broken surrogate pairs, and printable ASCII hidden in base64 such as ``&AGE-`` for
``a``), because two spellings of one name would let a client create look-alike
mailboxes.
"""

from __future__ import annotations

import binascii
from typing import Final

from groupware.errors import GroupwareError

_STANDARD: Final = b"+/"
_MODIFIED: Final = b"+,"
_TO_STANDARD: Final = bytes.maketrans(_MODIFIED, _STANDARD)
_TO_MODIFIED: Final = bytes.maketrans(_STANDARD, _MODIFIED)
_BASE64_CHARS: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")


class Utf7Error(GroupwareError, ValueError):
    """A mailbox name is not valid modified UTF-7."""


def _is_direct(char: str) -> bool:
    """Whether ``char`` stands for itself (printable ASCII except ``&``)."""
    return " " <= char <= "~" and char != "&"


def _encode_run(run: str) -> str:
    try:
        utf16 = run.encode("utf-16-be")
    except UnicodeEncodeError as exc:
        raise Utf7Error("mailbox name contains a lone surrogate") from exc
    encoded = binascii.b2a_base64(utf16, newline=False).rstrip(b"=")
    return "&" + encoded.translate(_TO_MODIFIED).decode("ascii") + "-"


def encode(name: str) -> str:
    """Encode a mailbox name into modified UTF-7.

    Args:
        name: the name as the mail store knows it.

    Returns:
        A printable US-ASCII string.

    Raises:
        Utf7Error: ``name`` contains a lone surrogate, which UTF-16 cannot carry.
    """
    out: list[str] = []
    run_start: int | None = None
    for index, char in enumerate(name):
        if _is_direct(char):
            if run_start is not None:
                out.append(_encode_run(name[run_start:index]))
                run_start = None
            out.append(char)
        elif char == "&":
            if run_start is not None:
                out.append(_encode_run(name[run_start:index]))
                run_start = None
            out.append("&-")
        elif run_start is None:
            run_start = index
    if run_start is not None:
        out.append(_encode_run(name[run_start:]))
    return "".join(out)


def _decode_run(run: str) -> str:
    if not run or any(char not in _BASE64_CHARS for char in run):
        raise Utf7Error("bad base64 in mailbox name")
    if len(run) % 4 == 1:
        raise Utf7Error("truncated base64 in mailbox name")
    padded = run.encode("ascii").translate(_TO_STANDARD) + b"=" * (-len(run) % 4)
    raw = binascii.a2b_base64(padded)
    # The shortest encoding leaves no unused set bits: re-encoding must match.
    if binascii.b2a_base64(raw, newline=False).rstrip(b"=").translate(_TO_MODIFIED) != (
        run.encode("ascii")
    ):
        raise Utf7Error("non-canonical base64 in mailbox name")
    if len(raw) % 2:
        raise Utf7Error("odd number of UTF-16 bytes in mailbox name")
    try:
        text = raw.decode("utf-16-be")
    except UnicodeDecodeError as exc:
        raise Utf7Error("broken UTF-16 surrogate pair in mailbox name") from exc
    if any(_is_direct(char) for char in text):
        raise Utf7Error("printable ASCII must not be base64 encoded in a mailbox name")
    return text


def decode(name: str) -> str:
    """Decode a modified UTF-7 mailbox name.

    Args:
        name: the name as a client sent it.

    Returns:
        The name as text.

    Raises:
        Utf7Error: ``name`` is not valid modified UTF-7.
    """
    out: list[str] = []
    index = 0
    length = len(name)
    while index < length:
        char = name[index]
        if char == "&":
            end = name.find("-", index + 1)
            if end < 0:
                raise Utf7Error("unterminated '&' shift in mailbox name")
            if end == index + 1:
                out.append("&")
            else:
                out.append(_decode_run(name[index + 1 : end]))
            index = end + 1
        elif _is_direct(char):
            out.append(char)
            index += 1
        else:
            raise Utf7Error("mailbox name contains a character that must be encoded")
    return "".join(out)
