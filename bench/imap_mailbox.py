"""IMAP on a 10,000-message mailbox: our server beside a throwaway Dovecot, same session.

For each server: APPEND 1,000 messages (timed), fill the mailbox to 10,000, then time
SELECT, FETCH 1:* (ENVELOPE), FETCH of 100 full bodies, SEARCH TEXT for a rare word,
and STORE +FLAGS on all. Each figure is the median of a few runs; the last column is
our time divided by Dovecot's (DESIGN.md §10: aim at ≤ 2×, SEARCH ≤ 55 ms).

Dovecot comes from Debian (``apt-get install dovecot-imapd``); when it is missing only
our figures are printed. Both servers run in their own processes on 127.0.0.1. Ours is
reached over implicit TLS (it refuses LOGIN in clear); Dovecot in clear, unless
``--peer-tls`` gives it implicit TLS too (a throwaway certificate), for a like-for-like
comparison. Dovecot's default ``mail_fsync = optimized`` does not fsync an appended
message before answering; ``--peer-fsync always`` makes it fsync as ours always does
(a message is acknowledged only once it is on disk), for a like-for-like APPEND figure.

    python bench/imap_mailbox.py [--messages 10000] [--runs 5] [--peer-tls]
                                 [--peer-fsync optimized|always]
"""

from __future__ import annotations

import argparse
import os
import re
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imapclient import IMAPClient  # noqa: E402

from groupware.config import LISTEN_ENV_ALIASES  # noqa: E402
from groupware.core.events import EventBus  # noqa: E402
from groupware.core.services import Core  # noqa: E402
from groupware.mail.store import INBOX, MailStore  # noqa: E402
from tests.support import dovecot as dovecot_support  # noqa: E402
from tests.support.servers import add_user, make_config  # noqa: E402

PASSWORD = "bench-password-long-enough"
RARE_WORD = "zygomorphique"
WORDS = ("conseil", "classe", "parents", "sortie", "bulletin", "emploi", "réunion", "cantine")


def message(number: int) -> bytes:
    """A realistic small message; one in 2,000 holds the rare word."""
    body_word = RARE_WORD if number % 2000 == 1234 else WORDS[number % len(WORDS)]
    text = (
        f"From: Collègue {number % 97} <collegue{number % 97}@example.org>\r\n"
        f"To: Marie Dupont <marie.dupont@example.org>\r\n"
        f"Subject: =?utf-8?q?R=C3=A9union_{number}?= {WORDS[(number * 7) % len(WORDS)]}\r\n"
        f"Date: Tue, 1 Dec 2026 10:{number % 60:02d}:00 +0100\r\n"
        f"Message-ID: <bench-{number}@example.org>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        + f"Bonjour, ordre du jour : {body_word}.\r\n"
        * 30
    )
    return text.encode()


def _median(function: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def measure(
    client: IMAPClient, fill: Callable[[int], None], total: int, runs: int
) -> dict[str, float]:
    """The figures for one server (milliseconds)."""
    client.select_folder("INBOX")
    started = time.perf_counter()
    for number in range(1000):
        client.append("INBOX", message(number))
    figures = {"APPEND 1,000": (time.perf_counter() - started) * 1000}
    fill(total)
    figures["SELECT"] = _median(lambda: client.select_folder("INBOX"), runs)
    # imaplib underneath: imapclient would re-parse every answer in Python for both.
    raw = client._imap  # noqa: SLF001
    figures["FETCH 1:* ENVELOPE"] = _median(lambda: raw.fetch("1:*", "(ENVELOPE)"), runs)
    figures["FETCH BODY[] x100"] = _median(lambda: raw.fetch("1:100", "(BODY.PEEK[])"), runs)
    found: list[int] = []
    figures["SEARCH TEXT rare"] = _median(
        lambda: found.extend(client.search(["TEXT", RARE_WORD])), runs
    )
    figures["STORE +FLAGS 1:*"] = _median(
        lambda: raw.store("1:*", "+FLAGS.SILENT", "($Bench)"), runs
    )
    assert found, "the rare word was not found"
    return figures


@contextmanager
def ours(total: int) -> Iterator[tuple[IMAPClient, Callable[[int], None]]]:
    """Our server in its own process, with a user and a helper to fill INBOX."""
    with tempfile.TemporaryDirectory() as folder:
        config = make_config(Path(folder))
        core = Core.open(config)
        person = add_user(core, "Marie", "Dupont", password=PASSWORD)
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
            "imap",
        ]
        process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
        assert process.stderr is not None
        port = 0
        for line in process.stderr:
            found = re.search(r"service=imaps address=127\.0\.0\.1:(\d+)", line)
            if found:
                port = int(found.group(1))
                break
        threading.Thread(target=process.stderr.read, daemon=True).start()

        def fill(count: int) -> None:
            have = len(store.messages(store.get_mailbox(person.id, INBOX).id))
            for number in range(have, count):
                store.append(person, INBOX, message(number))

        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        client = IMAPClient("127.0.0.1", port=port, ssl=True, ssl_context=context, timeout=120)
        client.login("marie.dupont", PASSWORD)
        try:
            yield client, fill
        finally:
            client.logout()
            process.terminate()
            process.wait(timeout=30)
            core.close()


@contextmanager
def dovecot(
    total: int, *, tls: bool = False, fsync: str = "optimized"
) -> Iterator[tuple[IMAPClient, Callable[[int], None]] | None]:
    """A throwaway Dovecot on loopback (implicit TLS with ``tls``), or None if missing."""
    if not dovecot_support.is_available():
        yield None
        return
    with dovecot_support.running_dovecot({"marie": PASSWORD}, tls=tls, fsync=fsync) as peer:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE

        def connect() -> IMAPClient:
            client = IMAPClient(
                peer.host, port=peer.port, ssl=tls, ssl_context=context, timeout=120
            )
            client.login("marie", PASSWORD)
            return client

        client = connect()
        filler = connect()

        def fill(count: int) -> None:
            have = filler.select_folder("INBOX")[b"EXISTS"]
            for number in range(have, count):
                filler.append("INBOX", message(number))

        yield client, fill
        client.logout()
        filler.logout()


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--peer-tls", action="store_true", help="Dovecot over implicit TLS too, as ours is"
    )
    parser.add_argument(
        "--peer-fsync",
        choices=("optimized", "always"),
        default="optimized",
        help="Dovecot's mail_fsync (its default: optimized)",
    )
    args = parser.parse_args()
    with ours(args.messages) as (client, fill):
        mine = measure(client, fill, args.messages, args.runs)
    with dovecot(args.messages, tls=args.peer_tls, fsync=args.peer_fsync) as peer:
        theirs = measure(peer[0], peer[1], args.messages, args.runs) if peer else None
    peer_link = "TLS" if args.peer_tls else "clear"
    print(
        f"mailbox: {args.messages} messages, medians of {args.runs} runs (ms); "
        f"groupware over TLS, dovecot in {peer_link} with mail_fsync={args.peer_fsync}"
    )
    print(f"{'operation':<22}{'groupware':>12}{'dovecot':>12}{'ratio':>8}")
    for name, value in mine.items():
        if theirs:
            print(f"{name:<22}{value:12.1f}{theirs[name]:12.1f}{value / theirs[name]:8.2f}")
        else:
            print(f"{name:<22}{value:12.1f}{'-':>12}{'-':>8}")


if __name__ == "__main__":
    main()
