# SPDX-License-Identifier: GPL-3.0-or-later
"""Where a selected view stands, so that its refresh is read in a worker thread.

Split out of ``imap.session``: the session's commands, and the server's
``ChangeDispatcher`` (one read for many sessions in IDLE), both use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from groupware.mail.imap.selected import SelectedMailbox
from groupware.mail.store import Changes, MailStore


@dataclass(frozen=True, slots=True)
class RefreshFrom:
    """Where a selected view stands, for a refresh computed in a worker thread."""

    mailbox_id: int
    modseq: int
    largest_uid: int
    take_recent: bool
    announced: Mapping[int, int]  # the view's ``reported``, read by the worker only

    @classmethod
    def of(cls, selected: SelectedMailbox) -> RefreshFrom:
        return cls(
            selected.mailbox_id,
            selected.modseq,
            selected.largest_uid,
            not selected.is_read_only,
            selected.reported,
        )

    @property
    def key(self) -> tuple[int, int, int, bool]:
        """Views with equal keys and nothing ``announced`` get the same changes."""
        return (self.mailbox_id, self.modseq, self.largest_uid, self.take_recent)

    def read(self, store: MailStore, also_announced: Mapping[int, int] | None = None) -> Changes:
        """The changes to fold into the view (blocking); ``also_announced`` the command's."""
        announced = {**self.announced, **also_announced} if also_announced else self.announced
        return store.changed_flags(
            self.mailbox_id,
            self.modseq,
            take_recent_after=self.largest_uid if self.take_recent else None,
            announced=announced,
        )
