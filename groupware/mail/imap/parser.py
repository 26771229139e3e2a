# SPDX-License-Identifier: GPL-3.0-or-later
"""Sans-IO IMAP command parser: bytes in, events out (RFC 3501 §2.2, §4.3, §7.5; RFC 7888).

The session feeds whatever the socket gave; :meth:`CommandParser.feed` returns events:

- :class:`CommandReady` — a complete command object;
- :class:`CommandRejected` — answer ``tag BAD reason`` (or ``* BAD`` when the tag was
  unreadable; ``status``/``code`` say when it is ``NO [BADCHARSET ...]`` instead); the
  parser has already skipped to the next command;
- :class:`ContinuationNeeded` — a synchronizing literal ``{n}`` was announced: send
  ``+ text``, the client then sends the ``n`` octets;
- :class:`LiteralRefused` — a literal is too big: answer ``tag NO [TOOBIG] reason``
  for ``{n}`` (the client will not send it) or ``tag BAD [TOOBIG] reason`` for ``{n+}``;
- :class:`RawLine` — after :meth:`CommandParser.expect_raw_line`: the next line as is
  (AUTHENTICATE responses, IDLE's ``DONE``);
- :class:`ConnectionMustClose` — the stream cannot be resynchronised: say ``* BYE``
  and close.

Design choices:

- **Oversized non-synchronizing literal** (``{n+}`` over the limit, RFC 7888 §4): the
  client sends the octets without waiting, so the parser answers at once with
  :class:`LiteralRefused` (``BAD [TOOBIG]``), then reads and discards the ``n`` octets
  and the rest of that command — memory stays constant however large ``n`` is — and
  parses the next command normally. Only a size that is not even a 32-bit ``number``
  (RFC 3501 §9), where discarding would never end, gives :class:`ConnectionMustClose`.
- **Over-long line**: :class:`CommandRejected` as soon as the limit is passed, then
  the rest of the line (and any ``{n+}`` literal it announces) is discarded.
- **Limits**: a line (text between literals) may hold ``max_line_bytes``; a literal
  ``max_literal_bytes`` in APPEND and ``max_line_bytes`` elsewhere (nobody needs a
  megabyte password); everything buffered for one command ``max_command_bytes``. The
  buffer never holds more than these plus the chunk being fed.
- **Pauses**: after :class:`CommandReady` for AUTHENTICATE, IDLE, STARTTLS or ENABLE,
  and after each :class:`RawLine`, ``feed`` stops and keeps the rest of the input:
  those commands change how the following bytes are read (a raw line, TLS, UTF-8
  names). Handle the events, call :meth:`~CommandParser.expect_raw_line` (or, after
  STARTTLS, :meth:`~CommandParser.discard_pending_input` — plaintext pipelined behind
  STARTTLS must not be trusted), then ``feed(b"")`` to go on.
- **UTF8=ACCEPT** (RFC 6855 §3), set ``utf8_accept`` after ``ENABLE UTF8=ACCEPT``:
  mailbox names are then read as UTF-8 as sent and ``&`` is an ordinary character (no
  modified UTF-7 decoding), because the server now sends names in UTF-8 and clients
  echo them; names with control characters are refused (Net-Unicode, RFC 5198).
  ``APPEND ... UTF8 (~{n})`` is accepted and ``SEARCH CHARSET`` is refused.

A session loop::

    events = parser.feed(data)
    while events:
        for event in events:
            handle(event)          # may call parser.expect_raw_line()
        events = parser.feed(b"") if parser.has_pending_input else []
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Final

from groupware.mail.imap import commands as c
from groupware.mail.imap.grammar import command_head, parse_command
from groupware.mail.imap.reader import MAX_NUMBER, ImapSyntaxError, LiteralData

_LITERAL_HEADER: Final = re.compile(rb"(~?)\{([0-9]+)(\+?)\}\Z")
_TAIL_BYTES: Final = 32  # enough to see "{4294967295+}" at the end of a discarded line
_PAUSE_AFTER: Final = (c.Authenticate, c.Idle, c.Starttls, c.Enable)
MIN_LINE_BYTES: Final = 1024


@dataclass(frozen=True, slots=True)
class CommandReady:
    """A complete, well-formed command."""

    command: c.Command


@dataclass(frozen=True, slots=True)
class CommandRejected:
    """A malformed command: answer ``tag status [code] reason`` (``*`` if no tag)."""

    tag: str | None
    reason: str
    status: str = "BAD"
    code: str | None = None


@dataclass(frozen=True, slots=True)
class ContinuationNeeded:
    """A synchronizing literal was announced: send ``+ text``."""

    text: str = "Ready for literal data"


@dataclass(frozen=True, slots=True)
class LiteralRefused:
    """A literal over the limit: answer ``tag status [code] reason``.

    ``status`` is ``NO`` for a synchronizing literal (the client sends nothing more
    for that command) and ``BAD`` for a non-synchronizing one (already on its way; the
    parser discards it).
    """

    tag: str
    reason: str
    status: str = "NO"
    code: str = "TOOBIG"


@dataclass(frozen=True, slots=True)
class RawLine:
    """The line asked for by :meth:`CommandParser.expect_raw_line`, without CRLF."""

    line: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class ConnectionMustClose:
    """The input cannot be resynchronised; send ``* BYE reason`` and close."""

    reason: str


ParserEvent = (
    CommandReady
    | CommandRejected
    | ContinuationNeeded
    | LiteralRefused
    | RawLine
    | ConnectionMustClose
)


class _State(enum.Enum):
    LINE = enum.auto()
    LITERAL = enum.auto()
    DISCARD_LINE = enum.auto()
    DISCARD_LITERAL = enum.auto()
    CLOSED = enum.auto()


class CommandParser:
    """Splits a client's byte stream into commands; never raises on any input."""

    def __init__(
        self,
        *,
        max_line_bytes: int = 64 * 1024,
        max_literal_bytes: int = 64 * 1024 * 1024,
        max_command_bytes: int | None = None,
        utf8_accept: bool = False,
    ) -> None:
        """Set the limits.

        Args:
            max_line_bytes: longest line (without CRLF) and longest literal outside
                APPEND; at least 1024.
            max_literal_bytes: longest literal in APPEND (one message).
            max_command_bytes: everything one command may buffer; default
                ``max_line_bytes + max_literal_bytes`` (raise it to allow
                MULTIAPPEND of several large messages).
            utf8_accept: UTF8=ACCEPT is on (RFC 6855); settable later as an attribute.

        Raises:
            ValueError: a limit is too small.
        """
        if max_line_bytes < MIN_LINE_BYTES or max_literal_bytes < 0:
            raise ValueError(f"max_line_bytes must be at least {MIN_LINE_BYTES}")
        self.max_line_bytes = max_line_bytes
        self.max_literal_bytes = max_literal_bytes
        self.max_command_bytes = (
            max_line_bytes + max_literal_bytes if max_command_bytes is None else max_command_bytes
        )
        self.utf8_accept = utf8_accept
        self._buffer = bytearray()
        self._start = 0  # first unconsumed octet of _buffer
        self._scan = 0  # where the search for the next LF resumes
        self._state = _State.LINE
        self._paused = False
        self._raw_pending = False
        # The command being collected.
        self._lines: list[bytes] = []
        self._literals: list[LiteralData] = []
        self._size = 0
        self._tag: str | None = None
        self._name = ""
        # The literal being read, or the octets being discarded.
        self._literal = bytearray()
        self._literal_binary = False
        self._remaining = 0
        self._discard_literals = True
        self._tail = b""

    @property
    def _is_closed(self) -> bool:
        return self._state is _State.CLOSED

    @property
    def has_pending_input(self) -> bool:
        """Whether input is buffered that ``feed(b"")`` would go on with."""
        return self._state is not _State.CLOSED and len(self._buffer) > self._start

    def expect_raw_line(self) -> None:
        """Deliver the next line, at a command boundary, as :class:`RawLine`."""
        self._raw_pending = True

    def discard_pending_input(self) -> None:
        """Forget buffered input and any partial command (after STARTTLS)."""
        self._buffer.clear()
        self._start = self._scan = 0
        self._reset_command()
        self._raw_pending = False
        if self._state is not _State.CLOSED:
            self._state = _State.LINE

    def feed(self, data: bytes) -> list[ParserEvent]:
        """Add input and return the events it completes (see the module docstring)."""
        events: list[ParserEvent] = []
        if self._is_closed:
            return events
        self._buffer += data
        self._paused = False
        while not self._paused and not self._is_closed and self._step(events):
            pass
        if self._start:
            del self._buffer[: self._start]
            self._scan -= self._start
            self._start = 0
        return events

    # --- the state machine ---------------------------------------------------------

    def _step(self, events: list[ParserEvent]) -> bool:
        if self._state is _State.LINE:
            return self._step_line(events)
        if self._state is _State.LITERAL:
            return self._step_literal()
        if self._state is _State.DISCARD_LITERAL:
            return self._step_discard_literal()
        return self._step_discard_line(events)

    def _step_line(self, events: list[ParserEvent]) -> bool:
        is_raw = self._raw_pending and not self._lines
        limit = self.max_line_bytes
        budget = self.max_command_bytes - self._size
        if not is_raw and budget < limit:
            limit = max(budget, 0)
        newline = self._buffer.find(b"\n", self._scan)
        if newline < 0:
            if len(self._buffer) - self._start > limit + 1:  # +1: a CR may come last
                self._overflow(events, is_raw, limit)
                return True
            self._scan = len(self._buffer)
            return False
        end = (
            newline - 1 if newline > self._start and self._buffer[newline - 1] == 0x0D else newline
        )
        if end - self._start > limit:
            self._overflow(events, is_raw, limit)
            return True
        line = bytes(self._buffer[self._start : end])
        self._start = self._scan = newline + 1
        if is_raw:
            self._raw_pending = False
            self._paused = True
            events.append(RawLine(line))
        else:
            self._line_done(line, events)
        return True

    def _overflow(self, events: list[ParserEvent], is_raw: bool, limit: int) -> None:
        reason = "line too long" if limit == self.max_line_bytes else "command too long"
        if is_raw:
            self._raw_pending = False
            events.append(CommandRejected(None, reason))
        else:
            tag = self._tag if self._lines else self._head_tag()
            events.append(CommandRejected(tag, reason))
        self._reset_command()
        self._discard_literals = not is_raw
        self._tail = b""
        self._state = _State.DISCARD_LINE

    def _head_tag(self) -> str | None:
        tag, _, _ = command_head(bytes(self._buffer[self._start : self._start + 128]))
        return tag

    def _line_done(self, line: bytes, events: list[ParserEvent]) -> None:
        if not self._lines:
            self._tag, self._name, problem = command_head(line)
        else:
            problem = None
        self._lines.append(line)
        self._size += len(line)
        header = _LITERAL_HEADER.search(line)
        if header is None:
            self._complete(events)
            return
        is_sync = not header[3]
        size = int(header[2]) if len(header[2]) <= 10 else MAX_NUMBER + 1
        tag = self._tag
        if problem is not None or tag is None or size > MAX_NUMBER:
            self._reset_command()
            if problem is None:
                problem = "literal size out of range"
            events.append(CommandRejected(tag, problem))
            if not is_sync:
                self._discard(size, events)
            return
        limit = self.max_literal_bytes if self._name == "APPEND" else self.max_line_bytes
        allowed = max(min(limit, self.max_command_bytes - self._size), 0)
        if size > allowed:
            self._reset_command()
            reason = f"literal too big (at most {allowed} octets)"
            events.append(LiteralRefused(tag, reason, "NO" if is_sync else "BAD"))
            if not is_sync:
                self._discard(size, events)
            return
        if size == 0:
            self._literals.append(LiteralData(b"", bool(header[1])))
            if is_sync:
                events.append(ContinuationNeeded())
            return
        if is_sync:
            events.append(ContinuationNeeded())
        self._literal_binary = bool(header[1])
        self._remaining = size
        self._state = _State.LITERAL

    def _discard(self, size: int, events: list[ParserEvent]) -> None:
        """Skip a non-synchronizing literal of ``size`` octets and the rest of its command."""
        if size > MAX_NUMBER:
            self._state = _State.CLOSED
            events.append(ConnectionMustClose("literal size out of range"))
            return
        self._remaining = size
        self._discard_literals = True
        self._state = _State.DISCARD_LITERAL

    def _step_literal(self) -> bool:
        available = len(self._buffer) - self._start
        if not available:
            return False
        take = min(self._remaining, available)
        self._literal += self._buffer[self._start : self._start + take]
        self._start = self._scan = self._start + take
        self._remaining -= take
        if not self._remaining:
            data = bytes(self._literal)
            self._literals.append(LiteralData(data, self._literal_binary))
            self._size += len(data)
            self._literal = bytearray()
            self._state = _State.LINE
        return True

    def _step_discard_literal(self) -> bool:
        if not self._remaining:
            self._tail = b""
            self._state = _State.DISCARD_LINE
            return True
        available = len(self._buffer) - self._start
        if not available:
            return False
        take = min(self._remaining, available)
        self._start = self._scan = self._start + take
        self._remaining -= take
        return True

    def _step_discard_line(self, events: list[ParserEvent]) -> bool:
        newline = self._buffer.find(b"\n", self._scan)
        end = len(self._buffer) if newline < 0 else newline
        if end > self._start:
            self._tail = (self._tail + self._buffer[max(self._start, end - _TAIL_BYTES) : end])[
                -_TAIL_BYTES:
            ]
        if newline < 0:
            progressed = end > self._start
            self._start = self._scan = end
            return progressed
        self._start = self._scan = newline + 1
        tail = self._tail[:-1] if self._tail.endswith(b"\r") else self._tail
        self._state = _State.LINE
        header = _LITERAL_HEADER.search(tail)
        if self._discard_literals and header is not None and header[3]:
            self._discard(int(header[2]) if len(header[2]) <= 10 else MAX_NUMBER + 1, events)
        return True

    def _complete(self, events: list[ParserEvent]) -> None:
        try:
            command = parse_command(self._lines, self._literals, utf8_accept=self.utf8_accept)
        except ImapSyntaxError as exc:
            events.append(CommandRejected(self._tag, exc.reason, exc.status, exc.code))
        else:
            events.append(CommandReady(command))
            if isinstance(command, _PAUSE_AFTER):
                self._paused = True
        self._reset_command()

    def _reset_command(self) -> None:
        self._lines = []
        self._literals = []
        self._size = 0
        self._tag = None
        self._name = ""
        self._literal = bytearray()
        self._remaining = 0
