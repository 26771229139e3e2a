"""Crash safety: every message answered 250 is delivered exactly once, even after SIGKILL."""

from __future__ import annotations

import re
import signal
import smtplib
import threading
from pathlib import Path

from groupware.config import Config
from groupware.core.events import EventBus
from groupware.core.services import Core
from groupware.mail.store import INBOX, MailStore
from tests.support.processes import serve_in_subprocess
from tests.support.servers import add_user, make_config
from tests.support.waiting import wait_for

MESSAGES = 500
_LISTEN = {
    "GROUPWARE_SMTP_LISTEN": "127.0.0.1:0",
    "GROUPWARE_SUBMISSION_LISTEN": "127.0.0.1:0",
    "GROUPWARE_SUBMISSION_TLS_LISTEN": "127.0.0.1:0",
}


def _send(port: int, acknowledged: list[int], numbers: range) -> None:
    """Send numbered messages; remember which ones got 250. Stops when the server dies."""
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            for number in numbers:
                body = (
                    f"From: load@outside.example\r\nSubject: crash-{number}\r\n\r\nn={number}\r\n"
                )
                try:
                    client.sendmail("load@outside.example", ["marie.dupont@example.org"], body)
                except smtplib.SMTPException:
                    return
                acknowledged.append(number)
    except (OSError, smtplib.SMTPException):
        return


def _subjects(config: Config) -> list[int]:
    core = Core.open(config)
    try:
        store = MailStore(core.engine, config.data_dir / "mail", EventBus())
        person = core.directory.get("marie.dupont")
        mailbox = store.find_mailbox(person.id, INBOX)
        if mailbox is None:
            return []
        found = []
        for message in store.messages(mailbox.id):
            match = re.search(rb"Subject: crash-(\d+)", store.files.read(message.blob_path))
            if match:
                found.append(int(match.group(1)))
        return found
    finally:
        core.close()


def test_sigkill_during_a_flood_loses_and_duplicates_nothing_acknowledged(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    core = Core.open(config)
    add_user(core, "Marie", "Dupont")
    core.close()
    acknowledged: list[int] = []
    with serve_in_subprocess(config, "smtp", _LISTEN) as (process, port):
        # Kill while messages are in flight: after some acknowledgements, mid-stream.
        sender = threading.Thread(
            target=_send, args=(port, acknowledged, range(MESSAGES)), daemon=True
        )
        sender.start()
        wait_for(lambda: len(acknowledged) >= MESSAGES // 3, timeout_seconds=60)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        sender.join(timeout=30)
    assert acknowledged, "nothing was acknowledged before the kill"
    with serve_in_subprocess(config, "smtp", _LISTEN) as (_process, port):
        spool = config.data_dir / "spool" / "incoming"
        wait_for(lambda: not any(spool.glob("*.msg")), timeout_seconds=60)
        # The rest of the flood on the restarted server, numbered apart.
        first = len(acknowledged)
        _send(port, acknowledged, range(MESSAGES, 2 * MESSAGES - first))
        wait_for(lambda: not any(spool.glob("*.msg")), timeout_seconds=60)
        delivered = _subjects(config)
    counts = {number: delivered.count(number) for number in set(delivered)}
    duplicates = {number: count for number, count in counts.items() if count > 1}
    assert duplicates == {}
    missing = sorted(set(acknowledged) - set(counts))
    assert missing == []
