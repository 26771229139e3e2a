"""Memory and threads per idle IMAP connection, and IDLE wake-up, at 10,000 connections.

Our IMAP server runs in a subprocess (this script with ``--serve``): ``groupware.app.run``
with only IMAP for the TLS figures; for the plain-TCP figures the same ``ImapService``
with LOGIN allowed in clear (the configuration has no such switch; only this benchmark
sets it). A user with a small INBOX is made first. The benchmark process then opens
``--connections`` clients on raw asyncio streams, each doing LOGIN, SELECT INBOX and
IDLE, and reads the server's ``VmRSS`` and ``Threads`` from ``/proc/<pid>/status``:
after a warm-up (a few idle sessions, then a garbage collection in the server, so code
paths, caches and worker threads exist), after each stage, and after a collection (and
``malloc_trim``) with every session in IDLE. The growth divided by the number of
connections is the memory an idle connection costs (user space only: the kernel's
socket buffers are not in the figure, nor in Dovecot's).

Then one more session APPENDs a message to the INBOX: every idle session must get
``* N EXISTS``. The time from the APPEND to the EXISTS is measured on a random sample
(``--sample``) read at once; the others are read afterwards, only to check they got it
(reading 10,000 sockets at once would measure this process rather than the server).

With ``--tracemalloc`` the server traces Python allocations (10 frames) and the
largest differences between the warm-up and the idle snapshot are printed, per
connection, by traceback. Tracing slows everything and costs memory of its own: the
RSS figures of such a run are not the ones to quote.

    python bench/imap_idle_memory.py [--connections 10000] [--mode both|plain|tls]
        [--messages 10] [--sample 100] [--tracemalloc]
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import random
import resource
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from groupware import app  # noqa: E402
from groupware.config import Config  # noqa: E402
from groupware.core.events import EventBus  # noqa: E402
from groupware.core.services import Core  # noqa: E402
from groupware.mail.imap.service import ImapService  # noqa: E402
from groupware.mail.store import INBOX, MailStore  # noqa: E402
from tests.support.servers import add_user, make_config  # noqa: E402

PASSWORD = "bench-password-long-enough"
LOGIN = "marie.dupont"
WARM_UP_CONNECTIONS = 20
OPENING_AT_ONCE = 100  # below asyncio's listen backlog
DESIGN_REFERENCE = (
    "DESIGN.md §10: Dovecot 590 KiB per idle connection in IDLE, 6.4 KiB with "
    "imap-hibernate; our budget ≤ 6.4 KiB."
)


def message(number: int) -> bytes:
    """A small plain-text message."""
    return (
        f"From: Collègue <collegue{number}@example.org>\r\n"
        "To: Marie Dupont <marie.dupont@example.org>\r\n"
        f"Subject: Message {number}\r\n"
        "Date: Tue, 1 Dec 2026 10:00:00 +0100\r\n"
        f"Message-ID: <idle-{number}-{time.time_ns()}@example.org>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "Bonjour.\r\n"
    ).encode()


# --- the server process ------------------------------------------------------------


def serve(data_folder: Path, mode: str, snapshot_folder: Path | None) -> None:
    """Run the IMAP service until SIGTERM; SIGUSR1 collects, SIGUSR2 takes a snapshot."""
    if snapshot_folder is not None:
        tracemalloc.start(10)
    config = make_config(data_folder.parent)
    asyncio.run(_serve(config, mode, snapshot_folder))


async def _serve(config: Config, mode: str, snapshot_folder: Path | None) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    snapshots = iter(range(1, 1000))

    def collect() -> None:
        gc.collect()
        print("collected", flush=True)

    def trim() -> None:
        gc.collect()
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim(0)
        print("trimmed", flush=True)

    def snapshot() -> None:
        assert snapshot_folder is not None
        gc.collect()
        path = snapshot_folder / f"{next(snapshots)}.snapshot"
        tracemalloc.take_snapshot().dump(str(path))
        print(f"snapshot {path}", flush=True)

    loop.add_signal_handler(signal.SIGUSR1, collect)
    loop.add_signal_handler(signal.SIGHUP, trim)
    loop.add_signal_handler(signal.SIGUSR2, snapshot)

    def ready(addresses: Mapping[str, tuple[str, int]]) -> None:
        host, port = addresses["imaps" if mode == "tls" else "imap"]
        print(f"ready {host} {port}", flush=True)

    if mode == "tls":
        await app.run(config, frozenset({"imap"}), on_ready=ready, stop=stop)
        return
    core = Core.open(config)
    async with AsyncExitStack() as stack:
        stack.callback(core.close)
        service = ImapService(core, EventBus(), require_tls=False)
        await service.start(stack)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        ready(service.addresses)
        await stop.wait()


# --- the clients ---------------------------------------------------------------------


@dataclass
class Client:
    """One idle IMAP connection as the benchmark sees it."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    woken_after: float | None = None
    seen: list[bytes] = field(default_factory=list)


async def until_tagged(reader: asyncio.StreamReader, tag: bytes) -> list[bytes]:
    """Lines up to and including the tagged response of ``tag``."""
    lines = []
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("server closed the connection")
        lines.append(line)
        if line.startswith(tag + b" "):
            if not line.startswith(tag + b" OK"):
                raise RuntimeError(f"unexpected answer: {line!r}")
            return lines


async def open_client(host: str, port: int, tls: ssl.SSLContext | None) -> Client:
    """Connect and LOGIN."""
    reader, writer = await asyncio.open_connection(host, port, ssl=tls, limit=8192)
    greeting = await reader.readline()
    if not greeting.startswith(b"* OK"):
        raise RuntimeError(f"unexpected greeting: {greeting!r}")
    writer.write(f"l LOGIN {LOGIN} {PASSWORD}\r\n".encode())
    await until_tagged(reader, b"l")
    return Client(reader, writer)


async def select(client: Client) -> None:
    """SELECT INBOX."""
    client.writer.write(b"s SELECT INBOX\r\n")
    await until_tagged(client.reader, b"s")


async def idle(client: Client) -> None:
    """Start IDLE and wait for the continuation."""
    client.writer.write(b"i IDLE\r\n")
    line = await client.reader.readline()
    if not line.startswith(b"+"):
        raise RuntimeError(f"IDLE refused: {line!r}")


async def wait_exists(client: Client, started: float) -> None:
    """Read until ``* N EXISTS``; note when."""
    while True:
        line = await client.reader.readline()
        if not line:
            raise ConnectionError("server closed an idle connection")
        client.seen.append(line)
        if line.startswith(b"* ") and line.rstrip().endswith(b" EXISTS"):
            client.woken_after = time.perf_counter() - started
            return


async def finish(tasks: Sequence[asyncio.Future[None]], timeout_seconds: float = 60) -> None:
    """Wait for ``tasks``; cancel those not done in time (their session is not woken)."""
    done, pending = await asyncio.wait(tasks, timeout=timeout_seconds)
    for task in pending:
        task.cancel()
    for task in done:
        task.result()


async def in_parallel(
    items: Iterable[object], work: Callable[[object], Awaitable[object]], at_once: int
) -> list[object]:
    """``work(item)`` for each item, at most ``at_once`` running."""
    gate = asyncio.Semaphore(at_once)

    async def one(item: object) -> object:
        async with gate:
            return await work(item)

    return list(await asyncio.gather(*(one(item) for item in items)))


# --- measuring -------------------------------------------------------------------------


@dataclass
class Server:
    """The server subprocess and its control lines."""

    process: subprocess.Popen[str]
    host: str
    port: int

    def status(self) -> tuple[int, int]:
        """``(VmRSS in KiB, threads)``."""
        values = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            key, _sep, value = line.partition(":")
            values[key] = value.split()[0] if value.split() else ""
        return int(values["VmRSS"]), int(values["Threads"])

    def signal_and_wait(self, signum: int, answer: str) -> str:
        """Send ``signum`` and wait for the line starting with ``answer``."""
        self.process.send_signal(signum)
        assert self.process.stdout is not None
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError("the server stopped")
            if line.startswith(answer):
                return line.strip()


def start_server(data_folder: Path, mode: str, snapshot_folder: Path | None) -> Server:
    """This script with ``--serve`` in a subprocess; wait for its address."""
    command = [sys.executable, __file__, "--serve", str(data_folder), "--mode", mode]
    if snapshot_folder is not None:
        command += ["--snapshots", str(snapshot_folder)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=None, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("ready "):
        process.kill()
        raise RuntimeError(f"the server did not start: {line!r}")
    _ready, host, port = line.split()
    return Server(process, host, int(port))


@dataclass
class Row:
    """One line of the table."""

    stage: str
    rss_kib: int
    threads: int


@dataclass
class Result:
    """The figures of one mode."""

    mode: str
    connections: int
    rows: list[Row]
    append_ms: float
    sample_ms: list[float]
    all_ms: list[float]
    breakdown: list[str]


async def measure(
    server: Server,
    *,
    mode: str,
    connections: int,
    sample_size: int,
    snapshots: bool,
) -> Result:
    """Open the connections stage by stage; read RSS and threads after each."""
    tls = None
    if mode == "tls":
        tls = ssl.create_default_context()
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE

    async def opened(_number: object) -> object:
        return await open_client(server.host, server.port, tls)

    rows: list[Row] = []

    def note(stage: str) -> None:
        rss, threads = server.status()
        rows.append(Row(stage, rss, threads))
        print(f"  {stage}: VmRSS {rss / 1024:.1f} MiB, {threads} threads", flush=True)

    warm = [await open_client(server.host, server.port, tls) for _ in range(WARM_UP_CONNECTIONS)]
    for client in warm:
        await select(client)
        await idle(client)
    await asyncio.to_thread(server.signal_and_wait, signal.SIGUSR1, "collected")
    note("warm, before (after gc)")
    before_snapshot = ""
    if snapshots:
        before_snapshot = (
            await asyncio.to_thread(server.signal_and_wait, signal.SIGUSR2, "snapshot")
        ).split()[1]
    started = time.perf_counter()
    clients: list[Client] = await in_parallel(  # type: ignore[assignment]
        range(connections), opened, OPENING_AT_ONCE
    )
    print(f"  opened and logged in in {time.perf_counter() - started:.1f} s", flush=True)
    note("logged in")
    await in_parallel(clients, select, OPENING_AT_ONCE)  # type: ignore[arg-type]
    note("INBOX selected")
    await in_parallel(clients, idle, OPENING_AT_ONCE)  # type: ignore[arg-type]
    note("in IDLE")
    await asyncio.to_thread(server.signal_and_wait, signal.SIGUSR1, "collected")
    note("in IDLE, after gc")
    await asyncio.to_thread(server.signal_and_wait, signal.SIGHUP, "trimmed")
    note("in IDLE, after gc + malloc_trim")
    breakdown: list[str] = []
    if snapshots:
        after_snapshot = (
            await asyncio.to_thread(server.signal_and_wait, signal.SIGUSR2, "snapshot")
        ).split()[1]
        breakdown = compare_snapshots(before_snapshot, after_snapshot, connections)

    # Wake-up: one more session APPENDs; the sampled idle sessions are read at once,
    # the others only afterwards (reading 10,000 sockets here would time this process).
    appender = await open_client(server.host, server.port, tls)
    data = message(999_999)
    sample = random.sample(clients, min(sample_size, len(clients)))
    started = time.perf_counter()
    waiting = [asyncio.ensure_future(wait_exists(client, started)) for client in sample]
    appender.writer.write(b"a APPEND INBOX {%d+}\r\n" % len(data) + data + b"\r\n")
    await until_tagged(appender.reader, b"a")
    append_ms = (time.perf_counter() - started) * 1000
    await finish(waiting)
    sampled = set(map(id, sample))
    rest = [client for client in (*clients, *warm) if id(client) not in sampled]
    await finish([asyncio.ensure_future(wait_exists(client, started)) for client in rest])
    note("after the wake-up")
    woken = [c.woken_after * 1000 for c in clients if c.woken_after is not None]
    sample_ms = [
        c.woken_after * 1000 if c.woken_after is not None else float("inf") for c in sample
    ]
    for client in (*clients, *warm, appender):
        client.writer.close()
    return Result(mode, connections, rows, append_ms, sample_ms, woken, breakdown)


def compare_snapshots(before: str, after: str, connections: int, top: int = 12) -> list[str]:
    """The largest allocation differences, per connection, by traceback."""
    old = tracemalloc.Snapshot.load(before)
    new = tracemalloc.Snapshot.load(after)
    noise = (
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
    )
    stats = new.filter_traces(noise).compare_to(old.filter_traces(noise), "traceback")
    total = sum(stat.size_diff for stat in stats)
    lines = [
        f"Python allocations traced: +{total / connections:.0f} B per connection "
        f"({total / 1024 / 1024:.1f} MiB in all); largest by traceback:"
    ]
    for stat in stats[:top]:
        if stat.size_diff <= 0:
            continue
        lines.append(
            f"  {stat.size_diff / connections:8.0f} B/conn  {stat.count_diff / connections:6.2f} "
            "blocks/conn"
        )
        frames = [
            f"{Path(frame.filename).name}:{frame.lineno}"
            for frame in stat.traceback
            if "asyncio" in frame.filename or "groupware" in frame.filename
        ]
        lines.append("      " + " < ".join(reversed(frames[-5:])))
    return lines


def report(result: Result) -> None:
    """Print the table of one mode."""
    base = result.rows[0].rss_kib
    link = "implicit TLS" if result.mode == "tls" else "plain TCP"
    print()
    count = f"{result.connections:,} (+{WARM_UP_CONNECTIONS} warm-up)"
    print(f"IMAP idle connections over {link}: {count}")
    print(f"{'stage':<34}{'VmRSS MiB':>10}{'growth MiB':>12}{'KiB/conn':>10}{'threads':>9}")
    for row in result.rows:
        growth = (row.rss_kib - base) / 1024
        per = (row.rss_kib - base) / result.connections
        print(f"{row.stage:<34}{row.rss_kib / 1024:10.1f}{growth:12.1f}{per:10.2f}{row.threads:9d}")
    sample = result.sample_ms
    within = sum(1 for value in sample if value <= 1000)
    print(
        f"wake-up by one APPEND from another session (its tagged OK after "
        f"{result.append_ms:.0f} ms): * N EXISTS in a sample of {len(sample)}: median "
        f"{statistics.median(sample):.0f} ms, max {max(sample):.0f} ms, "
        f"{within}/{len(sample)} within 1 s"
    )
    print(
        f"  all {len(result.all_ms):,}/{result.connections:,} got EXISTS; read by this "
        f"process within {max(result.all_ms):.0f} ms (bounded by its own reading)"
    )
    for line in result.breakdown:
        print(line)


def raise_file_limit(connections: int) -> None:
    """Both processes need a descriptor per connection (the server inherits the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + WARM_UP_CONNECTIONS + 256
    if hard != resource.RLIM_INFINITY and hard < wanted:
        sys.exit(
            f"RLIMIT_NOFILE hard limit is {hard}, {wanted} needed for {connections} "
            "connections: raise it (ulimit -Hn, /etc/security/limits.conf) or use --connections"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    del soft


def prepare(folder: Path, messages: int) -> Path:
    """A data folder with one user whose INBOX holds ``messages`` messages."""
    config = make_config(folder)
    core = Core.open(config)
    try:
        person = add_user(core, "Marie", "Dupont", password=PASSWORD)
        assert person.login == LOGIN, person.login
        store = MailStore(core.engine, config.data_dir / "mail", EventBus())
        store.ensure_mailboxes(person)
        for number in range(messages):
            store.append(person, INBOX, message(number))
    finally:
        core.close()
    return config.data_dir


def main() -> None:
    """Print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--mode", choices=("both", "plain", "tls"), default="both")
    parser.add_argument("--messages", type=int, default=10, help="messages in the INBOX")
    parser.add_argument("--sample", type=int, default=100, help="idle sessions sampled")
    parser.add_argument("--tracemalloc", action="store_true", help="breakdown by traceback")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--snapshots", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve, args.mode, args.snapshots)
        return
    raise_file_limit(args.connections)
    modes = ("plain", "tls") if args.mode == "both" else (args.mode,)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-imap-idle-") as folder:
        data = prepare(Path(folder), args.messages)
        for mode in modes:
            snapshot_folder = Path(folder) / f"snapshots-{mode}" if args.tracemalloc else None
            if snapshot_folder is not None:
                snapshot_folder.mkdir()
            print(f"{mode}: {args.connections:,} connections, INBOX of {args.messages}", flush=True)
            server = start_server(data, mode, snapshot_folder)
            try:
                results.append(
                    asyncio.run(
                        measure(
                            server,
                            mode=mode,
                            connections=args.connections,
                            sample_size=args.sample,
                            snapshots=args.tracemalloc,
                        )
                    )
                )
            finally:
                server.process.terminate()
                server.process.wait(timeout=60)
    for result in results:
        report(result)
    print()
    print(f"Reference, {DESIGN_REFERENCE}")
    if args.tracemalloc:
        print("(tracemalloc was on: its own overhead is in the RSS figures above)")


if __name__ == "__main__":
    main()
