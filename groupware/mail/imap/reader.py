# SPDX-License-Identifier: GPL-3.0-or-later
"""The lexical layer of IMAP commands (RFC 3501 §4 and §9): atoms, strings, numbers, dates.

A :class:`Reader` walks one complete command, given as the text lines the client sent
(each but the last ending in a literal header such as ``{310}``) and the literal octets
that followed each header. Every method either returns a value or raises
:class:`ImapSyntaxError` with a short reason a client may be shown.

Leniency, where real clients need it: quoted strings may carry 8-bit octets (the value's
own decoding then decides: mailbox names must be modified UTF-7 unless UTF8=ACCEPT is
on, RFC 6855 §3); a date-time's day may be ``1``, `` 1`` or ``01``.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, NoReturn, TypeVar

from groupware.errors import GroupwareError
from groupware.mail.imap import utf7
from groupware.mail.imap.sequences import SequenceSet, SequenceSetError

T = TypeVar("T")

MAX_NUMBER: Final = 4_294_967_295  # number, nz-number (RFC 3501 §9)
MAX_NUMBER64: Final = 9_223_372_036_854_775_807  # number64, mod-sequence (RFC 7162 §7)
MAX_TAG_CHARS: Final = 100

# ATOM-CHAR: any CHAR except atom-specials ( ) { SP CTL % * " \ ]
_ATOM: Final = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\\]]+')
_ASTRING_ATOM: Final = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\]+')
_LIST_ATOM: Final = re.compile(rb'[^\x00-\x20\x7f-\xff(){"\\]+')
TAG: Final = re.compile(
    rb'[^\x00-\x20\x7f-\xff(){%*"\\+]{1,' + str(MAX_TAG_CHARS).encode() + rb"}(?= |\Z)"
)
_QUOTED: Final = re.compile(rb'"((?:[^"\\\r\n\x00]|\\["\\])*)"')
_UNESCAPE: Final = re.compile(rb"\\([\"\\])")
_LITERAL: Final = re.compile(rb"(~?)\{([0-9]+)(\+?)\}")
_FETCH_NAME: Final = re.compile(rb"[A-Za-z0-9.]+")
_SECTION_SPEC: Final = re.compile(rb"[A-Za-z0-9.]+")
_DIGITS: Final = re.compile(rb"[0-9]{1,20}")
_SEQUENCE: Final = re.compile(rb"[0-9:*,$]+")
_DATE: Final = re.compile(rb"([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})")
_DATE_TIME: Final = re.compile(
    rb'"( ?[0-9]{1,2})-([A-Za-z]{3})-([0-9]{4}) '
    rb'([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})"'
)
_MONTHS: Final = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),
        start=1,
    )
}
SYSTEM_FLAGS: Final = {
    flag.upper(): flag
    for flag in ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "\\Recent")
}
# Net-Unicode forbids these in UTF-8 mailbox names (RFC 6855 §3, RFC 5198 §2).
_BAD_UTF8_NAME_CHARS: Final = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class ImapSyntaxError(GroupwareError, ValueError):
    """A command does not follow the grammar; the session answers ``tag BAD reason``.

    Attributes:
        reason: short human-readable text, safe to send.
        status: ``BAD`` for syntax, ``NO`` for a well-formed request the server refuses
            (unknown CHARSET).
        code: a response code to send, e.g. ``BADCHARSET (US-ASCII UTF-8)``.
    """

    def __init__(self, reason: str, *, status: str = "BAD", code: str | None = None) -> None:
        """Carry the reason, status and code to the parser's rejection event."""
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.code = code


@dataclass(frozen=True, slots=True)
class LiteralData:
    """The octets of one literal and whether it was a ``literal8`` (``~{n}``)."""

    data: bytes = field(repr=False)
    is_binary: bool = False


def decode_mailbox(raw: bytes, *, utf8_accept: bool) -> str:
    """Decode a mailbox name or pattern as sent, without INBOX normalisation.

    Raises:
        ImapSyntaxError: not modified UTF-7 (or, with UTF8=ACCEPT, not Net-Unicode UTF-8).
    """
    if utf8_accept:
        # RFC 6855 §3: after ENABLE UTF8=ACCEPT the server sends names as UTF-8, so
        # a client echoes them as UTF-8; "&" is then an ordinary character.
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ImapSyntaxError("mailbox name is not valid UTF-8") from None
        if _BAD_UTF8_NAME_CHARS.search(name):
            raise ImapSyntaxError("mailbox name contains control characters")
        return name
    try:
        return utf7.decode(raw.decode("ascii"))
    except (UnicodeDecodeError, utf7.Utf7Error):
        raise ImapSyntaxError("mailbox name is not valid modified UTF-7") from None


class Reader:
    """A cursor over one command's text lines and literals."""

    def __init__(
        self, lines: Sequence[bytes], literals: Sequence[LiteralData], *, utf8_accept: bool
    ) -> None:
        """Start at the beginning of the first line.

        Args:
            lines: the command's lines without CRLF; every line but the last ends
                with the header of the literal at the same index.
            literals: the literals' octets.
            utf8_accept: UTF8=ACCEPT is enabled (RFC 6855).
        """
        self._lines = lines
        self._literals = literals
        self._index = 0
        self._line = lines[0]
        self._pos = 0
        self.utf8_accept = utf8_accept

    # --- position ------------------------------------------------------------------

    @staticmethod
    def fail(reason: str) -> NoReturn:
        """Reject the command.

        Raises:
            ImapSyntaxError: always.
        """
        raise ImapSyntaxError(reason)

    def peek(self) -> int:
        """The next octet, or -1 at the end of a line."""
        return self._line[self._pos] if self._pos < len(self._line) else -1

    def peek_char(self, chars: bytes) -> bool:
        """Whether the next octet is one of ``chars``."""
        return self._pos < len(self._line) and self._line[self._pos] in chars

    def at_end(self) -> bool:
        """Whether the whole command has been read."""
        return self._index == len(self._lines) - 1 and self._pos >= len(self._line)

    def end(self) -> None:
        """Require the end of the command."""
        if not self.at_end():
            self.fail("unexpected data at the end of the command")

    def expect(self, char: bytes, what: str) -> None:
        """Consume the octet ``char`` or fail with "expected ``what``"."""
        if not self._line.startswith(char, self._pos):
            self.fail(f"expected {what}")
        self._pos += 1

    def sp(self) -> None:
        """Consume the single space between two arguments."""
        if not self._line.startswith(b" ", self._pos):
            if self.at_end():
                self.fail("missing argument")
            self.fail("unexpected ')'" if self.peek() == 0x29 else "expected a space")
        self._pos += 1

    def skip(self, char: bytes) -> bool:
        """Consume ``char`` if it is next."""
        if self._line.startswith(char, self._pos):
            self._pos += 1
            return True
        return False

    def _match(self, pattern: re.Pattern[bytes]) -> re.Match[bytes] | None:
        match = pattern.match(self._line, self._pos)
        if match is not None:
            self._pos = match.end()
        return match

    # --- atoms and numbers -----------------------------------------------------------

    def tag(self) -> str:
        """The command tag (``tag`` in RFC 3501 §9)."""
        match = self._match(TAG)
        if match is None:
            self.fail("invalid tag")
        return match[0].decode("ascii")

    def atom(self, what: str) -> str:
        """An atom as text."""
        match = self._match(_ATOM)
        if match is None:
            self.fail(f"missing {what}" if self.at_end() else f"invalid {what}")
        return match[0].decode("ascii")

    def keyword(self, what: str) -> str:
        """An atom, upper-cased: command names, item names, options."""
        return self.atom(what).upper()

    def fetch_name(self) -> str:
        """A FETCH attribute name such as ``BODY.PEEK``, stopping before ``[``."""
        match = self._match(_FETCH_NAME)
        if match is None:
            self.fail("missing fetch attribute" if self.at_end() else "invalid fetch attribute")
        return match[0].decode("ascii").upper()

    def section_spec(self) -> str:
        """The text of a section up to a space or ``]``, upper-cased (may be empty)."""
        match = self._match(_SECTION_SPEC)
        return "" if match is None else match[0].decode("ascii").upper()

    def lookahead_keyword(self) -> str:
        """The next atom, upper-cased, without consuming it ("" if none)."""
        match = _ATOM.match(self._line, self._pos)
        return "" if match is None else match[0].decode("ascii").upper()

    def number(self, what: str, *, maximum: int = MAX_NUMBER, minimum: int = 0) -> int:
        """A decimal number in ``minimum..maximum``."""
        match = self._match(_DIGITS)
        if match is None or self.peek_char(b"0123456789"):
            self.fail(f"missing {what}" if self.at_end() else f"invalid {what}")
        value = int(match[0])
        if not minimum <= value <= maximum:
            self.fail(f"{what} out of range")
        return value

    # --- strings ---------------------------------------------------------------------

    def _literal(self, *, allow_binary: bool) -> bytes:
        match = _LITERAL.match(self._line, self._pos)
        if match is None or match.end() != len(self._line):
            self.fail("a literal must end the line")
        if match[1] and not allow_binary:
            self.fail("literal8 is only allowed in APPEND")
        data = self._literals[self._index].data
        self._index += 1
        self._line = self._lines[self._index]
        self._pos = 0
        return data

    def _quoted(self) -> bytes:
        match = self._match(_QUOTED)
        if match is None:
            self.fail("invalid quoted string")
        return _UNESCAPE.sub(rb"\1", match[1])

    def string(self, what: str) -> bytes:
        """A quoted string or a literal."""
        char = self.peek()
        if char == 0x22:  # "
            return self._quoted()
        if char in (0x7B, 0x7E):  # { or ~{
            return self._literal(allow_binary=False)
        self.fail(f"missing {what}" if self.at_end() else f"expected a string for {what}")

    def astring(self, what: str) -> bytes:
        """An atom (``]`` allowed), a quoted string or a literal."""
        if self._line.startswith(b"~{", self._pos):
            return self.string(what)
        match = self._match(_ASTRING_ATOM)
        if match is not None:
            return match[0]
        return self.string(what)

    def nstring(self, what: str) -> bytes | None:
        """``NIL`` or a string."""
        if self._line[self._pos : self._pos + 3].upper() == b"NIL" and not _ATOM.match(
            self._line, self._pos + 3
        ):
            self._pos += 3
            return None
        return self.string(what)

    def literal_data(self) -> LiteralData:
        """A literal or ``literal8`` (APPEND data)."""
        is_binary = self.peek() == 0x7E
        if not self.peek_char(b"{~"):
            self.fail("expected a literal with the message")
        return LiteralData(self._literal(allow_binary=True), is_binary)

    def text(self, raw: bytes, what: str) -> str:
        """Decode ``raw`` as UTF-8 (user names, passwords, ID values, header names)."""
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self.fail(f"{what} is not valid UTF-8")

    # --- IMAP values -----------------------------------------------------------------

    def mailbox(self) -> str:
        """A mailbox name, decoded; ``INBOX`` in any case becomes ``"INBOX"``."""
        name = decode_mailbox(self.astring("mailbox name"), utf8_accept=self.utf8_accept)
        return "INBOX" if name.upper() == "INBOX" else name

    def list_mailbox(self) -> str:
        """A LIST pattern: atom with wildcards or a string, decoded like a mailbox."""
        match = self._match(_LIST_ATOM)
        raw = match[0] if match is not None else self.string("mailbox pattern")
        return decode_mailbox(raw, utf8_accept=self.utf8_accept)

    def flag(self, *, allow_recent: bool = True) -> str:
        r"""A flag: ``\Seen`` and the other system flags in canonical case, or a keyword."""
        if self.skip(b"\\"):
            name = "\\" + self.atom("flag")
            canonical = SYSTEM_FLAGS.get(name.upper())
            if canonical == "\\Recent" and not allow_recent:
                self.fail("\\Recent cannot be set by a client")
            return canonical or name
        return self.atom("flag")

    def flag_list(self, *, allow_recent: bool = True) -> tuple[str, ...]:
        """``(flag ...)``, possibly empty."""
        return tuple(self.paren_list(lambda: self.flag(allow_recent=allow_recent), empty=True))

    def paren_list(self, item: Callable[[], T], *, empty: bool = False) -> list[T]:
        """``"(" item *(SP item) ")"``; ``empty`` allows ``()``."""
        self.expect(b"(", "'('")
        values: list[T] = []
        if self.skip(b")"):
            if not empty:
                self.fail("empty list")
            return values
        while True:
            values.append(item())
            if self.skip(b")"):
                return values
            if not self.peek_char(b" "):
                self.fail("unbalanced parenthesis" if self.at_end() else "expected ')'")
            self.sp()

    def date(self) -> datetime.date:
        """``date``: ``1-Feb-1994``, optionally in double quotes."""
        quoted = self.skip(b'"')
        match = self._match(_DATE)
        if match is None or (quoted and not self.skip(b'"')):
            self.fail("invalid date")
        day, month, year = match.groups()
        return _make_date(int(year), _MONTHS.get(month.upper().decode("ascii"), 0), int(day))

    def date_time(self) -> datetime.datetime:
        """``date-time``: ``"01-Feb-1994 21:52:25 -0800"`` with its zone."""
        match = self._match(_DATE_TIME)
        if match is None:
            self.fail("invalid date-time")
        day, month, year, hour, minute, second, sign, zone_h, zone_m = match.groups()
        date = _make_date(int(year), _MONTHS.get(month.upper().decode("ascii"), 0), int(day))
        offset_minutes = int(zone_h) * 60 + int(zone_m)
        if int(zone_h) > 23 or int(zone_m) > 59:
            self.fail("invalid time zone in date-time")
        zone = datetime.timezone(
            datetime.timedelta(minutes=offset_minutes * (-1 if sign == b"-" else 1))
        )
        try:
            return datetime.datetime.combine(
                date, datetime.time(int(hour), int(minute), int(second)), zone
            )
        except ValueError:
            self.fail("invalid time in date-time")

    def sequence_set(self, what: str = "sequence set") -> SequenceSet:
        """A ``sequence-set`` (or ``$``)."""
        match = self._match(_SEQUENCE)
        if match is None:
            self.fail(f"missing {what}" if self.at_end() else f"invalid {what}")
        try:
            return SequenceSet.parse(match[0].decode("ascii"))
        except SequenceSetError as exc:
            self.fail(str(exc))


def _make_date(year: int, month: int, day: int) -> datetime.date:
    try:
        return datetime.date(year, month, day)
    except ValueError:
        raise ImapSyntaxError("invalid date") from None
