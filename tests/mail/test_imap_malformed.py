"""Malformed input: bad commands get a tagged BAD and the session goes on; broken
messages are still stored and served byte for byte (RFC 3501 §7.1.3, §6.4.5)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from groupware.core.directory import Person
from tests.mail.imap_support import RawImap, deliver, imap_server, logged_in, new_user
from tests.support.servers import RunningServer
from tests.support.waiting import wait_for

MAX_MESSAGE_BYTES = 200_000


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with imap_server(
        tmp_path_factory, "imap-malformed", smtp={"max_message_bytes": MAX_MESSAGE_BYTES}
    ) as server:
        yield server


@pytest.fixture(scope="module")
def person(live: RunningServer) -> Person:
    found = new_user(live)
    with logged_in(live, found) as client:
        client.append("INBOX", b"Subject: base\r\n\r\nbase\r\n")
    return found


@pytest.mark.parametrize(
    "line",
    [
        b"a1 FROBNICATE",
        b"a1 FETCH",
        b"a1 FETCH 1 (FLAGS",
        b"a1 FETCH 1 (BODY[99.HEADERS])",
        b"a1 FETCH 1:x FLAGS",
        b"a1 FETCH 99999999999999999999 FLAGS",
        b"a1 FETCH 0 FLAGS",
        b"a1 STORE 1 +FLAGS (\\Bogus",
        b"a1 STORE 1 TOGGLE (\\Seen)",
        b"a1 SEARCH BEFORE 32-Foo-2020",
        b"a1 SEARCH (((((",
        b"a1 SELECT",
        b'a1 SELECT "INBOX',
        b"a1 LIST",
        b"a1 UID FROB 1",
        b'a1 APPEND INBOX (\\Seen) "bad date" {3+}\r\nabc',
        b"a1 SORT SUBJECT UTF-8 ALL",
        b"a1 ENABLE",
        b"a1 STATUS INBOX (NONSENSE)",
        b"a1 NOOP extra",
        b"a1 CAPABILITY\x00",
        b"a1 LOGIN \xff\xfe x",
        b"a1  NOOP",
        b"a1 fetch 1 (flags)\tx",
    ],
)
def test_bad_command_gets_tagged_bad_and_session_goes_on(
    live: RunningServer, person: Person, line: bytes
) -> None:
    with RawImap(live) as raw:
        raw.login(person)
        raw.command(b"SELECT INBOX")
        raw.send(line + b"\r\n")
        _untagged, tagged = raw.read_until(b"a1")
        assert tagged.startswith(b"a1 BAD "), tagged
        _untagged, tagged = raw.command(b"FETCH 1 (UID)")
        assert b" OK " in tagged


def test_untagged_garbage_gets_untagged_bad(live: RunningServer) -> None:
    with RawImap(live) as raw:
        raw.send(b"\r\n")
        raw.send(b"(((\r\n")
        assert raw.read_line().startswith(b"* BAD")
        assert raw.read_line().startswith(b"* BAD")
        _untagged, tagged = raw.command(b"NOOP")
        assert b" OK " in tagged


def test_overlong_line_is_refused_and_the_next_command_works(live: RunningServer) -> None:
    with RawImap(live) as raw:
        raw.send(b"a1 NOOP " + b"x" * 200_000 + b"\r\n")
        _untagged, tagged = raw.read_until(b"a1")
        assert tagged.startswith(b"a1 BAD")
        _untagged, tagged = raw.command(b"NOOP")
        assert b" OK " in tagged


def test_too_big_literals_are_refused_without_reading_them(
    live: RunningServer, person: Person
) -> None:
    with RawImap(live) as raw:
        raw.login(person)
        raw.send(b"a1 APPEND INBOX {%d}\r\n" % (MAX_MESSAGE_BYTES + 1))
        assert raw.read_line().startswith(b"a1 NO [TOOBIG]")
        # A non-synchronizing one is sent anyway: refused, read and thrown away.
        raw.send(b"a2 APPEND INBOX {%d+}\r\n" % (MAX_MESSAGE_BYTES + 1))
        raw.send(b"x" * (MAX_MESSAGE_BYTES + 1) + b"\r\n")
        _untagged, tagged = raw.read_until(b"a2")
        assert tagged.startswith(b"a2 BAD [TOOBIG]")
        _untagged, tagged = raw.command(b"STATUS INBOX (MESSAGES)")
        assert b" OK " in tagged


def test_empty_append_is_no(live: RunningServer, person: Person) -> None:
    with RawImap(live) as raw:
        raw.login(person)
        _untagged, tagged = raw.command(b"APPEND INBOX {0+}\r\n")
        assert b" NO " in tagged or b" BAD " in tagged


BROKEN_MESSAGES = {
    "multipart without boundary": (
        b"Subject: sans frontiere\r\nContent-Type: multipart/mixed\r\n\r\n--x\r\nbody\r\n"
    ),
    "boundary never used": (
        b'Subject: frontiere absente\r\nContent-Type: multipart/mixed; boundary="zzz"\r\n\r\n'
        b"--yyy\r\nContent-Type: text/plain\r\n\r\ntexte\r\n--yyy--\r\n"
    ),
    "no closing boundary": (
        b'Subject: pas de fin\r\nContent-Type: multipart/alternative; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nun\r\n"
        b"--b\r\nContent-Type: text/html\r\n\r\n<p>deux"
    ),
    "no header at all": b"just a body line\r\nand another\r\n",
    "no blank line": b"Subject: que des en-tetes\r\nFrom: a@b.example",
    "header line without colon": b"Subject: ok\r\nthis is not a header\r\nFrom: x\r\n\r\nbody\r\n",
    "bad encoded words and 8-bit": (
        b"Subject: =?utf-8?q?cass=E9?= =?bogus?x?zz?= \xff\xfe\r\n"
        b"From: \xe9l\xe8ve <eleve@\xe9cole.example>\r\n"
        b"\r\n\xff\xfe\x00binary\r\n"
    ),
    "broken addresses": (
        b"From: (unterminated comment <a@b.example>\r\n"
        b'To: "unterminated quote <c@d.example>, ,, @, <>, group: ;\r\n'
        b"Cc: a@b@c, <<x@y>>\r\n\r\n.\r\n"
    ),
    "bad date and content type": (
        b"Date: yesterday at noon\r\nContent-Type: /; ;;=\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!\r\n"
    ),
    "broken rfc822 part": (
        b'Content-Type: multipart/mixed; boundary="m"\r\n\r\n--m\r\n'
        b"Content-Type: message/rfc822\r\n\r\nnot really a message\r\n--m--\r\n"
    ),
    "deep nesting": b"".join(
        b'Content-Type: multipart/mixed; boundary="n%d"\r\n\r\n--n%d\r\n' % (i, i)
        for i in range(60)
    )
    + b"\r\ninnermost\r\n",
}


@pytest.mark.parametrize("name", sorted(BROKEN_MESSAGES))
def test_broken_message_is_stored_and_served(live: RunningServer, name: str) -> None:
    message = BROKEN_MESSAGES[name]
    person = new_user(live)
    with RawImap(live) as raw:
        raw.login(person)
        _untagged, tagged = raw.command(b"APPEND INBOX {%d+}\r\n" % len(message) + message)
        assert b" OK [APPENDUID" in tagged, tagged
        raw.command(b"SELECT INBOX")
        untagged, tagged = raw.command(
            b"FETCH 1 (RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY BODY.PEEK[] BODY.PEEK[1]"
            b" BODY.PEEK[HEADER] BODY.PEEK[TEXT] BODY.PEEK[1.MIME] BODY.PEEK[2.1.TEXT])"
        )
        assert b" OK " in tagged, tagged
        response = b"".join(untagged)
        size = int(re.search(rb"RFC822.SIZE (\d+)", response).group(1))
        body = response.split(b"BODY[] {%d}\r\n" % size, 1)[1][:size]
        assert len(body) == size
        assert body.replace(b"\r\n", b"\n") == message.replace(b"\r\n", b"\n")
        _untagged, tagged = raw.command(b"SEARCH TEXT body HEADER From x")
        assert b" OK " in tagged
        _untagged, tagged = raw.command(b"SORT (SUBJECT FROM DATE) UTF-8 ALL")
        assert b" OK " in tagged


def test_broken_message_delivered_over_smtp_is_served(live: RunningServer) -> None:
    person = new_user(live)
    deliver(live, person.email, BROKEN_MESSAGES["bad encoded words and 8-bit"])
    with logged_in(live, person) as client:
        client.select_folder("INBOX")
        wait_for(lambda: client.noop() and client.search() == [1])
        data = client.fetch([1], ["ENVELOPE", "BODYSTRUCTURE", "BODY.PEEK[TEXT]"])[1]
    assert data[b"BODY[TEXT]"] == b"\xff\xfe\x00binary\r\n"


# Lines that change how the next bytes are read are left out: they are tested above.
_SAFE_BYTES = st.binary(min_size=1, max_size=80).filter(
    lambda line: not re.search(rb"[\r\n{]|IDLE|AUTHENTICATE|STARTTLS|LOGOUT", line, re.I)
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    words=st.lists(
        st.sampled_from(
            [
                b"FETCH",
                b"UID",
                b"STORE",
                b"SEARCH",
                b"1:*",
                b"(",
                b")",
                b"[",
                b"]",
                b'"',
                b"\\",
                b"BODY[",
                b"+FLAGS",
                b"NIL",
                b"*",
                b"$",
                b"0",
                b"4294967296",
                b"~",
                b"MOVE",
                b"INBOX",
            ]
        ),
        max_size=8,
    ),
    noise=_SAFE_BYTES,
)
def test_random_command_lines_never_end_the_session(
    live: RunningServer, person: Person, words: list[bytes], noise: bytes
) -> None:
    line = b" ".join(words) + b" " + noise
    with RawImap(live) as raw:
        raw.login(person)
        raw.command(b"SELECT INBOX")
        raw.send(b"r1 " + line + b"\r\n")
        raw.send(b"r2 FETCH 1 (UID)\r\n")
        untagged, tagged = raw.read_until(b"r2")
        assert tagged.startswith(b"r2 OK"), (line, untagged, tagged)
        assert not [r for r in untagged if r.startswith((b"* BYE", b"r1 NO [SERVERBUG]"))]
