"""Framing: literals, LITERAL+, limits, raw lines, pauses, chunking, garbage."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from groupware.mail.imap import commands as c
from groupware.mail.imap.parser import (
    CommandParser,
    CommandReady,
    CommandRejected,
    ConnectionMustClose,
    ContinuationNeeded,
    LiteralRefused,
    ParserEvent,
    RawLine,
)
from tests.mail_imap.support import run

LIMITS = {"max_line_bytes": 1024, "max_literal_bytes": 3000}
BIG = b"B" * 3500


def small_parser() -> CommandParser:
    return CommandParser(**LIMITS)


# A stream exercising every path of the framing, as a client (or attacker) might send it.
STREAM = b"".join(
    [
        b"a1 LOGIN {5}\r\nsmith {6}\r\nsesame\r\n",
        b"a2 APPEND INBOX (\\Seen) {12+}\r\nHello\r\nWorld\r\n",
        b"a3 APPEND Drafts ~{4}\r\n\x00{5}\r\n",
        b"a4 SELECT INBOX\n",
        b"a5 APPEND INBOX {3500}\r\n",  # refused: the client sends nothing more
        b"a6 APPEND INBOX {3500+}\r\n" + BIG + b" (\\Seen) {3+}\r\nabc\r\n",  # discarded
        b"a7 NOOP " + b"x" * 2000 + b" {4+}\r\nb NO\r\n",  # too long; its literal skipped
        b"a8 FROB {5}\r\n",  # unknown: refused before the continuation
        b"a9 FROB {5+}\r\nc NOP\r\n",  # unknown, literal skipped
        b"a10 IDLE\r\nDONE\r\n",
        b"a11 AUTHENTICATE PLAIN\r\ndGVzdAB0ZXN0AHRlc3Q=\r\n",
        b"a12 FETCH 1 (BODY.PEEK[HEADER.FIELDS (From {4}\r\nDate)])\r\n",
        b"\r\n",
        b"a13 LOGIN {0}\r\n {0+}\r\n\r\n",
        b"a14 FETCH 1:* (FLAGS\r\n",
        b"a15 LOGIN {99999999999}\r\n",
        b"a16 NOOP\r\n",
    ]
)


def expected_stream_events() -> list[str]:
    return [
        "ContinuationNeeded",
        "ContinuationNeeded",
        "Ready a1",
        "Ready a2",
        "ContinuationNeeded",
        "Ready a3",
        "Ready a4",
        "LiteralRefused a5",
        "LiteralRefused a6",
        "Rejected a7",
        "Rejected a8",
        "Rejected a9",
        "Ready a10",
        "RawLine",
        "Ready a11",
        "RawLine",
        "ContinuationNeeded",
        "Ready a12",
        "Rejected None",
        "ContinuationNeeded",
        "Ready a13",
        "Rejected a14",
        "Rejected a15",
        "Ready a16",
    ]


def summary(events: list[ParserEvent]) -> list[str]:
    out = []
    for event in events:
        if isinstance(event, CommandReady):
            out.append(f"Ready {event.command.tag}")
        elif isinstance(event, (CommandRejected, LiteralRefused)):
            out.append(f"{type(event).__name__.removeprefix('Command')} {event.tag}")
        else:
            out.append(type(event).__name__)
    return out


def test_stream_events_fed_at_once() -> None:
    events = run(small_parser(), [STREAM])
    assert summary(events) == expected_stream_events()
    ready = {e.command.tag: e.command for e in events if isinstance(e, CommandReady)}
    assert ready["a1"] == c.Login("a1", "smith", "sesame")
    assert ready["a2"].messages[0].data == b"Hello\r\nWorld"  # type: ignore[attr-defined]
    assert ready["a3"].messages[0].data == b"\x00{5}"  # type: ignore[attr-defined]
    assert ready["a13"] == c.Login("a13", "", "")
    refused = [e for e in events if isinstance(e, LiteralRefused)]
    assert [(e.status, e.code) for e in refused] == [("NO", "TOOBIG"), ("BAD", "TOOBIG")]
    raw = [e.line for e in events if isinstance(e, RawLine)]
    assert raw == [b"DONE", b"dGVzdAB0ZXN0AHRlc3Q="]


def test_stream_split_at_every_byte_boundary_gives_the_same_events() -> None:
    whole = run(small_parser(), [STREAM])
    for cut in range(1, len(STREAM)):
        assert run(small_parser(), [STREAM[:cut], STREAM[cut:]]) == whole, cut


def test_stream_fed_byte_by_byte_gives_the_same_events() -> None:
    whole = run(small_parser(), [STREAM])
    assert run(small_parser(), [bytes([b]) for b in STREAM]) == whole


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=40))
def test_any_chunking_gives_the_same_events(cuts: list[int]) -> None:
    points = [0, *sorted(cuts), len(STREAM)]
    chunks = [STREAM[a:b] for a, b in zip(points, points[1:], strict=False)]
    assert run(small_parser(), chunks) == run(small_parser(), [STREAM])


def test_synchronizing_literal_asks_for_continuation_before_the_data() -> None:
    parser = CommandParser()
    assert parser.feed(b"A003 APPEND saved-messages (\\Seen) {5}\r\n") == [ContinuationNeeded()]
    assert parser.feed(b"He") == []
    assert parser.feed(b"llo") == []
    (event,) = parser.feed(b"\r\n")
    assert isinstance(event, CommandReady)


def test_non_synchronizing_literal_needs_no_continuation() -> None:
    parser = CommandParser()
    assert parser.feed(b"A001 LOGIN {11+}\r\nFRED FOOBAR {7+}\r\nfat man\r\n") == [
        CommandReady(c.Login("A001", "FRED FOOBAR", "fat man"))
    ]


def test_literal_content_is_taken_verbatim() -> None:
    data = b"a LOGIN {11}\r\nx\r\ny NOOP\r\n {3}\r\n{3}\r\n"
    events = run(CommandParser(), [data])
    assert events[-1] == CommandReady(c.Login("a", "x\r\ny NOOP\r\n", "{3}"))


def test_oversized_synchronizing_literal_is_refused_and_the_next_line_is_a_command() -> None:
    parser = small_parser()
    events = parser.feed(b"a APPEND INBOX {3001}\r\nb NOOP\r\n")
    assert events == [
        LiteralRefused("a", "literal too big (at most 3000 octets)", "NO", "TOOBIG"),
        CommandReady(c.Noop("b")),
    ]


def test_oversized_literal_plus_is_refused_at_once_then_discarded() -> None:
    parser = small_parser()
    (refused,) = parser.feed(b"a APPEND INBOX {5000+}\r\n")
    assert refused == LiteralRefused("a", "literal too big (at most 3000 octets)", "BAD", "TOOBIG")
    # The literal looks like commands; none of it is parsed.
    payload = b"x NOOP\r\n" * 625
    assert parser.feed(payload[:2500]) == []
    assert parser.feed(payload[2500:]) == []
    assert parser.feed(b" {3+}\r\nabc more\r\nb NOOP\r\n") == [CommandReady(c.Noop("b"))]


def test_literal_outside_append_is_limited_to_the_line_limit() -> None:
    events = run(small_parser(), [b"a LOGIN {1025}\r\nb NOOP\r\n"])
    assert isinstance(events[0], LiteralRefused)
    assert events[1] == CommandReady(c.Noop("b"))
    ok = run(small_parser(), [b"a APPEND x {2000+}\r\n" + b"m" * 2000 + b"\r\n"])
    assert isinstance(ok[0], CommandReady)


def test_command_budget_bounds_multiappend() -> None:
    parser = CommandParser(max_line_bytes=1024, max_literal_bytes=3000, max_command_bytes=5000)
    data = b"a APPEND x {2500+}\r\n" + b"m" * 2500 + b" {2500+}\r\n" + b"n" * 2500 + b"\r\n"
    events = run(parser, [data + b"b NOOP\r\n"])
    assert [type(e).__name__ for e in events] == ["LiteralRefused", "CommandReady"]
    assert events[1] == CommandReady(c.Noop("b"))


def test_long_line_is_rejected_as_soon_as_the_limit_is_passed() -> None:
    parser = small_parser()
    assert parser.feed(b"t7 FETCH 1:* " + b"x" * 1000) == []
    assert parser.feed(b"x" * 100) == [CommandRejected("t7", "line too long")]
    assert parser.feed(b"y" * 10_000) == []
    assert parser.feed(b"\r\nb NOOP\r\n") == [CommandReady(c.Noop("b"))]


def test_long_continuation_line_keeps_the_tag() -> None:
    events = run(small_parser(), [b"t8 LOGIN {1}\r\nx " + b"y" * 2000 + b"\r\nb NOOP\r\n"])
    assert events == [
        ContinuationNeeded(),
        CommandRejected("t8", "line too long"),
        CommandReady(c.Noop("b")),
    ]


def test_memory_stays_bounded_under_a_flood_without_newlines() -> None:
    parser = small_parser()
    events = []
    for _ in range(200):
        events += parser.feed(b"z" * 50_000)
        assert len(parser._buffer) <= 50_000 + LIMITS["max_line_bytes"]  # noqa: SLF001
    assert events == [CommandRejected(None, "line too long")]


def test_literal_size_beyond_32_bits_closes_for_literal_plus_only() -> None:
    events = run(CommandParser(), [b"a LOGIN {4294967296}\r\nb NOOP\r\n"])
    assert events == [CommandRejected("a", "literal size out of range"), CommandReady(c.Noop("b"))]
    parser = CommandParser()
    assert parser.feed(b"a LOGIN {4294967296+}\r\nb NOOP\r\n") == [
        CommandRejected("a", "literal size out of range"),
        ConnectionMustClose("literal size out of range"),
    ]
    assert parser.feed(b"c NOOP\r\n") == []
    assert not parser.has_pending_input


def test_unknown_command_is_refused_before_its_literal_is_requested() -> None:
    parser = CommandParser()
    assert parser.feed(b"a XYZZY {5}\r\n") == [CommandRejected("a", "unknown command XYZZY")]
    assert parser.feed(b"b NOOP\r\n") == [CommandReady(c.Noop("b"))]


def test_bare_lf_and_crlf_are_both_line_ends() -> None:
    events = run(CommandParser(), [b"a NOOP\nb NOOP\r\nc LOGIN {1}\nx y\n"])
    assert events == [
        CommandReady(c.Noop("a")),
        CommandReady(c.Noop("b")),
        ContinuationNeeded(),
        CommandReady(c.Login("c", "x", "y")),
    ]


def test_authenticate_pauses_then_delivers_the_response_line() -> None:
    parser = CommandParser()
    events = parser.feed(b"a AUTHENTICATE PLAIN\r\ndGVzdAB0ZXN0AHRlc3Q=\r\nb NOOP\r\n")
    assert events == [CommandReady(c.Authenticate("a", "PLAIN"))]
    assert parser.has_pending_input
    parser.expect_raw_line()
    assert parser.feed(b"") == [RawLine(b"dGVzdAB0ZXN0AHRlc3Q=")]
    assert parser.feed(b"") == [CommandReady(c.Noop("b"))]


def test_idle_done() -> None:
    parser = CommandParser()
    assert parser.feed(b"A002 IDLE\r\n") == [CommandReady(c.Idle("A002"))]
    parser.expect_raw_line()
    assert parser.feed(b"DO") == []
    assert parser.feed(b"NE\r\n") == [RawLine(b"DONE")]
    assert parser.feed(b"A003 NOOP\r\n") == [CommandReady(c.Noop("A003"))]


def test_raw_line_too_long_is_rejected_untagged_and_literals_are_not_honoured() -> None:
    parser = small_parser()
    parser.expect_raw_line()
    events = parser.feed(b"Q" * 2000 + b" {5+}\r\nb NOOP\r\n")
    assert events == [CommandRejected(None, "line too long"), CommandReady(c.Noop("b"))]


def test_starttls_pauses_so_pipelined_plaintext_can_be_dropped() -> None:
    parser = CommandParser()
    assert parser.feed(b"a STARTTLS\r\nb LOGIN evil injected\r\n") == [
        CommandReady(c.Starttls("a"))
    ]
    assert parser.has_pending_input
    parser.discard_pending_input()
    assert not parser.has_pending_input
    assert parser.feed(b"") == []
    assert parser.feed(b"c NOOP\r\n") == [CommandReady(c.Noop("c"))]


def test_enable_pauses_so_utf8_accept_applies_to_the_next_command() -> None:
    parser = CommandParser()
    assert parser.feed(b"a ENABLE UTF8=ACCEPT\r\nb SELECT &AOk-\r\n") == [
        CommandReady(c.Enable("a", ("UTF8=ACCEPT",)))
    ]
    parser.utf8_accept = True
    assert parser.feed(b"") == [CommandReady(c.Select("b", "&AOk-"))]


@pytest.mark.parametrize("limit", [0, 1023])
def test_tiny_line_limit_is_a_configuration_error(limit: int) -> None:
    with pytest.raises(ValueError, match="max_line_bytes"):
        CommandParser(max_line_bytes=limit)


EVENT_TYPES = (
    CommandReady,
    CommandRejected,
    ContinuationNeeded,
    LiteralRefused,
    RawLine,
    ConnectionMustClose,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8))
def test_random_bytes_never_raise(chunks: list[bytes]) -> None:
    events = run(small_parser(), chunks)
    assert all(isinstance(event, EVENT_TYPES) for event in events)


TOKENS = [
    b" ",
    b"(",
    b")",
    b"[",
    b"]",
    b"<",
    b">",
    b".",
    b'"',
    b"\\",
    b"{",
    b"}",
    b"+",
    b"~",
    b"*",
    b"$",
    b":",
    b",",
    b"\r\n",
    b"\n",
    b"0",
    b"1",
    b"7",
    b"4294967296",
    b"NIL",
    b"UID",
    b"FETCH",
    b"STORE",
    b"SEARCH",
    b"SORT",
    b"APPEND",
    b"LOGIN",
    b"SELECT",
    b"LIST",
    b"STATUS",
    b"BODY",
    b"BODY.PEEK",
    b"HEADER.FIELDS",
    b"MIME",
    b"OR",
    b"NOT",
    b"CHARSET",
    b"UTF-8",
    b"RETURN",
    b"QRESYNC",
    b"CHANGEDSINCE",
    b"VANISHED",
    b"FLAGS",
    b"+FLAGS.SILENT",
    b"\\Seen",
    b"&AOk-",
    b"&",
    b"-",
    b"1-Feb-1994",
    b'"01-Feb-1994 21:52:25 -0800"',
    b"{3}",
    b"{3+}",
    b"~{2}",
    b"a1",
    b"IDLE",
    b"AUTHENTICATE",
    b"ENABLE",
    b"ID",
    b"SETQUOTA",
    b"\xff",
    b"\x00",
    b"=",
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=60), st.booleans())
def test_token_soup_never_raises(tokens: list[bytes], utf8_accept: bool) -> None:
    parser = CommandParser(max_line_bytes=1024, max_literal_bytes=100, utf8_accept=utf8_accept)
    events = run(parser, [b"t " + b"".join(tokens) + b"\r\n"])
    assert all(isinstance(event, EVENT_TYPES) for event in events)
    for event in events:
        if isinstance(event, CommandRejected):
            assert "\n" not in event.reason
            assert "\r" not in event.reason


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400).map(lambda b: b.replace(b"{", b"").replace(b"\n", b"")))
def test_after_garbage_without_literals_the_next_command_parses(garbage: bytes) -> None:
    events = run(small_parser(), [garbage + b"\r\nz9 NOOP\r\n"])
    assert events[-1] == CommandReady(c.Noop("z9"))
