# SPDX-License-Identifier: GPL-3.0-or-later
"""The mail store: one file per message plus an SQL index, shared by delivery and IMAP.

A message file is written to a temporary name, fsynced, renamed into place and its
folder fsynced before the index row that names it is committed; a crash leaves at
worst an unreferenced file (swept by :meth:`MailStore.sweep_orphans`), never an index
row without its file. Files are immutable; copies share one file (``refcount``).

Everything a client lists (flags, sizes, envelopes, structures) is answered from the
index; files are read only for body fetches. All methods block (database and files):
asyncio callers use ``asyncio.to_thread``. Quota is counted exactly in ``mail_usage``
and enforced in the same transaction as the write.

The code is split by responsibility (STYLE.md: about 500 lines a module): this module
holds :class:`MailStore`, whose methods are the store's API and documentation, and
re-exports the values callers import from here; the work is done in ``store_mailboxes``,
``store_append``, ``store_read``, ``store_sync`` and ``store_update``, over the SQL of
``store_queries`` and the values of ``store_model``.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, inspect, select
from sqlalchemy import text as sql_text
from sqlalchemy.exc import DBAPIError

from groupware.core.directory import Person
from groupware.core.events import EventBus
from groupware.mail import mime, store_append, store_mailboxes, store_read, store_sync, store_update
from groupware.mail.blobs import BlobFiles
from groupware.mail.schema import LATE_BLOB_COLUMNS, mail_blobs, metadata
from groupware.mail.store_model import (
    DELIMITER,
    INBOX,
    INDEX_FIELDS,
    MAX_UID,
    SPECIAL_FOLDERS,
    SPECIAL_USES,
    SYSTEM_FLAGS,
    AllOf,
    AnyOf,
    BlobIn,
    Changes,
    HeaderContains,
    IndexRow,
    Mailbox,
    MailboxNameError,
    MailboxView,
    MessageInfo,
    Prefilter,
    QuotaExceededError,
    check_mailbox_name,
    normalize_flags,
)
from groupware.mail.store_write import AppendResult, InboxDelivery
from groupware.mail.text_index import TextIndex, text_index_for

log = logging.getLogger(__name__)

__all__ = [
    "DELIMITER",
    "INBOX",
    "INDEX_FIELDS",
    "MAX_UID",
    "SPECIAL_FOLDERS",
    "SPECIAL_USES",
    "SYSTEM_FLAGS",
    "AllOf",
    "AnyOf",
    "AppendResult",
    "BlobIn",
    "Changes",
    "HeaderContains",
    "InboxDelivery",
    "IndexRow",
    "MailStore",
    "Mailbox",
    "MailboxNameError",
    "MailboxView",
    "MessageInfo",
    "Prefilter",
    "QuotaExceededError",
    "check_mailbox_name",
    "normalize_flags",
]


def _add_late_columns(engine: Engine) -> None:
    """Add the ``mail_blobs`` columns an older database lacks (all nullable).

    Idempotent; two stores opening one database at once may both try, so a failed
    ALTER is forgiven when the column is there afterwards.
    """
    present = {column["name"] for column in inspect(engine).get_columns("mail_blobs")}
    for name in LATE_BLOB_COLUMNS:
        if name in present:
            continue
        column = mail_blobs.c[name]
        kind = column.type.compile(dialect=engine.dialect)
        try:
            with engine.begin() as conn:
                conn.execute(sql_text(f"ALTER TABLE mail_blobs ADD COLUMN {name} {kind}"))
        except DBAPIError:
            columns = inspect(engine).get_columns("mail_blobs")
            if name not in {column["name"] for column in columns}:
                raise
            continue  # added by the other store
        log.info("mail.index.column_added column=%s", name)


class MailStore:
    """Mailboxes and messages of every person."""

    def __init__(self, engine: Engine, root: Path, events: EventBus) -> None:
        self.engine = engine
        self.files = BlobFiles(root / "blobs")
        self.events = events
        # Parses messages while the appending thread waits for their fsyncs; its idle
        # threads end with the store.
        self.parser_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="mail-parse")
        weakref.finalize(self, self.parser_pool.shutdown, wait=False)
        self.text_index: TextIndex = text_index_for(engine)
        self.status_cache = store_read.StatusCache()
        metadata.create_all(engine)
        _add_late_columns(engine)
        self.text_index.create(engine)

    # --- mailboxes ------------------------------------------------------------

    def ensure_mailboxes(self, person: Person) -> None:
        """INBOX and the special-use folders, named in the person's language, once."""
        store_mailboxes.ensure_mailboxes(self, person)

    def list_mailboxes(self, person_id: int) -> list[Mailbox]:
        """Every mailbox of a person, INBOX first then by name."""
        return store_mailboxes.list_mailboxes(self, person_id)

    def find_mailbox(self, person_id: int, name: str) -> Mailbox | None:
        """A mailbox by name (INBOX in any case), or None."""
        return store_mailboxes.find_mailbox(self, person_id, name)

    def get_mailbox(self, person_id: int, name: str) -> Mailbox:
        """Like :meth:`find_mailbox`, but absence is an error."""
        return store_mailboxes.get_mailbox(self, person_id, name)

    def mailbox_by_id(self, mailbox_id: int) -> Mailbox | None:
        """A mailbox by id."""
        return store_mailboxes.mailbox_by_id(self, mailbox_id)

    def create_mailbox(self, person_id: int, name: str, special_use: str = "") -> Mailbox:
        """Create a mailbox (and missing parents, RFC 3501 §6.3.3).

        Raises:
            ConflictError: it exists already.
            MailboxNameError: the name is unusable.
        """
        return store_mailboxes.create_mailbox(self, person_id, name, special_use)

    def delete_mailbox(self, person_id: int, name: str) -> None:
        """Delete a mailbox and its messages; its children stay (RFC 3501 §6.3.4).

        Raises:
            NotFoundError: no such mailbox.
            MailboxNameError: INBOX cannot be deleted.
        """
        store_mailboxes.delete_mailbox(self, person_id, name)

    def rename_mailbox(self, person_id: int, old: str, new: str) -> None:
        """Rename a mailbox and its children; renaming INBOX moves its messages (§6.3.5).

        Raises:
            NotFoundError, ConflictError, MailboxNameError.
        """
        store_mailboxes.rename_mailbox(self, person_id, old, new)

    def set_subscribed(self, person_id: int, name: str, is_subscribed: bool) -> None:
        """SUBSCRIBE / UNSUBSCRIBE."""
        store_mailboxes.set_subscribed(self, person_id, name, is_subscribed)

    # --- adding messages ------------------------------------------------------

    def append(
        self,
        person: Person,
        mailbox_name: str,
        data: bytes,
        flags: Iterable[str] = (),
        internal_date: datetime | None = None,
        delivery_key: str | None = None,
        *,
        recent_taken_in: int | None = None,
    ) -> AppendResult:
        """Store one message in a mailbox (APPEND, delivery).

        Args:
            person: the mailbox owner.
            mailbox_name: the mailbox (INBOX in any case).
            data: the message; line endings are normalised to CRLF.
            flags: initial flags.
            internal_date: defaults to now.
            delivery_key: for delivery: a second call with the same key stores nothing
                and returns the first result (exactly-once after a crash).
            recent_taken_in: the mailbox the caller's session has selected read-write:
                a message stored there is \\Recent for that session only (it is told of
                it in the same command), so no other session takes the flag.

        Raises:
            NotFoundError: no such mailbox.
            QuotaExceededError: the person's quota would be exceeded; nothing is stored.
        """
        return store_append.append(
            self,
            person,
            mailbox_name,
            data,
            flags,
            internal_date,
            delivery_key,
            recent_taken_in=recent_taken_in,
        )

    def deliver_many(self, messages: Sequence[InboxDelivery]) -> list[AppendResult | None]:
        """File delivered messages into their owners' INBOX, all in one transaction.

        What :meth:`append` with a delivery key does for each, for many at once: the
        files are written side by side (one folder fsync for them all), the index rows
        in a few statements, and one commit, which is on disk when this returns (the
        caller then removes the messages from the spool). The messages of one mailbox
        share a MODSEQ; a message the quota refuses in the transaction leaves a gap in
        the UIDs (allowed: UIDs only have to ascend).

        Args:
            messages: what to file; their delivery keys differ.

        Returns:
            Per message, in order: where it landed (where it landed the first time, for
            a key delivered before), or None when the quota had no room for it.

        Raises:
            NotFoundError: a person has no INBOX (``ensure_mailboxes`` makes it).
        """
        return store_append.deliver_many(self, messages)

    # --- reading --------------------------------------------------------------

    def messages(self, mailbox_id: int, uids: Iterable[int] | None = None) -> list[MessageInfo]:
        """Messages of a mailbox in UID order (all, or those of ``uids``)."""
        return store_read.messages(self, mailbox_id, uids)

    def counts(self, mailbox_id: int) -> dict[str, int]:
        """MESSAGES, UNSEEN, RECENT, DELETED and SIZE of a mailbox (STATUS), by SQL aggregates."""
        return store_read.counts(self, mailbox_id)

    def statuses(
        self, mailbox_ids: Sequence[int], *, with_recent: bool
    ) -> dict[int, tuple[Mailbox, dict[str, int]]]:
        """Each mailbox's fresh row and its :meth:`counts`, read in one transaction.

        Counts of a mailbox whose state is unchanged since they were last counted
        come from :class:`~groupware.mail.store_read.StatusCache`, except with
        ``with_recent`` (their ``recent`` is then stale: do not use it). Mailboxes
        gone meanwhile are left out.
        """
        return store_read.statuses(self, mailbox_ids, with_recent=with_recent)

    def blob_meta(self, blob_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """Envelope, structure and sort keys of blobs, decoded from the index."""
        return store_read.blob_meta(self, blob_ids)

    def structure(self, blob_id: int) -> mime.Part:
        """The MIME structure of a blob."""
        return store_read.structure(self, blob_id)

    def search_text(self, field: str | None, query: str) -> set[int]:
        """Blob ids whose text matches (see ``mail.text_index``)."""
        return store_read.search_text(self, field, query)

    def usage(self, person_id: int) -> tuple[int, int]:
        """``(bytes, messages)`` stored for a person."""
        return store_read.usage(self, person_id)

    def rows(
        self,
        mailbox_id: int,
        uids: Iterable[int] | None,
        fields: Iterable[str],
        prefilter: Prefilter | None = None,
    ) -> list[IndexRow]:
        """Index rows of a mailbox in UID order, reading only the columns of ``fields``.

        Args:
            mailbox_id: the mailbox.
            uids: the messages wanted, or None for all.
            fields: names of :class:`IndexRow` attributes (see :data:`INDEX_FIELDS`).
            prefilter: keep only rows that satisfy it (a superset of a search's matches).
        """
        return store_read.rows(self, mailbox_id, uids, fields, prefilter)

    # --- what sessions learn --------------------------------------------------

    def changes(
        self, mailbox_id: int, since_modseq: int
    ) -> tuple[list[MessageInfo], list[int], int]:
        """What changed after ``since_modseq``: ``(messages, expunged uids, highest modseq)``.

        Costs time in proportion to the changes, not to the mailbox (indexed on modseq).
        The highest modseq is read first and bounds both queries: a change committed
        between the queries is left for the next call instead of being skipped.
        """
        return store_sync.changes(self, mailbox_id, since_modseq)

    def changed_flags(
        self,
        mailbox_id: int,
        since_modseq: int,
        *,
        take_recent_after: int | None = None,
        announced: Mapping[int, int] | None = None,
    ) -> Changes:
        """Like :meth:`changes`, for a session's refresh: only UID, MODSEQ and flags.

        No blob join and no date conversion per row, which counts after a STORE on a
        whole mailbox; one connection for the reads and the \\Recent it may take.

        Args:
            mailbox_id: the mailbox.
            since_modseq: what the caller has seen.
            take_recent_after: when a message above this UID came, take \\Recent as
                :meth:`clear_recent` does.
            announced: UID -> MODSEQ the caller has told its client already (its own
                STORE): those rows are left out, and never held in memory all at once.
        """
        return store_sync.changed_flags(
            self, mailbox_id, since_modseq, take_recent_after=take_recent_after, announced=announced
        )

    def clear_recent(self, mailbox_id: int) -> list[int]:
        """Take the \\Recent flag for this session (RFC 3501 §2.3.2): the UIDs it had."""
        return store_sync.clear_recent(self, mailbox_id)

    def view(self, mailbox_id: int, *, take_recent: bool) -> MailboxView | None:
        """What SELECT (``take_recent``) or EXAMINE announces; None if the mailbox is gone.

        One pass over ``(uid, flags, is_recent)``: no message objects, no blob join.
        """
        return store_sync.view(self, mailbox_id, take_recent=take_recent)

    def expunged_since(self, mailbox_id: int, modseq: int) -> list[int]:
        """UIDs expunged after ``modseq`` (QRESYNC VANISHED)."""
        return store_sync.expunged_since(self, mailbox_id, modseq)

    # --- changing messages ----------------------------------------------------

    def store_flags(
        self,
        mailbox_id: int,
        uids: Iterable[int],
        mode: str,
        flags: Iterable[str],
        unchanged_since: int | None = None,
    ) -> tuple[list[tuple[int, frozenset[str], int]], list[int]]:
        """Change flags (``mode`` replace | add | remove).

        One new MODSEQ for the whole command (RFC 7162 §3.1.3). The messages are not
        read one by one: a mailbox has few distinct flag sets, so the distinct ones are
        read, the outcome of each is worked out once, and one UPDATE per changing set
        rewrites its messages. A STORE that changes nothing writes nothing: it is one
        small query, and it leaves every other connection's page cache valid.

        Returns:
            ``([(uid, new flags, modseq)] of changed messages, [uids failing UNCHANGEDSINCE])``.
        """
        return store_update.store_flags(self, mailbox_id, uids, mode, flags, unchanged_since)

    def copy(
        self, mailbox_id: int, uids: Iterable[int], target_id: int
    ) -> tuple[int, list[tuple[int, int]]]:
        """Copy messages (sharing their files): ``(target uidvalidity, [(old uid, new uid)])``.

        Raises:
            QuotaExceededError: the copies would exceed the quota; nothing is copied.
        """
        return store_update.copy(self, mailbox_id, uids, target_id)

    def move(
        self, mailbox_id: int, uids: Iterable[int], target_id: int
    ) -> tuple[int, list[tuple[int, int]]]:
        """Move messages (RFC 6851): ``(target uidvalidity, [(old uid, new uid)])``."""
        return store_update.move(self, mailbox_id, uids, target_id)

    def expunge(self, mailbox_id: int, uids: Iterable[int] | None = None) -> list[int]:
        """Remove the messages flagged \\Deleted (among ``uids`` when given): their UIDs."""
        return store_update.expunge(self, mailbox_id, uids)

    def sweep_orphans(self) -> int:
        """Delete message files that no index row references (after a crash).

        Only at startup, before any writer runs: a file being written is not yet indexed.
        """
        with self.engine.connect() as conn:
            known = {row.path for row in conn.execute(select(mail_blobs.c.path))}
        removed = 0
        for path in self.files.root.rglob("*"):
            if not path.is_file():
                continue
            relative = path.relative_to(self.files.root).as_posix()
            if relative not in known:
                path.unlink()
                removed += 1
        return removed
