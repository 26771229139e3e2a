"""CalDAV/CardDAV on one big collection: our SQL store beside vanilla Radicale, same session.

For each size (events in one calendar and contacts in one address book), both servers
get the same data (written as a Radicale file store, which ours imports with
``dav.sqlstore.migrate``), then the same HTTP requests are timed: PROPFIND depth 0
(getctag, sync-token), PROPFIND depth 1 (getetag), calendar-query for one month,
calendar-multiget of 100, sync-collection after 10 changes, PUT of one new event,
addressbook-query text match. Each figure is the median of a few runs of the HTTP
exchange alone (request sent to answer read; the client's parsing is not timed); the ratio is
Radicale's time divided by ours (DESIGN.md §10: ≥ 50× at 10,000 items), and the last
table compares our 10,000-item figures with our 1,000-item ones (goal ≤ 1.5×). Both
answers are compared (hrefs returned) so that a fast wrong answer shows.

Radicale 3.9 runs from this virtualenv (``python -m radicale``), file storage, no
authentication, ``owner_only`` rights; ours is ``groupware serve --only http`` in one
process, otherwise with its default settings (argon2 at full cost; its auth cache makes
repeated logins cheap).
Both in their own processes on 127.0.0.1; memory is each process's RSS and peak.

    python bench/dav_collection.py [--sizes 100,1000,10000] [--runs 5] [--peer-runs 3]

``--peer-runs 0`` skips Radicale (no ratio, no answer check): for iterating on ours.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import math
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from radicale import config as radicale_config  # noqa: E402

from groupware.config import load_config  # noqa: E402
from groupware.core.services import Core  # noqa: E402
from groupware.datadir import init_data_dir  # noqa: E402
from groupware.dav.sqlstore.migrate import import_file_store  # noqa: E402
from groupware.dav.sqlstore.storage import SqlStorage  # noqa: E402
from tests.support.servers import add_user  # noqa: E402

LOGIN = "marie.dupont"
PASSWORD = "bench-password-long-enough"
DAV, CALDAV, CARDDAV, CS = (
    "DAV:",
    "urn:ietf:params:xml:ns:caldav",
    "urn:ietf:params:xml:ns:carddav",
    "http://calendarserver.org/ns/",
)
SPAN_DAYS = 4 * 365  # the events cover four school years
BASE = (2025, 9, 1)
RARE_NAME = "Zyguel"
FIRST = ("Marie", "Jean", "Inès", "Hugo", "Léa", "Paul", "Chloé", "Louis", "Zoé", "Nathan")
LAST = ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand")
_LISTENER = re.compile(r"listener\.started service=http address=127\.0\.0\.1:(\d+)")


# --- data ----------------------------------------------------------------------------


def event_text(number: int, count: int, summary: str = "") -> str:
    """Event ``number`` of ``count`` spread over four years; one in 20 recurs weekly."""
    day = number * SPAN_DAYS // count
    start = time.gmtime(time.mktime((*BASE, 0, 0, 0, 0, 0, 0)) + day * 86400)
    hour = 8 + number % 9
    stamp = f"{start.tm_year:04d}{start.tm_mon:02d}{start.tm_mday:02d}"
    rule = "RRULE:FREQ=WEEKLY;COUNT=10\r\n" if number % 20 == 0 else ""
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//groupware bench//FR\r\n"
        f"BEGIN:VEVENT\r\nUID:event-{number}\r\nDTSTAMP:20250101T000000Z\r\n"
        f"DTSTART:{stamp}T{hour:02d}0000Z\r\nDTEND:{stamp}T{hour:02d}5500Z\r\n{rule}"
        f"SUMMARY:{summary or f'Conseil de classe {number % 37}'}\r\n"
        f"LOCATION:Salle {number % 120}\r\n"
        "DESCRIPTION:Ordre du jour : bilan du trimestre\\, orientation\\, questions"
        " diverses. Merci d'apporter les bulletins.\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def card_text(number: int) -> str:
    first = FIRST[number % len(FIRST)]
    last = RARE_NAME if number % 500 == 7 else LAST[(number // 10) % len(LAST)]
    return (
        "BEGIN:VCARD\r\nVERSION:3.0\r\n"
        f"UID:card-{number}\r\nFN:{first} {last} {number}\r\nN:{last};{first};;;\r\n"
        f"EMAIL;TYPE=INTERNET:{first.lower()}.{last.lower()}{number}@ac-bench.fr\r\n"
        f"TEL;TYPE=CELL:06 {number % 100:02d} {number // 100 % 100:02d} 00 00\r\n"
        "ORG:Lycée Joffre;Vie scolaire\r\nEND:VCARD\r\n"
    )


def write_file_store(folder: Path, count: int) -> None:
    """A Radicale file store: one calendar of ``count`` events, one book of ``count`` cards."""
    home = folder / "collection-root" / LOGIN
    for name, tag, make, suffix in (
        ("calendar", "VCALENDAR", event_text, ".ics"),
        ("contacts", "VADDRESSBOOK", card_text, ".vcf"),
    ):
        target = home / name
        target.mkdir(parents=True)
        props = {"tag": tag, "D:displayname": name}
        (target / ".Radicale.props").write_text(json.dumps(props), encoding="utf-8")
        for number in range(count):
            text = make(number, count) if make is event_text else make(number)  # type: ignore[operator]
            (target / f"{'event' if suffix == '.ics' else 'card'}-{number}{suffix}").write_text(
                text, encoding="utf-8", newline=""
            )


# --- servers -------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    process: subprocess.Popen[str]
    port: int

    def memory_kib(self) -> tuple[int, int]:
        """``(RSS, peak RSS)`` of the server process, in KiB."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
        peak = int(re.search(r"VmHWM:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
        return rss, peak


def _free_port() -> int:
    # Radicale refuses port 0; a bench may accept the small race a test may not.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def radicale_server(folder: Path) -> Iterator[Server]:
    port = _free_port()
    command = [sys.executable, "-m", "radicale", "--server-hosts", f"127.0.0.1:{port}"]
    command += ["--storage-filesystem-folder", str(folder), "--auth-type", "none"]
    command += ["--rights-type", "owner_only", "--logging-level", "warning"]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True
    )  # noqa: S603
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield Server("radicale", process, port)
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def our_server(data_dir: Path) -> Iterator[Server]:
    # One process, as Radicale runs: the figures are one request at a time, and the
    # memory is that process's (``serve`` would otherwise start one HTTP worker per core).
    env = dict(
        os.environ,
        GROUPWARE_HTTP_LISTEN="127.0.0.1:0",
        GROUPWARE_HTTPS_LISTEN="127.0.0.1:0",
        GROUPWARE_HTTP__PROCESSES_COUNT="1",
    )
    command = [
        sys.executable,
        "-m",
        "groupware",
        "--data",
        str(data_dir),
        "serve",
        "--only",
        "http",
    ]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )  # noqa: S603
    assert process.stderr is not None
    port = 0
    for line in process.stderr:
        found = _LISTENER.search(line)
        if found:
            port = int(found.group(1))
            break
    drain = threading.Thread(target=process.stderr.read, daemon=True)
    drain.start()
    try:
        yield Server("ours", process, port)
    finally:
        process.terminate()
        process.wait(timeout=30)
        drain.join(timeout=5)
        process.stderr.close()


def prepare_ours(data_dir: Path, file_store: Path) -> float:
    """A data folder whose SQL store holds ``file_store``; returns the import's seconds."""
    init_data_dir(data_dir, domain="example.org")
    config = load_config(data_dir, env={})
    core = Core.open(config)
    try:
        add_user(core, "Marie", "Dupont", password=PASSWORD)
        started = time.perf_counter()
        import_file_store(SqlStorage(radicale_config.load(), core.engine), file_store)
        return time.perf_counter() - started
    finally:
        core.close()


# --- requests ------------------------------------------------------------------------


#: Seconds of each HTTP exchange (request sent to answer read), in order: what is
#: timed. The client's own parsing of the answer is not (for a 10,000-item Depth-1
#: answer of 2.4 MB it costs this client about as much as our server's work).
EXCHANGE_SECONDS: list[float] = []


def request(
    server: Server, method: str, path: str, body: str = "", **headers: str
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
    token = base64.b64encode(f"{LOGIN}:{PASSWORD}".encode()).decode()
    sent = {"Authorization": f"Basic {token}", "Content-Type": "application/xml; charset=utf-8"}
    sent.update({name.replace("_", "-"): value for name, value in headers.items()})
    try:
        started = time.perf_counter()
        connection.request(method, path, body.encode(), sent)
        with connection.getresponse() as response:
            answer = response.status, response.read()
        EXCHANGE_SECONDS.append(time.perf_counter() - started)
        return answer
    finally:
        connection.close()


def hrefs(body: bytes) -> frozenset[str]:
    root = ET.fromstring(body)  # noqa: S314 - our own servers' answers
    return frozenset(
        unquote(r.findtext(f"{{{DAV}}}href", "")).rsplit("/", 1)[-1]
        for r in root.findall(f"{{{DAV}}}response")
        if r.find(f".//{{{DAV}}}status") is None or " 200 " in r.findtext(f".//{{{DAV}}}status", "")
    )


def prefix(server: Server) -> str:
    return "/dav" if server.name == "ours" else ""


def ctag(server: Server, _count: int) -> frozenset[str]:
    body = (
        f'<d:propfind xmlns:d="{DAV}" xmlns:cs="{CS}">'
        "<d:prop><cs:getctag/><d:sync-token/></d:prop></d:propfind>"
    )
    status, answer = request(
        server, "PROPFIND", f"{prefix(server)}/{LOGIN}/calendar/", body, Depth="0"
    )
    assert status == 207, status
    return frozenset({str(len(hrefs(answer)))})


def depth1(server: Server, _count: int) -> frozenset[str]:
    body = (
        f'<d:propfind xmlns:d="{DAV}"><d:prop><d:resourcetype/><d:getetag/></d:prop></d:propfind>'
    )
    status, answer = request(
        server, "PROPFIND", f"{prefix(server)}/{LOGIN}/calendar/", body, Depth="1"
    )
    assert status == 207, status
    return hrefs(answer)


def month_query(server: Server, _count: int) -> frozenset[str]:
    body = (
        f'<c:calendar-query xmlns:d="{DAV}" xmlns:c="{CALDAV}">'
        "<d:prop><d:getetag/><c:calendar-data/></d:prop>"
        '<c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT">'
        '<c:time-range start="20270301T000000Z" end="20270401T000000Z"/></c:comp-filter>'
        "</c:comp-filter></c:filter></c:calendar-query>"
    )
    status, answer = request(
        server, "REPORT", f"{prefix(server)}/{LOGIN}/calendar/", body, Depth="1"
    )
    assert status == 207, status
    return hrefs(answer)


def multiget(server: Server, count: int) -> frozenset[str]:
    picked = random.Random(count).sample(range(count), min(100, count))
    inner = "".join(
        f"<d:href>{prefix(server)}/{LOGIN}/calendar/event-{n}.ics</d:href>" for n in picked
    )
    body = (
        f'<c:calendar-multiget xmlns:d="{DAV}" xmlns:c="{CALDAV}"><d:prop><d:getetag/>'
        f"<c:calendar-data/></d:prop>{inner}</c:calendar-multiget>"
    )
    status, answer = request(
        server, "REPORT", f"{prefix(server)}/{LOGIN}/calendar/", body, Depth="1"
    )
    assert status == 207, status
    return hrefs(answer)


def sync_token(server: Server) -> str:
    body = f'<d:propfind xmlns:d="{DAV}"><d:prop><d:sync-token/></d:prop></d:propfind>'
    _status, answer = request(
        server, "PROPFIND", f"{prefix(server)}/{LOGIN}/calendar/", body, Depth="0"
    )
    return ET.fromstring(answer).findtext(f".//{{{DAV}}}sync-token", "")  # noqa: S314


def ten_changes(server: Server, count: int) -> None:
    for number in random.Random().sample(range(count), min(10, count)):
        text = event_text(number, count, summary=f"Modifié {uuid.uuid4()}")
        status, _ = request(
            server,
            "PUT",
            f"{prefix(server)}/{LOGIN}/calendar/event-{number}.ics",
            text,
            Content_Type="text/calendar",
        )
        assert status in (201, 204), status


def sync_report(server: Server, token: str) -> frozenset[str]:
    body = (
        f'<d:sync-collection xmlns:d="{DAV}"><d:sync-token>{token}</d:sync-token>'
        "<d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>"
    )
    status, answer = request(server, "REPORT", f"{prefix(server)}/{LOGIN}/calendar/", body)
    assert status == 207, status
    return frozenset({str(len(hrefs(answer)))})


def put_new(server: Server, count: int) -> frozenset[str]:
    uid = f"new-{uuid.uuid4()}"
    text = event_text(count // 2, count).replace(f"UID:event-{count // 2}", f"UID:{uid}")
    status, _ = request(
        server,
        "PUT",
        f"{prefix(server)}/{LOGIN}/calendar/{uid}.ics",
        text,
        Content_Type="text/calendar",
        If_None_Match="*",
    )
    assert status == 201, status
    return frozenset({str(status)})


def card_search(server: Server, _count: int) -> frozenset[str]:
    body = (
        f'<cr:addressbook-query xmlns:d="{DAV}" xmlns:cr="{CARDDAV}"><d:prop><d:getetag/>'
        '<cr:address-data/></d:prop><cr:filter><cr:prop-filter name="FN">'
        f'<cr:text-match collation="i;unicode-casemap" match-type="contains">{RARE_NAME.lower()}'
        "</cr:text-match></cr:prop-filter></cr:filter></cr:addressbook-query>"
    )
    status, answer = request(
        server, "REPORT", f"{prefix(server)}/{LOGIN}/contacts/", body, Depth="1"
    )
    assert status == 207, status
    return hrefs(answer)


Operation = Callable[[Server, int], frozenset[str]]
OPERATIONS: dict[str, Operation] = {
    "PROPFIND depth 0 (ctag, sync-token)": ctag,
    "PROPFIND depth 1 (getetag)": depth1,
    "calendar-query, one month": month_query,
    "calendar-multiget of 100": multiget,
    "sync-collection after 10 changes": lambda s, c: frozenset(),  # timed apart
    "PUT of one new event": put_new,
    "addressbook-query text match": card_search,
}


def measure(server: Server, count: int, runs: int) -> dict[str, tuple[float, frozenset[str]]]:
    """``{operation: (median ms, answer)}``."""
    found = {}
    for name, operation in OPERATIONS.items():
        times, answer = [], frozenset[str]()
        for _ in range(runs):
            if name.startswith("sync"):
                token = sync_token(server)
                ten_changes(server, count)
                mark = len(EXCHANGE_SECONDS)
                answer = sync_report(server, token)
            else:
                mark = len(EXCHANGE_SECONDS)
                answer = operation(server, count)
            times.append(sum(EXCHANGE_SECONDS[mark:]) * 1000)
        found[name] = (
            statistics.median(times),
            answer if not name.startswith("PUT") else frozenset(),
        )
    return found


def run_size(
    count: int, runs: int, peer_runs: int
) -> tuple[dict[str, tuple[float, float, bool]], dict[str, tuple[int, int]], float]:
    root = Path(tempfile.mkdtemp(prefix="groupware-bench-dav-"))
    try:
        files = root / "radicale"
        write_file_store(files, count)
        seconds = prepare_ours(root / "ours", files)
        results: dict[str, dict[str, tuple[float, frozenset[str]]]] = {}
        memory: dict[str, tuple[int, int]] = {}
        with our_server(root / "ours") as ours:
            request(ours, "PROPFIND", f"/dav/{LOGIN}/", "", Depth="0")  # first login: argon2
            results["ours"] = measure(ours, count, runs)
            memory["ours"] = ours.memory_kib()
        if peer_runs > 0:
            with radicale_server(files) as peer:
                depth1(peer, count)  # Radicale's item cache, built once (steady state)
                results["radicale"] = measure(peer, count, peer_runs)
                memory["radicale"] = peer.memory_kib()
        table = {
            name: (
                results["ours"][name][0],
                results["radicale"][name][0] if peer_runs > 0 else math.nan,
                peer_runs > 0 and results["ours"][name][1] == results["radicale"][name][1],
            )
            for name in OPERATIONS
        }
        return table, memory, seconds
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--peer-runs",
        type=int,
        default=3,
        help="Radicale runs (1 at 10,000); 0 skips Radicale (ours alone, while iterating)",
    )
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    by_size = {}
    for count in sizes:
        peer_runs = min(1, args.peer_runs) if count >= 10_000 else args.peer_runs
        table, memory, seconds = run_size(count, args.runs, peer_runs)
        by_size[count] = table
        print(f"\n{count:,} events and {count:,} contacts (import into SQL: {seconds:.1f} s)")
        print(f"{'operation':<38} {'ours ms':>9} {'Radicale ms':>12} {'ratio':>8}  same answer")
        for name, (ours, peer, same) in table.items():
            answer = ("yes" if same else "NO") if args.peer_runs > 0 else "-"
            print(f"{name:<38} {ours:>9.1f} {peer:>12.1f} {peer / ours:>7.0f}×  {answer}")
        for name, (rss, peak) in memory.items():
            print(f"memory {name:<10} RSS {rss / 1024:7.1f} MiB, peak {peak / 1024:7.1f} MiB")
    if 1000 in by_size and 10_000 in by_size:
        print("\nours at 10,000 / ours at 1,000 (goal ≤ 1.5)")
        for name in OPERATIONS:
            print(f"{name:<38} {by_size[10_000][name][0] / by_size[1000][name][0]:>6.2f}")


if __name__ == "__main__":
    main()
