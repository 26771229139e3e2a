"""APPEND and FETCH bytes: CRLF storage, RFC822.SIZE, sections, partial fetches, BINARY,
ENVELOPE and BODYSTRUCTURE of a nested multipart (RFC 3501 §6.3.11, §6.4.5, §7.4.2;
RFC 3516; RFC 4315 APPENDUID)."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from imapclient.exceptions import IMAPClientError

from tests.mail.imap_support import (
    RawImap,
    deliver,
    imap_server,
    logged_in,
    new_user,
    simple_message,
)
from tests.support.servers import RunningServer
from tests.support.waiting import wait_for

PDF = b"%PDF-1.4\n% fake pdf for tests\n" * 3
PDF_BASE64 = (
    b"JVBERi0xLjQKJSBmYWtlIHBkZiBmb3IgdGVzdHMKJVBERi0xLjQKJSBmYWtlIHBkZiBmb3IgdGVz\r\n"
    b"dHMKJVBERi0xLjQKJSBmYWtlIHBkZiBmb3IgdGVzdHMK\r\n"
)
INNER = (
    b"From: Paul Roux <paul.roux@example.org>\r\n"
    b"To: renee.dupre@example.org\r\n"
    b"Subject: Salles\r\n"
    b"Date: Wed, 31 Aug 2022 18:00:00 +0200\r\n"
    b"Message-ID: <salles@example.org>\r\n"
    b"\r\n"
    b"Salle 12 ou 14 ?"
)
HEADER = (
    b"From: =?utf-8?q?Ren=C3=A9e_Dupr=C3=A9?= <renee.dupre@example.org>\r\n"
    b'To: =?iso-8859-1?q?=C9quipe?= <equipe@example.org>, "Doe, John" <john@example.org>\r\n'
    b"Cc: parents:;\r\n"
    b"Subject: =?utf-8?b?UsOpdW5pb24gZGUgcmVudHLDqWU=?=\r\n"
    b"Date: Thu, 1 Sep 2022 08:00:00 +0200\r\n"
    b"Message-ID: <rentree@example.org>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="outer"\r\n'
    b"\r\n"
)
PLAIN_BODY = b"Bonjour =C3=A0 tous,\r\nla r=C3=A9union est jeudi."
HTML_BODY = "<p>Bonjour à tous,</p>\r\n<p>la réunion est jeudi.</p>".encode()
ALTERNATIVE_BODY = (
    b"--alt\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n" + PLAIN_BODY + b"\r\n"
    b"--alt\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n" + HTML_BODY + b"\r\n"
    b"--alt--"
)
ATTACHMENT_MIME = (
    b'Content-Type: application/pdf; name="ordre du jour.pdf"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b'Content-Disposition: attachment; filename="ordre du jour.pdf"\r\n'
    b"\r\n"
)
TEXT = (
    b"This is a multi-part message in MIME format.\r\n"
    b"--outer\r\n"
    b'Content-Type: multipart/alternative; boundary="alt"\r\n'
    b"\r\n" + ALTERNATIVE_BODY + b"\r\n"
    b"--outer\r\n" + ATTACHMENT_MIME + PDF_BASE64 + b"--outer\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"Content-Description: Message d'origine\r\n"
    b"\r\n" + INNER + b"\r\n"
    b"--outer--\r\n"
)
MIXED = HEADER + TEXT

INNER_ENVELOPE = (
    b"Wed, 31 Aug 2022 18:00:00 +0200",
    b"Salles",
    ((b"Paul Roux", None, b"paul.roux", b"example.org"),),
    ((b"Paul Roux", None, b"paul.roux", b"example.org"),),
    ((b"Paul Roux", None, b"paul.roux", b"example.org"),),
    ((None, None, b"renee.dupre", b"example.org"),),
    None,
    None,
    None,
    b"<salles@example.org>",
)


def _plain(value: Any) -> Any:
    """imapclient's nested structure as tuples, strings lower-cased (case is not significant)."""
    if isinstance(value, list | tuple):
        return tuple(_plain(item) for item in value)
    if isinstance(value, bytes):
        return value.lower()
    return value


# Written by hand from RFC 3501 §7.4.2, as Dovecot answers for this message: sizes
# are body octets without the CRLF that belongs to the next boundary; text parts and
# the message/rfc822 part carry line counts; extension data follows.
BODYSTRUCTURE = (
    (
        (
            (b"text", b"plain", (b"charset", b"utf-8"), None, None, b"quoted-printable", 48, 2)
            + (None, None, None, None),
            (b"text", b"html", (b"charset", b"utf-8"), None, None, b"8bit", 54, 2)
            + (None, None, None, None),
        ),
        b"alternative",
        (b"boundary", b"alt"),
        None,
        None,
        None,
    ),
    (
        *(b"application", b"pdf", (b"name", b"ordre du jour.pdf"), None, None, b"base64", 122),
        None,
        (b"attachment", (b"filename", b"ordre du jour.pdf")),
        None,
        None,
    ),
    (
        *(b"message", b"rfc822", None, None, b"message d'origine", b"7bit", 178),
        _plain(INNER_ENVELOPE),
        (b"text", b"plain", (b"charset", b"us-ascii"), None, None, b"7bit", 16, 1)
        + (None, None, None, None),
        7,
        None,
        None,
        None,
        None,
    ),
)
BODYSTRUCTURE_TAIL = (b"mixed", (b"boundary", b"outer"), None, None, None)


def _flatten_multipart(structure: Any) -> Any:
    """imapclient gives ``([children], subtype, ...)``; make it ``(*children, subtype, ...)``."""
    if (
        isinstance(structure, tuple)
        and structure
        and isinstance(structure[0], tuple)
        and (structure[0] and isinstance(structure[0][0], tuple))
    ):
        children = tuple(_flatten_multipart(child) for child in structure[0])
        return children, *structure[1:]
    return structure


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with imap_server(tmp_path_factory, "imap-fetch") as server:
        yield server


@pytest.fixture(scope="module")
def mixed(live: RunningServer) -> Any:
    """A user whose INBOX holds MIXED as UID 1."""
    person = new_user(live)
    with logged_in(live, person) as client:
        response = client.append("INBOX", MIXED)
    assert re.match(rb"\[APPENDUID \d+ 1\]", response)
    return person


def test_message_data_is_crlf_and_size_is_what_body_returns(live: RunningServer, mixed) -> None:
    with logged_in(live, mixed) as client:
        client.select_folder("INBOX", readonly=True)
        data = client.fetch([1], ["RFC822.SIZE", "BODY.PEEK[]"])[1]
    assert data[b"BODY[]"] == MIXED
    assert data[b"RFC822.SIZE"] == len(MIXED) == 1324


def test_bare_lf_message_is_stored_with_crlf(live: RunningServer) -> None:
    person = new_user(live)
    message = b"From: a@example.org\nSubject: lf\n\nligne 1\nligne 2\rligne 3\n"
    with logged_in(live, person) as client:
        client.append("INBOX", message)
        client.select_folder("INBOX")
        data = client.fetch([1], ["RFC822.SIZE", "BODY.PEEK[]", "RFC822.HEADER"])[1]
    expected = b"From: a@example.org\r\nSubject: lf\r\n\r\nligne 1\r\nligne 2\r\nligne 3\r\n"
    assert data[b"BODY[]"] == expected
    assert data[b"RFC822.SIZE"] == len(expected)
    assert data[b"RFC822.HEADER"] == b"From: a@example.org\r\nSubject: lf\r\n\r\n"


def test_delivered_message_size_matches_its_bytes(live: RunningServer) -> None:
    person = new_user(live)
    deliver(live, person.email, simple_message("par smtp"))
    with logged_in(live, person) as client:
        client.select_folder("INBOX")
        wait_for(lambda: client.noop() and client.search() == [1])
        data = client.fetch([1], ["RFC822.SIZE", "BODY.PEEK[]"])[1]
    assert data[b"BODY[]"].startswith(b"Return-Path: <alice@outside.example>\r\n")
    assert data[b"BODY[]"].endswith(simple_message("par smtp"))
    assert data[b"RFC822.SIZE"] == len(data[b"BODY[]"])


@pytest.mark.parametrize(
    ("item", "key", "expected"),
    [
        ("BODY.PEEK[]<0.10>", b"BODY[]<0>", MIXED[:10]),
        ("BODY.PEEK[]<1320.100>", b"BODY[]<1320>", MIXED[1320:]),
        ("BODY.PEEK[]<5000.10>", b"BODY[]<5000>", b""),
        ("BODY.PEEK[HEADER]", b"BODY[HEADER]", HEADER),
        ("BODY.PEEK[TEXT]", b"BODY[TEXT]", TEXT),
        ("BODY.PEEK[TEXT]<3.4>", b"BODY[TEXT]<3>", TEXT[3:7]),
        (
            "BODY.PEEK[HEADER.FIELDS (SUBJECT)]",
            b"BODY[HEADER.FIELDS (SUBJECT)]",
            b"Subject: =?utf-8?b?UsOpdW5pb24gZGUgcmVudHLDqWU=?=\r\n\r\n",
        ),
        (
            "BODY.PEEK[HEADER.FIELDS (message-id CC)]",
            b"BODY[HEADER.FIELDS (MESSAGE-ID CC)]",
            b"Cc: parents:;\r\nMessage-ID: <rentree@example.org>\r\n\r\n",
        ),
        (
            "BODY.PEEK[HEADER.FIELDS.NOT (From To Cc Subject Date Mime-Version Content-Type)]",
            b"BODY[HEADER.FIELDS.NOT (FROM TO CC SUBJECT DATE MIME-VERSION CONTENT-TYPE)]",
            b"Message-ID: <rentree@example.org>\r\n\r\n",
        ),
        ("BODY.PEEK[1]", b"BODY[1]", ALTERNATIVE_BODY),
        ("BODY.PEEK[1.1]", b"BODY[1.1]", PLAIN_BODY),
        ("BODY.PEEK[1.2]", b"BODY[1.2]", HTML_BODY),
        ("BODY.PEEK[1.2]<3.7>", b"BODY[1.2]<3>", HTML_BODY[3:10]),
        ("BODY.PEEK[2]", b"BODY[2]", PDF_BASE64[:-2]),
        ("BODY.PEEK[2.MIME]", b"BODY[2.MIME]", ATTACHMENT_MIME),
        ("BODY.PEEK[3]", b"BODY[3]", INNER),
        ("BODY.PEEK[3.HEADER]", b"BODY[3.HEADER]", INNER.split(b"\r\n\r\n")[0] + b"\r\n\r\n"),
        ("BODY.PEEK[3.TEXT]", b"BODY[3.TEXT]", b"Salle 12 ou 14 ?"),
        ("BODY.PEEK[3.1]", b"BODY[3.1]", b"Salle 12 ou 14 ?"),
        (
            "BODY.PEEK[3.HEADER.FIELDS (SUBJECT)]",
            b"BODY[3.HEADER.FIELDS (SUBJECT)]",
            b"Subject: Salles\r\n\r\n",
        ),
        ("BODY.PEEK[4]", b"BODY[4]", b""),
        ("BODY.PEEK[1.3]", b"BODY[1.3]", b""),
    ],
)
def test_body_sections(live: RunningServer, mixed, item: str, key: bytes, expected: bytes) -> None:
    with logged_in(live, mixed) as client:
        client.select_folder("INBOX", readonly=True)
        data = client.fetch([1], [item])[1]
    assert data[key] == expected


def test_bodystructure_of_nested_multipart(live: RunningServer, mixed) -> None:
    with logged_in(live, mixed) as client:
        client.select_folder("INBOX", readonly=True)
        data = client.fetch([1], ["BODYSTRUCTURE", "BODY"])[1]
    structure = _flatten_multipart(_plain(data[b"BODYSTRUCTURE"]))
    assert structure == (BODYSTRUCTURE, *BODYSTRUCTURE_TAIL)
    # BODY is BODYSTRUCTURE without extension data.
    body = _flatten_multipart(_plain(data[b"BODY"]))
    alternative, attachment, forwarded = body[0]
    assert body[1:] == (b"mixed",)
    assert alternative == (
        (
            (b"text", b"plain", (b"charset", b"utf-8"), None, None, b"quoted-printable", 48, 2),
            (b"text", b"html", (b"charset", b"utf-8"), None, None, b"8bit", 54, 2),
        ),
        b"alternative",
    )
    assert attachment == BODYSTRUCTURE[1][:7]
    assert forwarded[7:] == (BODYSTRUCTURE[2][7], BODYSTRUCTURE[2][8][:8], 7)


def test_bodystructure_of_a_single_part_message(live: RunningServer) -> None:
    person = new_user(live)
    with RawImap(live) as raw:
        raw.login(person)
        message = b"Subject: un\r\n\r\nune ligne\r\ndeux lignes\r\n"
        raw.command(b"APPEND INBOX {%d+}\r\n" % len(message) + message)
        raw.command(b"EXAMINE INBOX")
        untagged, _tagged = raw.command(b"FETCH 1 (BODYSTRUCTURE)")
    assert untagged == [
        b'* 1 FETCH (BODYSTRUCTURE ("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 24 2'
        b" NIL NIL NIL NIL))\r\n"
    ]


def test_envelope_keeps_encoded_words_raw(live: RunningServer, mixed) -> None:
    with logged_in(live, mixed) as client:
        client.select_folder("INBOX", readonly=True)
        envelope = client.fetch([1], ["ENVELOPE"])[1][b"ENVELOPE"]
    assert envelope.subject == b"=?utf-8?b?UsOpdW5pb24gZGUgcmVudHLDqWU=?="
    assert [(a.name, a.mailbox, a.host) for a in envelope.from_] == [
        (b"=?utf-8?q?Ren=C3=A9e_Dupr=C3=A9?=", b"renee.dupre", b"example.org")
    ]
    assert envelope.sender == envelope.reply_to == envelope.from_
    assert [(a.name, a.mailbox, a.host) for a in envelope.to] == [
        (b"=?iso-8859-1?q?=C9quipe?=", b"equipe", b"example.org"),
        (b"Doe, John", b"john", b"example.org"),
    ]
    # A group is a start marker (mailbox = group name, host NIL) and an end marker.
    assert [(a.name, a.mailbox, a.host) for a in envelope.cc] == [
        (None, b"parents", None),
        (None, None, None),
    ]
    assert envelope.bcc is None
    assert envelope.message_id == b"<rentree@example.org>"
    assert envelope.date == datetime(2022, 9, 1, 6, 0)  # imapclient converts to UTC


def test_envelope_wire_form(live: RunningServer, mixed) -> None:
    with RawImap(live) as raw:
        raw.login(mixed)
        raw.command(b"EXAMINE INBOX")
        untagged, _tagged = raw.command(b"FETCH 1 (ENVELOPE)")
    assert untagged == [
        b'* 1 FETCH (ENVELOPE ("Thu, 1 Sep 2022 08:00:00 +0200"'
        b' "=?utf-8?b?UsOpdW5pb24gZGUgcmVudHLDqWU=?="'
        b' (("=?utf-8?q?Ren=C3=A9e_Dupr=C3=A9?=" NIL "renee.dupre" "example.org"))'
        b' (("=?utf-8?q?Ren=C3=A9e_Dupr=C3=A9?=" NIL "renee.dupre" "example.org"))'
        b' (("=?utf-8?q?Ren=C3=A9e_Dupr=C3=A9?=" NIL "renee.dupre" "example.org"))'
        b' (("=?iso-8859-1?q?=C9quipe?=" NIL "equipe" "example.org")'
        b' ("Doe, John" NIL "john" "example.org"))'
        b' ((NIL NIL "parents" NIL) (NIL NIL NIL NIL)) NIL NIL "<rentree@example.org>"))\r\n'
    ]


def test_raw_utf8_header_is_a_literal_unless_utf8_accept(live: RunningServer) -> None:
    person = new_user(live)
    message = "Subject: Réunion\r\nFrom: Zoé <zoe@example.org>\r\n\r\ncorps\r\n".encode()
    with RawImap(live) as raw:
        raw.login(person)
        raw.command(b"APPEND INBOX {%d+}\r\n" % len(message) + message)
        raw.command(b"EXAMINE INBOX")
        untagged, _tagged = raw.command(b"FETCH 1 (ENVELOPE)")
        subject = "Réunion".encode()
        assert b"NIL {%d}\r\n" % len(subject) + subject + b" " in untagged[0]
    with RawImap(live) as raw:
        raw.login(person)
        raw.command(b"ENABLE UTF8=ACCEPT")
        raw.command(b"EXAMINE INBOX")
        untagged, _tagged = raw.command(b"FETCH 1 (ENVELOPE)")
        assert b'NIL "R\xc3\xa9union" (("Zo\xc3\xa9" NIL "zoe" "example.org"))' in untagged[0]


def test_binary_decodes_base64_and_quoted_printable(live: RunningServer, mixed) -> None:
    with RawImap(live) as raw:
        raw.login(mixed)
        raw.command(b"EXAMINE INBOX")
        untagged, _tagged = raw.command(
            b"FETCH 1 (BINARY.PEEK[2] BINARY.SIZE[2] BINARY.PEEK[1.1] BINARY.PEEK[2]<4.6>)"
        )
    plain = "Bonjour à tous,\r\nla réunion est jeudi.".encode()
    assert untagged == [
        b"* 1 FETCH (BINARY[2] ~{%d}\r\n" % len(PDF)
        + PDF
        + b" BINARY.SIZE[2] %d BINARY[1.1] ~{%d}\r\n" % (len(PDF), len(plain))
        + plain
        + b" BINARY[2]<4> ~{6}\r\n"
        + PDF[4:10]
        + b")\r\n"
    ]


def test_binary_of_unknown_encoding_is_no_unknown_cte(live: RunningServer) -> None:
    person = new_user(live)
    message = b"Subject: x\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 f\r\n"
    with RawImap(live) as raw:
        raw.login(person)
        raw.command(b"APPEND INBOX {%d+}\r\n" % len(message) + message)
        raw.command(b"EXAMINE INBOX")
        _untagged, tagged = raw.command(b"FETCH 1 (BINARY.PEEK[1])")
        assert b"NO [UNKNOWN-CTE]" in tagged
        _untagged, tagged = raw.command(b"FETCH 1 (BODY.PEEK[1])")
        assert b" OK " in tagged


def test_fetch_without_peek_sets_seen_and_reports_it(live: RunningServer) -> None:
    person = new_user(live)
    with logged_in(live, person) as client:
        client.append("INBOX", simple_message("à lire"))
        client.select_folder("INBOX")
        assert client.fetch([1], ["BODY.PEEK[TEXT]"])[1].get(b"FLAGS") is None
        assert b"\\Seen" not in client.get_flags([1])[1]
        data = client.fetch([1], ["BODY[TEXT]"])[1]
        assert b"\\Seen" in data[b"FLAGS"]
        assert b"\\Seen" in client.get_flags([1])[1]
        client.remove_flags([1], [b"\\Seen"])
        client.fetch([1], ["RFC822"])
        assert b"\\Seen" in client.get_flags([1])[1]


def test_append_keeps_flags_keywords_and_internal_date(live: RunningServer) -> None:
    person = new_user(live)
    moment = datetime(2021, 3, 4, 5, 6, 7, tzinfo=timezone(timedelta(hours=-5)))
    with logged_in(live, person) as client:
        response = client.append(
            "INBOX", simple_message("daté"), flags=[b"\\Flagged", b"$Label1"], msg_time=moment
        )
        uidvalidity = client.folder_status("INBOX", ["UIDVALIDITY"])[b"UIDVALIDITY"]
        assert response == b"[APPENDUID %d 1] APPEND completed" % uidvalidity
        info = client.select_folder("INBOX")
        assert b"$Label1" in info[b"PERMANENTFLAGS"]
        data = client.fetch([1], ["FLAGS", "INTERNALDATE"])[1]
    assert set(data[b"FLAGS"]) == {b"\\Flagged", b"$Label1", b"\\Recent"}
    with RawImap(live) as raw:
        raw.login(person)
        raw.command(b"EXAMINE INBOX")
        untagged, _tagged = raw.command(b"FETCH 1 INTERNALDATE")
    # The same instant (the server keeps UTC).
    assert untagged == [b'* 1 FETCH (INTERNALDATE " 4-Mar-2021 10:06:07 +0000")\r\n']


def test_append_to_missing_mailbox_says_trycreate(live: RunningServer) -> None:
    person = new_user(live)
    with logged_in(live, person) as client, pytest.raises(IMAPClientError, match="TRYCREATE"):
        client.append("Inexistant", simple_message("perdu"))


def test_append_to_selected_mailbox_announces_exists(live: RunningServer) -> None:
    person = new_user(live)
    with RawImap(live) as raw:
        raw.login(person)
        raw.command(b"SELECT INBOX")
        message = simple_message("annoncé")
        raw.send(b"a APPEND INBOX {%d}\r\n" % len(message))
        assert raw.read_line().startswith(b"+ ")
        raw.send(message + b"\r\n")
        untagged, tagged = raw.read_until(b"a")
    assert b"* 1 EXISTS\r\n" in untagged
    assert tagged.startswith(b"a OK [APPENDUID ")


def test_fetch_macros(live: RunningServer, mixed) -> None:
    with RawImap(live) as raw:
        raw.login(mixed)
        raw.command(b"EXAMINE INBOX")
        fast, _tagged = raw.command(b"FETCH 1 FAST")
        full, _tagged = raw.command(b"FETCH 1 FULL")
        _untagged, tagged = raw.command(b"FETCH 1 (FAST)")  # a macro is not a list item
    assert re.fullmatch(
        rb'\* 1 FETCH \(FLAGS \([^)]*\) INTERNALDATE "[^"]+" RFC822.SIZE 1324\)\r\n', fast[0]
    )
    assert re.match(rb"\* 1 FETCH \(FLAGS .* RFC822.SIZE 1324 ENVELOPE \(.*\) BODY \(", full[0])
    assert b" BAD " in tagged


def test_uid_fetch_of_missing_uids_is_empty_and_seq_out_of_range_is_bad(
    live: RunningServer, mixed
) -> None:
    with RawImap(live) as raw:
        raw.login(mixed)
        raw.command(b"EXAMINE INBOX")
        untagged, tagged = raw.command(b"UID FETCH 50:60 FLAGS")
        assert untagged == []
        assert b" OK " in tagged
        untagged, tagged = raw.command(b"UID FETCH * UID")
        assert untagged == [b"* 1 FETCH (UID 1)\r\n"]
        _untagged, tagged = raw.command(b"FETCH 2 FLAGS")
        assert b" BAD " in tagged


def test_large_message_round_trip_and_partial(live: RunningServer) -> None:
    person = new_user(live)
    payload = base64.encodebytes(bytes(range(256)) * 4096).replace(b"\n", b"\r\n")
    message = (
        b"Subject: gros\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + payload
    )
    with logged_in(live, person) as client:
        client.append("INBOX", message)
        client.select_folder("INBOX", readonly=True)
        data = client.fetch([1], ["RFC822.SIZE", "BODY.PEEK[]", "BODY.PEEK[]<1000000.50>"])[1]
    assert data[b"BODY[]"] == message
    assert data[b"RFC822.SIZE"] == len(message)
    assert data[b"BODY[]<1000000>"] == message[1000000:1000050]
