"""Spool files written by other processes are delivered by the running mail service.

The portal of ``serve --only http`` spools its notices without waking any delivery
worker; the mail service of another process on the same data folder lists the spool
every ``SCAN_PERIOD_SECONDS`` and delivers them, leaving writes in progress alone and
delivering nothing twice.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import os
import re
import smtplib
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from email.parser import BytesHeaderParser
from pathlib import Path

import pytest

from groupware.core.directory import Person
from groupware.core.events import EventBus
from groupware.mail.notices import Notices
from groupware.mail.service import SCAN_PERIOD_SECONDS
from groupware.mail.spool import SUFFIX, TEMPORARY_SUFFIX, Envelope, Spool
from groupware.mail.store import INBOX, MailStore
from tests.support.servers import RunningServer, add_user, make_config, running_server
from tests.support.waiting import wait_for

#: Long enough for a scan to find a file and its batch to deliver it.
ADOPTION_SECONDS = SCAN_PERIOD_SECONDS * 2 + 5
SENDERS_COUNT = 6
REPO_ROOT = Path(__file__).resolve().parents[2]

# Another process: the portal's own notice code, on the same data folder.
_NOTICE_SCRIPT = """
import sys
from pathlib import Path
from groupware.config import load_config
from groupware.core.services import Core
from groupware.mail.notices import Notices

config = load_config(Path(sys.argv[1]), env={})
core = Core.open(config)
try:
    person = core.directory.get(sys.argv[2])
    print(Notices(config).send(person, sys.argv[3], "Bonjour."))
finally:
    core.close()
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = make_config(tmp_path_factory.mktemp("spool-adoption"))
    with running_server(config, only=frozenset({"smtp"})) as live:
        yield live


def _inbox(server: RunningServer, person: Person) -> list[bytes]:
    store = MailStore(server.core.engine, server.config.data_dir / "mail", EventBus())
    mailbox = store.find_mailbox(person.id, INBOX)
    if mailbox is None:
        return []
    return [store.files.read(message.blob_path) for message in store.messages(mailbox.id)]


def _subjects(server: RunningServer, person: Person) -> list[str]:
    parser = BytesHeaderParser()
    return [str(parser.parsebytes(raw)["Subject"]) for raw in _inbox(server, person)]


def _spool(server: RunningServer) -> Spool:
    """A Spool of its own on the server's folder, as another process has."""
    return Spool(server.config.data_dir / "spool")


def _notice_from_another_thread(server: RunningServer, person: Person, subject: str) -> str:
    return Notices(server.config).send(person, subject, "Bonjour.")


def test_a_notice_spooled_by_another_process_is_delivered_without_a_restart(
    server: RunningServer,
) -> None:
    person = add_user(server.core, "Marie", "Dupont")
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", _NOTICE_SCRIPT, str(server.config.data_dir), person.login]
        + ["Notice from the portal"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    queue_id = done.stdout.strip()
    assert _spool(server).contains(queue_id)
    wait_for(
        lambda: "Notice from the portal" in _subjects(server, person),
        timeout_seconds=ADOPTION_SECONDS,
    )
    wait_for(lambda: not _spool(server).contains(queue_id), timeout_seconds=5)
    assert _subjects(server, person) == ["Notice from the portal"]


def test_a_write_in_progress_is_left_alone_and_delivered_once_renamed(
    server: RunningServer,
) -> None:
    person = add_user(server.core, "Paul", "Roux")
    spool = _spool(server)
    queue_id = f"{int(time.time() * 1000):x}{os.urandom(6).hex()}"
    temporary = spool.incoming / f".{queue_id}{SUFFIX}{TEMPORARY_SUFFIX}"
    envelope = Envelope(
        mail_from="parent@outside.example",
        rcpt_tos=(person.email,),
        peer="192.0.2.1",
        helo="mx.outside.example",
        received_at=time.time(),
    )
    header = json.dumps(dataclasses.asdict(envelope)).encode() + b"\n"
    head = b"From: parent@outside.example\r\nSubject: Slow write\r\n\r\n"
    tail = b"the end of a long body\r\n"
    with temporary.open("wb") as file:
        file.write(header + head)
        file.flush()
        # A scan has run since the temporary file appeared: it delivered a later file.
        _notice_from_another_thread(server, person, "Written after the slow one")
        wait_for(
            lambda: "Written after the slow one" in _subjects(server, person),
            timeout_seconds=ADOPTION_SECONDS,
        )
        assert temporary.exists()
        assert "Slow write" not in _subjects(server, person)
        file.write(tail)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, spool.incoming / f"{queue_id}{SUFFIX}")
    wait_for(lambda: "Slow write" in _subjects(server, person), timeout_seconds=ADOPTION_SECONDS)
    wait_for(lambda: not spool.contains(queue_id), timeout_seconds=5)
    [slow] = [raw for raw in _inbox(server, person) if b"Subject: Slow write" in raw]
    assert slow.endswith(tail)
    assert sorted(_subjects(server, person)) == ["Slow write", "Written after the slow one"]


def _send_until(
    server: RunningServer, recipient: str, prefix: str, stop: threading.Event, sent: list[str]
) -> None:
    """Send numbered messages over one connection until ``stop``; remember each 250."""
    host, port = server.addresses["smtp"]
    with smtplib.SMTP(host, port, timeout=5) as client:
        number = 0
        while not stop.is_set() and number < 2000:
            subject = f"{prefix}-{number}"
            message = f"From: load@outside.example\r\nSubject: {subject}\r\n\r\nn={number}\r\n"
            client.sendmail("load@outside.example", [recipient], message)
            sent.append(subject)
            number += 1


def _queue_ids(records: list[logging.LogRecord], event: str) -> list[str]:
    pattern = re.compile(rf"^{re.escape(event)} queue_ids=(\S*)")
    found = []
    for record in records:
        match = pattern.match(record.getMessage())
        if match:
            found += match.group(1).split(",")
    return found


def test_a_burst_through_smtp_while_scans_run_lands_each_message_once(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="groupware.mail")
    person = add_user(server.core, "Lucie", "Martin")
    stop = threading.Event()
    sent: list[list[str]] = [[] for _ in range(SENDERS_COUNT)]
    senders = [
        threading.Thread(
            target=_send_until, args=(server, person.email, f"burst{index}", stop, sent[index])
        )
        for index in range(SENDERS_COUNT)
    ]
    for sender in senders:
        sender.start()
    try:
        wait_for(lambda: sum(map(len, sent)) >= 50, timeout_seconds=10)
        # Two notices adopted while the burst goes on: scans ran during it.
        for number in range(2):
            subject = f"Notice during the burst {number}"
            _notice_from_another_thread(server, person, subject)
            wait_for(
                lambda subject=subject: subject in _subjects(server, person),
                timeout_seconds=ADOPTION_SECONDS,
            )
    finally:
        stop.set()
        for sender in senders:
            sender.join(timeout=30)
    assert all(sent), "every connection sent while the scans ran"
    wait_for(lambda: not _spool(server).waiting(), timeout_seconds=30)
    expected = [subject for batch in sent for subject in batch]
    expected += ["Notice during the burst 0", "Notice during the burst 1"]
    counts = Counter(_subjects(server, person))
    assert sorted(counts) == sorted(expected)
    assert set(counts.values()) == {1}
    # Nothing was queued twice: each message is in one batch; a scan took only what
    # this process had not queued (at most one per connection, between the rename of
    # its file and its hand-over).
    records = caplog.records
    accepted = set(_queue_ids_of_accepted(records))
    delivered = _queue_ids(records, "delivery.done")
    assert len(delivered) == len(set(delivered))
    assert accepted <= set(delivered)
    for record in records:
        adopted = set(_queue_ids([record], "spool.adopted"))
        assert len(adopted & accepted) <= SENDERS_COUNT


def _queue_ids_of_accepted(records: list[logging.LogRecord]) -> Iterator[str]:
    for record in records:
        match = re.match(r"^smtp\.accepted queue_id=(\S+)", record.getMessage())
        if match:
            yield match.group(1)


def test_shutdown_during_scans_leaves_no_task_behind(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(tmp_path)
    before = set(threading.enumerate())
    with running_server(config, only=frozenset({"smtp"})) as live:
        person = add_user(live.core, "Hugo", "Petit")
        _notice_from_another_thread(live, person, "Adopted before shutdown")
        wait_for(
            lambda: "Adopted before shutdown" in _subjects(live, person),
            timeout_seconds=ADOPTION_SECONDS,
        )
        # One more waiting for the next scan as the server stops: found at the next start.
        queue_id = _notice_from_another_thread(live, person, "Left for the next start")
    # Collected, a pending task is reported and the store's parser threads end.
    wait_for(lambda: gc.collect() >= 0 and set(threading.enumerate()) <= before)
    problems = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert problems == []
    spool = Spool(config.data_dir / "spool")
    with running_server(config, only=frozenset({"smtp"})) as live:
        wait_for(lambda: not spool.contains(queue_id), timeout_seconds=10)
        assert _subjects(live, person).count("Left for the next start") == 1
