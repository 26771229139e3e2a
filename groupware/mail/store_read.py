# SPDX-License-Identifier: GPL-3.0-or-later
"""Reading the mail store's index: messages, index rows for FETCH/SEARCH/SORT, counts.

Everything a client lists is answered from the index, reading only the columns asked
for. Split out of ``mail.store``; each public function here is the body of the
:class:`~groupware.mail.store.MailStore` method of the same name, which documents it.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import Connection, case, func, select

from groupware.mail import mime
from groupware.mail.schema import mail_blobs, mail_messages
from groupware.mail.store_model import (
    INDEX_FIELDS,
    IndexRow,
    Mailbox,
    MessageInfo,
    Prefilter,
    aware,
    mailbox_from_row,
)
from groupware.mail.store_queries import (
    MAILBOXES_BY_IDS,
    MESSAGE_COLUMNS,
    ROW_COLUMNS,
    USAGE,
    index_rows,
    message_from_row,
    prefilter_condition,
    uid_conditions,
    uses_header_text,
)

if TYPE_CHECKING:
    from groupware.mail.store import MailStore

#: Mailboxes whose STATUS counts are remembered (a few per active person).
STATUS_CACHE_ENTRIES_COUNT: Final = 4096


def messages(
    store: MailStore, mailbox_id: int, uids: Iterable[int] | None = None
) -> list[MessageInfo]:
    """The work of :meth:`MailStore.messages` (documented there)."""
    query = (
        select(*MESSAGE_COLUMNS)
        .join(mail_blobs, mail_blobs.c.id == mail_messages.c.blob_id)
        .where(mail_messages.c.mailbox_id == mailbox_id)
        .order_by(mail_messages.c.uid)
    )
    with store.engine.connect() as conn:
        if uids is None:
            rows = conn.execute(query).all()
        else:
            rows = []
            for condition in uid_conditions(uids):
                rows.extend(conn.execute(query.where(condition)))
            rows.sort(key=lambda row: row.uid)
    return [message_from_row(row) for row in rows]


def counts(store: MailStore, mailbox_id: int) -> dict[str, int]:
    """The work of :meth:`MailStore.counts` (documented there)."""
    with store.engine.connect() as conn:
        return _counts(conn, mailbox_id)


class StatusCache:
    """Recent STATUS counts, reused while a mailbox's state says nothing changed.

    Every arrival raises ``uid_next`` and every flag change or expunge raises
    ``highest_modseq`` (RFC 7162), so while ``(uidvalidity, uid_next,
    highest_modseq)`` read from the mailbox row is the same, MESSAGES, UNSEEN,
    DELETED and SIZE are too. RECENT is not: SELECT takes it without a new
    mod-sequence, so it is always counted afresh. The key is read from the
    database on each call, so several processes sharing one database stay exact.
    """

    def __init__(self, max_entries_count: int = STATUS_CACHE_ENTRIES_COUNT) -> None:
        self._max = max_entries_count
        self._lock = threading.Lock()
        self._entries: OrderedDict[int, tuple[tuple[int, int, int], dict[str, int]]] = OrderedDict()

    def get(self, mailbox: Mailbox) -> dict[str, int] | None:
        """The counts remembered for this state of ``mailbox``, if any."""
        with self._lock:
            found = self._entries.get(mailbox.id)
            if found is None or found[0] != _state(mailbox):
                return None
            self._entries.move_to_end(mailbox.id)
            return found[1]

    def put(self, mailbox: Mailbox, values: dict[str, int]) -> None:
        """Remember ``values`` for this state of ``mailbox``."""
        with self._lock:
            self._entries[mailbox.id] = (_state(mailbox), values)
            self._entries.move_to_end(mailbox.id)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)


def _state(mailbox: Mailbox) -> tuple[int, int, int]:
    return (mailbox.uidvalidity, mailbox.uid_next, mailbox.highest_modseq)


def statuses(
    store: MailStore, mailbox_ids: Sequence[int], *, with_recent: bool
) -> dict[int, tuple[Mailbox, dict[str, int]]]:
    """The work of :meth:`MailStore.statuses` (documented there)."""
    found: dict[int, tuple[Mailbox, dict[str, int]]] = {}
    with store.engine.begin() as conn:  # one snapshot for the rows and their counts
        rows = conn.execute(MAILBOXES_BY_IDS, {"b_ids": list(mailbox_ids)})
        for mailbox in sorted(map(mailbox_from_row, rows), key=lambda m: m.id):
            values = None if with_recent else store.status_cache.get(mailbox)
            if values is None:
                values = _counts(conn, mailbox.id)
                store.status_cache.put(mailbox, values)
            found[mailbox.id] = (mailbox, values)
    return found


def _counts(conn: Connection, mailbox_id: int) -> dict[str, int]:
    """MESSAGES, SIZE, UNSEEN, DELETED and RECENT by SQL aggregates."""
    flags = mail_messages.c.flags
    row = conn.execute(
        select(
            func.count().label("messages"),
            func.coalesce(func.sum(mail_blobs.c.size), 0).label("size"),
            func.coalesce(
                func.sum(case((flags.contains("\\Seen", autoescape=True), 0), else_=1)), 0
            ).label("unseen"),
            func.coalesce(
                func.sum(case((flags.contains("\\Deleted", autoescape=True), 1), else_=0)),
                0,
            ).label("deleted"),
            func.coalesce(
                func.sum(case((mail_messages.c.is_recent.is_(True), 1), else_=0)), 0
            ).label("recent"),
        )
        .select_from(mail_messages)
        .join(mail_blobs, mail_blobs.c.id == mail_messages.c.blob_id)
        .where(mail_messages.c.mailbox_id == mailbox_id)
    ).one()
    return {
        "messages": int(row.messages),
        "size": int(row.size),
        "unseen": int(row.unseen),
        "deleted": int(row.deleted),
        "recent": int(row.recent),
    }


def blob_meta(store: MailStore, blob_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The work of :meth:`MailStore.blob_meta` (documented there)."""
    found: dict[int, dict[str, Any]] = {}
    with store.engine.connect() as conn:
        for start in range(0, len(blob_ids), 500):
            chunk = blob_ids[start : start + 500]
            for row in conn.execute(select(mail_blobs).where(mail_blobs.c.id.in_(chunk))):
                found[int(row.id)] = {
                    "envelope": json.loads(row.envelope),
                    "structure": row.structure,
                    "sent_date": aware(row.sent_date) if row.sent_date else None,
                    "subject_sort": row.subject_sort,
                    "from_sort": row.from_sort,
                    "to_sort": row.to_sort,
                    "cc_sort": row.cc_sort,
                    "has_attachment": bool(row.has_attachment),
                    "size": int(row.size),
                    "path": row.path,
                }
    return found


def structure(store: MailStore, blob_id: int) -> mime.Part:
    """The work of :meth:`MailStore.structure` (documented there)."""
    with store.engine.connect() as conn:
        raw = conn.execute(
            select(mail_blobs.c.structure).where(mail_blobs.c.id == blob_id)
        ).scalar_one()
    return mime.part_from_json(json.loads(raw))


def search_text(store: MailStore, field: str | None, query: str) -> set[int]:
    """The work of :meth:`MailStore.search_text` (documented there)."""
    with store.engine.connect() as conn:
        return store.text_index.blob_ids(conn, field, query)


def usage(store: MailStore, person_id: int) -> tuple[int, int]:
    """The work of :meth:`MailStore.usage` (documented there)."""
    with store.engine.connect() as conn:
        row = conn.execute(USAGE, {"b_person": person_id}).first()
    return (int(row.bytes), int(row.messages)) if row else (0, 0)


def rows(
    store: MailStore,
    mailbox_id: int,
    uids: Iterable[int] | None,
    fields: Iterable[str],
    prefilter: Prefilter | None = None,
) -> list[IndexRow]:
    """The work of :meth:`MailStore.rows` (documented there)."""
    names = sorted(set(fields))
    unknown = set(names) - INDEX_FIELDS
    if unknown:
        raise ValueError(f"unknown index fields {sorted(unknown)}")
    columns = [ROW_COLUMNS[name] for name in names]
    where = prefilter_condition(prefilter) if prefilter is not None else None
    query = select(mail_messages.c.uid, mail_messages.c.blob_id, *columns).where(
        mail_messages.c.mailbox_id == mailbox_id
    )
    if where is not None:
        query = query.where(where)
    uses_blob = any(column.table is mail_blobs for column in columns) or (
        prefilter is not None and uses_header_text(prefilter)
    )
    if uses_blob:
        query = query.join(mail_blobs, mail_blobs.c.id == mail_messages.c.blob_id)
    query = query.order_by(mail_messages.c.uid)
    with store.engine.connect() as conn:
        if uids is None:
            found = conn.execute(query).all()
        else:
            conditions = uid_conditions(uids)
            found = []
            for condition in conditions:
                found.extend(conn.execute(query.where(condition)).all())
            if len(conditions) > 1:
                found.sort(key=lambda row: row[0])
    return index_rows(found, names)
