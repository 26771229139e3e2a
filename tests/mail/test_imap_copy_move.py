"""COPY, MOVE, EXPUNGE, UID EXPUNGE, CLOSE and UNSELECT with UIDPLUS answers
(RFC 3501 §6.4.3, §6.4.7, RFC 4315, RFC 6851, RFC 3691)."""

from __future__ import annotations

import imaplib
import re
from collections.abc import Iterator

import pytest
from imapclient.exceptions import IMAPClientError

from groupware.core.directory import Person
from tests.mail.imap_support import (
    PASSWORD,
    TIMEOUT_SECONDS,
    RawImap,
    imap_server,
    logged_in,
    new_user,
    simple_message,
    tls_context,
)
from tests.support.servers import RunningServer


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with imap_server(tmp_path_factory, "imap-copy") as server:
        yield server


def _user_with(live: RunningServer, count: int) -> Person:
    person = new_user(live)
    with logged_in(live, person) as client:
        client.create_folder("Classement")
        for number in range(1, count + 1):
            client.append("INBOX", simple_message(f"message {number}"))
    return person


def _uidvalidity(untagged: list[bytes], name: bytes) -> int:
    for line in untagged:
        if line.startswith(b"* STATUS " + name):
            return int(re.search(rb"UIDVALIDITY (\d+)", line).group(1))
    raise AssertionError(untagged)


def test_copy_answers_copyuid_and_keeps_flags(live: RunningServer) -> None:
    person = _user_with(live, 3)
    with RawImap(live) as raw:
        raw.login(person)
        target = _uidvalidity(raw.command(b"STATUS Classement (UIDVALIDITY)")[0], b"Classement")
        raw.command(b"SELECT INBOX")
        raw.command(b"STORE 2 +FLAGS.SILENT (\\Flagged $Tri)")
        untagged, tagged = raw.command(b"COPY 2:3 Classement")
        assert tagged.startswith(b"t5 OK [COPYUID %d 2:3 1:2]" % target)
        assert untagged == []
        untagged, tagged = raw.command(b"UID COPY 1 Classement")
        assert tagged.startswith(b"t6 OK [COPYUID %d 1 3]" % target)
        untagged, _tagged = raw.command(b"STATUS INBOX (MESSAGES)")
        assert untagged == [b"* STATUS INBOX (MESSAGES 3)\r\n"]
        raw.command(b"EXAMINE Classement")
        untagged, _tagged = raw.command(b"FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert [re.search(rb"Subject: ([^\r]+)", line).group(1) for line in untagged] == [
        b"message 2",
        b"message 3",
        b"message 1",
    ]
    assert b"FLAGS (\\Flagged $Tri \\Recent)" in untagged[0]


def test_copy_into_a_missing_mailbox_says_trycreate(live: RunningServer) -> None:
    person = _user_with(live, 1)
    with logged_in(live, person) as client:
        client.select_folder("INBOX")
        with pytest.raises(IMAPClientError, match="TRYCREATE"):
            client.copy([1], "Absent")
        with pytest.raises(IMAPClientError, match="TRYCREATE"):
            client.move([1], "Absent")
        assert client.search() == [1]


def test_copy_into_the_same_mailbox_announces_the_copies(live: RunningServer) -> None:
    person = _user_with(live, 1)
    with RawImap(live) as raw:
        raw.login(person)
        raw.command(b"SELECT INBOX")
        untagged, tagged = raw.command(b"COPY 1 INBOX")
    assert b"[COPYUID " in tagged
    assert b"* 2 EXISTS\r\n" in untagged


def test_move_sends_copyuid_then_expunges(live: RunningServer) -> None:
    person = _user_with(live, 4)
    with RawImap(live) as raw:
        raw.login(person)
        target = _uidvalidity(raw.command(b"STATUS Classement (UIDVALIDITY)")[0], b"Classement")
        raw.command(b"SELECT INBOX")
        untagged, tagged = raw.command(b"MOVE 2,4 Classement")
        assert untagged[0] == b"* OK [COPYUID %d 2,4 1:2] Moved\r\n" % target
        assert untagged[1:] == [b"* 4 EXPUNGE\r\n", b"* 2 EXPUNGE\r\n"]
        assert b" OK " in tagged
        untagged, tagged = raw.command(b"UID MOVE 3 Classement")
        assert untagged == [b"* OK [COPYUID %d 3 3] Moved\r\n" % target, b"* 2 EXPUNGE\r\n"]
        untagged, _tagged = raw.command(b"UID FETCH 1:* (UID)")
        assert untagged == [b"* 1 FETCH (UID 1)\r\n"]
        untagged, _tagged = raw.command(b"STATUS Classement (MESSAGES UIDNEXT)")
        assert untagged == [b"* STATUS Classement (MESSAGES 3 UIDNEXT 4)\r\n"]


def test_move_with_imapclient_and_the_other_session_sees_expunge(live: RunningServer) -> None:
    person = _user_with(live, 2)
    with logged_in(live, person) as mover, logged_in(live, person) as watcher:
        mover.select_folder("INBOX")
        watcher.select_folder("INBOX")
        watcher.use_uid = False
        mover.move([1], "Classement")
        _text, responses = watcher.noop()
        assert (1, b"EXPUNGE") in responses
        assert watcher.fetch([1], ["UID"])[1][b"UID"] == 2
        assert mover.folder_status("Classement", ["MESSAGES"])[b"MESSAGES"] == 1


def test_move_from_a_read_only_mailbox_is_refused(live: RunningServer) -> None:
    person = _user_with(live, 1)
    with RawImap(live) as raw:
        raw.login(person)
        raw.command(b"EXAMINE INBOX")
        _untagged, tagged = raw.command(b"MOVE 1 Classement")
        assert b"NO [READ-ONLY]" in tagged
        _untagged, tagged = raw.command(b"EXPUNGE")
        assert b"NO [READ-ONLY]" in tagged


def test_expunge_and_uid_expunge(live: RunningServer) -> None:
    person = _user_with(live, 5)
    with RawImap(live) as raw:
        raw.login(person)
        raw.command(b"SELECT INBOX")
        raw.command(b"STORE 1:4 +FLAGS.SILENT (\\Deleted)")
        untagged, _tagged = raw.command(b"UID EXPUNGE 2:3,5")
        # Only deleted messages among the UIDs go; 5 is not deleted.
        assert untagged == [b"* 3 EXPUNGE\r\n", b"* 2 EXPUNGE\r\n"]
        untagged, _tagged = raw.command(b"EXPUNGE")
        assert untagged == [b"* 2 EXPUNGE\r\n", b"* 1 EXPUNGE\r\n"]
        untagged, _tagged = raw.command(b"UID FETCH 1:* (UID)")
        assert untagged == [b"* 1 FETCH (UID 5)\r\n"]
        message = simple_message("après")
        _untagged, tagged = raw.command(b"APPEND INBOX {%d+}\r\n" % len(message) + message)
        assert re.search(rb"\[APPENDUID \d+ 6\]", tagged)  # UIDs are never reused


def test_close_expunges_silently_and_unselect_does_not(live: RunningServer) -> None:
    person = _user_with(live, 3)
    with RawImap(live) as raw:
        raw.login(person)
        raw.command(b"SELECT INBOX")
        raw.command(b"STORE 1 +FLAGS.SILENT (\\Deleted)")
        untagged, tagged = raw.command(b"UNSELECT")
        assert (untagged, b" OK " in tagged) == ([], True)
        _untagged, tagged = raw.command(b"FETCH 1 FLAGS")
        assert b" BAD " in tagged
        raw.command(b"SELECT INBOX")
        raw.command(b"STORE 2 +FLAGS.SILENT (\\Deleted)")
        untagged, tagged = raw.command(b"CLOSE")
        assert (untagged, b" OK " in tagged) == ([], True)
        untagged, _tagged = raw.command(b"STATUS INBOX (MESSAGES)")
        assert untagged == [b"* STATUS INBOX (MESSAGES 1)\r\n"]
        # CLOSE after EXAMINE removes nothing.
        raw.command(b"EXAMINE INBOX")
        raw.command(b"CLOSE")


def test_copy_to_trash_then_delete_like_a_mail_client(live: RunningServer) -> None:
    person = _user_with(live, 2)
    with logged_in(live, person) as client:
        client.select_folder("INBOX")
        trash = client.find_special_folder(b"\\Trash")
        client.copy([1], trash)
        client.delete_messages([1])
        client.uid_expunge([1])
        assert client.search() == [2]
        assert client.folder_status(trash, ["MESSAGES"])[b"MESSAGES"] == 1


def test_imaplib_session_from_append_to_logout(live: RunningServer) -> None:
    person = new_user(live)
    host, port = live.addresses["imaps"]
    with imaplib.IMAP4_SSL(
        host, port, ssl_context=tls_context(live), timeout=TIMEOUT_SECONDS
    ) as client:
        assert client.login(person.login, PASSWORD)[0] == "OK"
        assert client.create("Tri")[0] == "OK"
        for subject in ("alpha", "beta", "gamma"):
            status, data = client.append("INBOX", "(\\Seen)", None, simple_message(subject))
            assert status == "OK", data
        status, data = client.select("INBOX")
        assert (status, data) == ("OK", [b"3"])
        assert client.search(None, "SUBJECT", "beta") == ("OK", [b"2"])
        status, data = client.fetch("2", "(RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert status == "OK"
        assert data[0][1] == b"Subject: beta\r\n\r\n"
        assert client.store("1", "+FLAGS", "(\\Flagged)") == (
            "OK",
            [b"1 (FLAGS (\\Flagged \\Seen \\Recent))"],
        )
        status, data = client.uid("COPY", "1:2", "Tri")
        assert status == "OK"
        assert client.response("COPYUID")[1][0].split()[1:] == [b"1:2", b"1:2"]
        status, data = client.uid("MOVE", "3", "Tri")
        assert status == "OK"
        assert client.store("1", "+FLAGS", "(\\Deleted)")[0] == "OK"
        status, data = client.expunge()
        # imaplib keeps untagged EXPUNGEs across commands: the MOVE's "3", then ours.
        assert (status, data) == ("OK", [b"3", b"1"])
        assert client.status("Tri", "(MESSAGES)") == ("OK", [b"Tri (MESSAGES 3)"])
        assert client.close()[0] == "OK"
        assert client.logout()[0] == "BYE"
