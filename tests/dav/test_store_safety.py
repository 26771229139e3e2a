"""The SQL store under stress: kill -9 while writing, racing ``If-Match`` writers, locks.

- Every PUT answered ``201`` is there after the server is killed with SIGKILL, and
  every stored item is whole: its index rows and its collection's revision were
  written in the same transaction.
- Writers racing with the same ``If-Match`` ETag: one wins, the others get ``412``
  (no lost update).
- A write holding one collection's lock never waits for another collection.
"""

from __future__ import annotations

import http.client
import signal
import threading
import uuid

import pytest
from sqlalchemy import create_engine, func, select, text

from groupware.core.services import Core
from groupware.dav.sqlstore.schema import dav_collections, dav_item_ranges, dav_items
from tests.dav.accounts import Account, import_accounts
from tests.dav.matrix_support import ServerStorage
from tests.dav.webdav import DavHttp
from tests.support.processes import serve_in_subprocess
from tests.support.servers import RunningServer, make_config
from tests.support.waiting import wait_for

ICS = "text/calendar"
#: Enough acknowledged writes before the kill that it falls in the middle of some.
ACKNOWLEDGED_BEFORE_KILL = 25


def _event(uid: str, summary: str) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//groupware tests//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20300101T000000Z\r\n"
        "DTSTART:20300105T100000Z\r\nDTEND:20300105T110000Z\r\n"
        f"SUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


# --- kill -9 -------------------------------------------------------------------------


_LISTEN = {"GROUPWARE_HTTP_LISTEN": "127.0.0.1:0", "GROUPWARE_HTTPS_LISTEN": "127.0.0.1:0"}


def _put_until_refused(dav: DavHttp, path: str, acknowledged: list[str]) -> None:
    """PUT new events one after another; remember the ``201`` ones; stop when refused."""
    while True:
        href = f"{uuid.uuid4()}.ics"
        try:
            reply = dav.put(path + href, _event(href, "avant la panne"), ICS)
        except (OSError, http.client.HTTPException):  # the server died mid-answer
            return
        if reply.status != 201:
            return
        acknowledged.append(href)


def test_every_acknowledged_put_is_whole_after_kill_9(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    config = make_config(tmp_path_factory.mktemp("dav-kill"))
    core = Core.open(config)
    try:
        (account,) = import_accounts(core, ("Hugo", "Marchand"))
    finally:
        core.close()
    acknowledged: list[str] = []
    path = f"/dav/{account.login}/calendar/"
    with serve_in_subprocess(config, "http", _LISTEN) as (process, port):
        dav = DavHttp(f"http://127.0.0.1:{port}", account.credentials)
        writers = [
            threading.Thread(target=_put_until_refused, args=(dav, path, acknowledged))
            for _ in range(3)
        ]
        for writer in writers:
            writer.start()
        wait_for(lambda: len(acknowledged) >= ACKNOWLEDGED_BEFORE_KILL, timeout_seconds=30)
        process.send_signal(signal.SIGKILL)
        for writer in writers:
            writer.join(timeout=10)
    engine = create_engine(config.database_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
            calendar = conn.execute(
                select(dav_collections).where(dav_collections.c.path == f"{account.login}/calendar")
            ).one()
            items = conn.execute(
                select(dav_items.c.id, dav_items.c.href, dav_items.c.revision).where(
                    dav_items.c.collection_id == calendar.id
                )
            ).all()
            ranges = dict(
                conn.execute(
                    select(dav_item_ranges.c.item_id, func.count())
                    .where(dav_item_ranges.c.collection_id == calendar.id)
                    .group_by(dav_item_ranges.c.item_id)
                ).all()
            )
    finally:
        engine.dispose()
    stored = {row.href for row in items}
    assert set(acknowledged) <= stored
    assert all(ranges.get(row.id) == 1 for row in items)  # each item with its one range
    assert max(row.revision for row in items) <= calendar.revision
    assert len({row.revision for row in items}) == len(items)  # one revision per write


# --- If-Match ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lea(dav_server: RunningServer) -> Account:
    return import_accounts(dav_server.core, ("Léa", "Rousseau"))[0]


def test_racing_if_match_writers_one_wins_the_others_get_412(
    dav_server: RunningServer, lea: Account
) -> None:
    dav = DavHttp(dav_server.http_url, lea.credentials)
    path = f"/dav/{lea.login}/calendar/{uuid.uuid4()}.ics"
    etag = dav.put(path, _event("race", "version 0"), ICS).headers["ETag"]
    start = threading.Barrier(6)
    statuses: dict[int, int] = {}

    def write(number: int) -> None:
        start.wait(timeout=5)
        reply = dav.put(path, _event("race", f"version {number}"), ICS, If_Match=etag)
        statuses[number] = reply.status

    writers = [threading.Thread(target=write, args=(number,)) for number in range(1, 7)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=10)

    assert sorted(statuses.values()) == [204, 412, 412, 412, 412, 412]
    (winner,) = (number for number, status in statuses.items() if status == 204)
    assert f"SUMMARY:version {winner}" in dav.request("GET", path).text


def test_put_with_a_stale_etag_gets_412_and_changes_nothing(
    dav_server: RunningServer, lea: Account
) -> None:
    dav = DavHttp(dav_server.http_url, lea.credentials)
    path = f"/dav/{lea.login}/calendar/{uuid.uuid4()}.ics"
    stale = dav.put(path, _event("stale", "premier"), ICS).headers["ETag"]
    assert dav.put(path, _event("stale", "second"), ICS, If_Match=stale).status == 204

    assert dav.put(path, _event("stale", "perdu"), ICS, If_Match=stale).status == 412
    assert "SUMMARY:second" in dav.request("GET", path).text


def test_an_href_or_uid_too_long_for_the_store_gets_400_and_changes_nothing(
    dav_server: RunningServer, lea: Account
) -> None:
    # PostgreSQL refuses a key longer than its column: a 500 unless refused before.
    dav = DavHttp(dav_server.http_url, lea.credentials)
    calendar = f"/dav/{lea.login}/calendar/"
    before = dav.etags(calendar)

    long_uid = dav.put(f"{calendar}{uuid.uuid4()}.ics", _event("u" * 600, "trop long"), ICS)
    long_href = dav.put(f"{calendar}{'h' * 600}.ics", _event("court", "trop long"), ICS)

    assert (long_uid.status, long_href.status) == (400, 400)
    assert dav.etags(calendar) == before
    kept = f"{calendar}{uuid.uuid4()}.ics"
    assert dav.put(kept, _event("reste", "ici"), ICS).status == 201
    moved = dav.request("MOVE", kept, headers={"Destination": f"{calendar}{'m' * 600}.ics"})
    assert moved.status == 400
    assert "SUMMARY:ici" in dav.request("GET", kept).text


# --- locks ---------------------------------------------------------------------------


def test_a_write_lock_on_one_collection_blocks_that_collection_only(
    dav_server: RunningServer,
) -> None:
    storage = ServerStorage(dav_server.core).storage
    holding, release = threading.Event(), threading.Event()
    entered: list[str] = []

    def hold() -> None:
        with storage.acquire_lock("w", "a", path="/a.one/calendar/x.ics"):
            holding.set()
            release.wait(timeout=10)

    def enter(path: str) -> None:
        with storage.acquire_lock("w", "b", path=path):
            entered.append(path)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(timeout=5)
        other = threading.Thread(target=enter, args=("/b.two/calendar/y.ics",))
        other.start()
        other.join(timeout=5)
        same = threading.Thread(target=enter, args=("/a.one/calendar/z.ics",))
        same.start()
        same.join(timeout=0.3)  # bounded: it must still be waiting

        assert entered == ["/b.two/calendar/y.ics"]
    finally:
        release.set()
        holder.join(timeout=5)
    same.join(timeout=5)
    assert entered == ["/b.two/calendar/y.ics", "/a.one/calendar/z.ics"]
