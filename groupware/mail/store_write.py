# SPDX-License-Identifier: GPL-3.0-or-later
"""The mail store's write path: what a new message puts in the index, and how.

- :func:`to_crlf`: line endings as the store keeps them;
- :func:`prepare`: everything the index keeps about a message, computed from its
  bytes once (MIME structure, envelope, sort keys, IMAP renderings, full-text words);
- :func:`insert_messages`: the blob, full-text and message rows of new messages in
  a few statements whatever their number (multi-row INSERT, executemany);
- :func:`charge_quota`: the usage row, charged for several messages at once, each
  still accepted or refused as if they came one by one;
- :func:`allocate`: UIDs and a MODSEQ, reserved in one statement;
- :func:`index_filings`: a batch of delivered messages in one durable transaction
  (:func:`durable_transaction`: its commit is on disk when it ends), and
  :func:`delivered_before`: which delivery keys are stored already.

Used by ``mail.store`` (``MailStore.append`` and ``MailStore.deliver_many``), which
writes the message files (``mail.blobs``) before any of this is committed. Blocking.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, Engine, bindparam, insert, select, update

from groupware.core.directory import Person
from groupware.mail import mime, text
from groupware.mail.imap import fetch as imap_fetch
from groupware.mail.imap import threads as imap_threads
from groupware.mail.schema import mail_blobs, mail_messages, mail_usage, mailboxes
from groupware.mail.text_index import TextIndex

# Bound names start with "b_" so that they never clash with a column in SET.
_CHARGE: Final = (
    update(mail_usage)
    .where(
        mail_usage.c.person_id == bindparam("b_person"),
        mail_usage.c.bytes + bindparam("b_size") <= bindparam("b_limit"),
    )
    .values(
        bytes=mail_usage.c.bytes + bindparam("b_size"),
        messages=mail_usage.c.messages + bindparam("b_count"),
    )
)
# The path is unique: ids are matched to rows by it, whatever order RETURNING gives.
_INSERT_BLOBS: Final = insert(mail_blobs).returning(mail_blobs.c.id, mail_blobs.c.path)
_INSERT_MESSAGE: Final = insert(mail_messages)
# One statement reserves UIDs and a MODSEQ: atomic on both engines, no read-then-write.
_ALLOCATE: Final = (
    update(mailboxes)
    .where(mailboxes.c.id == bindparam("b_id"))
    .values(
        uid_next=mailboxes.c.uid_next + bindparam("b_count"),
        highest_modseq=mailboxes.c.highest_modseq + 1,
    )
    .returning(mailboxes.c.uid_next, mailboxes.c.highest_modseq, mailboxes.c.uidvalidity)
)
_DELIVERED: Final = (
    select(
        mail_messages.c.delivery_key,
        mail_messages.c.mailbox_id,
        mail_messages.c.uid,
        mailboxes.c.uidvalidity,
    )
    .join(mailboxes, mailboxes.c.id == mail_messages.c.mailbox_id)
    .where(mail_messages.c.delivery_key.in_(bindparam("b_keys", expanding=True)))
)
_MAX_KEYS_COUNT: Final = 500  # bound values per statement
_SQLITE_FULL: Final = 2  # PRAGMA synchronous: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Where an appended message landed (RFC 4315 APPENDUID)."""

    mailbox_id: int
    uidvalidity: int
    uid: int


@dataclass(frozen=True, slots=True)
class InboxDelivery:
    """A message for a person's INBOX (``MailStore.deliver_many``).

    ``delivery_key`` (``<spool id>:<person id>``) makes a second delivery a no-op.
    """

    person: Person
    data: bytes
    delivery_key: str


@dataclass(frozen=True, slots=True)
class Prepared:
    """What the index keeps about one message, from its bytes (see :func:`prepare`)."""

    data: bytes
    size: int
    envelope: str
    structure: str
    sent_date: datetime | None
    subject_sort: str
    from_sort: str
    to_sort: str
    cc_sort: str
    message_id: str
    has_attachment: bool
    subject_text: str
    addresses_text: str
    body_text: str
    envelope_imap: bytes
    body_imap: bytes
    bodystructure_imap: bytes
    header_text: str
    thread_refs: str

    def blob_values(self, path: str) -> dict[str, Any]:
        """The ``mail_blobs`` row of this message stored at ``path``."""
        return {
            "path": path,
            "size": self.size,
            "refcount": 1,
            "envelope": self.envelope,
            "structure": self.structure,
            "sent_date": self.sent_date,
            "subject_sort": self.subject_sort,
            "from_sort": self.from_sort,
            "to_sort": self.to_sort,
            "cc_sort": self.cc_sort,
            "message_id": self.message_id,
            "has_attachment": self.has_attachment,
            "envelope_imap": self.envelope_imap,
            "body_imap": self.body_imap,
            "bodystructure_imap": self.bodystructure_imap,
            "header_text": self.header_text,
            "thread_refs": self.thread_refs,
        }


def has_bare_cr_or_lf(data: bytes) -> bool:
    """A CR not before LF, or an LF not after CR (counting is faster than a regex).

    Each CRLF holds one CR and one LF, and CRLFs never overlap: the counts agree
    exactly when every CR and every LF is part of one.
    """
    crlf = data.count(b"\r\n")
    return data.count(b"\r") != crlf or data.count(b"\n") != crlf


def to_crlf(data: bytes) -> bytes:
    """``mime.to_crlf``, without its two regex passes when there is nothing to change."""
    return mime.to_crlf(data) if has_bare_cr_or_lf(data) else data


def prepare(data: bytes) -> Prepared:
    """Everything the index keeps about a message, computed from its bytes once."""
    data = to_crlf(data)
    top, envelope = mime.parse_message(data)
    subject = text.decode_words(envelope["subject"])
    addresses = []
    for key in ("from", "to", "cc", "bcc", "reply-to"):
        addresses.extend(text.display_names(envelope[key]))
    return Prepared(
        data=data,
        size=len(data),
        envelope=json.dumps(envelope, ensure_ascii=False),
        structure=json.dumps(top.to_json(), ensure_ascii=False),
        sent_date=text.sent_date(envelope["date"]),
        subject_sort=text.base_subject(subject)[:255],
        from_sort=text.first_mailbox(envelope["from"])[:255],
        to_sort=text.first_mailbox(envelope["to"])[:255],
        cc_sort=text.first_mailbox(envelope["cc"])[:255],
        message_id=(envelope["message-id"] or "")[:255],
        has_attachment=mime.has_attachment(top),
        subject_text=subject,
        addresses_text=" ".join(addresses),
        body_text=text.body_text(data),
        # As a client without UTF8=ACCEPT gets them (RFC 3501 §7.4.2).
        envelope_imap=imap_fetch.envelope(envelope),
        body_imap=imap_fetch.body_structure(top, extensible=False),
        bodystructure_imap=imap_fetch.body_structure(top, extensible=True),
        header_text=text.header_text(envelope),
        thread_refs=" ".join(
            imap_threads.parent_ids(
                imap_threads.references_field(data[top.header_start : top.header_end]),
                envelope["in-reply-to"],
            )
        ),
    )


@dataclass(frozen=True, slots=True)
class NewRow:
    """One message to index: its file, where it goes, and its first state."""

    prepared: Prepared
    path: str
    mailbox_id: int
    uid: int
    modseq: int
    flags: str  # as stored: sorted, space-separated
    internal_date: datetime  # naive UTC or aware; stored as UTC
    is_recent: bool
    delivery_key: str | None


@dataclass(slots=True, eq=False)
class Filing:
    """One delivered message on its way into an INBOX; compared by identity."""

    index: int  # in the caller's list
    mailbox_id: int
    person_id: int
    limit: int  # the owner's quota in bytes
    data: bytes
    delivery_key: str
    row: NewRow = field(init=False)
    uidvalidity: int = 0  # as the transaction read it


def allocate(conn: Connection, mailbox_id: int, count: int) -> tuple[int, int, int]:
    """Reserve ``count`` UIDs and one MODSEQ: ``(first uid, modseq, uidvalidity)``."""
    row = conn.execute(_ALLOCATE, {"b_id": mailbox_id, "b_count": count}).one()
    return int(row.uid_next) - count, int(row.highest_modseq), int(row.uidvalidity)


def delivered_before(engine: Engine, delivery_keys: Sequence[str]) -> dict[str, AppendResult]:
    """Delivery key -> where its message landed, for the keys delivered before."""
    found = {}
    with engine.connect() as conn:
        for start in range(0, len(delivery_keys), _MAX_KEYS_COUNT):
            chunk = list(delivery_keys[start : start + _MAX_KEYS_COUNT])
            for row in conn.execute(_DELIVERED, {"b_keys": chunk}):
                found[row.delivery_key] = AppendResult(
                    int(row.mailbox_id), int(row.uidvalidity), int(row.uid)
                )
    return found


def index_filings(engine: Engine, text_index: TextIndex, filings: Sequence[Filing]) -> list[Filing]:
    """Index delivered messages in one durable transaction: those the quota took.

    Each filing's ``row`` gets its UID and MODSEQ (one per mailbox). Mailbox rows are
    taken first, in id order, then usage rows in person order: the order of one
    append (mailbox, then usage), so that a batch and appends never wait for each
    other in a circle.
    """
    by_mailbox: dict[int, list[Filing]] = {}
    for filing in filings:
        by_mailbox.setdefault(filing.mailbox_id, []).append(filing)
    stored: list[Filing] = []
    with durable_transaction(engine) as conn:
        for mailbox_id in sorted(by_mailbox):
            group = by_mailbox[mailbox_id]
            first_uid, modseq, uidvalidity = allocate(conn, mailbox_id, len(group))
            for offset, filing in enumerate(group):
                filing.row = replace(filing.row, uid=first_uid + offset, modseq=modseq)
                filing.uidvalidity = uidvalidity
        # One person has one INBOX: the groups by mailbox are the groups by person.
        for mailbox_id in sorted(by_mailbox, key=lambda m: by_mailbox[m][0].person_id):
            group = by_mailbox[mailbox_id]
            sizes = [filing.row.prepared.size for filing in group]
            fits = charge_quota(conn, group[0].person_id, sizes, group[0].limit)
            stored.extend(filing for filing, fit in zip(group, fits, strict=True) if fit)
        insert_messages(conn, text_index, [filing.row for filing in stored])
    return stored


def insert_messages(conn: Connection, text_index: TextIndex, rows: Sequence[NewRow]) -> None:
    """Index new messages: their blobs, full-text entries and mailbox rows.

    Three statements for any number of messages (one multi-row INSERT with RETURNING,
    two executemany); the caller's transaction makes them visible together.
    """
    if not rows:
        return
    blob_ids = {
        path: int(blob_id)
        for blob_id, path in conn.execute(
            _INSERT_BLOBS, [row.prepared.blob_values(row.path) for row in rows]
        )
    }
    text_index.add_many(
        conn,
        [
            (
                blob_ids[row.path],
                row.prepared.subject_text,
                row.prepared.addresses_text,
                row.prepared.body_text,
            )
            for row in rows
        ],
    )
    conn.execute(
        _INSERT_MESSAGE,
        [
            {
                "mailbox_id": row.mailbox_id,
                "uid": row.uid,
                "modseq": row.modseq,
                "blob_id": blob_ids[row.path],
                "flags": row.flags,
                "internal_date": row.internal_date,
                "is_recent": row.is_recent,
                "delivery_key": row.delivery_key,
            }
            for row in rows
        ],
    )


def charge_quota(conn: Connection, person_id: int, sizes: Sequence[int], limit: int) -> list[bool]:
    """Charge a person's usage row for messages in order: which of them fit.

    All at once when the total fits (one UPDATE); otherwise one by one, as separate
    appends would be charged, so a later smaller message may fit after a refused one.
    The UPDATE's condition is the check: no read-then-write between two writers.
    """
    if not sizes:
        return []
    values = {"b_person": person_id, "b_limit": limit}
    total = {"b_size": sum(sizes), "b_count": len(sizes)}
    if conn.execute(_CHARGE, values | total).rowcount == 1:
        return [True] * len(sizes)
    if len(sizes) == 1:
        return [False]
    return [
        conn.execute(_CHARGE, values | {"b_size": size, "b_count": 1}).rowcount == 1
        for size in sizes
    ]


@contextmanager
def durable_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction whose commit has reached the disk when the ``with`` block ends.

    PostgreSQL commits durably by itself. SQLite runs in WAL mode with
    ``synchronous=NORMAL`` (``core.db``), whose commits survive a crash of the
    process but not of the machine; for this transaction the connection syncs the
    WAL at commit (``synchronous=FULL``: one fsync), then goes back to its setting.
    Delivery needs it: the spool files are removed once the commit returns.
    """
    with engine.connect() as conn:
        if engine.dialect.name != "sqlite":
            with conn.begin():
                yield conn
            return
        # PRAGMAs outside the transaction: pysqlite begins one only before DML.
        previous = int(conn.exec_driver_sql("PRAGMA synchronous").scalar_one())
        conn.commit()
        if previous >= _SQLITE_FULL:
            with conn.begin():
                yield conn
            return
        conn.exec_driver_sql(f"PRAGMA synchronous={_SQLITE_FULL}")
        conn.commit()
        try:
            with conn.begin():
                yield conn
        finally:
            conn.rollback()  # ends SQLAlchemy's autobegun state; nothing is pending
            conn.exec_driver_sql(f"PRAGMA synchronous={previous}")
            conn.commit()
