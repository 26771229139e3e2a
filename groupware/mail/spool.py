# SPDX-License-Identifier: GPL-3.0-or-later
"""The spool: accepted messages, durable before ``250`` is answered.

One file per accepted message in ``spool/incoming``: a first line of JSON (the
envelope) then the message bytes. Written to a temporary name, fsynced, renamed,
and the folder fsynced (Mailman's switchboard pattern). A file is removed only
after every recipient has been delivered; at start every remaining file is
delivered again, and delivery is idempotent per (spool id, recipient), so each
accepted message lands exactly once.

:func:`write_durably` and :func:`remove_durably` are the one implementation of that
discipline; the outbound queue (``mail.outbound``) writes its files through them too.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
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


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(
    folder: Path, name: str, chunks: Iterable[bytes], *, exclusive: bool = True
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
    _fsync_dir(folder)
    return final


def remove_durably(folder: Path, *names: str) -> None:
    """Remove files (missing ones are fine), then fsync the folder once. Blocking."""
    for name in names:
        (folder / name).unlink(missing_ok=True)
    _fsync_dir(folder)


class Spool:
    """Durable queue of accepted messages."""

    def __init__(self, root: Path) -> None:
        self.incoming = root / "incoming"
        self.incoming.mkdir(parents=True, exist_ok=True)

    def accept(self, envelope: Envelope, data: bytes) -> str:
        """Write a message durably; returns its queue id. Blocking (fsync)."""
        queue_id = f"{int(time.time() * 1000):x}{secrets.token_hex(6)}"
        header = json.dumps(asdict(envelope), ensure_ascii=True).encode() + b"\n"
        write_durably(self.incoming, f"{queue_id}{SUFFIX}", (header, data))
        return queue_id

    def load(self, queue_id: str) -> SpooledMessage:
        """Read one spooled message."""
        raw = (self.incoming / f"{queue_id}{SUFFIX}").read_bytes()
        header, _newline, data = raw.partition(b"\n")
        fields = json.loads(header)
        fields["rcpt_tos"] = tuple(fields["rcpt_tos"])
        return SpooledMessage(queue_id, Envelope(**fields), data)

    def pending(self) -> Iterator[str]:
        """Queue ids waiting for delivery, oldest first; stale temporary files removed."""
        for path in sorted(self.incoming.iterdir()):
            if path.name.endswith(TEMPORARY_SUFFIX):
                # A write that never reached its rename: never acknowledged.
                path.unlink(missing_ok=True)
            elif path.suffix == SUFFIX:
                yield path.stem

    def done(self, queue_id: str) -> None:
        """Remove a delivered message."""
        remove_durably(self.incoming, f"{queue_id}{SUFFIX}")
