"""The mail store, its full-text index and a whole server on a real PostgreSQL.

The first tests are the SQLite suite's own (``tests/mail/test_store.py``), collected here
a second time over a fresh PostgreSQL database (``tests/support/postgres.py``). Tests
parametrised with ``config`` run on both engines, to show that they answer alike.
"""

from __future__ import annotations

import base64
import random
import string
import threading
import urllib.request
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text

from groupware.config import Config
from groupware.core.services import Core
from groupware.mail.schema import mailboxes
from groupware.mail.store import INBOX, MailStore, QuotaExceededError
from tests.mail import test_delivery_batch as batch_suite
from tests.mail import test_store as store_suite
from tests.mail.imap_support import PASSWORD, deliver, logged_in, new_user, simple_message
from tests.mail.test_store import MESSAGE
from tests.support.servers import add_user, make_config, running_server
from tests.support.waiting import wait_for

BOTH_ENGINES = pytest.mark.parametrize("config", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def config(request: pytest.FixtureRequest, tmp_path: Path) -> Config:
    """The test's data folder on PostgreSQL (or on SQLite when parametrised so)."""
    if getattr(request, "param", "postgresql") == "sqlite":
        return make_config(tmp_path)
    return make_config(tmp_path, database={"url": request.getfixturevalue("postgres_url")})


# --- the SQLite suite, on PostgreSQL -----------------------------------------------

events = store_suite.events
store = store_suite.store
test_special_folders_once = store_suite.test_special_folders_exist_once_in_the_persons_language
test_append = store_suite.test_append_stores_crlf_bytes_and_indexes_envelope
test_copy_shares_the_file = store_suite.test_uids_increase_and_copy_shares_the_file
test_expunge = store_suite.test_expunge_removes_only_deleted_and_frees_file_when_last_copy_goes
test_store_flags_modseq = store_suite.test_store_flags_modseq_and_unchanged_since
test_quota = store_suite.test_quota_is_enforced_exactly_and_nothing_is_stored_over_it
test_full_text_search = store_suite.test_full_text_search_folds_accents_and_matches_prefixes
test_mailbox_hierarchy = store_suite.test_mailbox_hierarchy_create_rename_delete
test_renaming_inbox_moves = (
    store_suite.test_renaming_inbox_moves_its_messages_and_keeps_an_empty_inbox
)
test_batch_lands_in_order = (
    batch_suite.test_a_batch_lands_in_order_with_one_modseq_per_mailbox_and_files_in_one_folder
)
test_batch_delivered_again = (
    batch_suite.test_a_second_delivery_of_the_same_keys_stores_nothing_and_answers_the_first
)
test_batch_quota = (
    batch_suite.test_quota_refuses_the_messages_that_do_not_fit_and_keeps_the_usage_exact
)
test_batch_left_in_the_spool = (
    batch_suite.test_messages_delivered_but_left_in_the_spool_by_a_crash_land_once_after_restart
)

SIZE = len(MESSAGE.replace(b"\n", b"\r\n"))


def test_the_store_is_in_postgresql(store: MailStore) -> None:
    assert store.engine.dialect.name == "postgresql"
    assert type(store.text_index).__name__ == "PostgresTextIndex"


@BOTH_ENGINES
def test_counts_and_changes_follow_flags_moves_copies_and_expunges(
    core: Core, store: MailStore
) -> None:
    person = add_user(core, "Marie", "Dupont")
    store.ensure_mailboxes(person)
    inbox = store.get_mailbox(person.id, INBOX).id
    archive = store.get_mailbox(person.id, "Archives").id
    # "Seen" without its backslash, and LIKE's wildcards: none of them is \Seen.
    for flags in ([], ["\\Seen"], ["\\Seen", "\\Deleted"], ["Seen", "50%_off"]):
        store.append(person, INBOX, MESSAGE, flags=flags)

    assert store.counts(inbox) == {
        "messages": 4,
        "size": 4 * SIZE,
        "unseen": 2,
        "deleted": 1,
        "recent": 4,
    }
    since = store.get_mailbox(person.id, INBOX).highest_modseq
    [(uid, flags, modseq)], _failed = store.store_flags(inbox, [1], "add", ["\\Seen"])
    assert sorted(store.clear_recent(inbox)) == [1, 2, 3, 4]
    _uidvalidity, moved = store.move(inbox, [2], archive)
    assert store.expunge(inbox) == [3]

    changed, expunged, highest = store.changes(inbox, since)
    assert [(m.uid, m.flags, m.modseq) for m in changed] == [(1, flags, modseq)]
    assert expunged == [2, 3]
    assert highest == store.get_mailbox(person.id, INBOX).highest_modseq > modseq
    assert store.changes(inbox, highest) == ([], [], highest)
    assert store.counts(inbox) == {
        "messages": 2,
        "size": 2 * SIZE,
        "unseen": 1,
        "deleted": 0,
        "recent": 0,
    }
    assert moved == [(2, 1)]
    assert store.counts(archive)["messages"] == 1
    assert store.usage(person.id) == (3 * SIZE, 3)
    # A copy over the quota stores nothing.
    core.directory.set_quota(person.login, 4 * SIZE, actor="test")
    with pytest.raises(QuotaExceededError):
        store.copy(inbox, [1, 4], archive)
    assert store.usage(person.id) == (3 * SIZE, 3)
    assert store.copy(inbox, [1], archive)[1] == [(1, 2)]
    assert store.usage(person.id) == (4 * SIZE, 4)


ADDRESSED = (
    b"From: helene.martin@example.org\r\n"
    b"To: Marie Dupont <marie.dupont@ac-paris.fr>\r\n"
    b"Subject: file_name du =?utf-8?q?r=C3=A9seau?=\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Voir https://www.ac-lyon.fr/ecoles/reglement et \xc3\xa9crire \xc3\xa0 "
    b"jean-pierre.roux@example.net, le budget est vot\xc3\xa9.\r\n"
)


@BOTH_ENGINES
@pytest.mark.parametrize(
    ("field", "query", "is_found"),
    [
        ("addresses", "martin", True),  # inside an address: a word on its own
        ("addresses", "example", True),
        ("addresses", "dupont", True),
        ("addresses", "AC-PAR", True),
        ("subject", "reseau", True),  # accents folded
        ("subject", "réseau", True),
        ("subject", "file_name", True),
        ("subject", "name", True),
        ("body", "lyon", True),  # inside a URL
        ("body", "ecole", True),  # prefix
        ("body", "ecrire", True),
        ("body", "jean.pierre", True),
        ("body", "pierre roux", True),
        (None, "budg vote", True),
        (None, "lyon martin", True),  # each word in some field
        ("body", "lyon martin", False),
        ("subject", "budget", False),  # only in the body
        ("body", "reglements", False),  # longer than the word
        ("body", "", False),
        ("body", "_", False),
    ],
)
def test_full_text_words_are_the_same_on_both_engines(
    core: Core, store: MailStore, field: str | None, query: str, is_found: bool
) -> None:
    person = add_user(core, "Marie", "Dupont")
    store.ensure_mailboxes(person)
    store.append(person, INBOX, ADDRESSED)
    [info] = store.messages(store.get_mailbox(person.id, INBOX).id)

    assert store.search_text(field, query) == ({info.blob_id} if is_found else set())


@BOTH_ENGINES
def test_a_body_of_a_hundred_thousand_distinct_words_is_stored_and_searchable(
    core: Core, store: MailStore
) -> None:
    # PostgreSQL holds at most 1 MiB in one tsvector and refuses the row beyond.
    rnd = random.Random(7)
    words = ["".join(rnd.choices(string.ascii_lowercase, k=8)) for _ in range(110_000)]
    data = b"Subject: export\r\n\r\n" + " ".join(words).encode() + b"\r\n"
    person = add_user(core, "Marie", "Dupont")
    store.ensure_mailboxes(person)

    store.append(person, INBOX, data)

    [info] = store.messages(store.get_mailbox(person.id, INBOX).id)
    assert store.search_text("body", words[0]) == {info.blob_id}
    assert store.search_text("body", words[-1]) == {info.blob_id}


def test_internal_dates_read_back_as_the_same_utc_instant(core: Core, store: MailStore) -> None:
    # Just after midnight in Paris is still the day before in UTC: IMAP's SEARCH ON,
    # SINCE and BEFORE take the internal date's day, which must not depend on the
    # database server's zone (this cluster's is Europe/Paris).
    given = datetime(2026, 12, 2, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    person = add_user(core, "Marie", "Dupont")
    store.ensure_mailboxes(person)
    inbox = store.append(person, INBOX, MESSAGE, internal_date=given).mailbox_id

    [info] = store.messages(inbox)
    [changed], _expunged, _highest = store.changes(inbox, 0)
    for moment in (info.internal_date, changed.internal_date):
        assert moment == given
        assert moment.utcoffset() == timedelta(0)
        assert moment.date() == date(2026, 12, 1)
    meta = store.blob_meta([info.blob_id])[info.blob_id]
    assert meta["sent_date"] == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _lock_waiters(core: Core) -> int:
    """Sessions of the test's database waiting for a lock another one holds."""
    with core.engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()"
                )
            ).scalar_one()
        )


def _run_recording(action: Callable[[], object], errors: list[BaseException]) -> threading.Thread:
    def target() -> None:
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - reported to the test
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    return thread


def test_copy_into_inbox_while_mail_arrives_does_not_deadlock(core: Core, store: MailStore) -> None:
    person = add_user(core, "Marie", "Dupont")
    store.ensure_mailboxes(person)
    store.append(person, "Archives", MESSAGE)
    inbox = store.get_mailbox(person.id, INBOX).id
    archive = store.get_mailbox(person.id, "Archives").id
    errors: list[BaseException] = []

    # Another session holds INBOX's row (as a delivery to it would, for an instant),
    # so that both writers are inside their transactions when it lets go.
    with core.engine.begin() as holder:
        holder.execute(select(mailboxes.c.id).where(mailboxes.c.id == inbox).with_for_update())
        copier = _run_recording(lambda: store.copy(archive, [1], inbox), errors)
        wait_for(lambda: _lock_waiters(core) == 1)
        deliverer = _run_recording(lambda: store.append(person, INBOX, MESSAGE), errors)
        wait_for(lambda: _lock_waiters(core) == 2)
    copier.join(timeout=10)
    deliverer.join(timeout=10)

    assert errors == []
    assert len(store.messages(inbox)) == 2


def test_mailboxes_ensured_concurrently_for_one_person_are_made_once(
    core: Core, store: MailStore
) -> None:
    person = add_user(core, "Marie", "Dupont")
    errors: list[BaseException] = []

    # Another session is making the same person's INBOX and has not committed yet.
    with core.engine.begin() as other:
        other.execute(
            insert(mailboxes).values(
                person_id=person.id,
                name=INBOX,
                special_use="",
                uidvalidity=1,
                uid_next=1,
                highest_modseq=1,
                is_subscribed=True,
            )
        )
        ensurer = _run_recording(lambda: store.ensure_mailboxes(person), errors)
        wait_for(lambda: _lock_waiters(core) == 1)
    ensurer.join(timeout=10)

    assert errors == []
    names = [mailbox.name for mailbox in store.list_mailboxes(person.id)]
    assert sorted(names) == sorted(
        [INBOX, "Archives", "Brouillons", "Corbeille", "Envoyés", "Indésirables"]
    )


def test_a_server_on_postgresql_delivers_serves_imap_and_dav(
    tmp_path: Path, postgres_url: str
) -> None:
    config = make_config(tmp_path, database={"url": postgres_url})
    with running_server(config, only=frozenset({"http", "smtp", "imap"})) as server:
        assert server.core.engine.dialect.name == "postgresql"
        person = new_user(server)
        deliver(
            server,
            person.email,
            simple_message("Réunion de rentrée", "Le budget des sorties est voté.\r\n"),
        )

        # Delivered before the login: a login while the delivery worker makes the same
        # folders is the ensure_mailboxes race above (SERVERBUG on LOGIN).
        wait_for(
            lambda: any(
                record.event == "mail.delivered"
                for record in server.core.audit.recent(20, subject=person.email)
            )
        )
        with logged_in(server, person) as client:
            assert client.select_folder("INBOX")[b"EXISTS"] == 1
            [uid] = client.search(["ALL"])
            fetched = client.fetch([uid], ["BODY.PEEK[]", "FLAGS", "RFC822.SIZE"])[uid]
            assert client.search(["BODY", "budg"]) == [uid]
            assert client.search(["TEXT", "reunion"]) == [uid]
            assert client.search(["BODY", "rentree"]) == []
        assert b"Le budget des sorties" in fetched[b"BODY[]"]
        assert fetched[b"RFC822.SIZE"] == len(fetched[b"BODY[]"])
        assert b"\\Seen" not in fetched[b"FLAGS"]

        credentials = base64.b64encode(f"{person.login}:{PASSWORD}".encode()).decode()
        request = urllib.request.Request(
            server.dav_url,
            method="PROPFIND",
            headers={"Authorization": f"Basic {credentials}", "Depth": "0"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 207
            assert b"multistatus" in response.read()

        logins = {
            record.protocol
            for record in server.core.audit.recent(50, subject=person.login)
            if record.event == "login.ok"
        }
        assert logins == {"imap", "dav"}
