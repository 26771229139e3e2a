"""Malformed commands are rejected with their tag, and the next command still parses."""

from __future__ import annotations

import pytest

from groupware.mail.imap import commands as c
from groupware.mail.imap.parser import CommandParser, CommandReady, CommandRejected
from tests.mail_imap.support import rejection, run


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"a1 SELECT (", "mailbox"),
        (b"a2 FETCH 1 (FLAGS", "parenthesis"),
        (b"a3 FETCH 1 (FLAGS))", "unexpected"),
        (b"a4 FETCH 0 FLAGS", "sequence set"),
        (b"a5 FETCH 1: FLAGS", "sequence set"),
        (b"a6 FETCH 1,,2 FLAGS", "sequence set"),
        (b"a7 FETCH 4294967296 FLAGS", "sequence set"),
        (b"a8 FROB x", "unknown command FROB"),
        (b"a9 LOGIN user", "missing"),
        (b"a10 LOGIN", "missing"),
        (b"a11", "missing command"),
        (b"a12 SEARCH SINCE 31-Feb-2020", "invalid date"),
        (b"a13 SEARCH BEFORE 1-Foo-2020", "invalid date"),
        (b"a14 SEARCH ON 2020-01-01", "invalid date"),
        (b"a15 NOOP extra", "unexpected"),
        (b"a16 UID NOOP", "not a command"),
        (b"a17 FETCH 1 BODY[HEADER.FIELDS ()]", "empty list"),
        (b"a18 STORE 1 FLAGS (\\Recent)", "Recent"),
        (b"a19 FETCH 1 (BODY[0])", "section"),
        (b"a20 FETCH 1 BODY[MIME]", "MIME"),
        (b"a21 SELECT INBOX (CONDSTORE CONDSTORE)", "twice"),
        (b"a22 FETCH 1 FLAGS (CHANGEDSINCE 1 VANISHED)", "VANISHED"),
        (b"a23 UID FETCH 1 FLAGS (VANISHED)", "VANISHED"),
        (b"a24 SELECT &Jjo", "modified UTF-7"),
        (b"a25 SELECT &AGE-", "modified UTF-7"),
        (b'a26 SELECT "caf\xc3\xa9"', "modified UTF-7"),
        (b'a27 LIST (RECURSIVEMATCH) "" *', "RECURSIVEMATCH"),
        (b"a28 AUTHENTICATE PLAIN !!!", "base64"),
        (b"a29 AUTHENTICATE PLAIN dGVzd", "base64"),
        (b"a30 FETCH 1 FOO", "unknown fetch attribute"),
        (b"a31 FETCH 1 (FLAGS ALL)", "list"),
        (b"a32 STORE 1 FLAGS.LOUD (\\Seen)", "store item"),
        (b"a33 SEARCH FOO", "unknown search key"),
        (b"a34 SEARCH", "missing"),
        (b"a35 SORT (SIZE) UTF-8", "missing"),
        (b"a36 SORT (WEIGHT) UTF-8 ALL", "sort key"),
        (b"a37 STATUS INBOX (MESSAGES COLOUR)", "status item"),
        (b'a38 APPEND INBOX (\\Seen) "99-Jan-2020 00:00:00 +0000" {1+}\r\nx', "date"),
        (b'a39 APPEND INBOX "01-Jan-2020 25:00:00 +0000" {1+}\r\nx', "time"),
        (b"a40 APPEND INBOX", "missing"),
        (b'a41 APPEND INBOX "x"', "date-time"),
        (b"a41b APPEND INBOX x", "literal"),
        (b"a42 FETCH 1 BODY[]<5>", "partial"),
        (b"a43 FETCH 1 BODY[1.]", "section"),
        (b'a44 LOGIN "unterminated', "quoted"),
        (b'a45 LOGIN "bad \\x escape" pw', "quoted"),
        (b"a46  NOOP", "command"),
        (b"a47 NOOP ", "unexpected"),
        (b"a48 SELECT INBOX (QRESYNC (1 2 1:*))", "known UIDs"),
        (b"a49 SELECT INBOX (QRESYNC (0 2))", "UIDVALIDITY"),
        (b"a50 ENABLE", "missing"),
        (b'a51 ID ("name")', "unexpected ')'"),
        (b"a52 FETCH 1 BODY.PEEK", "needs a section"),
        (b"a53 FETCH 1 BINARY[TEXT]", "part numbers"),
        (b"a54 CREATE x (USE (Sent))", "special-use"),
        (b"a55 SEARCH LARGER x", "size"),
        (b'a56 SEARCH MODSEQ "/flags/\\\\seen" weird 5', "entry type"),
        (b"a57 STORE 1 (UNCHANGEDSINCE x) FLAGS ()", "mod-sequence"),
        (b"a58 SELECT INBOX (FANCY)", "select parameter"),
        (b'a59 LIST "" * RETURN (COLOUR)', "return option"),
        (b"a60 SEARCH RETURN (MEDIAN) ALL", "return option"),
        (b"a61 SETQUOTA root (STORAGE)", "unexpected ')'"),
        (b"a62 LOGIN {3+}\r\nabc", "missing"),
        (b"a63 FETCH 1 (FLAGS) (CHANGEDSINCE 0)", "out of range"),
        (b"a64 SEARCH SMALLER 99999999999999999999999", "size"),
        (b"a65 FETCH 1 BODY[HEADER.FIELDS (Bad:Name)]", "header field"),
        (b"a67 LOGIN ~{1+}\r\nx y", "literal8"),
        (b"a68 SELECT INBOX\x00", "space"),
        (b"a69 SELECT {3+}\r\nx\x00y", "modified UTF-7"),
    ],
)
def test_malformed_command_is_rejected_with_its_tag(line: bytes, reason: str) -> None:
    rejected = rejection(line)
    assert rejected.tag == line.split(b" ")[0].decode()
    assert rejected.status == "BAD"
    assert reason.lower() in rejected.reason.lower(), rejected.reason
    assert "\r" not in rejected.reason
    assert "\n" not in rejected.reason


def test_literal8_in_append_is_fine() -> None:
    events = run(CommandParser(), [b"a66 APPEND x ~{1+}\r\nx\r\n"])
    assert isinstance(events[0], CommandReady)


@pytest.mark.parametrize(
    "line", [b"+ NOOP", b"* NOOP", b"(a) NOOP", b'"a" NOOP', b"a\\b NOOP", b"%x NOOP", b""]
)
def test_unreadable_tag_is_rejected_untagged(line: bytes) -> None:
    assert rejection(line).tag is None


def test_tag_too_long_is_unreadable() -> None:
    assert rejection(b"t" * 101 + b" NOOP").tag is None
    assert isinstance(run(CommandParser(), [b"t" * 100 + b" NOOP\r\n"])[0], CommandReady)


def test_unknown_charset_is_no_badcharset() -> None:
    rejected = rejection(b"a22 SEARCH CHARSET KOI8-R ALL")
    assert (rejected.tag, rejected.status) == ("a22", "NO")
    assert rejected.code == "BADCHARSET (US-ASCII UTF-8 ISO-8859-1)"
    assert rejection(b"a23 SORT (DATE) X-UNKNOWN ALL").status == "NO"


def test_invalid_bytes_for_the_charset_are_bad() -> None:
    rejected = rejection(b"a SEARCH CHARSET UTF-8 TEXT {2+}\r\n\xff\xfe")
    assert rejected.status == "BAD"
    assert "charset" in rejected.reason


def test_charset_is_refused_after_utf8_accept() -> None:
    parser = CommandParser(utf8_accept=True)
    events = run(parser, [b"a SEARCH CHARSET UTF-8 ALL\r\n"])
    assert events == [
        CommandRejected("a", "CHARSET is not allowed after ENABLE UTF8=ACCEPT", "BAD", None)
    ]


def test_utf8_names_with_controls_are_refused_when_utf8_accept_is_on() -> None:
    parser = CommandParser(utf8_accept=True)
    (event,) = run(parser, [b"a SELECT {3+}\r\na\x01b\r\n"])
    assert isinstance(event, CommandRejected)
    assert "control" in event.reason


def test_deeply_nested_search_is_rejected_not_crashing() -> None:
    depth_ok = b"a SEARCH " + b"(" * 30 + b"ALL" + b")" * 30
    assert isinstance(run(CommandParser(), [depth_ok + b"\r\n"])[0], CommandReady)
    rejected = rejection(b"a SEARCH " + b"(" * 500 + b"ALL" + b")" * 500)
    assert "nested" in rejected.reason
    rejected = rejection(b"a SEARCH " + b"NOT " * 500 + b"ALL")
    assert "nested" in rejected.reason


def test_every_rejection_resynchronises_on_the_next_line() -> None:
    data = b"".join(
        line + b"\r\n"
        for line in (
            b"a1 SELECT (",
            b"a2 NOOP",
            b")))",
            b"a3 FETCH 1:* (FLAGS",
            b"a4 CHECK",
        )
    )
    events = run(CommandParser(), [data])
    assert [type(e).__name__ for e in events] == [
        "CommandRejected",
        "CommandReady",
        "CommandRejected",
        "CommandRejected",
        "CommandReady",
    ]
    assert events[1] == CommandReady(c.Noop("a2"))
    assert events[4] == CommandReady(c.Check("a4"))
