"""``serve`` with HTTP in several worker processes (``groupware.http_workers``).

Real ``groupware serve`` subprocesses on port 0 with ``http.processes_count = 2``: the
first process logs one ``listener.started`` per HTTP address, once both workers
listen; both workers answer; concurrent ``If-Match`` writes of one event reaching
both processes give one success and ``412`` for the others; a worker that dies is
replaced; the workers end with the first process, even after a ``kill -9``.
"""

from __future__ import annotations

import base64
import http.client
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from groupware.config import load_config
from groupware.core.services import Core
from groupware.datadir import init_data_dir
from tests.support.servers import add_user
from tests.test_cli import PORT_ZERO, LineReader, serving

PASSWORD = "workers-password-long-enough"
TWO = {"GROUPWARE_HTTP__PROCESSES_COUNT": "2"}
DEADLINE_SECONDS = 90
EVENT = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//FR\r\nBEGIN:VEVENT\r\n"
    "UID:race-1\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20261201T080000Z\r\n"
    "DTEND:20261201T090000Z\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


@pytest.fixture
def people(tmp_path: Path) -> Path:
    """A data folder with one person whose password is known."""
    data = tmp_path / "data"
    init_data_dir(data, domain="example.org")
    core = Core.open(load_config(data, env={}))
    try:
        add_user(core, "Marie", "Dupont", password=PASSWORD)
    finally:
        core.close()
    return data


class Started:
    """What the first process and its workers logged up to ``groupware.started``."""

    def __init__(self, reader: LineReader) -> None:
        deadline = time.monotonic() + DEADLINE_SECONDS
        self.listeners: dict[str, int] = {}
        self.workers: set[int] = set()
        while True:
            match = reader.wait_for(
                r"listener\.started service=(\S+) address=127\.0\.0\.1:(\d+)"
                r"|http\.worker\.started pid=(\d+)|groupware\.started",
                deadline,
            )
            if match.group(1):
                if match.group(1).startswith("http"):
                    self.listeners[match.group(1)] = int(match.group(2))
            elif match.group(3):
                self.workers.add(int(match.group(3)))
            else:
                break

    @property
    def http_port(self) -> int:
        return self.listeners["http"]


@pytest.fixture
def two(people: Path) -> Iterator[tuple[object, LineReader, Started]]:
    with serving(people, **PORT_ZERO, **TWO) as (process, reader):
        started = Started(reader)
        try:
            yield process, reader, started
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)
            reader.rest()  # the reading thread ends with the stream, before it closes
            _wait_until(lambda: not any(_alive(pid) for pid in started.workers))


def _get(port: int, path: str = "/login") -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path)
        with connection.getresponse() as response:
            response.read()
            return response.status
    finally:
        connection.close()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _wait_until(condition: object, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def _dav(port: int, method: str, path: str, body: str = "", **headers: str) -> tuple[int, str]:
    token = base64.b64encode(f"marie.dupont:{PASSWORD}".encode()).decode()
    sent = {"Authorization": f"Basic {token}", "Content-Type": "text/calendar; charset=utf-8"}
    sent.update({name.replace("_", "-"): value for name, value in headers.items()})
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body.encode(), sent)
        with connection.getresponse() as response:
            response.read()
            return response.status, response.getheader("ETag") or ""
    finally:
        connection.close()


def test_one_listener_line_per_address_and_both_workers_answer(two: tuple) -> None:
    _process, _reader, started = two
    assert sorted(started.listeners) == ["http", "https"]
    assert len(started.workers) == 2
    before = {pid: _cpu_seconds(pid) for pid in started.workers}
    statuses = [_get(started.http_port) for _ in range(120)]  # a new connection each
    assert set(statuses) == {200}
    # The kernel spread the connections: each worker did part of the work.
    assert all(_cpu_seconds(pid) - before[pid] > 0.05 for pid in started.workers)


def test_concurrent_if_match_writes_across_processes_leave_one_winner(two: tuple) -> None:
    _process, _reader, started = two
    port = started.http_port
    path = "/dav/marie.dupont/calendar/race-1.ics"
    assert _get(port, "/dav/") in (401, 207, 200)  # the DAV front answers
    status, etag = _dav(port, "PUT", path, EVENT.format(summary="Départ"), If_None_Match="*")
    assert status == 201, status
    for round_number in range(3):
        results = _race(port, path, etag, round_number)
        codes = sorted(code for code, _tag in results)
        assert codes == [204] + [412] * 7, codes
        etag = next(tag for code, tag in results if code == 204)


def _race(port: int, path: str, etag: str, round_number: int) -> list[tuple[int, str]]:
    """Eight writers at once, each on its own connection, all with ``If-Match: etag``."""
    results: list[tuple[int, str]] = []
    barrier = threading.Barrier(8)

    def write(number: int) -> None:
        barrier.wait()
        summary = f"Version {round_number}-{number}"
        results.append(_dav(port, "PUT", path, EVENT.format(summary=summary), If_Match=etag))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_a_worker_that_dies_is_replaced(two: tuple) -> None:
    _process, reader, started = two
    victim = min(started.workers)
    os.kill(victim, signal.SIGKILL)
    match = reader.wait_for(r"http\.worker\.started pid=(\d+)", time.monotonic() + 60)
    assert int(match.group(1)) not in started.workers
    assert _wait_until(lambda: not _alive(victim))
    assert {_get(started.http_port) for _ in range(20)} == {200}


def test_workers_end_with_the_first_process_even_after_kill_9(two: tuple) -> None:
    process, _reader, started = two
    process.kill()  # type: ignore[attr-defined]
    process.wait(timeout=30)  # type: ignore[attr-defined]
    assert _wait_until(lambda: not any(_alive(pid) for pid in started.workers))


def test_sigterm_stops_every_process_cleanly(two: tuple) -> None:
    process, reader, started = two
    process.send_signal(signal.SIGTERM)  # type: ignore[attr-defined]
    assert process.wait(timeout=30) == 0  # type: ignore[attr-defined]
    lines = reader.rest()
    assert not any(_alive(pid) for pid in started.workers)
    assert sum("http.worker.stopped" in line for line in lines) == 2
    assert not any("Traceback" in line for line in lines)
    assert not any(re.search(r"\bERROR\b", line) for line in lines)
