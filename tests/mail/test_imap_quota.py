"""QUOTA over IMAP and its enforcement on APPEND and COPY (RFC 9208, RFC 5530 OVERQUOTA)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from imapclient.exceptions import IMAPClientError

from tests.mail.imap_support import RawImap, imap_server, logged_in, new_user
from tests.support.servers import RunningServer

QUOTA_BYTES = 10 * 1024


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with imap_server(tmp_path_factory, "imap-quota") as server:
        yield server


def _message(size: int) -> bytes:
    head = b"Subject: taille\r\n\r\n"
    return head + b"x" * (size - len(head))


def test_quota_root_and_usage_in_kibibytes(live: RunningServer) -> None:
    person = new_user(live, quota_bytes=QUOTA_BYTES)
    with logged_in(live, person) as client:
        client.append("INBOX", _message(1500))
        client.append("Corbeille", _message(1000))
        roots, quotas = client.get_quota_root("INBOX")
        assert roots.mailbox == "INBOX"
        assert roots.quota_roots == [""]
        assert [(q.quota_root, q.resource, q.usage, q.limit) for q in quotas] == [
            ("", "STORAGE", 3, 10)  # 2500 bytes, rounded up
        ]
        assert [(q.usage, q.limit) for q in client.get_quota("Corbeille")] == [(3, 10)]


def test_quota_wire_form_and_setquota_is_refused(live: RunningServer) -> None:
    person = new_user(live, quota_bytes=QUOTA_BYTES)
    with RawImap(live) as raw:
        raw.login(person)
        untagged, _tagged = raw.command(b'GETQUOTAROOT "Envoy&AOk-s"')
        assert untagged == [
            b'* QUOTAROOT Envoy&AOk-s ""\r\n',
            b'* QUOTA "" (STORAGE 0 10)\r\n',
        ]
        untagged, _tagged = raw.command(b'GETQUOTA ""')
        assert untagged == [b'* QUOTA "" (STORAGE 0 10)\r\n']
        _untagged, tagged = raw.command(b'GETQUOTA "autre"')
        assert b" NO " in tagged
        _untagged, tagged = raw.command(b'SETQUOTA "" (STORAGE 999999)')
        assert b" NO " in tagged
        _untagged, tagged = raw.command(b"GETQUOTAROOT Absent")
        assert b"NO [NONEXISTENT]" in tagged


def test_append_over_quota_is_refused_and_nothing_is_stored(live: RunningServer) -> None:
    person = new_user(live, quota_bytes=QUOTA_BYTES)
    with logged_in(live, person) as client:
        client.append("INBOX", _message(QUOTA_BYTES - 100))
        with pytest.raises(IMAPClientError, match="OVERQUOTA"):
            client.append("INBOX", _message(101))
        client.append("INBOX", _message(100))  # exactly full is allowed
        assert client.folder_status("INBOX", ["MESSAGES"])[b"MESSAGES"] == 2
        _roots, quotas = client.get_quota_root("INBOX")
        assert (quotas[0].usage, quotas[0].limit) == (10, 10)


def test_copy_over_quota_is_refused_and_expunge_frees_space(live: RunningServer) -> None:
    person = new_user(live, quota_bytes=QUOTA_BYTES)
    with RawImap(live) as raw:
        raw.login(person)
        big = _message(6000)
        raw.command(b"APPEND INBOX {%d+}\r\n" % len(big) + big)
        raw.command(b"SELECT INBOX")
        _untagged, tagged = raw.command(b"COPY 1 Archives")
        assert b"NO [OVERQUOTA]" in tagged
        untagged, _tagged = raw.command(b"STATUS Archives (MESSAGES)")
        assert untagged == [b"* STATUS Archives (MESSAGES 0)\r\n"]
        # Moving within one account needs no extra space.
        _untagged, tagged = raw.command(b"MOVE 1 Archives")
        assert b" OK " in tagged
        raw.command(b"SELECT Archives")
        raw.command(b"STORE 1 +FLAGS.SILENT (\\Deleted)")
        raw.command(b"EXPUNGE")
        untagged, _tagged = raw.command(b'GETQUOTA ""')
        assert untagged == [b'* QUOTA "" (STORAGE 0 10)\r\n']
        _untagged, tagged = raw.command(b"APPEND INBOX {%d+}\r\n" % len(big) + big)
        assert b" OK [APPENDUID" in tagged


def test_quota_change_by_an_admin_applies_at_once(live: RunningServer) -> None:
    person = new_user(live, quota_bytes=1024)
    with logged_in(live, person) as client:
        with pytest.raises(IMAPClientError, match="OVERQUOTA"):
            client.append("INBOX", _message(2000))
        live.core.directory.set_quota(person.login, 4096, actor="test")
        client.append("INBOX", _message(2000))
        assert [(q.usage, q.limit) for q in client.get_quota("INBOX")] == [(2, 4)]
