"""The spool's shared folder fsync: one for the writers waiting together, none skipped."""

from __future__ import annotations

import itertools
import os
import threading
import time
from pathlib import Path

import pytest

from groupware.mail.spool import Envelope, FolderSync, Spool
from tests.support.waiting import wait_for


def test_writers_waiting_together_share_one_fsync_begun_after_each_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder_sync = FolderSync(tmp_path)
    # ("begin" | "end", fsync number) and ("call" | "return", writer number), in order.
    events: list[tuple[str, int]] = []
    lock = threading.Lock()
    first_may_end = threading.Event()
    numbers = itertools.count()
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        number = next(numbers)
        with lock:
            events.append(("begin", number))
        if number == 0:
            first_may_end.wait(timeout=5)
        real_fsync(fd)
        with lock:
            events.append(("end", number))

    def writer(index: int) -> None:
        with lock:
            events.append(("call", index))
        folder_sync.sync()
        with lock:
            events.append(("return", index))

    monkeypatch.setattr(os, "fsync", fsync)  # the OS boundary, to watch its calls
    threads = [threading.Thread(target=writer, args=(index,)) for index in range(7)]
    threads[0].start()
    wait_for(lambda: ("begin", 0) in events, timeout_seconds=5)
    for thread in threads[1:]:
        thread.start()
    # Condition._waiters (CPython): the six are waiting for the running fsync to end.
    waiters = folder_sync._changed._waiters  # type: ignore[attr-defined]
    wait_for(lambda: len(waiters) == 6, timeout_seconds=5)
    first_may_end.set()
    for thread in threads:
        thread.join(timeout=5)
    fsyncs = [number for kind, number in events if kind == "begin"]
    assert len(fsyncs) == 2  # the first writer's, then one for the six
    for index in range(7):
        called, returned = events.index(("call", index)), events.index(("return", index))
        assert any(
            called < events.index(("begin", number)) < events.index(("end", number)) < returned
            for number in fsyncs
        ), f"writer {index} returned before an fsync begun after its call had ended"


def test_concurrent_accepts_are_all_on_disk_and_loadable(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    envelope = Envelope(
        mail_from="a@outside.example",
        rcpt_tos=("marie.dupont@example.org",),
        peer="192.0.2.1",
        helo="mx",
        received_at=time.time(),
        extra={"dsn_ret": "HDRS"},
    )
    queue_ids: list[str] = []

    def accept(number: int) -> None:
        queue_ids.append(spool.accept(envelope, f"Subject: {number}\r\n\r\n".encode()))

    threads = [threading.Thread(target=accept, args=(number,)) for number in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    assert sorted(spool.pending()) == sorted(queue_ids)
    assert all(spool.load(queue_id).envelope == envelope for queue_id in queue_ids)
    assert {spool.load(queue_id).data for queue_id in queue_ids} == {
        f"Subject: {number}\r\n\r\n".encode() for number in range(16)
    }
    spool.done(*queue_ids[:10])
    assert sorted(spool.pending()) == sorted(queue_ids[10:])


def test_start_up_removes_only_stale_temporary_files(tmp_path: Path) -> None:
    # An old one never finished; a young one may be another process writing a notice.
    spool = Spool(tmp_path)
    envelope = Envelope("a@example.org", ("b@example.org",), "127.0.0.1", "client", time.time())
    done = spool.accept(envelope, b"Subject: x\r\n\r\ny\r\n")
    stale = spool.incoming / ".old.msg.tmp"
    young = spool.incoming / ".young.msg.tmp"
    stale.write_bytes(b"half")
    young.write_bytes(b"half")
    an_hour_ago = time.time() - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))
    assert list(spool.pending()) == [done]
    assert not stale.exists()
    assert young.exists()
