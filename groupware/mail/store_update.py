# SPDX-License-Identifier: GPL-3.0-or-later
"""Changing stored messages: flags (STORE, one MODSEQ per command), COPY, MOVE, EXPUNGE.

Also the removal of message rows (shared with DELETE of a mailbox), the files it
frees, and the ``MailboxChanged`` events. Split out of ``mail.store``; each public
function here is the body of the :class:`~groupware.mail.store.MailStore` method of
the same name, which documents it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, Connection, delete, insert, select, update

from groupware.core.events import MailboxChanged
from groupware.errors import NotFoundError
from groupware.mail.schema import mail_blobs, mail_expunged, mail_messages, mail_usage, persons
from groupware.mail.store_model import QuotaExceededError, flags_set, flags_text, normalize_flags
from groupware.mail.store_queries import (
    ADD_REFERENCE,
    BUMP_MODSEQ,
    INSERT_MESSAGE,
    MOVE_MESSAGE,
    uid_conditions,
)
from groupware.mail.store_write import allocate

if TYPE_CHECKING:
    from groupware.mail.store import MailStore


def store_flags(
    store: MailStore,
    mailbox_id: int,
    uids: Iterable[int],
    mode: str,
    flags: Iterable[str],
    unchanged_since: int | None = None,
) -> tuple[list[tuple[int, frozenset[str], int]], list[int]]:
    """The work of :meth:`MailStore.store_flags` (documented there)."""
    wanted = normalize_flags(flags)
    conditions = uid_conditions(uids)
    if not conditions:
        return [], []
    with store.engine.connect() as conn:
        outcomes, failed = flag_outcomes(
            conn, mailbox_id, conditions, mode, wanted, unchanged_since
        )
    if not outcomes:
        return [], failed
    changed: list[tuple[int, frozenset[str], int]] = []
    in_mailbox = mail_messages.c.mailbox_id == mailbox_id
    unchanged = [] if unchanged_since is None else [mail_messages.c.modseq <= unchanged_since]
    with store.engine.begin() as conn:
        # The new MODSEQ first: it locks the mailbox (SQLite: the database), so the
        # flags read again below cannot change before they are written.
        modseq = bump_modseq(conn, mailbox_id)
        outcomes, failed = flag_outcomes(
            conn, mailbox_id, conditions, mode, wanted, unchanged_since
        )
        # No chains: what a set becomes does not change again in the same mode.
        for old_text, (new, new_text) in outcomes.items():
            for condition in conditions:
                changed.extend(
                    (int(uid), new, modseq)
                    for (uid,) in conn.execute(
                        update(mail_messages)
                        .where(
                            in_mailbox,
                            condition,
                            mail_messages.c.flags == old_text,
                            *unchanged,
                        )
                        .values(flags=new_text, modseq=modseq)
                        .returning(mail_messages.c.uid)
                    )
                )
        if not changed:
            # Changed meanwhile by another session into what was asked: no new MODSEQ.
            conn.rollback()
            return [], failed
    notify(store, mailbox_id)
    changed.sort(key=lambda item: item[0])
    return changed, failed


def flag_outcomes(
    conn: Connection,
    mailbox_id: int,
    conditions: list[ColumnElement[bool]],
    mode: str,
    wanted: frozenset[str],
    unchanged_since: int | None,
) -> tuple[dict[str, tuple[frozenset[str], str]], list[int]]:
    """``({old flag text: (new flags, new text)} of changing sets, [failed uids])``."""
    in_mailbox = mail_messages.c.mailbox_id == mailbox_id
    unchanged = [] if unchanged_since is None else [mail_messages.c.modseq <= unchanged_since]
    texts: set[str] = set()
    failed: list[int] = []
    for condition in conditions:
        distinct = select(mail_messages.c.flags).distinct()
        texts.update(
            text_ for (text_,) in conn.execute(distinct.where(in_mailbox, condition, *unchanged))
        )
        if unchanged_since is not None:
            stale = select(mail_messages.c.uid).where(
                in_mailbox, condition, mail_messages.c.modseq > unchanged_since
            )
            failed.extend(int(uid) for (uid,) in conn.execute(stale))
    outcomes = {
        text_: outcome
        for text_ in texts
        if (outcome := _flag_outcome(text_, mode, wanted)) is not None
    }
    return outcomes, sorted(failed)


def copy(
    store: MailStore, mailbox_id: int, uids: Iterable[int], target_id: int
) -> tuple[int, list[tuple[int, int]]]:
    """The work of :meth:`MailStore.copy` (documented there)."""
    sources = store.messages(mailbox_id, uids)
    target = store.mailbox_by_id(target_id)
    if target is None:
        raise NotFoundError("mailbox", str(target_id))
    if not sources:
        return target.uidvalidity, []
    total = sum(message.size for message in sources)
    with store.engine.begin() as conn:
        quota = conn.execute(
            select(mail_usage.c.bytes).where(mail_usage.c.person_id == target.person_id)
        ).scalar()
        limit = quota_of(conn, target.person_id)
        if (quota or 0) + total > limit:
            raise QuotaExceededError(str(target.person_id), int(quota or 0), limit)
        first_uid, modseq, uidvalidity = allocate(conn, target_id, len(sources))
        # executemany: one round of the driver's loop, not one statement per message.
        conn.execute(
            INSERT_MESSAGE,
            [
                {
                    "mailbox_id": target_id,
                    "uid": first_uid + offset,
                    "modseq": modseq,
                    "blob_id": message.blob_id,
                    "flags": flags_text(message.flags),
                    "internal_date": message.internal_date,
                    "is_recent": True,
                    "delivery_key": None,
                }
                for offset, message in enumerate(sources)
            ],
        )
        conn.execute(ADD_REFERENCE, [{"b_blob": message.blob_id} for message in sources])
        pairs = [(message.uid, first_uid + offset) for offset, message in enumerate(sources)]
        conn.execute(
            update(mail_usage)
            .where(mail_usage.c.person_id == target.person_id)
            .values(bytes=mail_usage.c.bytes + total, messages=mail_usage.c.messages + len(sources))
        )
    notify(store, target_id)
    return uidvalidity, pairs


def move(
    store: MailStore, mailbox_id: int, uids: Iterable[int], target_id: int
) -> tuple[int, list[tuple[int, int]]]:
    """The work of :meth:`MailStore.move` (documented there)."""
    source = store.mailbox_by_id(mailbox_id)
    target = store.mailbox_by_id(target_id)
    if source is None or target is None:
        raise NotFoundError("mailbox", str(target_id if source else mailbox_id))
    sources = store.messages(mailbox_id, uids)
    if not sources:
        return target.uidvalidity, []
    total = sum(message.size for message in sources)
    with store.engine.begin() as conn:
        if source.person_id != target.person_id:
            limit = quota_of(conn, target.person_id)
            used = conn.execute(
                select(mail_usage.c.bytes).where(mail_usage.c.person_id == target.person_id)
            ).scalar()
            if (used or 0) + total > limit:
                raise QuotaExceededError(str(target.person_id), int(used or 0), limit)
        first_uid, modseq, uidvalidity = allocate(conn, target_id, len(sources))
        source_modseq = bump_modseq(conn, mailbox_id)
        pairs = [(message.uid, first_uid + offset) for offset, message in enumerate(sources)]
        conn.execute(
            MOVE_MESSAGE,
            [
                {
                    "b_mailbox": mailbox_id,
                    "b_uid": old_uid,
                    "b_target": target_id,
                    "b_new_uid": new_uid,
                    "b_modseq": modseq,
                }
                for old_uid, new_uid in pairs
            ],
        )
        conn.execute(
            insert(mail_expunged),
            [
                {"mailbox_id": mailbox_id, "uid": old_uid, "modseq": source_modseq}
                for old_uid, _new_uid in pairs
            ],
        )
        if source.person_id != target.person_id:
            for person_id, sign in ((source.person_id, -1), (target.person_id, 1)):
                conn.execute(
                    update(mail_usage)
                    .where(mail_usage.c.person_id == person_id)
                    .values(
                        bytes=mail_usage.c.bytes + sign * total,
                        messages=mail_usage.c.messages + sign * len(sources),
                    )
                )
    notify(store, mailbox_id)
    notify(store, target_id)
    return uidvalidity, pairs


def expunge(store: MailStore, mailbox_id: int, uids: Iterable[int] | None = None) -> list[int]:
    """The work of :meth:`MailStore.expunge` (documented there)."""
    mailbox = store.mailbox_by_id(mailbox_id)
    if mailbox is None:
        raise NotFoundError("mailbox", str(mailbox_id))
    limit = None if uids is None else set(uids)
    # Only (uid, flags), and only of rows whose text mentions \\Deleted at all.
    with store.engine.connect() as conn:
        candidates = conn.execute(
            select(mail_messages.c.uid, mail_messages.c.flags)
            .where(
                mail_messages.c.mailbox_id == mailbox_id,
                mail_messages.c.flags.contains("\\Deleted", autoescape=True),
            )
            .order_by(mail_messages.c.uid)
        ).all()
    doomed = [
        int(uid)
        for uid, flags in candidates
        if "\\Deleted" in flags_set(flags) and (limit is None or uid in limit)
    ]
    if not doomed:
        return []
    with store.engine.begin() as conn:
        orphans = remove_messages(store, conn, mailbox_id, mailbox.person_id, doomed, track=True)
    unlink(store, orphans)
    notify(store, mailbox_id)
    return doomed


def remove_messages(
    store: MailStore,
    conn: Connection,
    mailbox_id: int,
    person_id: int,
    uids: list[int],
    *,
    track: bool,
) -> list[str]:
    """Delete message rows; returns the files no message references any more."""
    if not uids:
        return []
    modseq = bump_modseq(conn, mailbox_id) if track else 0
    orphans: list[str] = []
    freed_bytes = 0
    for start in range(0, len(uids), 500):
        chunk = uids[start : start + 500]
        rows = conn.execute(
            select(
                mail_messages.c.uid,
                mail_blobs.c.id,
                mail_blobs.c.size,
                mail_blobs.c.refcount,
                mail_blobs.c.path,
            )
            .join(mail_blobs, mail_blobs.c.id == mail_messages.c.blob_id)
            .where(mail_messages.c.mailbox_id == mailbox_id, mail_messages.c.uid.in_(chunk))
        ).all()
        conn.execute(
            delete(mail_messages).where(
                mail_messages.c.mailbox_id == mailbox_id, mail_messages.c.uid.in_(chunk)
            )
        )
        for row in rows:
            freed_bytes += int(row.size)
            if track:
                conn.execute(
                    insert(mail_expunged).values(mailbox_id=mailbox_id, uid=row.uid, modseq=modseq)
                )
            remaining = conn.execute(
                update(mail_blobs)
                .where(mail_blobs.c.id == row.id)
                .values(refcount=mail_blobs.c.refcount - 1)
                .returning(mail_blobs.c.refcount)
            ).scalar_one()
            if remaining <= 0:
                store.text_index.remove(conn, int(row.id))
                conn.execute(delete(mail_blobs).where(mail_blobs.c.id == row.id))
                orphans.append(row.path)
        conn.execute(
            update(mail_usage)
            .where(mail_usage.c.person_id == person_id)
            .values(
                bytes=mail_usage.c.bytes - freed_bytes,
                messages=mail_usage.c.messages - len(rows),
            )
        )
        freed_bytes = 0
    return orphans


def bump_modseq(conn: Connection, mailbox_id: int) -> int:
    return int(conn.execute(BUMP_MODSEQ, {"b_id": mailbox_id}).scalar_one())


def quota_of(conn: Connection, person_id: int) -> int:
    return int(
        conn.execute(select(persons.c.quota_bytes).where(persons.c.id == person_id)).scalar_one()
    )


def unlink(store: MailStore, paths: list[str]) -> None:
    # After the commit: a crash before this leaves orphan files, never dangling rows.
    for path in paths:
        store.files.remove(path)


def notify(store: MailStore, mailbox_id: int) -> None:
    mailbox = store.mailbox_by_id(mailbox_id)
    if mailbox is not None:
        store.events.publish(MailboxChanged(mailbox.person_id, mailbox_id, mailbox.highest_modseq))


def _flag_outcome(
    current_text: str, mode: str, wanted: frozenset[str]
) -> tuple[frozenset[str], str] | None:
    """``(new flags, their text)`` after a STORE in ``mode``, or None if nothing changes."""
    current = flags_set(current_text)
    if mode == "add":
        new = current | wanted
    elif mode == "remove":
        new = current - wanted
    else:
        new = wanted
    return None if new == current else (new, flags_text(new))
