"""Drive a CommandParser the way a session does: resume after pauses, arm raw lines."""

from __future__ import annotations

from collections.abc import Iterable

from groupware.mail.imap import commands as c
from groupware.mail.imap.parser import (
    CommandParser,
    CommandReady,
    CommandRejected,
    ContinuationNeeded,
    ParserEvent,
)


def run(parser: CommandParser, chunks: Iterable[bytes]) -> list[ParserEvent]:
    """Feed ``chunks`` in order; after IDLE/AUTHENTICATE ask for a raw line, as a session does."""
    events: list[ParserEvent] = []
    for chunk in chunks:
        new = parser.feed(chunk)
        while new:
            events.extend(new)
            last = new[-1]
            if isinstance(last, CommandReady) and isinstance(
                last.command, (c.Idle, c.Authenticate)
            ):
                parser.expect_raw_line()
            new = parser.feed(b"") if parser.has_pending_input else []
    return events


def events_of(data: bytes, **limits: int) -> list[ParserEvent]:
    """All events for ``data`` fed at once."""
    return run(CommandParser(**limits), [data])


def commands_of(data: bytes, **limits: int) -> list[c.Command]:
    """The commands in ``data``; fails on any rejection."""
    out = []
    for event in events_of(data, **limits):
        if isinstance(event, ContinuationNeeded):
            continue
        assert isinstance(event, CommandReady), event
        out.append(event.command)
    return out


def parse(line: bytes, **options: bool) -> c.Command:
    """The single command in ``line`` (CRLF appended)."""
    parser = CommandParser(**options)
    events = [e for e in run(parser, [line + b"\r\n"]) if not isinstance(e, ContinuationNeeded)]
    assert len(events) == 1, events
    assert isinstance(events[0], CommandReady), events[0]
    return events[0].command


def rejection(line: bytes, **options: bool) -> CommandRejected:
    """The rejection of ``line`` (CRLF appended), after checking the next command parses."""
    parser = CommandParser(**options)
    events = [
        e
        for e in run(parser, [line + b"\r\nnext NOOP\r\n"])
        if not isinstance(e, ContinuationNeeded)
    ]
    assert len(events) == 2, events
    assert isinstance(events[0], CommandRejected), events[0]
    assert events[1] == CommandReady(c.Noop("next")), events[1]
    return events[0]
