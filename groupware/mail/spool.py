# SPDX-License-Identifier: GPL-3.0-or-later
"""The spool: accepted messages, durable before ``250`` is answered.

One file per accepted message in ``spool/incoming``: a first line of JSON (the
envelope) then the message bytes. Written to a temporary name, fsynced, renamed,
and the folder fsynced (Mailman's switchboard pattern). A file is removed only
after every recipient has been delivered; at start every remaining file is
delivered again, and delivery is idempotent per (spool id, recipient), so each
accepted message lands exactly once.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from collections.abc import Iterator
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


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """Durable queue of accepted messages."""

    def __init__(self, root: Path) -> None:
        self.incoming = root / "incoming"
        self.incoming.mkdir(parents=True, exist_ok=True)

    def accept(self, envelope: Envelope, data: bytes) -> str:
        """Write a message durably; returns its queue id. Blocking (fsync)."""
        queue_id = f"{int(time.time() * 1000):x}{secrets.token_hex(6)}"
        header = json.dumps(asdict(envelope), ensure_ascii=True).encode() + b"\n"
        temporary = self.incoming / f".{queue_id}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            for chunk in (header, data):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, self.incoming / f"{queue_id}{SUFFIX}")
        _fsync_dir(self.incoming)
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
            if path.name.endswith(".tmp"):
                # A write that never reached its rename: never acknowledged.
                path.unlink(missing_ok=True)
            elif path.suffix == SUFFIX:
                yield path.stem

    def done(self, queue_id: str) -> None:
        """Remove a delivered message."""
        (self.incoming / f"{queue_id}{SUFFIX}").unlink(missing_ok=True)
        _fsync_dir(self.incoming)
