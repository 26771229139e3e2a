"""THREAD=REFERENCES and THREAD=ORDEREDSUBJECT on the wire (RFC 5256), real server.

The mailbox reproduces RFC 5256 §4's example tree (2)(3 6 (4 23)(44 7 96)) with its
messages appended in another order than their dates, plus a reply whose References
were lost (threaded by its subject) and messages the search leaves out.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from groupware.mail.schema import mail_blobs
from tests.mail.imap_support import RawImap, imap_server, logged_in, new_user
from tests.support.servers import RunningServer

START = datetime(2024, 5, 1, 8, tzinfo=UTC)
# (name in the RFC's drawing, subject, references by name, hours after START)
TREE = [
    ("3", "Sortie au musée", (), 1),
    ("2", "Cantine", (), 0),
    ("6", "Re: Sortie au musée", ("3",), 2),
    ("44", "Re: Sortie au musée", ("3", "6"), 4),
    ("4", "Re: Sortie au musée", ("3", "6"), 3),
    ("23", "Re: Sortie au musée", ("3", "6", "4"), 5),
    ("7", "Re: Sortie au musée", ("3", "6", "44"), 6),
    ("96", "Re: Sortie au musée", ("3", "6", "44", "7"), 7),
    ("lost", "Re: Cantine", (), 8),
    ("other", "Conseil de classe", (), 9),
]


def _message(name: str, subject: str, refs: tuple[str, ...], hours: int) -> bytes:
    date = (START + timedelta(hours=hours)).strftime("%a, %d %b %Y %H:%M:%S +0000")
    head = [
        "From: alice@a.example",
        f"Subject: {subject}",
        f"Date: {date}",
        f"Message-ID: <{name}@school.example>",
    ]
    if refs:
        head.append("References: " + " ".join(f"<{r}@school.example>" for r in refs))
        head.append(f"In-Reply-To: <{refs[-1]}@school.example>")
    return (
        "\r\n".join(head)
        + "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        + f"message {name}\r\n"
    ).encode()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with imap_server(tmp_path_factory, "imap-thread") as server:
        yield server


@pytest.fixture(scope="module")
def owner(live: RunningServer) -> Any:
    """TREE appended in its order: sequence number n is TREE[n - 1]; UIDs are n + 100."""
    person = new_user(live)
    with logged_in(live, person) as client:
        client.select_folder("INBOX")
        for _ in range(100):  # UIDs no longer equal sequence numbers
            client.append("INBOX", b"Subject: jetable\r\n\r\n.\r\n", flags=[b"\\Deleted"])
        client.expunge()
        for name, subject, refs, hours in TREE:
            client.append("INBOX", _message(name, subject, refs, hours))
    return person


def _names(line: bytes, offset: int = 0) -> bytes:
    """The answer with numbers turned back into the RFC drawing's names."""
    names = {str(i + 1 + offset): name for i, (name, *_rest) in enumerate(TREE)}
    out, number = b"", b""
    for byte in line + b" ":
        char = bytes([byte])
        if char.isdigit():
            number += char
            continue
        if number:
            out += names[number.decode()].encode()
            number = b""
        out += char
    return out.rstrip()


def test_thread_capabilities_are_advertised(live: RunningServer, owner: Any) -> None:
    with logged_in(live, owner) as client:
        assert b"THREAD=REFERENCES" in client.capabilities()
        assert b"THREAD=ORDEREDSUBJECT" in client.capabilities()


def test_thread_references_on_the_wire(live: RunningServer, owner: Any) -> None:
    with RawImap(live) as raw:
        raw.login(owner)
        raw.command(b"EXAMINE INBOX")
        untagged, tagged = raw.command(b"THREAD REFERENCES UTF-8 ALL")
        assert b" OK " in tagged
        assert len(untagged) == 1
        assert untagged[0].startswith(b"* THREAD ")
        assert _names(untagged[0][len(b"* THREAD ") : -2]) == (
            b"(2 lost)(3 6 (4 23)(44 7 96))(other)"
        )
        untagged, _tagged = raw.command(b"UID THREAD REFERENCES US-ASCII ALL")
        assert _names(untagged[0][len(b"* THREAD ") : -2], offset=100) == (
            b"(2 lost)(3 6 (4 23)(44 7 96))(other)"
        )


def test_thread_only_threads_the_matches(live: RunningServer, owner: Any) -> None:
    with RawImap(live) as raw:
        raw.login(owner)
        raw.command(b"EXAMINE INBOX")
        # Without 6 and 44, their children hang under dummies; 3 is their ancestor.
        untagged, _tagged = raw.command(b"THREAD REFERENCES UTF-8 NOT OR BODY 6 BODY 44")
        assert _names(untagged[0][len(b"* THREAD ") : -2]) == (b"(2 lost)(3 (4 23)(7 96))(other)")
        untagged, tagged = raw.command(b'THREAD REFERENCES UTF-8 SUBJECT "absent du tout"')
        assert untagged == [b"* THREAD\r\n"]
        assert b" OK " in tagged


def test_thread_ordered_subject_on_the_wire(live: RunningServer, owner: Any) -> None:
    with RawImap(live) as raw:
        raw.login(owner)
        raw.command(b"EXAMINE INBOX")
        untagged, tagged = raw.command(b"THREAD ORDEREDSUBJECT UTF-8 ALL")
        assert b" OK " in tagged
        assert _names(untagged[0][len(b"* THREAD ") : -2]) == (
            b"(2 lost)(3 (6)(4)(44)(23)(7)(96))(other)"
        )


def test_imapclient_reads_our_thread_answer(live: RunningServer, owner: Any) -> None:
    with logged_in(live, owner) as client:
        client.select_folder("INBOX", readonly=True)
        threads = client.thread("REFERENCES", ["SUBJECT", "Cantine"], charset="UTF-8")
        assert threads == ((102, 109),)  # "2" and "lost", UIDs 100 + seq


@pytest.mark.parametrize(
    ("command", "status"),
    [
        (b"THREAD REFERENCES UTF-8", b"BAD"),
        (b"THREAD NONSENSE UTF-8 ALL", b"BAD"),
        (b"THREAD REFERENCES UTF-8 ALL (", b"BAD"),
        (b"UID THREAD ORDEREDSUBJECT", b"BAD"),
        (b"THREAD REFERENCES KOI8-R ALL", b"NO"),
    ],
)
def test_malformed_thread_commands(
    live: RunningServer, owner: Any, command: bytes, status: bytes
) -> None:
    with RawImap(live) as raw:
        raw.login(owner)
        raw.command(b"EXAMINE INBOX")
        _untagged, tagged = raw.command(command)
        assert tagged.split(b" ")[1] == status, tagged
        # The connection is still usable afterwards.
        assert b" OK " in raw.command(b"NOOP")[1]


def test_thread_needs_a_selected_mailbox(live: RunningServer, owner: Any) -> None:
    with RawImap(live) as raw:
        raw.login(owner)
        _untagged, tagged = raw.command(b"THREAD REFERENCES UTF-8 ALL")
        assert b" BAD " in tagged or b" NO " in tagged


def test_messages_indexed_before_thread_refs_are_threaded_from_their_files(
    live: RunningServer, owner: Any
) -> None:
    with RawImap(live) as raw:
        raw.login(owner)
        raw.command(b"EXAMINE INBOX")
        indexed, _tagged = raw.command(b"UID THREAD REFERENCES UTF-8 ALL")
        with live.core.engine.begin() as conn:
            refs = dict(conn.execute(select(mail_blobs.c.id, mail_blobs.c.thread_refs)).all())
            conn.execute(update(mail_blobs).values(thread_refs=None))
        try:
            from_files, _tagged = raw.command(b"UID THREAD REFERENCES UTF-8 ALL")
        finally:
            with live.core.engine.begin() as conn:
                for blob_id, value in refs.items():
                    conn.execute(
                        update(mail_blobs)
                        .where(mail_blobs.c.id == blob_id)
                        .values(thread_refs=value)
                    )
    assert from_files == indexed
    assert b"(3 6 (4 23)(44 7 96))" in _names(indexed[0][len(b"* THREAD ") : -2], offset=100)
    # What delivery indexed: References ids in order, else the In-Reply-To id.
    assert "<3@school.example> <6@school.example> <44@school.example>" in refs.values()
