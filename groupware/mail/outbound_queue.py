# SPDX-License-Identifier: GPL-3.0-or-later
"""The files of the outbound queue (``mail.outbound`` schedules and sends them).

On disk (``spool/outbound``), one entry per message, with per-recipient state:

- ``<id>.eml``: the message exactly as it goes on the wire (our ``Received:``, the
  DKIM signature), written once;
- ``<id>.json``: the state, rewritten after every attempt::

    {"version": 1, "queue_id": "...", "mail_from": "a@ours" or "" (a bounce),
     "created_at": 1700000000.0, "next_attempt_at": ..., "attempts": 2,
     "last_attempt_at": ..., "is_delay_reported": false, "smtp_utf8": false,
     "authenticated_as": "login", "origin": "submission" | "bounce",
     "recipients": [{"address": "b@remote", "state": "pending" | "sent" | "failed",
                     "status": "4.3.0", "reply": "451 ...", "mx": "...",
                     "is_reported": false}, ...]}

Both are written with ``spool.write_durably`` (temporary file, fsync, rename,
folder fsync). An entry exists once its ``.json`` does; ``.eml`` is written
first, so a ``.eml`` alone is the leftover of a crash mid-enqueue and is removed at
start: what it came from (an incoming spool file, or an entry whose report is not
yet marked as made) is still there and hands it over again. Removal goes the
other way: ``.json`` first, then ``.eml``. The id of a message's entry is its
incoming queue id (a report's: its source id plus ``-dsn``, ``-failed-<hash>`` or
``-delayed``), so handing the same message over twice writes nothing.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from groupware.mail.spool import TEMPORARY_SUFFIX, remove_durably, write_durably

log = logging.getLogger(__name__)

STATE_VERSION: Final = 1
MESSAGE_SUFFIX: Final = ".eml"
STATE_SUFFIX: Final = ".json"
PENDING: Final = "pending"
SENT: Final = "sent"
FAILED: Final = "failed"


@dataclass(slots=True)
class RecipientState:
    """One recipient of an outbound entry."""

    address: str
    state: str = PENDING  # pending | sent | failed
    status: str = ""
    reply: str = ""
    mx: str = ""
    is_reported: bool = False


@dataclass(slots=True)
class OutboundEntry:
    """The state of one queued message (its ``.json`` file)."""

    queue_id: str
    mail_from: str
    recipients: list[RecipientState]
    created_at: float
    next_attempt_at: float
    attempts: int = 0
    last_attempt_at: float = 0.0
    is_delay_reported: bool = False
    smtp_utf8: bool = False
    authenticated_as: str = ""
    origin: str = "submission"
    version: int = STATE_VERSION

    def pending(self) -> list[RecipientState]:
        """Recipients still to be tried."""
        return [r for r in self.recipients if r.state == PENDING]

    def unreported_failures(self) -> list[RecipientState]:
        """Failed recipients whose failure the sender has not been told of."""
        return [r for r in self.recipients if r.state == FAILED and not r.is_reported]

    def to_json(self) -> bytes:
        """The state file's content."""
        return json.dumps(dataclasses.asdict(self), ensure_ascii=True, indent=1).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> OutboundEntry:
        """Parse a state file.

        Raises:
            ValueError: not a state file of a version we read.
        """
        fields: dict[str, Any] = json.loads(raw)
        if fields.get("version") != STATE_VERSION:
            raise ValueError(f"unknown outbound state version {fields.get('version')!r}")
        fields["recipients"] = [RecipientState(**r) for r in fields["recipients"]]
        return cls(**fields)


class OutboundQueue:
    """The files of the outbound queue. Every method blocks (file I/O, fsync)."""

    def __init__(self, root: Path) -> None:
        self.folder = root / "outbound"
        self.folder.mkdir(parents=True, exist_ok=True)

    def has(self, queue_id: str) -> bool:
        """Whether an entry exists."""
        return (self.folder / f"{queue_id}{STATE_SUFFIX}").exists()

    def add(self, entry: OutboundEntry, data: bytes) -> bool:
        """Write a new entry durably; False (nothing written) if it exists already."""
        if self.has(entry.queue_id):
            return False
        write_durably(self.folder, f"{entry.queue_id}{MESSAGE_SUFFIX}", (data,), exclusive=False)
        self.save(entry)
        return True

    def save(self, entry: OutboundEntry) -> None:
        """Replace an entry's state durably."""
        write_durably(
            self.folder, f"{entry.queue_id}{STATE_SUFFIX}", (entry.to_json(),), exclusive=False
        )

    def load(self, queue_id: str) -> OutboundEntry:
        """An entry's state.

        Raises:
            FileNotFoundError: no such entry (done already).
        """
        return OutboundEntry.from_json((self.folder / f"{queue_id}{STATE_SUFFIX}").read_bytes())

    def data(self, queue_id: str) -> bytes:
        """An entry's message."""
        return (self.folder / f"{queue_id}{MESSAGE_SUFFIX}").read_bytes()

    def remove(self, queue_id: str) -> None:
        """Remove a finished entry: the state first (the entry is gone), then the message."""
        remove_durably(self.folder, f"{queue_id}{STATE_SUFFIX}")
        remove_durably(self.folder, f"{queue_id}{MESSAGE_SUFFIX}")

    def recover(self) -> list[OutboundEntry]:
        """Every entry, after removing the leftovers of interrupted writes."""
        entries: list[OutboundEntry] = []
        names = {path.name for path in self.folder.iterdir()}
        for name in sorted(names):
            path = self.folder / name
            if name.endswith(TEMPORARY_SUFFIX):
                path.unlink(missing_ok=True)
            elif name.endswith(MESSAGE_SUFFIX):
                if name.removesuffix(MESSAGE_SUFFIX) + STATE_SUFFIX not in names:
                    log.info("outbound.orphan_removed file=%s", name)
                    path.unlink(missing_ok=True)
            elif name.endswith(STATE_SUFFIX):
                try:
                    entries.append(OutboundEntry.from_json(path.read_bytes()))
                except (ValueError, TypeError, KeyError):
                    # Kept for a human: never delete what may be someone's mail.
                    log.error("outbound.state_unreadable file=%s", name)
        return entries
