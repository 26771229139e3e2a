"""Import jobs over real HTTP: their state is in the database, not in one process.

Two ``groupware serve --only http`` over the same data folder (or one PostgreSQL)
stand for the processes behind one port: the file goes to one, the page polls the
other. A job whose process died reads as interrupted; a long import writes its
progress a few times a second, not once per item.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, update

from groupware.config import Config
from groupware.core.db import import_jobs
from groupware.core.import_jobs import (
    JOB_KEEP_SECONDS,
    MAX_REPORTED_SKIPS,
    MAX_REPORTED_UID_CHARS,
    STALE_SECONDS,
    ImportJobStore,
    Progress,
)
from groupware.core.services import Core
from groupware.web.import_data import PROGRESS_WRITE_SECONDS
from tests.support.servers import RunningServer, make_config, running_server
from tests.support.waiting import wait_for
from tests.web.portal_client import Imported, PortalClient, Reply, import_person

PASSWORD = "Vague-Orange-Clavier-57"  # noqa: S105 - a test password
#: Enough for a long import (and several progress writes) on two loaded cores.
IMPORT_SECONDS = 90
MANY_CARDS_COUNT = 2000


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def cards(count: int, first: int = 0) -> bytes:
    """``count`` small vCards with UIDs ``card-<n>@tests.example.org``."""
    lines = []
    for n in range(first, first + count):
        lines += [
            "BEGIN:VCARD",
            "VERSION:3.0",
            f"UID:card-{n}@tests.example.org",
            f"FN:Personne {n}",
            f"N:{n};Personne;;;",
            "END:VCARD",
        ]
    return ("\r\n".join(lines) + "\r\n").encode()


def signed_in(server: RunningServer, who: Imported) -> PortalClient:
    server.core.directory.set_password(who.login, PASSWORD, actor="test", enforce_policy=False)
    portal = PortalClient(server.http_url)
    assert portal.sign_in(who.login, PASSWORD).status == 302
    return portal


def same_browser(portal: PortalClient, base_url: str) -> PortalClient:
    """The browser of ``portal`` talking to another process (its cookies, another URL)."""
    other = PortalClient(base_url, language=portal.language)
    for cookie in portal.cookies:
        other.cookies.set_cookie(cookie)
    return other


def upload(portal: PortalClient, collection: str, filename: str, data: bytes) -> Reply:
    """Send the import form (multipart, as a browser does); the reply is not followed."""
    token = portal.get("/agenda/collections").csrf_token()
    boundary = secrets.token_hex(16)
    fields = [("csrf_token", token), ("collection", collection)]
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields
    )
    body += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: text/vcard\r\n\r\n"
    ).encode()
    body += data + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(
        portal.base_url + "/agenda/collections/import",
        data=body,
        method="POST",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )

    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(portal.cookies), NoRedirect()
    )
    try:
        response = opener.open(request, timeout=5)
    except urllib.error.HTTPError as error:
        response = error
    with response:
        return Reply(response.status, response.headers, response.read().decode())


def poll(portal: PortalClient, job_path: str) -> list[dict[str, Any]]:
    """Every status the JSON endpoint gave until the job was over."""
    seen: list[dict[str, Any]] = []

    def finished() -> bool:
        reply = portal.get(job_path + ".json")
        assert reply.status == 200, reply.status
        seen.append(json.loads(reply.body))
        return bool(seen[-1]["finished"])

    wait_for(finished, timeout_seconds=IMPORT_SECONDS)
    return seen


def job_path(reply: Reply) -> str:
    assert reply.status == 302, reply.body[:500]
    assert reply.location is not None
    path = reply.location.split("?")[0]
    assert path.startswith("/agenda/imports/"), path
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_config(request: pytest.FixtureRequest, tmp_path: Path) -> Config:
    """One data folder for two servers: on SQLite, or on one PostgreSQL database."""
    if request.param == "sqlite":
        return make_config(tmp_path)
    url = request.getfixturevalue("postgres_url")
    return make_config(tmp_path, database={"url": url})


@pytest.fixture
def two_servers(shared_config: Config) -> Iterator[tuple[RunningServer, RunningServer]]:
    with running_server(shared_config) as first, running_server(shared_config) as second:
        yield first, second


@pytest.mark.timeout(IMPORT_SECONDS + 60)
def test_a_job_started_on_one_process_is_followed_and_reported_on_another(
    two_servers: tuple[RunningServer, RunningServer],
) -> None:
    first, second = two_servers
    assert first.http_url != second.http_url
    owner = import_person(first.core.directory)
    on_first = signed_in(first, owner)
    # Two cards already there: the report, read on the other process, says so.
    job = job_path(upload(on_first, "contacts", "before.vcf", cards(2)))
    assert poll(on_first, job)[-1]["imported"] == 2

    job = job_path(upload(on_first, "contacts", "carnet.vcf", cards(60)))
    on_second = same_browser(on_first, second.http_url)
    statuses = poll(on_second, job)
    dones = [s["done"] for s in statuses]
    assert dones == sorted(dones)
    assert statuses[-1] == {
        "total": 60,
        "done": 60,
        "imported": 58,
        "skipped": 2,
        "finished": True,
        "interrupted": False,
    }
    report = on_second.get(job)
    assert report.status == 200
    assert 'id="import-report">Import terminé' in report.body
    assert 'id="imported-count">58<' in report.body
    assert 'id="skipped-count">2<' in report.body
    for n in (0, 1):
        assert f"<code>card-{n}@tests.example.org</code>" in report.body
    assert "card-2@tests.example.org" not in report.body
    assert report.body.count("déjà présent") == 2

    # The job is its owner's only, on either process.
    other = signed_in(second, import_person(second.core.directory, "Paul", "Rousseau"))
    assert other.get(job).status == 404
    assert other.get(job + ".json").status == 404


def test_a_job_whose_process_stopped_reads_as_interrupted(server: RunningServer) -> None:
    owner = import_person(server.core.directory)
    portal = signed_in(server, owner)
    store = ImportJobStore(server.core.engine)
    running = store.create(owner.login, 10)
    stopped = store.create(owner.login, 10)
    progress = Progress()
    for n in range(4):
        progress.record(f"card-{n}@tests.example.org", "exists" if n == 0 else None)
    store.save(stopped.id, progress)
    silent_since = datetime.now(UTC) - timedelta(seconds=STALE_SECONDS + 5)
    with server.core.engine.begin() as conn:
        conn.execute(
            update(import_jobs)
            .where(import_jobs.c.id == stopped.id)
            .values(updated_at=silent_since)
        )

    # A job still writing is polled on; the silent one is over, and the page says why.
    status = json.loads(portal.get(f"/agenda/imports/{running.id}.json").body)
    assert status["finished"] is False
    assert status["interrupted"] is False
    assert 'data-finished="no"' in portal.get(f"/agenda/imports/{running.id}").body
    status = json.loads(portal.get(f"/agenda/imports/{stopped.id}.json").body)
    assert status == {
        "total": 10,
        "done": 4,
        "imported": 3,
        "skipped": 1,
        "finished": True,
        "interrupted": True,
    }
    page = portal.get(f"/agenda/imports/{stopped.id}").body
    assert 'data-finished="yes"' in page
    assert "<progress" not in page
    assert 'id="import-report">Import interrompu' in page
    assert "le serveur qui l’effectuait a été arrêté" in page
    assert 'id="imported-count">3<' in page
    assert "<code>card-0@tests.example.org</code>" in page


class StatementCounter:
    """Counts the UPDATEs of ``import_jobs`` every engine of this process runs."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE IMPORT_JOBS"):
            with self._lock:
                self.count += 1


@pytest.fixture
def job_updates() -> Iterator[StatementCounter]:
    counter = StatementCounter()
    event.listen(Engine, "before_cursor_execute", counter)
    yield counter
    event.remove(Engine, "before_cursor_execute", counter)


@pytest.mark.timeout(IMPORT_SECONDS + 60)
def test_a_long_import_writes_its_progress_a_few_times_a_second_not_per_item(
    server: RunningServer, job_updates: StatementCounter
) -> None:
    portal = signed_in(server, import_person(server.core.directory))
    started = time.monotonic()
    job = job_path(upload(portal, "contacts", "many.vcf", cards(MANY_CARDS_COUNT)))
    statuses = poll(portal, job)
    elapsed = time.monotonic() - started
    assert statuses[-1]["imported"] == MANY_CARDS_COUNT
    # Progress was visible on the way, not only at the end...
    assert any(0 < s["done"] < MANY_CARDS_COUNT for s in statuses)
    # ...from a handful of writes: one per half second of work, and the last.
    writes = job_updates.count
    print(f"{MANY_CARDS_COUNT} cards in {elapsed:.1f} s: {writes} progress writes")  # noqa: T201
    assert 1 <= writes <= elapsed / PROGRESS_WRITE_SECONDS + 1
    assert writes < MANY_CARDS_COUNT / 10


def test_the_report_keeps_the_first_skips_and_old_jobs_go(core: Core) -> None:
    now = [datetime(2026, 3, 2, 8, 0, tzinfo=UTC)]
    store = ImportJobStore(core.engine, clock=lambda: now[0])
    old = store.create("alice.martin", MAX_REPORTED_SKIPS + 10)
    progress = Progress()
    for n in range(MAX_REPORTED_SKIPS + 10):
        progress.record("x" * 1000 if n == 0 else f"uid-{n}", "exists")
    store.save(old.id, progress, is_finished=True)
    read = store.get(old.id, "alice.martin")
    assert read is not None
    assert read.skipped_count == MAX_REPORTED_SKIPS + 10
    assert len(read.skipped) == MAX_REPORTED_SKIPS
    assert len(read.skipped[0][0]) == MAX_REPORTED_UID_CHARS
    assert store.get(old.id, "paul.rousseau") is None

    now[0] += timedelta(seconds=JOB_KEEP_SECONDS - 1)
    store.create("paul.rousseau", 1)
    assert store.get(old.id, "alice.martin") is not None
    now[0] += timedelta(seconds=2)
    store.create("paul.rousseau", 1)
    assert store.get(old.id, "alice.martin") is None
