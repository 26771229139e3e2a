# SPDX-License-Identifier: GPL-3.0-or-later
"""The spool: accepted messages, durable before ``250`` is answered.

One file per accepted message in ``spool/incoming``: a first line of JSON (the
envelope) then the message bytes. Written to a temporary name, fsynced, renamed,
and the folder fsynced (Mailman's switchboard pattern). A file is removed only
after every recipient has been delivered; at start every remaining file is
delivered again, and delivery is idempotent per (spool id, recipient), so each
accepted message lands exactly once. Other processes on the same data folder (the
portal's notices) write here too: the running mail service lists the complete files
(:meth:`Spool.waiting`) and delivers those it has not queued already.

:func:`write_durably` and :func:`remove_durably` are the one implementation of that
discipline; the outbound queue (``mail.outbound``) writes its files through them too.
Concurrent writers of one folder share its fsync through a :class:`FolderSync`
(group commit): each still returns only once an fsync of the folder begun after its
own rename has succeeded.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

SUFFIX: Final = ".msg"


@dataclass(frozen=True, slots=True)
class Envelope:
    """What SMTP said about a message, kept with it in the spool."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    peer: str
    helo: str
    received_at: float
    authenticated_as: str = ""
    listener: str = "smtp"
    tls: str = ""
    smtp_utf8: bool = False
    attempts: int = 0
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SpooledMessage:
    """A message in the spool."""

    queue_id: str
    envelope: Envelope
    data: bytes


TEMPORARY_SUFFIX: Final = ".tmp"
#: A temporary file this old at start-up is a write that never finished.
STALE_TEMPORARY_SECONDS: Final = 60
_ENVELOPE_FIELDS: Final = tuple(item.name for item in fields(Envelope))


def _fields(envelope: Envelope) -> dict[str, object]:
    """The envelope as JSON takes it: ``asdict`` without its deep copy (same result)."""
    values: dict[str, object] = {name: getattr(envelope, name) for name in _ENVELOPE_FIELDS}
    values["rcpt_tos"] = list(envelope.rcpt_tos)
    return values


def fsync_dir(path: Path) -> None:
    """Make the entries of a folder (creations, renames, removals) durable. Blocking."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FolderSync:
    """One folder's fsync, shared by the threads that wait for it at the same time.

    A caller of :meth:`sync` has renamed or removed entries before calling; an fsync
    that *begins* after the call covers them. At most one fsync runs at a time: those
    who arrive while it runs wait for it to end, then one of them starts the next one
    for all of them (group commit). Thread-safe; blocking.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._changed = threading.Condition()
        self._begun = 0  # fsyncs started, numbered in order
        self._done = 0  # the number of the newest fsync that succeeded
        self._is_running = False

    def sync(self) -> None:
        """Return once an fsync of the folder begun after this call has succeeded.

        Raises:
            OSError: the fsync this caller started failed.
        """
        with self._changed:
            needed = self._begun + 1
            while self._done < needed:
                if self._is_running:
                    self._changed.wait()
                else:
                    self._run_locked()

    def _run_locked(self) -> None:
        """One fsync for everyone waiting; called, and returns, with the lock held."""
        self._is_running = True
        self._begun += 1
        number = self._begun
        self._changed.release()
        try:
            fsync_dir(self.folder)
        finally:
            self._changed.acquire()
            self._is_running = False
            self._changed.notify_all()
        # Only on success; fsyncs run one at a time in order, so this only grows.
        self._done = number


def write_durably(
    folder: Path,
    name: str,
    chunks: Iterable[bytes],
    *,
    exclusive: bool = True,
    folder_sync: FolderSync | None = None,
) -> Path:
    """Write ``folder/name`` so that after a crash it is either absent or complete.

    The bytes go to ``.name.tmp`` (mode 0600), are fsynced, renamed over ``name`` and
    the folder is fsynced, so the rename itself survives a power cut. Blocking.

    Args:
        folder: where the file lives.
        name: the final file name.
        chunks: the content.
        exclusive: refuse to reuse a temporary file left by another writer (a
            stale one from a crash is removed by the owner's recovery).
        folder_sync: the folder's shared fsync, when several threads write there.

    Returns:
        The final path.
    """
    temporary = folder / f".{name}{TEMPORARY_SUFFIX}"
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(temporary, flags, 0o600)
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    final = folder / name
    os.replace(temporary, final)
    _sync(folder, folder_sync)
    return final


def remove_durably(folder: Path, *names: str, folder_sync: FolderSync | None = None) -> None:
    """Remove files (missing ones are fine), then fsync the folder once. Blocking."""
    for name in names:
        (folder / name).unlink(missing_ok=True)
    _sync(folder, folder_sync)


def _sync(folder: Path, folder_sync: FolderSync | None) -> None:
    if folder_sync is None:
        fsync_dir(folder)
    else:
        assert folder_sync.folder == folder, "a FolderSync serves one folder"
        folder_sync.sync()


class Spool:
    """Durable queue of accepted messages."""

    def __init__(self, root: Path) -> None:
        self.incoming = root / "incoming"
        self.incoming.mkdir(parents=True, exist_ok=True)
        # Concurrent DATA commands and the delivery's removals share the folder's fsync.
        self._folder_sync = FolderSync(self.incoming)

    def accept(self, envelope: Envelope, data: bytes) -> str:
        """Write a message durably; returns its queue id. Blocking (fsync).

        On return the file's bytes and its name are both on disk: ``250`` may be sent.
        """
        queue_id = f"{int(time.time() * 1000):x}{secrets.token_hex(6)}"
        header = json.dumps(_fields(envelope), ensure_ascii=True).encode() + b"\n"
        write_durably(
            self.incoming, f"{queue_id}{SUFFIX}", (header, data), folder_sync=self._folder_sync
        )
        return queue_id

    def load(self, queue_id: str) -> SpooledMessage:
        """Read one spooled message."""
        raw = (self.incoming / f"{queue_id}{SUFFIX}").read_bytes()
        header, _newline, data = raw.partition(b"\n")
        fields = json.loads(header)
        fields["rcpt_tos"] = tuple(fields["rcpt_tos"])
        return SpooledMessage(queue_id, Envelope(**fields), data)

    def pending(self) -> Iterator[str]:
        """Queue ids waiting for delivery, oldest first; stale temporary files removed.

        For start-up only: then a temporary file older than
        ``STALE_TEMPORARY_SECONDS`` is a write that never finished (never
        acknowledged). A younger one may be another process's write in progress (the
        portal of ``serve --only http`` spooling a notice): it is left alone. While
        the service runs, :meth:`waiting` lists.
        """
        stale_before = time.time() - STALE_TEMPORARY_SECONDS
        for path in sorted(self.incoming.iterdir()):
            if path.name.endswith(TEMPORARY_SUFFIX):
                with contextlib.suppress(FileNotFoundError):
                    if path.stat().st_mtime < stale_before:
                        path.unlink(missing_ok=True)
            elif path.suffix == SUFFIX:
                yield path.stem

    def waiting(self) -> list[str]:
        """Queue ids of the complete files, oldest first; nothing removed. Blocking.

        Safe while other writers work: a temporary file (a write in progress, here or
        in another process) is neither listed nor touched. A listed file may be gone
        by the time it is loaded (delivered meanwhile).
        """
        names = (name for name in os.listdir(self.incoming) if name.endswith(SUFFIX))
        # Queue ids begin with the time in fixed-width hex: name order is age order.
        return sorted(name.removesuffix(SUFFIX) for name in names)

    def contains(self, queue_id: str) -> bool:
        """Whether a message is still in the spool (not yet delivered). Blocking."""
        return (self.incoming / f"{queue_id}{SUFFIX}").exists()

    def done(self, *queue_ids: str) -> None:
        """Remove delivered messages, durably (one folder fsync for them all). Blocking.

        The outbound queue may send what they handed it only after this returns: a
        removal lost in a crash would deliver them again (the store ignores that,
        by delivery key, but the outbound queue could have sent and forgotten them).
        """
        remove_durably(
            self.incoming,
            *(f"{queue_id}{SUFFIX}" for queue_id in queue_ids),
            folder_sync=self._folder_sync,
        )
