"""Response rendering, and strings that survive a trip through the parser."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from groupware.mail.imap import commands as c
from groupware.mail.imap import wire
from groupware.mail.imap.parser import CommandParser, CommandRejected, LiteralRefused
from tests.mail_imap.support import parse

PST = datetime.timezone(datetime.timedelta(hours=-7))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("abc", b'"abc"'),
        ("", b'""'),
        ('say "hi" \\ bye', b'"say \\"hi\\" \\\\ bye"'),
        ("two\r\nlines", b"{10}\r\ntwo\r\nlines"),
        ("nul\x00", b"{4}\r\nnul\x00"),
        ("caf\u00e9", b"{5}\r\ncaf\xc3\xa9"),
        (b"raw\xff", b"{4}\r\nraw\xff"),
        ("x" * 1025, b"{1025}\r\n" + b"x" * 1025),
    ],
)
def test_string_is_quoted_when_safe_else_literal(value: str | bytes, expected: bytes) -> None:
    assert wire.string(value) == expected


def test_utf8_strings_are_quoted_once_utf8_is_enabled() -> None:
    assert wire.string("caf\u00e9", utf8=True) == b'"caf\xc3\xa9"'
    assert wire.string(b"\xff", utf8=True) == b"{1}\r\n\xff"
    assert wire.string("a\rb", utf8=True) == b"{3}\r\na\rb"


def test_astring_nstring_atom_number_list() -> None:
    assert wire.astring("INBOX") == b"INBOX"
    assert wire.astring("a]b") == b"a]b"
    assert wire.astring("NIL") == b'"NIL"'
    assert wire.astring("two words") == b'"two words"'
    assert wire.astring("") == b'""'
    assert wire.nstring(None) == b"NIL"
    assert wire.nstring("NIL") == b'"NIL"'
    assert wire.atom("EXISTS") == b"EXISTS"
    with pytest.raises(ValueError, match="atom"):
        wire.atom("two words")
    assert wire.number(4294967295) == b"4294967295"
    assert wire.paren_list([b"A", b"B"]) == b"(A B)"
    assert wire.paren_list([]) == b"()"
    assert wire.literal(b"") == b"{0}\r\n"


def test_mailbox_names() -> None:
    assert wire.mailbox("inbox") == b"INBOX"
    assert wire.mailbox("~peter/mail/台北/日本語") == b"~peter/mail/&U,BTFw-/&ZeVnLIqe-"
    assert wire.mailbox("Sent Items") == b'"Sent Items"'
    assert wire.mailbox("Tom & Jerry") == b'"Tom &- Jerry"'
    assert wire.mailbox("Entwürfe", utf8=True) == '"Entwürfe"'.encode()
    assert wire.mailbox("a%b") == b'"a%b"'


def test_flags_and_dates() -> None:
    assert wire.flag_list(["\\Seen", "$Forwarded"]) == b"(\\Seen $Forwarded)"
    assert wire.flag_list(["\\*"]) == b"(\\*)"
    assert wire.flag_list([]) == b"()"
    moment = datetime.datetime(1996, 7, 17, 2, 44, 25, tzinfo=PST)
    assert wire.internal_date(moment) == b'"17-Jul-1996 02:44:25 -0700"'
    early = datetime.datetime(
        2024, 2, 1, 9, 5, 0, tzinfo=datetime.timezone(datetime.timedelta(minutes=330))
    )
    assert wire.internal_date(early) == b'" 1-Feb-2024 09:05:00 +0530"'
    with pytest.raises(ValueError, match="zone"):
        wire.internal_date(datetime.datetime(2024, 1, 1))  # noqa: DTZ001


def test_status_responses() -> None:
    assert wire.tagged("a1", "OK", "LOGIN completed") == b"a1 OK LOGIN completed\r\n"
    assert wire.tagged("a", "NO", "too big", code="TOOBIG") == b"a NO [TOOBIG] too big\r\n"
    assert wire.tagged("a", "BAD", "evil\r\n* OK injected") == b"a BAD evil  * OK injected\r\n"
    assert wire.tagged("a", "OK", "d\u00e9j\u00e0") == b"a OK d?j?\r\n"
    code = wire.ResponseCode("UIDVALIDITY", b"3857529045")
    assert (
        wire.untagged_status("OK", "UIDs valid", code)
        == b"* OK [UIDVALIDITY 3857529045] UIDs valid\r\n"
    )
    flags = wire.ResponseCode("PERMANENTFLAGS", wire.flag_list(["\\Deleted", "\\Seen", "\\*"]))
    assert (
        wire.untagged_status("OK", "Limited", flags)
        == b"* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n"
    )
    assert wire.untagged_status("BYE", "Logging out") == b"* BYE Logging out\r\n"
    assert wire.untagged(b"23 EXISTS") == b"* 23 EXISTS\r\n"
    assert wire.continuation("Ready for literal data") == b"+ Ready for literal data\r\n"
    assert wire.sasl_challenge(b"") == b"+ \r\n"
    assert wire.sasl_challenge(b"\x00hi") == b"+ AGhp\r\n"
    with pytest.raises(ValueError, match="status"):
        wire.tagged("a", "BYE", "no")
    with pytest.raises(ValueError, match="status"):
        wire.untagged_status("MAYBE", "no")


def test_parser_events_render_into_responses() -> None:
    events = CommandParser(max_line_bytes=1024, max_literal_bytes=10).feed(
        b"a APPEND x {11}\r\n\r\n"
    )
    (refused, rejected) = events
    assert isinstance(refused, LiteralRefused)
    assert isinstance(rejected, CommandRejected)
    assert wire.tagged(refused.tag, refused.status, refused.reason, refused.code) == (
        b"a NO [TOOBIG] literal too big (at most 10 octets)\r\n"
    )
    assert wire.untagged_status(rejected.status, rejected.reason) == b"* BAD empty command line\r\n"


@given(st.text(), st.text())
def test_any_string_round_trips_through_login(userid: str, password: str) -> None:
    line = b"a LOGIN " + wire.astring(userid) + b" " + wire.astring(password)
    assert parse(line) == c.Login("a", userid, password)


@given(st.text(), st.text())
def test_any_string_round_trips_with_utf8_enabled(userid: str, password: str) -> None:
    line = b"a LOGIN " + wire.astring(userid, utf8=True) + b" " + wire.string(password, utf8=True)
    assert parse(line, utf8_accept=True) == c.Login("a", userid, password)


@given(st.text().filter(lambda name: name.upper() != "INBOX"))
def test_any_mailbox_name_round_trips(name: str) -> None:
    assert parse(b"a SELECT " + wire.mailbox(name)) == c.Select("a", name)


SAFE_UTF8_NAME = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs",),
        blacklist_characters="".join(map(chr, [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029])),
    )
).filter(lambda name: name.upper() != "INBOX")


@given(SAFE_UTF8_NAME)
def test_any_utf8_mailbox_name_round_trips(name: str) -> None:
    line = b"a RENAME " + wire.mailbox(name, utf8=True) + b" " + wire.mailbox("INBOX", utf8=True)
    assert parse(line, utf8_accept=True) == c.Rename("a", name, "INBOX")


@given(
    st.datetimes(
        min_value=datetime.datetime(1000, 1, 1),  # noqa: DTZ001
        max_value=datetime.datetime(9999, 12, 31),  # noqa: DTZ001
    ).map(lambda moment: moment.replace(microsecond=0)),
    st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59),
)
def test_internal_dates_round_trip_through_append(moment: datetime.datetime, minutes: int) -> None:
    aware = moment.replace(tzinfo=datetime.timezone(datetime.timedelta(minutes=minutes)))
    command = parse(b"a APPEND x " + wire.internal_date(aware) + b" {1+}\r\nX")
    assert isinstance(command, c.Append)
    stamp = command.messages[0].internal_date
    assert stamp == aware
    assert stamp is not None
    assert stamp.utcoffset() == aware.utcoffset()
