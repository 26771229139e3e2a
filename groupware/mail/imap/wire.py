# SPDX-License-Identifier: GPL-3.0-or-later
"""Rendering of server responses (RFC 3501 §7 and §9 ``response``; RFC 6855 §3 for UTF-8).

Every function returns bytes; the ``tagged``/``untagged*``/``continuation`` helpers end
their line with CRLF, the others render one value to be joined with spaces.

Strings are written as an atom where the grammar allows one (:func:`astring`) and the
text is atom-safe, else as a quoted string when that is safe (7-bit, or UTF-8 after
``ENABLE UTF8=ACCEPT``; no CR, LF or NUL; at most :data:`MAX_QUOTED_BYTES`), else as a
synchronizing literal ``{n}``. ``literal8`` is never sent: BINARY fetch data that
contains NUL is the session's business.
"""

from __future__ import annotations

import base64
import datetime
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from groupware.mail.imap import utf7

CRLF: Final = b"\r\n"
NIL: Final = b"NIL"
MAX_QUOTED_BYTES: Final = 1024
TAGGED_STATUSES: Final = frozenset({"OK", "NO", "BAD"})
UNTAGGED_STATUSES: Final = frozenset({"OK", "NO", "BAD", "BYE", "PREAUTH"})
# ATOM-CHAR: any CHAR except atom-specials ( ) { SP CTL % * " \ ] (RFC 3501 §9)
_ATOM_SAFE: Final = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\\]]+')
_ASTRING_SAFE: Final = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\]+')
_QUOTED_SAFE_7BIT: Final = re.compile(rb"[\x01-\x09\x0b\x0c\x0e-\x7f]*")
_QUOTED_SAFE_8BIT: Final = re.compile(rb"[\x01-\x09\x0b\x0c\x0e-\xff]*")
_TEXT_UNSAFE: Final = re.compile(r"[\x00\r\n]")
_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)


@dataclass(frozen=True, slots=True)
class ResponseCode:
    """A response code: ``[UIDVALIDITY 3857529045]``, ``[READ-ONLY]``, ``[TOOBIG]``.

    Attributes:
        name: the atom, e.g. ``PERMANENTFLAGS``.
        data: what follows the name, already rendered (e.g. by :func:`flag_list`).
    """

    name: str
    data: bytes | None = None

    def render(self) -> bytes:
        """``[NAME data]``."""
        body = self.name.encode("ascii")
        if self.data is not None:
            body += b" " + self.data
        return b"[" + body + b"]"


def _as_bytes(value: str | bytes) -> bytes:
    if isinstance(value, bytes):
        return value
    return value.encode("utf-8")


def _is_quotable(data: bytes, *, utf8: bool) -> bool:
    if len(data) > MAX_QUOTED_BYTES:
        return False
    safe = _QUOTED_SAFE_8BIT if utf8 else _QUOTED_SAFE_7BIT
    if not safe.fullmatch(data):
        return False
    if utf8:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


def quoted(data: bytes) -> bytes:
    r"""``"..."`` with ``\`` and ``"`` escaped; the caller checked the octets are allowed."""
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def literal(data: bytes) -> bytes:
    """``{n}`` CRLF and the octets."""
    return b"{%d}\r\n" % len(data) + data


def string(value: str | bytes, *, utf8: bool = False) -> bytes:
    """A ``string``: quoted when safe, a literal otherwise.

    Args:
        value: text (encoded as UTF-8) or octets.
        utf8: UTF8=ACCEPT is enabled, so quoted strings may hold UTF-8.
    """
    data = _as_bytes(value)
    return quoted(data) if _is_quotable(data, utf8=utf8) else literal(data)


def astring(value: str | bytes, *, utf8: bool = False) -> bytes:
    """An ``astring``: a bare atom when possible (never ``NIL``), else :func:`string`."""
    data = _as_bytes(value)
    if _ASTRING_SAFE.fullmatch(data) and data.upper() != NIL:
        return data
    return string(data, utf8=utf8)


def nstring(value: str | bytes | None, *, utf8: bool = False) -> bytes:
    """``NIL`` for None, else :func:`string`."""
    return NIL if value is None else string(value, utf8=utf8)


def atom(value: str) -> bytes:
    """An atom, checked.

    Raises:
        ValueError: ``value`` holds a character an atom cannot.
    """
    data = value.encode("ascii", "replace")
    if not _ATOM_SAFE.fullmatch(data):
        raise ValueError(f"not an atom: {value!r}")
    return data


def number(value: int) -> bytes:
    """A decimal number."""
    return b"%d" % value


def paren_list(items: Iterable[bytes]) -> bytes:
    """``(a b c)`` from rendered items."""
    return b"(" + b" ".join(items) + b")"


def mailbox(name: str, *, utf8: bool = False) -> bytes:
    """A mailbox name: modified UTF-7 (RFC 3501 §5.1.3), or UTF-8 with UTF8=ACCEPT.

    Raises:
        ValueError: ``name`` has a lone surrogate (from :func:`utf7.encode`).
    """
    if name.upper() == "INBOX":
        return b"INBOX"
    if utf8:
        return astring(name, utf8=True)
    return astring(utf7.encode(name))


def flag_list(flags: Iterable[str]) -> bytes:
    r"""``(\Seen $Forwarded)``; flags are atoms or ``\``-atoms (``\*`` allowed)."""
    return paren_list(flag.encode("ascii") for flag in flags)


def internal_date(moment: datetime.datetime) -> bytes:
    """``"17-Jul-1996 02:44:25 -0700"`` (``date-time``), in ``moment``'s own zone.

    Raises:
        ValueError: ``moment`` is naive; the zone is part of the value.
    """
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError("internal dates need a time zone")
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    text = (
        f'"{moment.day:2d}-{_MONTHS[moment.month - 1]}-{moment.year:04d} '
        f'{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} {sign}{hours:02d}{minutes:02d}"'
    )
    return text.encode("ascii")


def _text(text: str, *, utf8: bool) -> bytes:
    cleaned = _TEXT_UNSAFE.sub(" ", text) or "done"
    return cleaned.encode("utf-8") if utf8 else cleaned.encode("ascii", "replace")


def _status(status: str, text: str, code: ResponseCode | str | None, utf8: bool) -> bytes:
    out = status.encode("ascii") + b" "
    if code is not None:
        rendered = code.render() if isinstance(code, ResponseCode) else b"[" + code.encode() + b"]"
        out += rendered + b" "
    return out + _text(text, utf8=utf8)


def tagged(
    tag: str, status: str, text: str, code: ResponseCode | str | None = None, *, utf8: bool = False
) -> bytes:
    """``tag OK [code] text`` CRLF; CR/LF in ``text`` become spaces.

    Args:
        tag: the command's tag.
        status: ``OK``, ``NO`` or ``BAD``.
        text: human-readable text.
        code: a :class:`ResponseCode` or its text (``"TOOBIG"``).
        utf8: UTF8=ACCEPT is enabled (else non-ASCII text becomes ``?``).

    Raises:
        ValueError: ``status`` is not a status.
    """
    if status not in TAGGED_STATUSES:
        raise ValueError(f"not a tagged status: {status!r}")
    return tag.encode("ascii") + b" " + _status(status, text, code, utf8) + CRLF


def untagged_status(
    status: str, text: str, code: ResponseCode | str | None = None, *, utf8: bool = False
) -> bytes:
    """``* OK [code] text`` CRLF (also ``NO``, ``BAD``, ``BYE``, ``PREAUTH``).

    Raises:
        ValueError: ``status`` is not a status.
    """
    if status not in UNTAGGED_STATUSES:
        raise ValueError(f"not an untagged status: {status!r}")
    return b"* " + _status(status, text, code, utf8) + CRLF


def untagged(data: bytes) -> bytes:
    """``* data`` CRLF, for data responses such as ``* 23 EXISTS``."""
    return b"* " + data + CRLF


def continuation(text: str = "Ready") -> bytes:
    """``+ text`` CRLF (command continuation request)."""
    return b"+ " + _text(text, utf8=False) + CRLF


def sasl_challenge(challenge: bytes) -> bytes:
    """``+ base64`` CRLF, an AUTHENTICATE challenge (RFC 3501 §6.2.2)."""
    return b"+ " + base64.b64encode(challenge) + CRLF
