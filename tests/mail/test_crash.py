"""Crash safety: every message answered 250 is delivered exactly once, even after SIGKILL."""

from __future__ import annotations

import os
import re
import signal
import smtplib
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from groupware.config import Config
from groupware.core.events import EventBus
from groupware.core.services import Core
from groupware.mail.store import INBOX, MailStore
from tests.support.servers import add_user, make_config
from tests.support.waiting import wait_for

MESSAGES = 500
_LISTENER = re.compile(r"listener\.started service=smtp address=127\.0\.0\.1:(\d+)")


def _environment(config: Config) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "GROUPWARE_SMTP_LISTEN": "127.0.0.1:0",
            "GROUPWARE_SUBMISSION_LISTEN": "127.0.0.1:0",
            "GROUPWARE_SUBMISSION_TLS_LISTEN": "127.0.0.1:0",
            "GROUPWARE_AUTH__ARGON2_TIME_COST": "1",
            "GROUPWARE_AUTH__ARGON2_MEMORY_KIB": "64",
            "GROUPWARE_AUTH__ARGON2_PARALLELISM": "1",
        }
    )
    return env


@contextmanager
def _server(config: Config) -> Iterator[tuple[subprocess.Popen[str], int]]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "groupware",
            "--data",
            str(config.data_dir),
            "serve",
            "--only",
            "smtp",
        ],
        env=_environment(config),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert process.stderr is not None
    port = None
    for line in process.stderr:
        found = _LISTENER.search(line)
        if found:
            port = int(found.group(1))
            break
    assert port, "the server did not log its SMTP listener"
    drain = threading.Thread(target=process.stderr.read, daemon=True)
    drain.start()
    try:
        yield process, port
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=30)
        drain.join(timeout=5)
        process.stderr.close()


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
    with _server(config) as (process, port):
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
    with _server(config) as (_process, port):
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
