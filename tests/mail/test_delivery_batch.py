"""Batched delivery: many spooled messages in one store write, each still exactly once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import text

from groupware.core.events import EventBus, MailboxChanged
from groupware.core.services import Core
from groupware.mail.addressing import Recipients
from groupware.mail.delivery import Delivery
from groupware.mail.spool import Envelope, Spool
from groupware.mail.store import INBOX, InboxDelivery, MailStore
from groupware.mail.store_write import durable_transaction
from tests.support.servers import add_user, running_server
from tests.support.waiting import wait_for


def _message(number: int) -> bytes:
    return (
        f"From: parent@outside.example\r\nSubject: lot-{number}\r\n"
        f"Message-ID: <lot-{number}@outside.example>\r\n\r\nBonjour {number}\r\n"
    ).encode()


@pytest.fixture
def events() -> EventBus:
    return EventBus()


@pytest.fixture
def store(core: Core, events: EventBus) -> MailStore:
    return MailStore(core.engine, core.config.data_dir / "mail", events)


def test_a_batch_lands_in_order_with_one_modseq_per_mailbox_and_files_in_one_folder(
    core: Core, store: MailStore, events: EventBus
) -> None:
    marie = add_user(core, "Marie", "Dupont")
    paul = add_user(core, "Paul", "Roux")
    for person in (marie, paul):
        store.ensure_mailboxes(person)
    seen: list[MailboxChanged] = []
    events.subscribe(MailboxChanged, lambda event: seen.append(event))  # type: ignore[arg-type]
    batch = [
        InboxDelivery(person, _message(number), f"q{number}:{person.id}")
        for number, person in enumerate((marie, paul, marie, marie))
    ]
    results = store.deliver_many(batch)
    assert all(result is not None for result in results)
    inbox = store.get_mailbox(marie.id, INBOX)
    messages = store.messages(inbox.id)
    assert [result.uid for result in results if result and result.mailbox_id == inbox.id] == [
        message.uid for message in messages
    ]
    assert len({message.modseq for message in messages}) == 1
    bodies = [store.files.read(message.blob_path) for message in messages]
    assert [body.split(b"\r\n")[1] for body in bodies] == [
        b"Subject: lot-0",
        b"Subject: lot-2",
        b"Subject: lot-3",
    ]
    paths = [message.blob_path for message in messages]
    assert len({path.rsplit("/", 1)[0] for path in paths}) == 1  # one folder fsync
    assert store.search_text("subject", "lot") >= {message.blob_id for message in messages}
    assert {(event.person_id, event.mailbox_id) for event in seen} == {
        (marie.id, inbox.id),
        (paul.id, store.get_mailbox(paul.id, INBOX).id),
    }


def test_a_second_delivery_of_the_same_keys_stores_nothing_and_answers_the_first(
    core: Core, store: MailStore
) -> None:
    marie = add_user(core, "Marie", "Dupont")
    store.ensure_mailboxes(marie)
    batch = [InboxDelivery(marie, _message(n), f"q{n}:{marie.id}") for n in range(3)]
    first = store.deliver_many(batch)
    again = store.deliver_many([*batch, InboxDelivery(marie, _message(9), f"q9:{marie.id}")])
    assert again[:3] == first
    inbox = store.get_mailbox(marie.id, INBOX)
    assert len(store.messages(inbox.id)) == 4
    assert len(list(store.files.root.rglob("*.eml"))) == 4


def test_quota_refuses_the_messages_that_do_not_fit_and_keeps_the_usage_exact(
    core: Core, store: MailStore
) -> None:
    marie = add_user(core, "Marie", "Dupont")
    small, large = _message(1), _message(2) + b"x" * 500 + b"\r\n"
    core.directory.set_quota(marie.login, len(small) * 2 + 10, actor="test")
    marie = core.directory.get(marie.login)
    store.ensure_mailboxes(marie)
    batch = [
        InboxDelivery(marie, data, f"q{n}:{marie.id}")
        for n, data in enumerate((small, large, small, small))
    ]
    results = store.deliver_many(batch)
    assert [result is not None for result in results] == [True, False, True, False]
    assert store.usage(marie.id) == (len(small) * 2, 2)
    assert len(list(store.files.root.rglob("*.eml"))) == 2


def test_the_batch_commit_is_synced_and_the_connection_keeps_its_setting(core: Core) -> None:
    with durable_transaction(core.engine) as conn:
        assert conn.execute(text("PRAGMA synchronous")).scalar_one() == 2  # FULL
    with core.engine.connect() as conn:
        assert conn.execute(text("PRAGMA synchronous")).scalar_one() == 1  # NORMAL


def test_messages_delivered_but_left_in_the_spool_by_a_crash_land_once_after_restart(
    core: Core, store: MailStore
) -> None:
    # The instant between the store's commit and the spool's removal: the messages are
    # in the INBOX and still in the spool; the restart delivers them again.
    marie = add_user(core, "Marie", "Dupont")
    config = core.config
    spool = Spool(config.data_dir / "spool")
    envelope = Envelope(
        mail_from="parent@outside.example",
        rcpt_tos=("marie.dupont@example.org",),
        peer="192.0.2.1",
        helo="mx.outside.example",
        received_at=time.time(),
    )
    queue_ids = [spool.accept(envelope, _message(n)) for n in range(5)]
    delivery = Delivery(store, Recipients(core.directory), core.audit, "mail.example.org")
    jobs = delivery.deliver_batch([spool.load(queue_id) for queue_id in queue_ids])
    assert [job.delivered for job in jobs] == [["marie.dupont@example.org"]] * 5
    inbox = store.get_mailbox(marie.id, INBOX)
    assert len(store.messages(inbox.id)) == 5
    with running_server(config, only=frozenset({"smtp"})):
        incoming = Path(config.data_dir / "spool" / "incoming")
        wait_for(lambda: not any(incoming.glob("*.msg")), timeout_seconds=10)
    assert len(store.messages(inbox.id)) == 5
    assert len(list(store.files.root.rglob("*.eml"))) == 5
