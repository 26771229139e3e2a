# SPDX-License-Identifier: GPL-3.0-or-later
"""What a session learns of a mailbox: SELECT's view, changes since a MODSEQ, \\Recent.

The reads behind SELECT/EXAMINE, a session's refresh (NOOP, IDLE, after a command) and
QRESYNC (RFC 7162), each bounded by the highest MODSEQ read first. Split out of
``mail.store``; each public function here is the body of the
:class:`~groupware.mail.store.MailStore` method of the same name, which documents it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from groupware.mail.schema import mail_expunged
from groupware.mail.store_model import (
    MAX_UID,
    SYSTEM_FLAGS,
    Changes,
    MailboxView,
    MessageInfo,
    mailbox_from_row,
)
from groupware.mail.store_queries import (
    CHANGED_EXPUNGED,
    CHANGED_FLAGS,
    CHANGED_MESSAGES,
    HIGHEST_MODSEQ,
    MAILBOX_BY_ID,
    TAKE_RECENT,
    VIEW,
    index_rows,
    message_from_row,
)

if TYPE_CHECKING:
    from groupware.mail.store import MailStore


def changes(
    store: MailStore, mailbox_id: int, since_modseq: int
) -> tuple[list[MessageInfo], list[int], int]:
    """The work of :meth:`MailStore.changes` (documented there)."""
    with store.engine.connect() as conn:
        highest = int(conn.execute(HIGHEST_MODSEQ, {"b_id": mailbox_id}).scalar() or 0)
        if highest <= since_modseq:
            return [], [], highest
        bounds = {"b_mailbox": mailbox_id, "b_since": since_modseq, "b_highest": highest}
        rows = conn.execute(CHANGED_MESSAGES, bounds).all()
        expunged = [int(row.uid) for row in conn.execute(CHANGED_EXPUNGED, bounds)]
    return [message_from_row(row) for row in rows], expunged, highest


def changed_flags(
    store: MailStore,
    mailbox_id: int,
    since_modseq: int,
    *,
    take_recent_after: int | None = None,
    announced: Mapping[int, int] | None = None,
) -> Changes:
    """The work of :meth:`MailStore.changed_flags` (documented there)."""
    recent: list[int] = []
    announced = announced or {}
    kept: list[Any] = []
    with store.engine.begin() as conn:
        highest = int(conn.execute(HIGHEST_MODSEQ, {"b_id": mailbox_id}).scalar() or 0)
        if highest <= since_modseq:
            return Changes([], [], highest, [])  # nothing happened: the usual case
        bounds = {"b_mailbox": mailbox_id, "b_since": since_modseq, "b_highest": highest}
        has_new_recent = False
        for chunk in conn.execute(CHANGED_FLAGS, bounds).partitions(100):
            for uid, blob_id, flags, modseq, is_recent in chunk:
                if take_recent_after is not None and uid > take_recent_after and is_recent:
                    has_new_recent = True
                if announced.get(uid) != modseq:
                    kept.append((uid, blob_id, flags, modseq))
        expunged = [int(row.uid) for row in conn.execute(CHANGED_EXPUNGED, bounds)]
        if has_new_recent:
            recent = sorted(
                int(row.uid)
                for row in conn.execute(
                    TAKE_RECENT, {"b_mailbox": mailbox_id, "b_largest": MAX_UID}
                )
            )
    return Changes(index_rows(kept, ["flags", "modseq"]), expunged, highest, recent)


def clear_recent(store: MailStore, mailbox_id: int) -> list[int]:
    """The work of :meth:`MailStore.clear_recent` (documented there)."""
    with store.engine.begin() as conn:
        return sorted(
            int(row.uid)
            for row in conn.execute(TAKE_RECENT, {"b_mailbox": mailbox_id, "b_largest": MAX_UID})
        )


def view(store: MailStore, mailbox_id: int, *, take_recent: bool) -> MailboxView | None:
    """The work of :meth:`MailStore.view` (documented there)."""
    with store.engine.begin() as conn:
        known = conn.execute(HIGHEST_MODSEQ, {"b_id": mailbox_id}).scalar()
        if known is None:
            return None
        uids: list[int] = []
        flag_texts: set[str] = set()
        recent: set[int] = set()
        first_unseen: int | None = None
        # In small chunks: rows held in thousands outlive young collections and are
        # promoted, which brings on full collections (~90 ms over this process's
        # heap) every few SELECTs; a hundred at a time, they die young.
        for chunk in conn.execute(VIEW, {"b_mailbox": mailbox_id}).partitions(100):
            offset = len(uids)
            uids.extend(row[0] for row in chunk)
            flag_texts.update(row[1] for row in chunk)
            recent.update(row[0] for row in chunk if row[2])
            if first_unseen is None:
                first_unseen = next(
                    (
                        offset + seq
                        for seq, row in enumerate(chunk, 1)
                        if "\\Seen" not in row[1].split()
                    ),
                    None,
                )
        if take_recent and recent:
            # Only those read above: a message arriving now is the next refresh's.
            recent = {
                int(row.uid)
                for row in conn.execute(
                    TAKE_RECENT, {"b_mailbox": mailbox_id, "b_largest": uids[-1]}
                )
            }
        row = conn.execute(MAILBOX_BY_ID, {"b_id": mailbox_id}).first()
    if row is None:
        return None
    keywords = {flag for flags in flag_texts for flag in flags.split() if flag not in SYSTEM_FLAGS}
    return MailboxView(
        mailbox=mailbox_from_row(row),
        known_modseq=int(known),
        uids=uids,
        keywords=frozenset(keywords),
        first_unseen=first_unseen,
        recent=frozenset(recent),
    )


def expunged_since(store: MailStore, mailbox_id: int, modseq: int) -> list[int]:
    """The work of :meth:`MailStore.expunged_since` (documented there)."""
    with store.engine.connect() as conn:
        return [
            int(row.uid)
            for row in conn.execute(
                select(mail_expunged.c.uid)
                .where(mail_expunged.c.mailbox_id == mailbox_id, mail_expunged.c.modseq > modseq)
                .order_by(mail_expunged.c.uid)
            )
        ]
