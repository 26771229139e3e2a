"""The mail store: durable files, exact index, quota, special folders, full text."""

from __future__ import annotations

import threading

import pytest

from groupware.core.directory import Person
from groupware.core.events import EventBus, MailboxChanged
from groupware.core.services import Core
from groupware.errors import ConflictError
from groupware.mail.mime import find_section
from groupware.mail.store import INBOX, MailboxNameError, MailStore, QuotaExceededError
from tests.support.servers import add_user

MESSAGE = (
    b"From: =?utf-8?q?H=C3=A9l=C3=A8ne?= <helene.martin@example.org>\n"
    b"To: Marie Dupont <marie.dupont@example.org>\n"
    b"Subject: =?utf-8?q?R=C3=A9union?= de rentr\xc3\xa9e\n"
    b"Date: Tue, 1 Dec 2026 10:00:00 +0100\n"
    b"Message-ID: <r1@example.org>\n"
    b"MIME-Version: 1.0\n"
    b"Content-Type: text/plain; charset=utf-8\n"
    b"\n"
    b"Le budget des sorties p\xc3\xa9dagogiques est vot\xc3\xa9.\n"
)


@pytest.fixture
def events() -> EventBus:
    return EventBus()


@pytest.fixture
def store(core: Core, events: EventBus) -> MailStore:
    return MailStore(core.engine, core.config.data_dir / "mail", events)


def test_special_folders_exist_once_in_the_persons_language(core: Core, store: MailStore) -> None:
    person = add_user(core, "Marie", "Dupont")
    store.ensure_mailboxes(person)
    store.ensure_mailboxes(person)
    names = {m.name: m.special_use for m in store.list_mailboxes(person.id)}
    assert names == {
        INBOX: "",
        "Brouillons": "\\Drafts",
        "Envoyés": "\\Sent",
        "Indésirables": "\\Junk",
        "Corbeille": "\\Trash",
        "Archives": "\\Archive",
    }
    core.directory.set_language(person.login, "en")
    english = add_user(core, "Paul", "Roux")
    core.directory.set_language(english.login, "en")
    store.ensure_mailboxes(core.directory.get(english.login))
    assert {m.name for m in store.list_mailboxes(english.id)} >= {"Sent", "Trash", "Drafts"}


def test_first_delivery_and_first_login_make_the_folders_at_once_without_error(
    core: Core, store: MailStore
) -> None:
    # Both read the folders, then write: on SQLite the second writer's snapshot was
    # stale and it failed at once ("database is locked") instead of waiting.
    people = [add_user(core, "Élève", f"Numéro{n}") for n in range(12)]
    failures: list[BaseException] = []

    def make(person: Person, start: threading.Barrier) -> None:
        start.wait()
        try:
            store.ensure_mailboxes(person)
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)

    for person in people:
        start = threading.Barrier(3)
        threads = [threading.Thread(target=make, args=(person, start)) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert failures == []
    for person in people:
        assert len(store.list_mailboxes(person.id)) == 6
        assert store.usage(person.id) == (0, 0)


def test_append_stores_crlf_bytes_and_indexes_envelope(
    core: Core, store: MailStore, events: EventBus
) -> None:
    person = add_user(core, "Marie", "Dupont")
    store.ensure_mailboxes(person)
    seen: list[object] = []
    events.subscribe(MailboxChanged, seen.append)
    result = store.append(person, "inbox", MESSAGE, flags=["\\seen", "Projet"])
    assert result.uid == 1
    [info] = store.messages(result.mailbox_id)
    data = store.files.read(info.blob_path)
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert info.size == len(data)
    assert info.flags == {"\\Seen", "Projet"}
    meta = store.blob_meta([info.blob_id])[info.blob_id]
    assert meta["envelope"]["from"] == [
        ["=?utf-8?q?H=C3=A9l=C3=A8ne?=", None, "helene.martin", "example.org"]
    ]
    assert meta["subject_sort"] == "Réunion de rentrée"
    assert meta["from_sort"] == "helene.martin"
    body = find_section(store.structure(info.blob_id), [1])
    assert body is not None
    assert data[body.body_start : body.body_end].startswith(b"Le budget")
    assert seen
    assert store.usage(person.id) == (info.size, 1)


def test_uids_increase_and_copy_shares_the_file(core: Core, store: MailStore) -> None:
    person = add_user(core, "Marie", "Dupont")
    store.ensure_mailboxes(person)
    first = store.append(person, INBOX, MESSAGE)
    second = store.append(person, INBOX, MESSAGE)
    assert (first.uid, second.uid) == (1, 2)
    archive = store.get_mailbox(person.id, "Archives")
    uidvalidity, pairs = store.copy(first.mailbox_id, [1, 2], archive.id)
    assert uidvalidity == archive.uidvalidity
    assert pairs == [(1, 1), (2, 2)]
    copies = store.messages(archive.id)
    originals = store.messages(first.mailbox_id)
    assert [c.blob_id for c in copies] == [o.blob_id for o in originals]
    assert store.usage(person.id)[1] == 4


def test_expunge_removes_only_deleted_and_frees_file_when_last_copy_goes(
    core: Core, store: MailStore
) -> None:
    person = add_user(core, "Marie", "Dupont")
    store.ensure_mailboxes(person)
    inbox = store.append(person, INBOX, MESSAGE).mailbox_id
    store.append(person, INBOX, MESSAGE)
    trash = store.get_mailbox(person.id, "Corbeille").id
    store.copy(inbox, [1], trash)
    changed, failed = store.store_flags(inbox, [1], "add", ["\\Deleted"])
    assert [uid for uid, _flags, _modseq in changed] == [1]
    assert failed == []
    path = store.messages(inbox, [1])[0].blob_path
    assert store.expunge(inbox) == [1]
    assert [m.uid for m in store.messages(inbox)] == [2]
    assert (store.files.root / path).exists()  # still in Trash
    store.store_flags(trash, [1], "add", ["\\Deleted"])
    store.expunge(trash)
    assert not (store.files.root / path).exists()
    assert store.usage(person.id)[1] == 1
    assert store.expunged_since(inbox, 0) == [1]


def test_store_flags_modseq_and_unchanged_since(core: Core, store: MailStore) -> None:
    person = add_user(core, "Marie", "Dupont")
    store.ensure_mailboxes(person)
    inbox = store.append(person, INBOX, MESSAGE).mailbox_id
    [(uid, flags, modseq)], _ = store.store_flags(inbox, [1], "replace", ["\\Flagged", "\\Recent"])
    assert flags == {"\\Flagged"}
    changed, failed = store.store_flags(inbox, [1], "add", ["\\Seen"], unchanged_since=modseq - 1)
    assert changed == []
    assert failed == [1]
    assert store.get_mailbox(person.id, INBOX).highest_modseq == modseq


def test_quota_is_enforced_exactly_and_nothing_is_stored_over_it(
    core: Core, store: MailStore
) -> None:
    person = add_user(core, "Marie", "Dupont")
    size = len(MESSAGE.replace(b"\n", b"\r\n"))
    core.directory.set_quota(person.login, size * 2, actor="test")
    person = core.directory.get(person.login)
    store.ensure_mailboxes(person)
    store.append(person, INBOX, MESSAGE)
    store.append(person, INBOX, MESSAGE)
    with pytest.raises(QuotaExceededError):
        store.append(person, INBOX, MESSAGE)
    assert store.usage(person.id) == (size * 2, 2)
    assert len(list(store.files.root.rglob("*.eml"))) == 2


def test_full_text_search_folds_accents_and_matches_prefixes(core: Core, store: MailStore) -> None:
    person = add_user(core, "Marie", "Dupont")
    store.ensure_mailboxes(person)
    store.append(person, INBOX, MESSAGE)
    [info] = store.messages(store.get_mailbox(person.id, INBOX).id)
    assert store.search_text("body", "pedagogiques") == {info.blob_id}
    assert store.search_text("body", "budg") == {info.blob_id}
    assert store.search_text("subject", "reunion") == {info.blob_id}
    assert store.search_text("addresses", "helene") == {info.blob_id}
    assert store.search_text(None, "vote budget") == {info.blob_id}
    assert store.search_text("subject", "budget") == set()


def test_mailbox_hierarchy_create_rename_delete(core: Core, store: MailStore) -> None:
    person = add_user(core, "Marie", "Dupont")
    store.ensure_mailboxes(person)
    store.create_mailbox(person.id, "Classes/Seconde A")
    assert store.find_mailbox(person.id, "Classes") is not None
    with pytest.raises(ConflictError):
        store.create_mailbox(person.id, "Classes")
    with pytest.raises(MailboxNameError):
        store.create_mailbox(person.id, "Classes//B")
    store.rename_mailbox(person.id, "Classes", "Cours")
    assert store.find_mailbox(person.id, "Cours/Seconde A") is not None
    assert store.find_mailbox(person.id, "Classes/Seconde A") is None
    store.delete_mailbox(person.id, "Cours/Seconde A")
    with pytest.raises(MailboxNameError):
        store.delete_mailbox(person.id, "inbox")


def test_renaming_inbox_moves_its_messages_and_keeps_an_empty_inbox(
    core: Core, store: MailStore
) -> None:
    person = add_user(core, "Marie", "Dupont")
    store.ensure_mailboxes(person)
    store.append(person, INBOX, MESSAGE)
    store.rename_mailbox(person.id, INBOX, "Ancienne boîte")
    assert store.messages(store.get_mailbox(person.id, INBOX).id) == []
    assert len(store.messages(store.get_mailbox(person.id, "Ancienne boîte").id)) == 1


def test_malformed_message_is_stored_and_described(core: Core, store: MailStore) -> None:
    person = add_user(core, "Marie", "Dupont")
    store.ensure_mailboxes(person)
    broken = b"Subject: broken\nContent-Type: multipart/mixed\n\nno boundary at all\n\xff\xfe"
    result = store.append(person, INBOX, broken)
    [info] = store.messages(result.mailbox_id)
    top = store.structure(info.blob_id)
    assert (top.maintype, top.subtype) == ("application", "octet-stream")


def test_orphan_files_from_a_crash_are_swept(core: Core, store: MailStore) -> None:
    person = add_user(core, "Marie", "Dupont")
    store.ensure_mailboxes(person)
    store.append(person, INBOX, MESSAGE)
    orphan = store.files.write(b"Subject: never indexed\r\n\r\n")
    assert store.sweep_orphans() == 1
    assert not (store.files.root / orphan).exists()
    assert len(store.messages(store.get_mailbox(person.id, INBOX).id)) == 1
