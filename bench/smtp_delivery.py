"""SMTP throughput: messages accepted and durably delivered into mailboxes per second.

Runs, in the same session, each server in its own process (the load generator never
shares an interpreter with a server):

1. ``groupware serve --only smtp``: each message is fsynced into the spool before
   ``250``, then delivered into the recipient's INBOX (file fsynced, index committed);
   the clock stops when the last message is in the mailbox index;
2. a plain aiosmtpd server whose handler answers ``250`` and keeps nothing: the cost
   of the SMTP dialogue alone, as the reference.

It prints both rates and their ratio. DESIGN.md §10's peer figure: Postfix → LMTP →
Dovecot, 227 msg/s on this kind of machine.

    python bench/smtp_delivery.py [--messages 2000] [--clients 8]
"""

from __future__ import annotations

import argparse
import os
import re
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from groupware.config import LISTEN_ENV_ALIASES  # noqa: E402
from groupware.core.events import EventBus  # noqa: E402
from groupware.core.services import Core  # noqa: E402
from groupware.mail.store import MailStore  # noqa: E402
from tests.support.servers import add_user, make_config  # noqa: E402

BODY = (
    "From: Parent d'eleve <parent@outside.example>\r\n"
    "To: Marie Dupont <marie.dupont@example.org>\r\n"
    "Subject: Sortie scolaire du {n}\r\n"
    "Message-ID: <bench-{n}@outside.example>\r\n"
    "\r\n" + ("Bonjour, voici les informations pour la sortie de jeudi.\r\n" * 40)
)
PLAIN_SINK = """
import asyncio
from aiosmtpd.smtp import SMTP

class Sink:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(Sink()), "127.0.0.1", 0)
    print("port", server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def _flood(port: int, messages: int, clients: int) -> None:
    def worker(numbers: range) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            for number in numbers:
                client.sendmail(
                    "parent@outside.example", ["marie.dupont@example.org"], BODY.format(n=number)
                )

    share = messages // clients
    ranges = [range(i * share, (i + 1) * share) for i in range(clients)]
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, ranges))


@contextmanager
def _process(arguments: list[str], pattern: str, env: dict[str, str]) -> Iterator[int]:
    """Start a server process and yield the port it prints or logs."""
    process = subprocess.Popen(
        arguments, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert process.stdout is not None
        port = 0
        for line in process.stdout:
            found = re.search(pattern, line)
            if found:
                port = int(found.group(1))
                break
        threading.Thread(target=process.stdout.read, daemon=True).start()
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def _plain_aiosmtpd(messages: int, clients: int) -> float:
    with _process([sys.executable, "-c", PLAIN_SINK], r"port (\d+)", dict(os.environ)) as port:
        started = time.perf_counter()
        _flood(port, messages, clients)
        return messages / (time.perf_counter() - started)


def _ours(messages: int, clients: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        config = make_config(Path(folder))
        core = Core.open(config)
        try:
            person = add_user(core, "Marie", "Dupont")
            store = MailStore(core.engine, config.data_dir / "mail", EventBus())
            store.ensure_mailboxes(person)
            env = dict(os.environ)
            env.update({name: "127.0.0.1:0" for name in LISTEN_ENV_ALIASES})
            command = [
                sys.executable,
                "-m",
                "groupware",
                "--data",
                str(config.data_dir),
                "serve",
                "--only",
                "smtp",
            ]
            with _process(command, r"service=smtp address=127\.0\.0\.1:(\d+)", env) as port:
                started = time.perf_counter()
                _flood(port, messages, clients)
                # The usage row counts the messages in the transaction that indexes
                # them: one small read per poll, where listing the INBOX would take
                # this process (and so the machine) more and more CPU as it fills.
                while store.usage(person.id)[1] < messages:
                    time.sleep(0.01)
                return messages / (time.perf_counter() - started)
        finally:
            core.close()


def main() -> None:
    """Print both rates and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    plain = _plain_aiosmtpd(args.messages, args.clients)
    ours = _ours(args.messages, args.clients)
    print(f"messages: {args.messages}, parallel clients: {args.clients}")
    print(f"plain aiosmtpd (no storage, no fsync):         {plain:8.1f} msg/s")
    print(f"groupware (spool fsync, delivered into INBOX): {ours:8.1f} msg/s")
    print(f"ratio groupware / plain aiosmtpd: {ours / plain:.2f}")
    print("peer to beat (DESIGN.md §10): Postfix -> LMTP -> Dovecot 227 msg/s")


if __name__ == "__main__":
    main()
