"""The conversation list against the real IMAP server: what it asks, and how often.

A page costs EXAMINE, one UID THREAD and one UID FETCH whatever the number of
messages; the next page, with the folder unchanged, only EXAMINE and one FETCH (the
threads are remembered). Commands are counted on the wire, where imaplib sends them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from imapclient import IMAPClient

from groupware.web.mail_folders import SortedUidsCache
from groupware.web.mail_threads import can_thread, flatten, thread_page
from tests.mail.imap_support import imap_server, logged_in, new_user
from tests.support.servers import RunningServer

THREADS_COUNT = 7
REPLIES_COUNT = 4  # per thread
_COMMAND = re.compile(rb"^[A-Z]+\d+ (?:UID )?([A-Z]+)")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with imap_server(tmp_path_factory, "webmail-threads") as server:
        yield server


def _message(subject: str, message_id: str, parent: str = "") -> bytes:
    head = f"Subject: {subject}\r\nMessage-ID: <{message_id}>\r\n"
    if parent:
        head += f"In-Reply-To: <{parent}>\r\nReferences: <{parent}>\r\n"
    return (head + "\r\nTexte\r\n").encode()


def sent_commands(client: IMAPClient) -> list[str]:
    """The names of the commands ``client`` sends from now on (appended as they go)."""
    names: list[str] = []
    connection = client._imap  # noqa: SLF001 - counting what goes on the wire
    send = connection.send

    def counting(data: bytes) -> None:
        found = _COMMAND.match(data)
        if found:
            names.append(found.group(1).decode())
        send(data)

    connection.send = counting
    return names


def test_a_page_of_conversations_is_one_thread_and_one_fetch(live: RunningServer) -> None:
    person = new_user(live)
    with logged_in(live, person) as client:
        for number in range(THREADS_COUNT):
            root = f"t{number}@x"
            client.append("INBOX", _message(f"Sujet {number}", root))
            for reply in range(REPLIES_COUNT):
                client.append(
                    "INBOX", _message(f"Re: Sujet {number}", f"t{number}r{reply}@x", root)
                )
        assert can_thread(client)
        cache = SortedUidsCache()
        commands = sent_commands(client)
        first = thread_page(client, "INBOX", page=1, per_page=3, cache=(cache, person.login))
        assert commands == ["EXAMINE", "THREAD", "FETCH"]
        assert first.total == THREADS_COUNT
        assert first.pages == 3
        assert [len(c.entries) for c in first.conversations] == [REPLIES_COUNT + 1] * 3
        # Newest first: the thread appended last comes first.
        assert [c.first.subject for c in first.conversations] == ["Sujet 6", "Sujet 5", "Sujet 4"]
        assert [e.depth for e in first.conversations[0].entries] == [0] + [1] * REPLIES_COUNT

        commands.clear()
        last = thread_page(client, "INBOX", page=3, per_page=3, cache=(cache, person.login))
        assert commands == ["EXAMINE", "FETCH"]
        assert [c.first.subject for c in last.conversations] == ["Sujet 0"]

        # A new message changes UIDNEXT: the threads are asked again, and it leads.
        client.append("INBOX", _message("Re: Sujet 0", "late@x", "t0@x"))
        commands.clear()
        again = thread_page(client, "INBOX", page=1, per_page=3, cache=(cache, person.login))
        assert commands == ["EXAMINE", "THREAD", "FETCH"]
        assert again.conversations[0].first.subject == "Sujet 0"
        assert len(again.conversations[0].entries) == REPLIES_COUNT + 2


def test_flatten_reads_nested_answers_and_missing_parents() -> None:
    assert flatten((3, 6, (4, 23), (44, 7, 96))) == [
        (3, 0),
        (6, 1),
        (4, 2),
        (23, 3),
        (44, 2),
        (7, 3),
        (96, 4),
    ]
    assert flatten(((3,), (5,))) == [(3, 0), (5, 0)]
