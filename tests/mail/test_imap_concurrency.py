"""Several sessions on one mailbox, IDLE pushed by deliveries, and a server that neither
blocks its event loop nor spends a thread per connection (RFC 3501 §5.2, §7.4.1;
RFC 2177)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from groupware.core.directory import Person
from tests.mail.imap_support import (
    RawImap,
    deliver,
    imap_server,
    logged_in,
    new_user,
    simple_message,
)
from tests.support.servers import RunningServer

IDLE_WAKE_LIMIT_SECONDS = 1.0


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with imap_server(tmp_path_factory, "imap-concurrency") as server:
        yield server


def _user_with(live: RunningServer, count: int) -> Person:
    person = new_user(live)
    with logged_in(live, person) as client:
        for number in range(1, count + 1):
            client.append("INBOX", simple_message(f"message {number}"))
    return person


def test_expunge_in_one_session_is_announced_to_the_other(live: RunningServer) -> None:
    person = _user_with(live, 3)
    with logged_in(live, person) as a, logged_in(live, person) as b:
        a.select_folder("INBOX")
        b.select_folder("INBOX")
        a.use_uid = b.use_uid = False
        a.add_flags([2], [b"\\Deleted"])
        assert a.expunge()[1] == [(2, b"EXPUNGE")]
        _text, responses = b.noop()
        assert (2, b"EXPUNGE") in responses
        assert b.search(["ALL"]) == [1, 2]
        assert b.fetch([2], ["UID"])[2][b"UID"] == 3


def test_flag_change_in_one_session_is_a_fetch_in_the_other(live: RunningServer) -> None:
    person = _user_with(live, 2)
    with logged_in(live, person) as a, logged_in(live, person) as b:
        a.select_folder("INBOX")
        b.select_folder("INBOX", readonly=True)
        a.use_uid = False
        a.add_flags([2], [b"\\Flagged", b"$Urgent"])
        _text, responses = b.noop()
    flags = [r for r in responses if r[1] == b"FETCH"]
    assert len(flags) == 1
    assert flags[0][0] == 2
    assert flags[0][2][0] == b"FLAGS"
    assert {b"\\Flagged", b"$Urgent"} <= set(flags[0][2][1])


def test_append_in_one_session_is_exists_in_the_other(live: RunningServer) -> None:
    person = _user_with(live, 1)
    with logged_in(live, person) as a, RawImap(live) as b:
        b.login(person)
        b.command(b"SELECT INBOX")
        a.append("INBOX", simple_message("nouveau"))
        untagged, _tagged = b.command(b"NOOP")
        # b selected first, so b holds \Recent for both messages.
        assert untagged == [b"* 2 EXISTS\r\n", b"* 2 RECENT\r\n"]
        untagged, _tagged = b.command(b"FETCH 2 (FLAGS)")
        assert untagged == [b"* 2 FETCH (FLAGS (\\Recent))\r\n"]


def test_expunge_is_held_back_during_fetch_store_and_search(live: RunningServer) -> None:
    person = _user_with(live, 3)
    with RawImap(live) as a, RawImap(live) as b:
        a.login(person)
        b.login(person)
        a.command(b"SELECT INBOX")
        b.command(b"SELECT INBOX")
        b.command(b"STORE 1 +FLAGS.SILENT (\\Deleted)")
        b.command(b"EXPUNGE")
        untagged, _tagged = a.command(b"FETCH 1:3 (UID)")
        # The expunged message is left out; the others keep their numbers.
        assert untagged == [b"* 2 FETCH (UID 2)\r\n", b"* 3 FETCH (UID 3)\r\n"]
        untagged, _tagged = a.command(b"STORE 3 +FLAGS (\\Seen)")
        assert untagged == [b"* 3 FETCH (FLAGS (\\Seen \\Recent))\r\n"]
        untagged, _tagged = a.command(b"SEARCH ALL")
        assert untagged == [b"* SEARCH 2 3\r\n"]
        untagged, _tagged = a.command(b"CHECK")
        assert untagged == [b"* 1 EXPUNGE\r\n"]
        untagged, _tagged = a.command(b"FETCH 1:* (UID)")
        assert untagged == [b"* 1 FETCH (UID 2)\r\n", b"* 2 FETCH (UID 3)\r\n"]


def _idle_until(client: Any, wanted: Callable[[Any], bool], limit_seconds: float = 5) -> list[Any]:
    """IDLE responses up to the first one ``wanted`` accepts."""
    deadline = time.monotonic() + limit_seconds
    seen: list[Any] = []
    while not any(wanted(r) for r in seen):
        remaining = deadline - time.monotonic()
        assert remaining > 0, seen
        seen += client.idle_check(timeout=remaining)
    return seen


def test_idle_wakes_within_a_second_of_an_smtp_delivery(live: RunningServer) -> None:
    person = new_user(live)
    with logged_in(live, person) as client:
        client.select_folder("INBOX")
        client.idle()
        try:
            started = time.monotonic()
            deliver(live, person.email, simple_message("réveil"))
            responses = client.idle_check(timeout=IDLE_WAKE_LIMIT_SECONDS * 2)
            # From before the SMTP dialogue to the EXISTS: spool, delivery, wake-up.
            latency = time.monotonic() - started
        finally:
            text, _more = client.idle_done()
        assert b"IDLE terminated" in text
    assert (1, b"EXISTS") in responses
    assert latency < IDLE_WAKE_LIMIT_SECONDS, latency


def test_idle_reports_other_sessions_flags_and_expunges(live: RunningServer) -> None:
    person = _user_with(live, 2)
    with logged_in(live, person) as watcher, logged_in(live, person) as actor:
        watcher.select_folder("INBOX")
        actor.select_folder("INBOX")
        actor.use_uid = False
        watcher.idle()
        try:
            actor.add_flags([1], [b"\\Answered"])
            seen = _idle_until(watcher, lambda r: r[:2] == (1, b"FETCH"))
            actor.add_flags([2], [b"\\Deleted"])
            actor.expunge()
            seen += _idle_until(watcher, lambda r: r == (2, b"EXPUNGE"))
        finally:
            watcher.idle_done()
    fetched = [r for r in seen if r[:2] == (1, b"FETCH")]
    assert fetched, seen
    assert b"\\Answered" in fetched[0][2][1]
    assert (2, b"EXPUNGE") in seen


def test_idle_ignores_other_users_and_rejects_a_wrong_terminator(live: RunningServer) -> None:
    person, stranger = new_user(live), new_user(live)
    with RawImap(live) as raw:
        raw.login(person)
        raw.command(b"SELECT INBOX")
        raw.send(b"i1 IDLE\r\n")
        assert raw.read_line() == b"+ idling\r\n"
        deliver(live, stranger.email, simple_message("pas pour toi"))
        deliver(live, person.email, simple_message("pour toi"))
        assert raw.read_line() == b"* 1 EXISTS\r\n"
        assert raw.read_line() == b"* 1 RECENT\r\n"
        raw.send(b"FINI\r\n")
        assert raw.read_line().startswith(b"i1 BAD")
        _untagged, tagged = raw.command(b"NOOP")
        assert b" OK " in tagged


def test_idle_before_select_is_woken_by_nothing_and_ends_with_done(live: RunningServer) -> None:
    person = new_user(live)
    with RawImap(live) as raw:
        raw.login(person)
        raw.send(b"i1 IDLE\r\nDONE\r\n")
        assert raw.read_line() == b"+ idling\r\n"
        assert raw.read_line() == b"i1 OK IDLE terminated\r\n"


def test_a_stalled_client_does_not_block_other_sessions(live: RunningServer) -> None:
    person = new_user(live)
    big = b"Subject: gros\r\n\r\n" + b"x" * 76 + (b"\r\n" + b"y" * 76) * 80_000
    with logged_in(live, person) as client:
        client.append("INBOX", big)
    with RawImap(live) as slow, RawImap(live) as quick:
        slow.login(person)
        quick.login(person)
        slow.command(b"EXAMINE INBOX")
        # A literal announced and never sent, then a 6 MB fetch nobody reads.
        slow.send(b"a1 APPEND INBOX {100}\r\n")
        assert slow.read_line().startswith(b"+")
        slow.send(b"x" * 100 + b"\r\n")
        slow.read_until(b"a1")
        slow.send(b"a2 FETCH 1 (BODY.PEEK[])\r\n")
        started = time.monotonic()
        for _ in range(5):
            _untagged, tagged = quick.command(b"NOOP")
            assert b" OK " in tagged
        assert time.monotonic() - started < 1.0


def test_two_hundred_idle_connections_use_no_thread_each(live: RunningServer) -> None:
    person = new_user(live)
    with ExitStack() as stack:
        first = stack.enter_context(RawImap(live))
        first.login(person)  # warms the worker pool used for blocking calls
        baseline = threading.active_count()
        idlers = []
        for _ in range(200):
            raw = stack.enter_context(RawImap(live))
            raw.login(person)
            raw.command(b"SELECT INBOX")
            raw.send(b"i IDLE\r\n")
            assert raw.read_line() == b"+ idling\r\n"
            idlers.append(raw)
        # The server runs in this process: its threads are counted here.
        assert threading.active_count() <= baseline + 8, (baseline, threading.active_count())
        deliver(live, person.email, simple_message("pour tous"))
        for raw in idlers:
            assert raw.read_line() == b"* 1 EXISTS\r\n"


def test_mailbox_deleted_by_another_session_is_nonexistent_not_a_crash(
    live: RunningServer,
) -> None:
    person = new_user(live)
    with RawImap(live) as a, logged_in(live, person) as b:
        a.login(person)
        b.create_folder("Temporaire")
        b.append("Temporaire", simple_message("éphémère"))
        a.command(b"SELECT Temporaire")
        b.delete_folder("Temporaire")
        for command in (b"EXPUNGE", b"MOVE 1 INBOX"):
            _untagged, tagged = a.command(command)
            assert b" NO " in tagged, (command, tagged)
            assert b"SERVERBUG" not in tagged
        untagged, tagged = a.command(b"SELECT INBOX")
        assert untagged[0] == b"* OK [CLOSED] Previous mailbox closed\r\n"
        assert b" OK [READ-WRITE]" in tagged
        untagged, _tagged = a.command(b"EXAMINE INBOX")
        assert untagged[0] == b"* OK [CLOSED] Previous mailbox closed\r\n"
