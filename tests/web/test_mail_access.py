"""The webmail's IMAP pool against the real IMAP server: one login per web session,
bounded, idle connections closed, a dropped connection reopened once, all closed at the
end; the portal credential with an authorization identity, verified TLS."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from imapclient import IMAPClient

from groupware.core.auth import PORTAL_IDENTITY, portal_password
from groupware.errors import ConfigError
from groupware.web.mail_access import MailAccess, MailBusyError, MailPool, MailUnavailableError
from groupware.web.mail_folders import (
    Folder,
    MessagePage,
    SortedUidsCache,
    folder_tree,
    message_page,
)
from groupware.web.mail_page_cache import PageCache, listed_page
from tests.mail.imap_support import (
    connect,
    deliver,
    imap_server,
    logged_in,
    new_user,
    simple_message,
)
from tests.support.servers import RunningServer, make_config, running_server
from tests.support.waiting import wait_for


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with imap_server(tmp_path_factory, "webmail-access") as server:
        yield server


@pytest.fixture
def access(live: RunningServer) -> Iterator[MailAccess]:
    found = MailAccess(live.config)
    found.locate(imap=live.addresses["imaps"], submission=live.addresses["submissions"])
    yield found
    found.close()


def inbox_count(client: IMAPClient) -> int:
    return int(client.select_folder("INBOX", readonly=True)[b"EXISTS"])


class Clock:
    """A hand-moved monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_web_session_logs_in_once_as_its_person_for_many_requests(
    live: RunningServer, access: MailAccess
) -> None:
    person = new_user(live)
    deliver(live, person.email, simple_message("Réunion"))
    wait_for(lambda: access.run("session-1", person.login, inbox_count) == 1)
    counts = [access.run("session-1", person.login, inbox_count) for _ in range(3)]
    assert counts == [1, 1, 1]
    assert access.pool.logins_count == 1
    assert access.pool.open_count() == 1
    logins = [
        r for r in live.core.audit.recent(limit=20, subject=person.login) if r.event == "login.ok"
    ]
    assert [(r.actor, r.detail) for r in logins] == [(PORTAL_IDENTITY, "acting_for")]


def test_each_web_session_has_its_own_connection_and_person(
    live: RunningServer, access: MailAccess
) -> None:
    first, second = new_user(live), new_user(live)
    deliver(live, first.email, simple_message("Pour la première"))
    wait_for(lambda: access.run("a", first.login, inbox_count) == 1)
    assert access.run("b", second.login, inbox_count) == 0
    assert access.pool.open_count() == 2


def test_the_pool_is_bounded_and_evicts_the_least_recently_used(live: RunningServer) -> None:
    config = make_config(live.config.data_dir.parent, webmail={"max_connections_count": 2})
    access = MailAccess(config)
    access.locate(imap=live.addresses["imaps"])
    try:
        people = [new_user(live) for _ in range(3)]
        for number, person in enumerate(people):
            access.run(number, person.login, inbox_count)
        assert access.pool.open_count() == 2
        access.run(2, people[2].login, inbox_count)  # still pooled: no new login
        assert access.pool.logins_count == 3
        access.run(0, people[0].login, inbox_count)  # evicted earlier: logs in again
        assert access.pool.logins_count == 4
        assert access.pool.open_count() == 2
    finally:
        access.close()


def test_a_full_pool_of_busy_connections_refuses_rather_than_grows(live: RunningServer) -> None:
    config = make_config(live.config.data_dir.parent, webmail={"max_connections_count": 1})
    access = MailAccess(config)
    access.locate(imap=live.addresses["imaps"])
    first, second = new_user(live), new_user(live)

    def nested(client: IMAPClient) -> int:
        # While this session's connection is in use, another session needs one.
        return access.run("other", second.login, inbox_count)

    try:
        with pytest.raises(MailBusyError):
            access.run("busy", first.login, nested)
        assert access.pool.open_count() == 1
    finally:
        access.close()


def test_a_dropped_connection_is_reopened_once_and_the_request_succeeds(
    live: RunningServer, access: MailAccess
) -> None:
    person = new_user(live)
    client = access.run("s", person.login, lambda c: c)
    client.socket().shutdown(socket.SHUT_RDWR)  # the network drops it under us
    assert access.run("s", person.login, inbox_count) == 0
    assert access.pool.logins_count == 2
    assert access.pool.open_count() == 1


def test_idle_connections_are_logged_out(live: RunningServer) -> None:
    clock = Clock()
    access = MailAccess(live.config)
    access.locate(imap=live.addresses["imaps"])
    pool = MailPool(access._connect, max_connections_count=5, idle_seconds=60, clock=clock)
    old, recent = new_user(live), new_user(live)
    try:
        pool.run("old", old.login, inbox_count)
        clock.now += 50
        pool.run("recent", recent.login, inbox_count)
        clock.now += 20
        assert pool.close_idle() == 1
        assert pool.open_count() == 1
        pool.run("old", old.login, inbox_count)  # comes back with a new login
        assert pool.logins_count == 3
    finally:
        pool.close()
        access.close()


def test_the_reaper_thread_closes_idle_connections(live: RunningServer) -> None:
    config = make_config(live.config.data_dir.parent, webmail={"idle_seconds": 1})
    access = MailAccess(config)
    access.locate(imap=live.addresses["imaps"])
    person = new_user(live)
    try:
        access.pool.start_reaper()
        access.run("s", person.login, inbox_count)
        wait_for(lambda: access.pool.open_count() == 0, timeout_seconds=5)
    finally:
        access.close()


def test_closing_logs_out_everything_and_refuses_new_work(
    live: RunningServer, access: MailAccess
) -> None:
    person = new_user(live)
    client = access.run("s", person.login, lambda c: c)
    access.close()
    assert access.pool.open_count() == 0
    with pytest.raises(OSError):  # noqa: PT011 - the socket is closed, whatever the errno
        client.socket().getpeername()
    with pytest.raises(MailUnavailableError):
        access.run("s", person.login, inbox_count)


def test_signing_out_discards_the_session_connection(
    live: RunningServer, access: MailAccess
) -> None:
    person = new_user(live)
    access.run("s", person.login, inbox_count)
    access.pool.discard("s")
    assert access.pool.open_count() == 0


def test_a_wrong_master_password_is_refused(live: RunningServer, tmp_path: Path) -> None:
    wrong = tmp_path / "master.txt"
    wrong.write_text("not the portal credential\n")
    config = make_config(live.config.data_dir.parent, webmail={"master_password_file": str(wrong)})
    access = MailAccess(config)
    access.locate(imap=live.addresses["imaps"])
    try:
        with pytest.raises(MailUnavailableError, match="login refused"):
            access.run("s", new_user(live).login, inbox_count)
        assert access.pool.open_count() == 0
    finally:
        access.close()


def test_a_server_certificate_not_trusted_is_refused(live: RunningServer, tmp_path: Path) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    config = make_config(live.config.data_dir.parent, webmail={"ca_file": str(other)})
    access = MailAccess(config)
    access.locate(imap=live.addresses["imaps"])
    try:
        with pytest.raises(MailUnavailableError, match="cannot connect"):
            access.run("s", new_user(live).login, inbox_count)
    finally:
        access.close()


def test_the_folder_tree_is_the_same_with_list_status_and_with_status_per_folder(
    live: RunningServer, access: MailAccess
) -> None:
    person = new_user(live)
    deliver(live, person.email, simple_message("Non lu"))
    wait_for(lambda: access.run("s", person.login, inbox_count) == 1)
    access.run("s", person.login, lambda c: c.create_folder("Été/2026"))
    with_list_status = access.run("s", person.login, folder_tree)

    def without_list_status(client: IMAPClient) -> list[Folder]:
        # As against a server that lacks RFC 5819: imapclient's own answer, narrowed.
        has = client.has_capability
        client.has_capability = lambda name: name != "LIST-STATUS" and has(name)
        try:
            return folder_tree(client)
        finally:
            del client.has_capability

    assert access.run("s", person.login, without_list_status) == with_list_status
    inbox = next(f for f in with_list_status if f.special == "inbox")
    assert (inbox.total, inbox.unseen) == (1, 1)
    assert [f.parts for f in with_list_status][-2:] == [("Été",), ("Été", "2026")]


def test_sorted_uids_are_reused_until_messages_arrive_or_go(
    live: RunningServer, access: MailAccess
) -> None:
    person = new_user(live)
    for subject in ("B", "A", "C"):
        deliver(live, person.email, simple_message(subject))
    wait_for(lambda: access.run("s", person.login, inbox_count) == 3)
    cache = SortedUidsCache()
    sorts: list[int] = []

    def page(client: IMAPClient) -> list[str]:
        # Count the SORTs the server is asked (imapclient's own method, wrapped).
        sort = client.sort
        client.sort = lambda *a, **k: sorts.append(1) or sort(*a, **k)
        try:
            listing = message_page(
                client,
                "INBOX",
                sort="subject",
                is_reverse=False,
                page=1,
                per_page=10,
                cache=(cache, person.login),
            )
        finally:
            del client.sort
        return [s.subject for s in listing.summaries]

    assert access.run("s", person.login, page) == ["A", "B", "C"]
    assert access.run("s", person.login, page) == ["A", "B", "C"]
    assert len(sorts) == 1  # the second page view sorted nothing
    with logged_in(live, person) as client:
        client.select_folder("INBOX")
        client.add_flags(client.search("ALL"), [b"\\Seen"])  # flags keep the order
    assert access.run("s", person.login, page) == ["A", "B", "C"]
    assert len(sorts) == 1
    deliver(live, person.email, simple_message("AA"))
    wait_for(lambda: access.run("s", person.login, inbox_count) == 4)
    assert access.run("s", person.login, page) == ["A", "AA", "B", "C"]
    with logged_in(live, person) as client:
        client.select_folder("INBOX")
        client.delete_messages(client.search(["SUBJECT", "B"]))
        client.expunge()
    assert access.run("s", person.login, page) == ["A", "AA", "C"]
    assert len(sorts) == 3


def test_a_listed_page_is_reused_until_anything_in_its_folder_changes(
    live: RunningServer, access: MailAccess
) -> None:
    person = new_user(live)
    for subject in ("B", "A"):
        deliver(live, person.email, simple_message(subject))
    wait_for(lambda: access.run("s", person.login, inbox_count) == 2)
    pages, orders = PageCache(), SortedUidsCache()
    selects: list[str] = []

    def page(client: IMAPClient) -> MessagePage:
        # Count the SELECTs the server is asked (imapclient's own method, wrapped).
        select = client.select_folder
        client.select_folder = lambda *a, **k: selects.append(a[0]) or select(*a, **k)
        try:
            inbox = next(f for f in folder_tree(client) if f.special == "inbox")
            return listed_page(
                client,
                inbox,
                login=person.login,
                sort="subject",
                is_reverse=False,
                page=1,
                per_page=10,
                pages=pages,
                orders=orders,
            )
        finally:
            del client.select_folder

    first = access.run("s", person.login, page)
    assert access.run("s", person.login, page) is first
    assert selects == ["INBOX"]  # the second view asked only for the tree
    with logged_in(live, person) as client:  # another client changes a flag
        client.select_folder("INBOX")
        client.add_flags(client.search(["SUBJECT", "A"]), [b"\\Seen"])
    flagged = access.run("s", person.login, page)
    assert [(m.subject, m.is_seen) for m in flagged.summaries] == [("A", True), ("B", False)]
    deliver(live, person.email, simple_message("AA"))
    wait_for(lambda: access.run("s", person.login, inbox_count) == 3)
    assert [m.subject for m in access.run("s", person.login, page).summaries] == ["A", "AA", "B"]
    with logged_in(live, person) as client:
        client.select_folder("INBOX")
        client.delete_messages(client.search(["SUBJECT", "B"]))
        client.expunge()
    assert [m.subject for m in access.run("s", person.login, page).summaries] == ["A", "AA"]
    assert selects == ["INBOX"] * 4  # one per change, none for the unchanged view


def test_a_master_password_file_is_the_credential_our_own_servers_accept(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "master.txt"
    secret.write_text("un-mot-de-passe-maitre-assez-long\n")
    config = make_config(
        tmp_path, webmail={"master_login": "Portail-ENT", "master_password_file": str(secret)}
    )
    with running_server(config, only=frozenset({"imap"})) as server:
        person = new_user(server)
        access = MailAccess(config)
        access.locate(imap=server.addresses["imaps"])
        try:
            assert access.run("s", person.login, inbox_count) == 0
        finally:
            access.close()
        records = server.core.audit.recent(limit=20, subject=person.login)
        logins = [(r.actor, r.detail) for r in records if r.event == "login.ok"]
        assert logins == [("portail-ent", "acting_for")]
        # The derived credential no longer opens anything once a file names another.
        derived = portal_password(config.read_secret())
        client = connect(server)
        try:
            with pytest.raises(IMAPClient.Error):
                client.plain_login(PORTAL_IDENTITY, derived, authorization_identity=person.login)
        finally:
            client.shutdown()


def test_a_short_master_password_file_is_a_configuration_error(tmp_path: Path) -> None:
    secret = tmp_path / "master.txt"
    secret.write_text("court\n")
    config = make_config(tmp_path, webmail={"master_password_file": str(secret)})
    with pytest.raises(ConfigError, match="fewer than 16 characters"):
        MailAccess(config)
