# SPDX-License-Identifier: GPL-3.0-or-later
"""The state of a selected mailbox, as one session has told its client.

RFC 3501 §5.2 and §7.4.1: a session keeps the message sequence numbers it announced,
and learns of other sessions' changes at command boundaries (or in IDLE). Changes
are read from the index by mod-sequence, so a refresh costs time in proportion to
what changed. EXPUNGE responses are held back during FETCH, STORE and SEARCH
(RFC 3501 §7.4.1), where sequence numbers must not shift.

A selected mailbox lives as long as its session, idle ones too, so it is kept small
(DESIGN.md §10, memory per idle connection): UIDs in a 4-byte ``array('I')`` (UIDs
are 32-bit, RFC 3501 §2.3.1.1), and the sets and maps that are usually empty are
immutable and shared until something is put in them.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from groupware.mail.store import Changes, IndexRow, Mailbox

_NOTHING_REPORTED: Final[Mapping[int, int]] = MappingProxyType({})
_NO_UIDS: Final[frozenset[int]] = frozenset()  # frozenset() is not a singleton


@dataclass(slots=True)
class Update:
    """What to tell the client after a refresh."""

    expunged_seqs: list[int] = field(default_factory=list)  # descending, for EXPUNGE
    expunged_uids: list[int] = field(default_factory=list)  # for VANISHED
    exists: int | None = None
    recent: int | None = None
    flag_changes: list[tuple[int, IndexRow]] = field(default_factory=list)  # (seq, info)


@dataclass(slots=True)
class SelectedMailbox:
    """One session's view of one mailbox."""

    mailbox_id: int
    uidvalidity: int
    is_read_only: bool
    uids: array[int] = field(default_factory=lambda: array("I"))
    modseq: int = 0  # highest mod-sequence this session has taken into account
    recent: frozenset[int] = _NO_UIDS
    saved: list[int] | None = None  # SEARCHRES ($), as UIDs
    pending_expunges: frozenset[int] = _NO_UIDS
    # Flag changes this session made and already told its client (uid -> modseq):
    # the next refresh skips them instead of echoing them as unsolicited FETCHes.
    reported: Mapping[int, int] = field(default_factory=lambda: _NOTHING_REPORTED)

    @classmethod
    def of(cls, mailbox: Mailbox, *, is_read_only: bool) -> SelectedMailbox:
        """An empty view of ``mailbox`` (only its id and UIDVALIDITY are kept)."""
        return cls(mailbox.id, mailbox.uidvalidity, is_read_only)

    def add_recent(self, uids: Iterable[int]) -> None:
        """This session holds \\Recent for ``uids`` too."""
        self.recent = self.recent.union(uids) or _NO_UIDS

    def note_reported(self, changed: Iterable[tuple[int, object, int]]) -> None:
        """Remember ``(uid, flags, modseq)`` changes the client was told of already."""
        reported = {uid: modseq for uid, _flags, modseq in changed}
        if reported:
            self.reported = {**self.reported, **reported}

    @property
    def count(self) -> int:
        """Messages as the client knows them (EXISTS)."""
        return len(self.uids)

    @property
    def largest_uid(self) -> int:
        """The highest UID known, 0 when empty."""
        return self.uids[-1] if self.uids else 0

    def seq_of(self, uid: int) -> int | None:
        """The sequence number of ``uid``, or None."""
        index = bisect.bisect_left(self.uids, uid)
        if index < len(self.uids) and self.uids[index] == uid:
            return index + 1
        return None

    def uid_at(self, seq: int) -> int:
        """The UID of sequence number ``seq`` (1-based)."""
        return self.uids[seq - 1]

    def apply(self, changes: Changes, *, allow_expunge: bool) -> Update:
        """Fold a change set into the view and say what to announce."""
        messages, expunged = changes.messages, changes.expunged
        highest_modseq, new_recent = changes.highest_modseq, changes.recent
        update = Update()
        if expunged:
            self.pending_expunges = self.pending_expunges.union(
                uid for uid in expunged if self.seq_of(uid) is not None
            )
        if allow_expunge and self.pending_expunges:
            gone = sorted(self.pending_expunges, reverse=True)
            for uid in gone:
                seq = self.seq_of(uid)
                if seq is not None:
                    update.expunged_seqs.append(seq)
                    del self.uids[seq - 1]
            self.recent = self.recent.difference(gone) or _NO_UIDS
            update.expunged_uids = sorted(gone)
            self.pending_expunges = _NO_UIDS
        added = [m for m in messages if m.uid > self.largest_uid]
        for message in messages:
            if message.uid <= self.largest_uid:
                if self.reported.get(message.uid) == message.modseq:
                    continue
                seq = self.seq_of(message.uid)
                if seq is not None and message.uid not in self.pending_expunges:
                    update.flag_changes.append((seq, message))
        # Every reported change is at or below highest_modseq: covered now.
        self.reported = _NOTHING_REPORTED
        if added:
            self.uids.extend(m.uid for m in added)
            if new_recent:
                self.add_recent(new_recent)
            update.exists = len(self.uids)
            update.recent = len(self.recent)
        # Held-back expunges stay in pending_expunges, so the view may move on.
        self.modseq = max(self.modseq, highest_modseq)
        return update
