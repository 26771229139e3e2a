"""STORE and flags, CONDSTORE (MODSEQ, CHANGEDSINCE, UNCHANGEDSINCE) and QRESYNC
(RFC 3501 §6.4.6, RFC 7162)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from groupware.core.directory import Person
from tests.mail.imap_support import RawImap, imap_server, logged_in, new_user, simple_message
from tests.support.servers import RunningServer


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with imap_server(tmp_path_factory, "imap-store") as server:
        yield server


def _user_with(live: RunningServer, count: int) -> Person:
    person = new_user(live)
    with logged_in(live, person) as client:
        for number in range(1, count + 1):
            client.append("INBOX", simple_message(f"message {number}"))
    return person


def _modseq(line: bytes) -> int:
    match = re.search(rb"MODSEQ \((\d+)\)", line)
    assert match, line
    return int(match.group(1))


def test_store_replace_add_remove_and_answers(live: RunningServer) -> None:
    person = _user_with(live, 2)
    with RawImap(live) as raw:
        raw.login(person)
        raw.command(b"SELECT INBOX")
        untagged, _tagged = raw.command(b"STORE 1 FLAGS (\\Seen $Travail)")
        assert untagged == [b"* 1 FETCH (FLAGS (\\Seen $Travail \\Recent))\r\n"]
        untagged, _tagged = raw.command(b"STORE 1:2 +FLAGS (\\Flagged)")
        assert untagged == [
            b"* 1 FETCH (FLAGS (\\Flagged \\Seen $Travail \\Recent))\r\n",
            b"* 2 FETCH (FLAGS (\\Flagged \\Recent))\r\n",
        ]
        untagged, _tagged = raw.command(b"UID STORE 1 -FLAGS ($Travail \\Flagged)")
        assert untagged == [b"* 1 FETCH (FLAGS (\\Seen \\Recent) UID 1)\r\n"]
        untagged, tagged = raw.command(b"STORE 2 +FLAGS.SILENT (\\Deleted)")
        assert untagged == []
        assert b" OK " in tagged
        # \Recent belongs to the server; a client cannot set it.
        untagged, tagged = raw.command(b"STORE 2 FLAGS (\\Recent \\Answered)")
        assert (untagged, tagged[2:7]) == ([], b" BAD ")
        untagged, _tagged = raw.command(b"STORE 2 FLAGS (\\Answered)")
        assert untagged == [b"* 2 FETCH (FLAGS (\\Answered \\Recent))\r\n"]
        # The new keyword is permanent from now on.
        untagged, _tagged = raw.command(b"SELECT INBOX")
        assert b"$Travail" not in b"".join(untagged)
        untagged, _tagged = raw.command(b"FETCH 1:2 FLAGS")
        assert untagged == [
            b"* 1 FETCH (FLAGS (\\Seen))\r\n",
            b"* 2 FETCH (FLAGS (\\Answered))\r\n",
        ]


def test_store_on_a_read_only_mailbox_is_no(live: RunningServer) -> None:
    person = _user_with(live, 1)
    with RawImap(live) as raw:
        raw.login(person)
        raw.command(b"EXAMINE INBOX")
        _untagged, tagged = raw.command(b"STORE 1 +FLAGS (\\Seen)")
        assert b"NO [READ-ONLY]" in tagged


def test_own_store_is_not_echoed_as_unsolicited_fetch(live: RunningServer) -> None:
    person = _user_with(live, 1)
    with RawImap(live) as raw:
        raw.login(person)
        raw.command(b"SELECT INBOX")
        raw.command(b"STORE 1 +FLAGS.SILENT (\\Flagged)")
        raw.command(b"FETCH 1 (BODY[TEXT])")  # sets \Seen, reported in that FETCH
        untagged, _tagged = raw.command(b"NOOP")
        assert untagged == []


def test_store_after_another_sessions_expunge_still_learns_of_it(live: RunningServer) -> None:
    # A's STORE takes a mod-sequence above B's EXPUNGE; A must not skip past it.
    person = _user_with(live, 3)
    with RawImap(live) as a, RawImap(live) as b:
        a.login(person)
        b.login(person)
        a.command(b"SELECT INBOX")
        b.command(b"SELECT INBOX")
        b.command(b"STORE 2 +FLAGS.SILENT (\\Deleted)")
        b.command(b"EXPUNGE")
        b.command(b"STORE 1 +FLAGS.SILENT (\\Answered)")
        untagged, _tagged = a.command(b"STORE 3 +FLAGS (\\Flagged)")
        # B's flag change may come now; the EXPUNGE must wait (RFC 3501 §7.4.1).
        assert b"* 3 FETCH (FLAGS (\\Flagged \\Recent))\r\n" in untagged
        assert not [line for line in untagged if b"EXPUNGE" in line]
        untagged += a.command(b"NOOP")[0]
        assert b"* 2 EXPUNGE\r\n" in untagged
        assert b"* 1 FETCH (FLAGS (\\Answered \\Recent))\r\n" in untagged
        untagged, _tagged = a.command(b"FETCH 1:* (UID)")
        assert untagged == [b"* 1 FETCH (UID 1)\r\n", b"* 2 FETCH (UID 3)\r\n"]


def test_condstore_modseq_fetch_and_changedsince(live: RunningServer) -> None:
    person = _user_with(live, 3)
    with RawImap(live) as raw:
        raw.login(person)
        untagged, _tagged = raw.command(b"SELECT INBOX (CONDSTORE)")
        highest = int(re.search(rb"HIGHESTMODSEQ (\d+)", b"".join(untagged)).group(1))
        untagged, _tagged = raw.command(b"FETCH 1:3 (MODSEQ)")
        modseqs = [_modseq(line) for line in untagged]
        assert max(modseqs) == highest
        untagged, _tagged = raw.command(b"STORE 2 +FLAGS (\\Seen)")
        assert re.fullmatch(
            rb"\* 2 FETCH \(FLAGS \(\\Seen \\Recent\) MODSEQ \((\d+)\)\)\r\n", untagged[0]
        )
        changed = _modseq(untagged[0])
        assert changed > highest
        untagged, _tagged = raw.command(b"FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % highest)
        assert untagged == [b"* 2 FETCH (FLAGS (\\Seen \\Recent) MODSEQ (%d))\r\n" % changed]
        untagged, _tagged = raw.command(b"UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % changed)
        assert untagged == []
        untagged, _tagged = raw.command(b"SEARCH MODSEQ %d" % changed)
        assert untagged == [b"* SEARCH 2 (MODSEQ %d)\r\n" % changed]
        untagged, _tagged = raw.command(b"STATUS INBOX (HIGHESTMODSEQ)")
        assert untagged == [b"* STATUS INBOX (HIGHESTMODSEQ %d)\r\n" % changed]


def test_unchangedsince_refuses_stale_stores_with_modified(live: RunningServer) -> None:
    person = _user_with(live, 2)
    with RawImap(live) as raw:
        raw.login(person)
        raw.command(b"ENABLE CONDSTORE")
        raw.command(b"SELECT INBOX")
        untagged, _tagged = raw.command(b"FETCH 1:2 (MODSEQ)")
        first = _modseq(untagged[0])
        untagged, _tagged = raw.command(b"STORE 1 +FLAGS (\\Flagged)")
        bumped = _modseq(untagged[0])
        untagged, tagged = raw.command(
            b"STORE 1:2 (UNCHANGEDSINCE %d) +FLAGS (\\Seen)" % max(first, _modseq_of(raw, 2))
        )
        assert b" OK [MODIFIED 1]" in tagged
        assert [line[:9] for line in untagged] == [b"* 2 FETCH"]
        untagged, _tagged = raw.command(b"FETCH 1 (FLAGS MODSEQ)")
        assert untagged == [b"* 1 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ (%d))\r\n" % bumped]


def _modseq_of(raw: RawImap, seq: int) -> int:
    untagged, _tagged = raw.command(b"FETCH %d (MODSEQ)" % seq)
    return _modseq(untagged[0])


def test_qresync_select_reports_vanished_and_changed_flags(live: RunningServer) -> None:
    person = _user_with(live, 4)
    with RawImap(live) as raw:
        raw.login(person)
        raw.command(b"ENABLE QRESYNC")
        untagged, _tagged = raw.command(b"SELECT INBOX")
        text = b"".join(untagged)
        uidvalidity = int(re.search(rb"UIDVALIDITY (\d+)", text).group(1))
        known = int(re.search(rb"HIGHESTMODSEQ (\d+)", text).group(1))
        raw.command(b"UNSELECT")
    with logged_in(live, person) as other:
        other.select_folder("INBOX")
        other.add_flags([1], [b"\\Flagged"])
        other.delete_messages([2, 3])
        other.expunge()
    with RawImap(live) as raw:
        raw.login(person)
        raw.command(b"ENABLE QRESYNC")
        untagged, tagged = raw.command(b"SELECT INBOX (QRESYNC (%d %d 1:4))" % (uidvalidity, known))
        assert b" OK [READ-WRITE]" in tagged
        assert b"* VANISHED (EARLIER) 2:3\r\n" in untagged
        flag_lines = [line for line in untagged if b"FETCH" in line]
        assert len(flag_lines) == 1
        assert re.fullmatch(
            rb"\* 1 FETCH \(FLAGS \(\\Flagged\) UID 1 MODSEQ \(\d+\)\)\r\n", flag_lines[0]
        )
        assert b"* 2 EXISTS\r\n" in untagged
        untagged, _tagged = raw.command(b"UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % known)
        assert untagged[0] == b"* VANISHED (EARLIER) 2:3\r\n"
        assert len(untagged) == 2
        # A stale UIDVALIDITY gets no resync data, just a normal SELECT.
        untagged, _tagged = raw.command(
            b"SELECT INBOX (QRESYNC (%d %d))" % (uidvalidity + 1, known)
        )
        assert not [line for line in untagged if b"VANISHED" in line or b"FETCH" in line]


def test_qresync_needs_enable_and_vanished_needs_changedsince(live: RunningServer) -> None:
    person = _user_with(live, 1)
    with RawImap(live) as raw:
        raw.login(person)
        _untagged, tagged = raw.command(b"SELECT INBOX (QRESYNC (1 1))")
        assert b" BAD " in tagged
        raw.command(b"ENABLE QRESYNC")
        raw.command(b"SELECT INBOX")
        _untagged, tagged = raw.command(b"UID FETCH 1:* (FLAGS) (VANISHED)")
        assert b" BAD " in tagged


def test_expunge_under_qresync_is_reported_as_vanished(live: RunningServer) -> None:
    person = _user_with(live, 3)
    with RawImap(live) as raw:
        raw.login(person)
        raw.command(b"ENABLE QRESYNC")
        raw.command(b"SELECT INBOX")
        raw.command(b"STORE 1,3 +FLAGS.SILENT (\\Deleted)")
        untagged, _tagged = raw.command(b"EXPUNGE")
        assert untagged == [b"* VANISHED 1,3\r\n"]


def test_enable_answers_only_what_is_newly_enabled(live: RunningServer) -> None:
    person = new_user(live)
    with RawImap(live) as raw:
        raw.login(person)
        untagged, _tagged = raw.command(b"ENABLE CONDSTORE X-UNKNOWN")
        assert untagged == [b"* ENABLED CONDSTORE\r\n"]
        untagged, _tagged = raw.command(b"ENABLE CONDSTORE QRESYNC")
        assert untagged == [b"* ENABLED QRESYNC\r\n"]
