"""SEARCH, ESEARCH, SEARCHRES and SORT over a small fixed mailbox
(RFC 3501 §6.4.4, RFC 4731, RFC 5182, RFC 5256)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.mail.imap_support import RawImap, imap_server, logged_in, new_user
from tests.support.servers import RunningServer


def _message(headers: dict[str, str], body: str) -> bytes:
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return (
        head + "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body
    ).encode()


# (message, flags, internal date); sequence numbers 1..5 as listed.
MESSAGES = [
    (
        _message(
            {
                "From": "Alice Martin <alice@a.example>",
                "To": "bob@b.example",
                "Subject": "Réunion parents",
                # Local date 1 Sep, UTC date 31 Aug: SENTON uses the former.
                "Date": "Thu, 1 Sep 2022 00:30:00 +0200",
            },
            "Le conseil de classe aura lieu mardi.\r\n",
        ),
        [b"\\Seen"],
        datetime(2022, 9, 2, 12, tzinfo=UTC),
    ),
    (
        _message(
            {
                "From": "=?utf-8?q?Zo=C3=A9_Petit?= <zoe@z.example>",
                "To": "Alice <alice@a.example>",
                "Cc": "carl@c.example",
                "Subject": "Re: Réunion parents",
                "Date": "Mon, 15 Aug 2022 10:00:00 +0000",
            },
            "Je serai présente.\r\n",
        ),
        [b"\\Flagged"],
        datetime(2022, 9, 5, 12, tzinfo=UTC),
    ),
    (
        _message(
            {
                "From": "bob@b.example",
                "To": "alice@a.example",
                "Subject": "=?utf-8?q?=C3=89l=C3=A8ves?=",
                "Date": "Sat, 1 Oct 2022 09:00:00 +0000",
            },
            "Le bulletin trimestriel est prêt.\r\n" + "remplissage\r\n" * 400,
        ),
        [b"\\Deleted", b"\\Seen", b"$Important"],
        datetime(2022, 10, 2, 12, tzinfo=UTC),
    ),
    (
        _message(
            {
                "From": "carl@c.example",
                "To": "alice@a.example",
                "Subject": "Fwd: cantine",
                "Date": "Fri, 24 Dec 2021 12:00:00 +0000",
                "X-Priority": "1",
            },
            "Le menu de la semaine.\r\n",
        ),
        [],
        datetime(2022, 1, 10, 12, tzinfo=UTC),
    ),
    (
        _message({"From": "alice@a.example", "Subject": "aa"}, "x\r\n"),
        [b"\\Answered", b"\\Draft"],
        datetime(2023, 1, 1, 12, tzinfo=UTC),
    ),
]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with imap_server(tmp_path_factory, "imap-search") as server:
        yield server


@pytest.fixture(scope="module")
def owner(live: RunningServer) -> Any:
    """A user with MESSAGES in INBOX; a throw-away first message makes UIDs 2..6."""
    person = new_user(live)
    with logged_in(live, person) as client:
        client.append("INBOX", b"Subject: jetable\r\n\r\n.\r\n", flags=[b"\\Deleted"])
        client.select_folder("INBOX")
        client.expunge()
        for data, flags, moment in MESSAGES:
            client.append("INBOX", data, flags=flags, msg_time=moment)
    return person


@pytest.fixture
def client(live: RunningServer, owner) -> Iterator[Any]:
    with logged_in(live, owner) as connected:
        connected.select_folder("INBOX", readonly=True)
        yield connected


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        (["ALL"], [1, 2, 3, 4, 5]),
        (["SEEN"], [1, 3]),
        (["UNSEEN"], [2, 4, 5]),
        (["FLAGGED"], [2]),
        (["UNFLAGGED", "UNSEEN"], [4, 5]),
        (["DELETED"], [3]),
        (["UNDELETED"], [1, 2, 4, 5]),
        (["ANSWERED"], [5]),
        (["DRAFT"], [5]),
        (["UNDRAFT", "UNANSWERED"], [1, 2, 3, 4]),
        (["KEYWORD", "$Important"], [3]),
        (["UNKEYWORD", "$Important"], [1, 2, 4, 5]),
        (["FROM", "alice"], [1, 5]),
        (["FROM", "ZOÉ"], [2]),  # the decoded display name, any case
        (["TO", "alice@a.example"], [2, 3, 4]),
        (["CC", "carl"], [2]),
        (["BCC", "alice"], []),
        (["SUBJECT", "réunion"], [1, 2]),
        (["SUBJECT", "élèves"], [3]),  # the subject is an encoded word
        (["HEADER", "X-Priority", "1"], [4]),
        (["HEADER", "X-Priority", ""], [4]),
        (["HEADER", "Cc", ""], [2]),
        (["BODY", "trimestriel"], [3]),
        (["TEXT", "cantine"], [4]),
        (["TEXT", "conseil"], [1]),
        (["SINCE", "1-Sep-2022"], [1, 2, 3, 5]),
        (["BEFORE", "1-Sep-2022"], [4]),
        (["ON", "5-Sep-2022"], [2]),
        (["SENTON", "1-Sep-2022"], [1]),
        (["SENTBEFORE", "1-Sep-2022"], [2, 4]),
        (["SENTSINCE", "1-Oct-2022"], [3]),
        (["LARGER", "2000"], [3]),
        (["SMALLER", "150"], [5]),
        (["2:3,5"], [2, 3, 5]),
        (["4:*"], [4, 5]),
        (["UID", "3:4"], [2, 3]),
        (["OR", "FLAGGED", "DRAFT"], [2, 5]),
        (["NOT", "SEEN"], [2, 4, 5]),
        (["OR", ["FROM", "bob", "SEEN"], "ANSWERED"], [3, 5]),
        (["NOT", ["OR", "SEEN", "FLAGGED"]], [4, 5]),
    ],
)
def test_search(client: Any, criteria: list[Any], expected: list[int]) -> None:
    client.use_uid = False
    assert client.search(criteria, charset="UTF-8") == expected


def test_uid_search_returns_uids(client: Any) -> None:
    assert client.search(["ALL"]) == [2, 3, 4, 5, 6]
    assert client.search(["SEEN"]) == [2, 4]
    assert client.search(["UID", "1:3"]) == [2, 3]


def test_search_with_an_unknown_charset_is_no_badcharset(live: RunningServer, owner) -> None:
    with RawImap(live) as raw:
        raw.login(owner)
        raw.command(b"EXAMINE INBOX")
        _untagged, tagged = raw.command(b"SEARCH CHARSET X-UNKNOWN SUBJECT x")
        assert b"NO [BADCHARSET" in tagged
        untagged, _tagged = raw.command(b"SEARCH CHARSET ISO-8859-1 SUBJECT {6+}\r\n\xe9l\xe8ves")
        assert untagged == [b"* SEARCH 3\r\n"]


def test_esearch_return_options(live: RunningServer, owner) -> None:
    with RawImap(live) as raw:
        raw.login(owner)
        raw.command(b"EXAMINE INBOX")
        untagged, _tagged = raw.command(b"SEARCH RETURN (MIN MAX COUNT) UNSEEN", tag=b"e1")
        assert untagged == [b'* ESEARCH (TAG "e1") MIN 2 MAX 5 COUNT 3\r\n']
        untagged, _tagged = raw.command(b"UID SEARCH RETURN () UNDELETED", tag=b"e2")
        assert untagged == [b'* ESEARCH (TAG "e2") UID ALL 2:3,5:6\r\n']
        untagged, _tagged = raw.command(b"SEARCH RETURN (ALL) 1:2,4", tag=b"e3")
        assert untagged == [b'* ESEARCH (TAG "e3") ALL 1:2,4\r\n']
        untagged, _tagged = raw.command(b"SEARCH RETURN (COUNT MIN) KEYWORD $Nothing", tag=b"e4")
        assert untagged == [b'* ESEARCH (TAG "e4") COUNT 0\r\n']


def test_searchres_saves_and_reuses_the_result(live: RunningServer, owner) -> None:
    with RawImap(live) as raw:
        raw.login(owner)
        raw.command(b"EXAMINE INBOX")
        untagged, tagged = raw.command(b"SEARCH RETURN (SAVE) OR FLAGGED DRAFT")
        assert untagged == []
        assert b" OK " in tagged
        untagged, _tagged = raw.command(b"FETCH $ (UID)")
        assert untagged == [b"* 2 FETCH (UID 3)\r\n", b"* 5 FETCH (UID 6)\r\n"]
        untagged, _tagged = raw.command(b"UID SEARCH UID $ SEEN")
        assert untagged == [b"* SEARCH\r\n"]
        untagged, _tagged = raw.command(b"SEARCH $")
        assert untagged == [b"* SEARCH 2 5\r\n"]


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        (["SUBJECT"], [5, 4, 1, 2, 3]),  # aa, cantine (Fwd: removed), réunion ×2, élèves
        (["FROM"], [1, 5, 3, 4, 2]),  # alice, alice, bob, carl, zoe
        (["TO"], [5, 2, 3, 4, 1]),  # (none), alice ×3 (by sequence), bob
        (["CC"], [1, 3, 4, 5, 2]),
        (["DATE"], [4, 2, 1, 3, 5]),  # no Date: header → the internal date
        (["REVERSE", "DATE"], [5, 3, 1, 2, 4]),
        (["ARRIVAL"], [4, 1, 2, 3, 5]),
        (["REVERSE", "ARRIVAL"], [5, 3, 2, 1, 4]),
        (["SUBJECT", "REVERSE", "ARRIVAL"], [5, 4, 2, 1, 3]),
        (["FROM", "REVERSE", "DATE"], [5, 1, 3, 4, 2]),
    ],
)
def test_sort(client: Any, criteria: list[str], expected: list[int]) -> None:
    client.use_uid = False
    assert client.sort(criteria) == expected


def test_sort_by_size_and_with_search_criteria(client: Any) -> None:
    client.use_uid = False
    sizes = {
        seq: data[b"RFC822.SIZE"]
        for seq, data in client.fetch([1, 2, 3, 4, 5], ["RFC822.SIZE"]).items()
    }
    assert len(set(sizes.values())) == 5
    assert client.sort(["SIZE"]) == sorted(sizes, key=sizes.__getitem__)
    assert client.sort(["REVERSE", "SIZE"], ["UNSEEN"]) == sorted(
        [2, 4, 5], key=sizes.__getitem__, reverse=True
    )
    client.use_uid = True
    assert client.sort(["SUBJECT"]) == [6, 5, 2, 3, 4]


def test_sort_answer_on_the_wire(live: RunningServer, owner) -> None:
    with RawImap(live) as raw:
        raw.login(owner)
        raw.command(b"EXAMINE INBOX")
        untagged, tagged = raw.command(b"SORT (DATE) UTF-8 ALL")
        assert untagged == [b"* SORT 4 2 1 3 5\r\n"]
        untagged, tagged = raw.command(b"UID SORT (REVERSE SUBJECT) US-ASCII UNSEEN")
        assert untagged == [b"* SORT 3 5 6\r\n"]
        _untagged, tagged = raw.command(b"SORT (NONSENSE) UTF-8 ALL")
        assert b" BAD " in tagged


def test_search_ignores_messages_expunged_elsewhere_until_announced(
    live: RunningServer,
) -> None:
    person = new_user(live)
    with logged_in(live, person) as first, RawImap(live) as second:
        second.login(person)
        for subject in ("un", "deux", "trois"):
            first.append("INBOX", b"Subject: " + subject.encode() + b"\r\n\r\n.\r\n")
        first.select_folder("INBOX")
        second.command(b"SELECT INBOX")
        first.set_flags([2], [b"\\Deleted"])
        first.expunge()
        # No EXPUNGE during SEARCH (RFC 3501 §7.4.1): sequence numbers keep their
        # meaning and the gone message no longer matches.
        assert second.command(b"SEARCH ALL")[0] == [b"* SEARCH 1 3\r\n"]
        assert second.command(b"NOOP")[0] == [b"* 2 EXPUNGE\r\n"]
        assert second.command(b"SEARCH ALL")[0] == [b"* SEARCH 1 2\r\n"]


def test_recent_new_and_old_belong_to_the_first_session(live: RunningServer) -> None:
    person = new_user(live)
    with logged_in(live, person) as client:
        client.append("INBOX", b"Subject: lu\r\n\r\n.\r\n", flags=[b"\\Seen"])
        client.append("INBOX", b"Subject: neuf\r\n\r\n.\r\n")
    with logged_in(live, person) as first, logged_in(live, person) as second:
        assert first.select_folder("INBOX")[b"RECENT"] == 2
        first.use_uid = second.use_uid = False
        assert first.search(["RECENT"]) == [1, 2]
        assert first.search(["NEW"]) == [2]
        assert first.search(["OLD"]) == []
        assert second.select_folder("INBOX")[b"RECENT"] == 0
        assert second.search(["RECENT"]) == []
        assert second.search(["OLD"]) == [1, 2]


def test_header_content_type_is_answered_from_the_structure(live: RunningServer) -> None:
    # Webmails ask it for "has an attachment"; it must agree with the header as written.
    person = new_user(live)
    mixed = (
        b"From: a@a.example\r\nSubject: joint\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed;\r\n boundary="sep"\r\n\r\n'
        b"--sep\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nVoir la PJ.\r\n"
        b"--sep\r\nContent-Type: application/pdf; name=cr.pdf\r\n"
        b"Content-Disposition: attachment\r\n\r\n%PDF\r\n--sep--\r\n"
    )
    lone = b"Subject: seul\r\nContent-Type: Application/PDF\r\n\r\n%PDF\r\n"
    bare = b"Subject: sans type\r\n\r\ntexte\r\n"
    with logged_in(live, person) as client:
        for data in (mixed, lone, bare):
            client.append("INBOX", data)
        client.select_folder("INBOX", readonly=True)
        client.use_uid = False
        cases = [
            ("multipart/mixed", [1]),
            ('boundary="sep"', [1]),
            ("boundary=sep", [1]),
            ("application/", [2]),
            ("application/pdf", [2]),
            ("text/plain", [3]),  # RFC 2045 §5.2: no field is text/plain
            ("", [1, 2]),  # an empty value asks whether the field is there
        ]
        for value, expected in cases:
            assert client.search(["HEADER", "Content-Type", value]) == expected, value
        found = client.search(
            ["OR", "HEADER", "Content-Type", "multipart/mixed", "SUBJECT", "seul"]
        )
        assert found == [1, 2]
