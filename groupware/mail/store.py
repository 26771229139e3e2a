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
"""

from __future__ import annotations

import json
import logging
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    bindparam,
    case,
    delete,
    false,
    func,
    insert,
    inspect,
    or_,
    select,
    true,
    update,
)
from sqlalchemy import text as sql_text
from sqlalchemy.exc import DBAPIError, IntegrityError

from groupware.core.directory import Person
from groupware.core.events import EventBus, MailboxChanged
from groupware.errors import ConflictError, GroupwareError, NotFoundError
from groupware.mail import mime
from groupware.mail.blobs import BlobFiles
from groupware.mail.schema import (
    LATE_BLOB_COLUMNS,
    mail_blobs,
    mail_expunged,
    mail_messages,
    mail_usage,
    mailboxes,
    metadata,
    persons,
)
from groupware.mail.store_write import AppendResult as AppendResult
from groupware.mail.store_write import (
    Filing,
    NewRow,
    Prepared,
    allocate,
    charge_quota,
    delivered_before,
    index_filings,
    insert_messages,
    prepare,
    to_crlf,
)
from groupware.mail.store_write import InboxDelivery as InboxDelivery
from groupware.mail.text_index import TextIndex, text_index_for

log = logging.getLogger(__name__)

INBOX: Final = "INBOX"
MAX_UID: Final = 4_294_967_295
DELIMITER: Final = "/"
SYSTEM_FLAGS: Final = frozenset({"\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"})
# RFC 6154 special-use folders, named in the account's language.
SPECIAL_FOLDERS: Final = {
    "fr": (
        ("Brouillons", "\\Drafts"),
        ("Envoyés", "\\Sent"),
        ("Indésirables", "\\Junk"),
        ("Corbeille", "\\Trash"),
        ("Archives", "\\Archive"),
    ),
    "en": (
        ("Drafts", "\\Drafts"),
        ("Sent", "\\Sent"),
        ("Junk", "\\Junk"),
        ("Trash", "\\Trash"),
        ("Archive", "\\Archive"),
    ),
}
SPECIAL_USES: Final = frozenset(use for folders in SPECIAL_FOLDERS.values() for _n, use in folders)


class QuotaExceededError(GroupwareError):
    """The message would take the person over their quota."""

    def __init__(self, login: str, used_bytes: int, limit_bytes: int) -> None:
        super().__init__(f"quota exceeded for {login}: {used_bytes} of {limit_bytes} bytes used")
        self.login = login
        self.used_bytes = used_bytes
        self.limit_bytes = limit_bytes


class MailboxNameError(GroupwareError):
    """A mailbox name that cannot be used (empty level, reserved, too long)."""


@dataclass(frozen=True, slots=True)
class Mailbox:
    """A folder of one person."""

    id: int
    person_id: int
    name: str
    special_use: str
    uidvalidity: int
    uid_next: int
    highest_modseq: int
    is_subscribed: bool


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """What the index knows of one message in a mailbox."""

    uid: int
    modseq: int
    flags: frozenset[str]
    internal_date: datetime
    size: int
    blob_id: int
    blob_path: str
    is_recent: bool


@dataclass(slots=True)
class IndexRow:
    """Index data of one message, with only the fields a command asked for.

    :meth:`MailStore.rows` reads the columns named in its ``fields``; the other
    attributes keep their defaults. The ``*_imap`` bytes are None for blobs indexed
    before those columns existed: the reader renders from ``envelope``/``structure``.
    """

    uid: int
    blob_id: int
    modseq: int = 0
    flags: frozenset[str] = frozenset()
    internal_date: datetime | None = None
    size: int = 0
    blob_path: str = ""
    envelope: str | None = None  # JSON
    structure: str | None = None  # JSON, see mail.mime.Part.to_json
    envelope_imap: bytes | None = None
    body_imap: bytes | None = None
    bodystructure_imap: bytes | None = None
    sent_date: datetime | None = None
    subject_sort: str = ""
    from_sort: str = ""
    to_sort: str = ""
    cc_sort: str = ""


INDEX_FIELDS: Final = frozenset(
    {
        *("modseq", "flags", "internal_date", "size", "blob_path", "envelope", "structure"),
        *("envelope_imap", "body_imap", "bodystructure_imap", "sent_date"),
        *("subject_sort", "from_sort", "to_sort", "cc_sort"),
    }
)


@dataclass(frozen=True, slots=True)
class Changes:
    """What changed in a mailbox since a mod-sequence (:meth:`MailStore.changed_flags`).

    Attributes:
        messages: changed or new messages (UID, MODSEQ, flags), in UID order.
        expunged: UIDs expunged since.
        highest_modseq: the mod-sequence both lists are complete up to.
        recent: the UIDs whose \\Recent this caller took (``take_recent_after``).
    """

    messages: list[IndexRow]
    expunged: list[int]
    highest_modseq: int
    recent: list[int]


@dataclass(frozen=True, slots=True)
class MailboxView:
    """What SELECT announces, read in one go (RFC 3501 §6.3.1).

    Attributes:
        mailbox: the mailbox, read after the messages (its UIDNEXT is above them all).
        known_modseq: HIGHESTMODSEQ read before the messages: a change between the two
            reads is announced by the next refresh instead of being lost.
        uids: every UID, ascending.
        keywords: the keywords in use.
        first_unseen: the sequence number of the first message without \\Seen, or None.
        recent: the UIDs with \\Recent for this session.
    """

    mailbox: Mailbox
    known_modseq: int
    uids: list[int]
    keywords: frozenset[str]
    first_unseen: int | None
    recent: frozenset[int]


@dataclass(frozen=True, slots=True)
class BlobIn:
    """Prefilter: the message's blob is one of ``blob_ids`` (a full-text match)."""

    blob_ids: frozenset[int]


@dataclass(frozen=True, slots=True)
class HeaderContains:
    """Prefilter: some SEARCH header field may contain ``value`` (``text.header_text``)."""

    value: str


@dataclass(frozen=True, slots=True)
class AnyOf:
    """Prefilter: any of the parts."""

    parts: tuple[Prefilter, ...]


@dataclass(frozen=True, slots=True)
class AllOf:
    """Prefilter: all of the parts."""

    parts: tuple[Prefilter, ...]


# A condition every match of a search satisfies, cheap in SQL: :meth:`MailStore.rows`
# returns a superset of the matches, which the searcher then tests exactly.
Prefilter = BlobIn | HeaderContains | AnyOf | AllOf


def normalize_flags(flags: Iterable[str]) -> frozenset[str]:
    """System flags in their canonical case; keywords as given; \\Recent dropped."""
    canonical = {flag.lower(): flag for flag in SYSTEM_FLAGS}
    found = set()
    for flag in flags:
        if flag.startswith("\\"):
            known = canonical.get(flag.lower())
            if known:
                found.add(known)
        elif flag:
            found.add(flag)
    return frozenset(found)


def _flags_text(flags: Iterable[str]) -> str:
    return " ".join(sorted(flags))


def _flags_set(value: str) -> frozenset[str]:
    return frozenset(value.split()) if value else frozenset()


def _flag_outcome(
    current_text: str, mode: str, wanted: frozenset[str]
) -> tuple[frozenset[str], str] | None:
    """``(new flags, their text)`` after a STORE in ``mode``, or None if nothing changes."""
    current = _flags_set(current_text)
    if mode == "add":
        new = current | wanted
    elif mode == "remove":
        new = current - wanted
    else:
        new = wanted
    return None if new == current else (new, _flags_text(new))


def check_mailbox_name(name: str) -> str:
    """The canonical form of a mailbox name (INBOX in upper case).

    Raises:
        MailboxNameError: empty levels, leading/trailing delimiter, control characters.
    """
    if name.upper() == INBOX:
        return INBOX
    if name.upper().startswith(INBOX + DELIMITER):
        name = INBOX + name[len(INBOX) :]
    if not name or len(name) > 500 or any(ord(ch) < 32 or ch == "\x7f" for ch in name):
        raise MailboxNameError(f"invalid mailbox name {name!r}")
    if any(not level for level in name.split(DELIMITER)) or "*" in name or "%" in name:
        raise MailboxNameError(f"invalid mailbox name {name!r}")
    return name


def _mailbox_from_row(row: Any) -> Mailbox:
    return Mailbox(
        id=row.id,
        person_id=row.person_id,
        name=row.name,
        special_use=row.special_use,
        uidvalidity=row.uidvalidity,
        uid_next=row.uid_next,
        highest_modseq=row.highest_modseq,
        is_subscribed=row.is_subscribed,
    )


# Statements of the busy paths, built once: SQLAlchemy then skips building the
# expression and computing its cache key on every call (a good part of an APPEND).
# Bound names start with "b_" so that they never clash with a column in SET.
_MAILBOX_BY_ID: Final = select(mailboxes).where(mailboxes.c.id == bindparam("b_id"))
_MAILBOX_AND_USAGE: Final = (
    select(
        mailboxes,
        mail_usage.c.bytes.label("used_bytes"),
        persons.c.quota_bytes.label("quota_bytes"),
    )
    .join(persons, persons.c.id == mailboxes.c.person_id)
    .outerjoin(mail_usage, mail_usage.c.person_id == mailboxes.c.person_id)
    .where(mailboxes.c.person_id == bindparam("b_person"), mailboxes.c.name == bindparam("b_name"))
)
_USED_BYTES: Final = select(mail_usage.c.bytes).where(
    mail_usage.c.person_id == bindparam("b_person")
)
_USAGE: Final = select(mail_usage.c.bytes, mail_usage.c.messages).where(
    mail_usage.c.person_id == bindparam("b_person")
)
_INBOXES: Final = (
    select(
        mailboxes,
        mail_usage.c.bytes.label("used_bytes"),
        persons.c.quota_bytes.label("quota_bytes"),
    )
    .join(persons, persons.c.id == mailboxes.c.person_id)
    .outerjoin(mail_usage, mail_usage.c.person_id == mailboxes.c.person_id)
    .where(
        mailboxes.c.person_id.in_(bindparam("b_persons", expanding=True)),
        mailboxes.c.name == INBOX,
    )
)
_INSERT_MESSAGE: Final = insert(mail_messages)
_BUMP_MODSEQ: Final = (
    update(mailboxes)
    .where(mailboxes.c.id == bindparam("b_id"))
    .values(highest_modseq=mailboxes.c.highest_modseq + 1)
    .returning(mailboxes.c.highest_modseq)
)
_ADD_REFERENCE: Final = (
    update(mail_blobs)
    .where(mail_blobs.c.id == bindparam("b_blob"))
    .values(refcount=mail_blobs.c.refcount + 1)
)
_MOVE_MESSAGE: Final = (
    update(mail_messages)
    .where(
        mail_messages.c.mailbox_id == bindparam("b_mailbox"),
        mail_messages.c.uid == bindparam("b_uid"),
    )
    .values(
        mailbox_id=bindparam("b_target"),
        uid=bindparam("b_new_uid"),
        modseq=bindparam("b_modseq"),
        is_recent=True,
    )
)
_HIGHEST_MODSEQ: Final = select(mailboxes.c.highest_modseq).where(
    mailboxes.c.id == bindparam("b_id")
)
_TAKE_RECENT: Final = (
    update(mail_messages)
    .where(
        mail_messages.c.mailbox_id == bindparam("b_mailbox"),
        mail_messages.c.is_recent.is_(True),
        mail_messages.c.uid <= bindparam("b_largest"),
    )
    .values(is_recent=False)
    .returning(mail_messages.c.uid)
)
_VIEW: Final = (
    select(mail_messages.c.uid, mail_messages.c.flags, mail_messages.c.is_recent)
    .where(mail_messages.c.mailbox_id == bindparam("b_mailbox"))
    .order_by(mail_messages.c.uid)
)
_MESSAGE_COLUMNS: Final = (
    mail_messages.c.uid,
    mail_messages.c.modseq,
    mail_messages.c.flags,
    mail_messages.c.internal_date,
    mail_messages.c.is_recent,
    mail_messages.c.blob_id,
    mail_blobs.c.size,
    mail_blobs.c.path,
)
# IndexRow field -> column; blob columns need the join.
_ROW_COLUMNS: Final = {
    "modseq": mail_messages.c.modseq,
    "flags": mail_messages.c.flags,
    "internal_date": mail_messages.c.internal_date,
    "size": mail_blobs.c.size,
    "blob_path": mail_blobs.c.path,
    "envelope": mail_blobs.c.envelope,
    "structure": mail_blobs.c.structure,
    "envelope_imap": mail_blobs.c.envelope_imap,
    "body_imap": mail_blobs.c.body_imap,
    "bodystructure_imap": mail_blobs.c.bodystructure_imap,
    "sent_date": mail_blobs.c.sent_date,
    "subject_sort": mail_blobs.c.subject_sort,
    "from_sort": mail_blobs.c.from_sort,
    "to_sort": mail_blobs.c.to_sort,
    "cc_sort": mail_blobs.c.cc_sort,
}
_CHANGED_MESSAGES: Final = (
    select(*_MESSAGE_COLUMNS)
    .join(mail_blobs, mail_blobs.c.id == mail_messages.c.blob_id)
    .where(
        mail_messages.c.mailbox_id == bindparam("b_mailbox"),
        mail_messages.c.modseq > bindparam("b_since"),
        mail_messages.c.modseq <= bindparam("b_highest"),
    )
    .order_by(mail_messages.c.uid)
)
_CHANGED_FLAGS: Final = (
    select(
        mail_messages.c.uid,
        mail_messages.c.blob_id,
        mail_messages.c.flags,
        mail_messages.c.modseq,
        mail_messages.c.is_recent,
    )
    .where(
        mail_messages.c.mailbox_id == bindparam("b_mailbox"),
        mail_messages.c.modseq > bindparam("b_since"),
        mail_messages.c.modseq <= bindparam("b_highest"),
    )
    .order_by(mail_messages.c.uid)
)
_CHANGED_EXPUNGED: Final = (
    select(mail_expunged.c.uid)
    .where(
        mail_expunged.c.mailbox_id == bindparam("b_mailbox"),
        mail_expunged.c.modseq > bindparam("b_since"),
        mail_expunged.c.modseq <= bindparam("b_highest"),
    )
    .order_by(mail_expunged.c.uid)
)
_MAX_BOUND_VALUES: Final = 500
_MAX_RANGES: Final = 20


def _message_from_row(row: Any) -> MessageInfo:
    return MessageInfo(
        uid=int(row.uid),
        modseq=int(row.modseq),
        flags=_flags_set(row.flags),
        internal_date=_aware(row.internal_date),
        size=int(row.size),
        blob_id=int(row.blob_id),
        blob_path=row.path,
        is_recent=bool(row.is_recent),
    )


def _index_rows(found: Sequence[Any], names: list[str]) -> list[IndexRow]:
    """IndexRows from ``(uid, blob_id, *names)`` rows."""
    converters = [
        (position, _flags_set if name == "flags" else _aware_or_none)
        for position, name in enumerate(names)
        if name in ("flags", "internal_date", "sent_date")
    ]
    rows = []
    for row in found:
        values = list(row[2:])
        for position, convert in converters:
            values[position] = convert(values[position])
        rows.append(IndexRow(row[0], row[1], **dict(zip(names, values, strict=True))))
    return rows


def _aware_or_none(moment: datetime | None) -> datetime | None:
    return None if moment is None else _aware(moment)


def _prefilter_condition(prefilter: Prefilter) -> ColumnElement[bool]:
    if isinstance(prefilter, BlobIn):
        if not prefilter.blob_ids:
            return false()
        return mail_messages.c.blob_id.in_(sorted(prefilter.blob_ids))
    if isinstance(prefilter, HeaderContains):
        # Blobs indexed before header_text existed are kept, for the exact test.
        return or_(
            mail_blobs.c.header_text.contains(prefilter.value.lower(), autoescape=True),
            mail_blobs.c.header_text.is_(None),
        )
    parts = [_prefilter_condition(part) for part in prefilter.parts]
    if isinstance(prefilter, AnyOf):
        return or_(false(), *parts)
    return and_(true(), *parts)


def _uses_header_text(prefilter: Prefilter) -> bool:
    if isinstance(prefilter, HeaderContains):
        return True
    if isinstance(prefilter, BlobIn):
        return False
    return any(_uses_header_text(part) for part in prefilter.parts)


def _uid_conditions(uids: Iterable[int]) -> list[ColumnElement[bool]]:
    """Conditions on ``mail_messages.uid`` that together select exactly ``uids``.

    Runs of consecutive UIDs become ``BETWEEN`` (``1:*`` is one condition, however big
    the mailbox); each condition stays within a few hundred bound values.
    """
    ordered = sorted(set(uids))
    uid_column = mail_messages.c.uid
    if ordered and ordered[-1] - ordered[0] + 1 == len(ordered):
        return [uid_column.between(ordered[0], ordered[-1])]  # one run, as 1:* is
    ranges: list[list[int]] = []
    for uid in ordered:
        if ranges and ranges[-1][1] == uid - 1:
            ranges[-1][1] = uid
        else:
            ranges.append([uid, uid])
    conditions: list[ColumnElement[bool]] = []
    singles: list[int] = []
    spans: list[ColumnElement[bool]] = []

    def flush() -> None:
        parts = list(spans)
        if singles:
            parts.append(uid_column.in_(list(singles)))
        if parts:
            conditions.append(or_(*parts) if len(parts) > 1 else parts[0])
        singles.clear()
        spans.clear()

    for low, high in ranges:
        if high - low < 2:
            singles.extend(range(low, high + 1))
        else:
            spans.append(uid_column.between(low, high))
        if len(singles) >= _MAX_BOUND_VALUES or len(spans) >= _MAX_RANGES:
            flush()
    flush()
    return conditions


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
        self._parser = ThreadPoolExecutor(max_workers=4, thread_name_prefix="mail-parse")
        weakref.finalize(self, self._parser.shutdown, wait=False)
        self.text_index: TextIndex = text_index_for(engine)
        metadata.create_all(engine)
        _add_late_columns(engine)
        self.text_index.create(engine)

    # --- mailboxes -----------------------------------------------------------------

    def ensure_mailboxes(self, person: Person) -> None:
        """INBOX and the special-use folders, named in the person's language, once."""
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(mailboxes.c.name, mailboxes.c.special_use).where(
                    mailboxes.c.person_id == person.id
                )
            ).all()
            # Names and uses apart: many mailboxes share the empty use.
            names = {row.name for row in rows}
            uses = {row.special_use for row in rows if row.special_use}
            wanted = [] if INBOX in names else [(INBOX, "")]
            wanted += [
                (name, use)
                for name, use in SPECIAL_FOLDERS.get(person.language, SPECIAL_FOLDERS["en"])
                if use not in uses and name not in names
            ]
            for name, use in wanted:
                # A first delivery and a first IMAP login may make them at the same time.
                try:
                    with conn.begin_nested():
                        self._insert_mailbox(conn, person.id, name, use)
                except IntegrityError:
                    pass  # made concurrently by another session
            has_usage = conn.execute(
                select(mail_usage.c.person_id).where(mail_usage.c.person_id == person.id)
            ).first()
            if has_usage is None:
                try:
                    with conn.begin_nested():
                        conn.execute(
                            insert(mail_usage).values(person_id=person.id, bytes=0, messages=0)
                        )
                except IntegrityError:
                    pass  # made concurrently by another session

    def _insert_mailbox(self, conn: Connection, person_id: int, name: str, special_use: str) -> int:
        # UIDVALIDITY (RFC 3501 §2.3.1.1): never reused for a name, so strictly
        # increasing per person: the clock, or one more than the highest given.
        uidvalidity = self._next_uidvalidity(conn, person_id)
        result = conn.execute(
            insert(mailboxes).values(
                person_id=person_id,
                name=name,
                special_use=special_use,
                uidvalidity=uidvalidity,
                uid_next=1,
                highest_modseq=1,
                is_subscribed=True,
            )
        )
        return int(result.inserted_primary_key[0])

    def _next_uidvalidity(self, conn: Connection, person_id: int) -> int:
        highest = conn.execute(
            select(func.max(mailboxes.c.uidvalidity)).where(mailboxes.c.person_id == person_id)
        ).scalar()
        return max(int(time.time()), int(highest or 0) + 1)

    def list_mailboxes(self, person_id: int) -> list[Mailbox]:
        """Every mailbox of a person, INBOX first then by name."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(mailboxes).where(mailboxes.c.person_id == person_id)).all()
        found = [_mailbox_from_row(row) for row in rows]
        return sorted(found, key=lambda m: (m.name != INBOX, m.name.lower()))

    def find_mailbox(self, person_id: int, name: str) -> Mailbox | None:
        """A mailbox by name (INBOX in any case), or None."""
        try:
            name = check_mailbox_name(name)
        except MailboxNameError:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                select(mailboxes).where(
                    mailboxes.c.person_id == person_id, mailboxes.c.name == name
                )
            ).first()
        return _mailbox_from_row(row) if row else None

    def get_mailbox(self, person_id: int, name: str) -> Mailbox:
        """Like :meth:`find_mailbox`, but absence is an error."""
        found = self.find_mailbox(person_id, name)
        if found is None:
            raise NotFoundError("mailbox", name)
        return found

    def mailbox_by_id(self, mailbox_id: int) -> Mailbox | None:
        """A mailbox by id."""
        with self.engine.connect() as conn:
            row = conn.execute(_MAILBOX_BY_ID, {"b_id": mailbox_id}).first()
        return _mailbox_from_row(row) if row else None

    def create_mailbox(self, person_id: int, name: str, special_use: str = "") -> Mailbox:
        """Create a mailbox (and missing parents, RFC 3501 §6.3.3).

        Raises:
            ConflictError: it exists already.
            MailboxNameError: the name is unusable.
        """
        name = check_mailbox_name(name)
        if special_use and special_use not in SPECIAL_USES:
            raise MailboxNameError(f"unknown special use {special_use!r}")
        with self.engine.begin() as conn:
            names = {
                row.name
                for row in conn.execute(
                    select(mailboxes.c.name).where(mailboxes.c.person_id == person_id)
                )
            }
            if name in names:
                raise ConflictError(f"mailbox {name} already exists")
            levels = name.split(DELIMITER)
            for depth in range(1, len(levels)):
                parent = DELIMITER.join(levels[:depth])
                if parent not in names:
                    self._insert_mailbox(conn, person_id, parent, "")
            self._insert_mailbox(conn, person_id, name, special_use)
        return self.get_mailbox(person_id, name)

    def delete_mailbox(self, person_id: int, name: str) -> None:
        """Delete a mailbox and its messages; its children stay (RFC 3501 §6.3.4).

        Raises:
            NotFoundError: no such mailbox.
            MailboxNameError: INBOX cannot be deleted.
        """
        mailbox = self.get_mailbox(person_id, name)
        if mailbox.name == INBOX:
            raise MailboxNameError("INBOX cannot be deleted")
        with self.engine.begin() as conn:
            uids = [
                row.uid
                for row in conn.execute(
                    select(mail_messages.c.uid).where(mail_messages.c.mailbox_id == mailbox.id)
                )
            ]
            orphans = self._remove_messages(conn, mailbox.id, person_id, uids, track=False)
            conn.execute(delete(mail_expunged).where(mail_expunged.c.mailbox_id == mailbox.id))
            conn.execute(delete(mailboxes).where(mailboxes.c.id == mailbox.id))
        self._unlink(orphans)

    def rename_mailbox(self, person_id: int, old: str, new: str) -> None:
        """Rename a mailbox and its children; renaming INBOX moves its messages (§6.3.5).

        Raises:
            NotFoundError, ConflictError, MailboxNameError.
        """
        source = self.get_mailbox(person_id, old)
        new = check_mailbox_name(new)
        if self.find_mailbox(person_id, new) is not None:
            raise ConflictError(f"mailbox {new} already exists")
        if source.name == INBOX:
            target = self.create_mailbox(person_id, new)
            with self.engine.begin() as conn:
                uids = [
                    row.uid
                    for row in conn.execute(
                        select(mail_messages.c.uid).where(mail_messages.c.mailbox_id == source.id)
                    )
                ]
            self.move(source.id, uids, target.id)
            return
        if new.startswith(source.name + DELIMITER):
            raise MailboxNameError("a mailbox cannot be moved inside itself")
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(mailboxes.c.id, mailboxes.c.name).where(mailboxes.c.person_id == person_id)
            ).all()
            names = {row.name for row in rows}
            levels = new.split(DELIMITER)
            for depth in range(1, len(levels)):
                parent = DELIMITER.join(levels[:depth])
                if parent not in names:
                    self._insert_mailbox(conn, person_id, parent, "")
            for row in rows:
                if row.name == source.name or row.name.startswith(source.name + DELIMITER):
                    renamed = new + row.name[len(source.name) :]
                    # A renamed mailbox is a new one for clients: new UIDVALIDITY.
                    conn.execute(
                        update(mailboxes)
                        .where(mailboxes.c.id == row.id)
                        .values(name=renamed, uidvalidity=self._next_uidvalidity(conn, person_id))
                    )

    def set_subscribed(self, person_id: int, name: str, is_subscribed: bool) -> None:
        """SUBSCRIBE / UNSUBSCRIBE."""
        mailbox = self.get_mailbox(person_id, name)
        with self.engine.begin() as conn:
            conn.execute(
                update(mailboxes)
                .where(mailboxes.c.id == mailbox.id)
                .values(is_subscribed=is_subscribed)
            )

    # --- adding messages -------------------------------------------------------------

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
        if delivery_key is not None:
            earlier = delivered_before(self.engine, [delivery_key]).get(delivery_key)
            if earlier is not None:
                return earlier
        data = to_crlf(data)
        mailbox, quota_bytes = self._mailbox_checking_quota(person, mailbox_name, len(data))
        [prepared], [path] = self._write_and_prepare([data])
        row = NewRow(
            prepared=prepared,
            path=path,
            mailbox_id=mailbox.id,
            uid=0,
            modseq=0,
            flags=_flags_text(normalize_flags(flags)),
            # The index keeps naive UTC (SQLite drops the zone): convert, so the
            # instant survives and not just the wall-clock reading.
            internal_date=(internal_date or datetime.now(UTC)).astimezone(UTC),
            is_recent=mailbox.id != recent_taken_in,
            delivery_key=delivery_key,
        )
        try:
            result = self._index_new(person, quota_bytes, row)
        except BaseException:
            self.files.remove(path)
            raise
        self.events.publish(MailboxChanged(person.id, mailbox.id, 0))
        return result

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
        results: list[AppendResult | None] = [None] * len(messages)
        filings = self._filings(messages, results)
        if not filings:
            return results
        prepared, paths = self._write_and_prepare([filing.data for filing in filings])
        for filing, one, path in zip(filings, prepared, paths, strict=True):
            filing.row = NewRow(
                prepared=one,
                path=path,
                mailbox_id=filing.mailbox_id,
                uid=0,
                modseq=0,
                flags="",
                internal_date=datetime.now(UTC),
                is_recent=True,
                delivery_key=filing.delivery_key,
            )
        try:
            stored = set(index_filings(self.engine, self.text_index, filings))
        except BaseException:
            for path in paths:
                self.files.remove(path)
            raise
        for filing in filings:
            if filing in stored:
                results[filing.index] = AppendResult(
                    filing.mailbox_id, filing.uidvalidity, filing.row.uid
                )
            else:
                self.files.remove(filing.row.path)  # refused by the quota meanwhile
        for mailbox_id, filing in {f.mailbox_id: f for f in stored}.items():
            self.events.publish(MailboxChanged(filing.person_id, mailbox_id, filing.row.modseq))
        return results

    def _filings(
        self, messages: Sequence[InboxDelivery], results: list[AppendResult | None]
    ) -> list[Filing]:
        """The messages still to store and with room for them; ``results`` of the others.

        A delivery key seen before gets its first result; a message over the quota as
        read now gets None and no file (the transaction checks the quota again).
        """
        earlier = delivered_before(self.engine, [message.delivery_key for message in messages])
        pending = [
            (index, message)
            for index, message in enumerate(messages)
            if message.delivery_key not in earlier
        ]
        for index, message in enumerate(messages):
            results[index] = earlier.get(message.delivery_key)
        inboxes = self._inboxes({message.person.id for _index, message in pending})
        claimed: dict[int, int] = {}  # person id -> bytes of the messages kept so far
        filings = []
        for index, message in pending:
            found = inboxes.get(message.person.id)
            if found is None:
                raise NotFoundError("mailbox", f"{message.person.login}/{INBOX}")
            mailbox, used, limit = found
            data = to_crlf(message.data)
            wanted = used + claimed.get(mailbox.person_id, 0) + len(data)
            if wanted > limit:
                continue
            claimed[mailbox.person_id] = wanted - used
            filings.append(
                Filing(index, mailbox.id, mailbox.person_id, limit, data, message.delivery_key)
            )
        return filings

    def _write_and_prepare(self, contents: Sequence[bytes]) -> tuple[list[Prepared], list[str]]:
        """The files written durably and their index data, computed side by side.

        Another thread parses while this one writes: write and fsync release the GIL,
        so the parsing runs during the fsyncs; both precede the index rows. On an
        error no file stays.
        """
        parsing = self._parser.submit(lambda: [prepare(data) for data in contents])
        try:
            paths = self.files.write_many(contents)
        except BaseException:
            parsing.cancel()
            raise
        try:
            prepared = parsing.result()
        except BaseException:
            for path in paths:
                self.files.remove(path)
            raise
        return prepared, paths

    def _mailbox_checking_quota(
        self, person: Person, mailbox_name: str, size: int
    ) -> tuple[Mailbox, int]:
        """The mailbox and the person's quota, after a first check (before any file).

        The quota is read from the directory's table, as COPY and MOVE do, so that a
        change by an administrator applies at once whatever ``person`` holds.

        Raises:
            NotFoundError: no such mailbox.
            QuotaExceededError: ``size`` more bytes would exceed the quota.
        """
        try:
            name = check_mailbox_name(mailbox_name)
        except MailboxNameError as error:
            raise NotFoundError("mailbox", mailbox_name) from error
        with self.engine.connect() as conn:
            row = conn.execute(_MAILBOX_AND_USAGE, {"b_person": person.id, "b_name": name}).first()
        if row is None:
            raise NotFoundError("mailbox", mailbox_name)
        used, limit = int(row.used_bytes or 0), int(row.quota_bytes)
        if used + size > limit:
            raise QuotaExceededError(person.login, used, limit)
        return _mailbox_from_row(row), limit

    def _inboxes(self, person_ids: Iterable[int]) -> dict[int, tuple[Mailbox, int, int]]:
        """Person id -> ``(INBOX, used bytes, quota bytes)``, read as for one append."""
        ordered = sorted(person_ids)
        found = {}
        with self.engine.connect() as conn:
            for start in range(0, len(ordered), _MAX_BOUND_VALUES):
                chunk = ordered[start : start + _MAX_BOUND_VALUES]
                for row in conn.execute(_INBOXES, {"b_persons": chunk}):
                    mailbox = _mailbox_from_row(row)
                    found[mailbox.person_id] = (
                        mailbox,
                        int(row.used_bytes or 0),
                        int(row.quota_bytes),
                    )
        return found

    def _index_new(self, person: Person, quota_bytes: int, row: NewRow) -> AppendResult:
        """Index one appended message; ``row`` without its UID and MODSEQ yet."""
        with self.engine.begin() as conn:
            # The mailbox row first, then the usage row: the order copy() and move()
            # take them in too, so that concurrent writers never deadlock.
            uid, modseq, uidvalidity = allocate(conn, row.mailbox_id, 1)
            if not charge_quota(conn, person.id, [row.prepared.size], quota_bytes)[0]:
                used = conn.execute(_USED_BYTES, {"b_person": person.id}).scalar()
                raise QuotaExceededError(person.login, int(used or 0), quota_bytes)
            insert_messages(conn, self.text_index, [replace(row, uid=uid, modseq=modseq)])
        return AppendResult(row.mailbox_id, uidvalidity, uid)

    def _bump_modseq(self, conn: Connection, mailbox_id: int) -> int:
        return int(conn.execute(_BUMP_MODSEQ, {"b_id": mailbox_id}).scalar_one())

    # --- reading -------------------------------------------------------------------

    def messages(self, mailbox_id: int, uids: Iterable[int] | None = None) -> list[MessageInfo]:
        """Messages of a mailbox in UID order (all, or those of ``uids``)."""
        query = (
            select(*_MESSAGE_COLUMNS)
            .join(mail_blobs, mail_blobs.c.id == mail_messages.c.blob_id)
            .where(mail_messages.c.mailbox_id == mailbox_id)
            .order_by(mail_messages.c.uid)
        )
        with self.engine.connect() as conn:
            if uids is None:
                rows = conn.execute(query).all()
            else:
                rows = []
                for condition in _uid_conditions(uids):
                    rows.extend(conn.execute(query.where(condition)))
                rows.sort(key=lambda row: row.uid)
        return [_message_from_row(row) for row in rows]

    def changes(
        self, mailbox_id: int, since_modseq: int
    ) -> tuple[list[MessageInfo], list[int], int]:
        """What changed after ``since_modseq``: ``(messages, expunged uids, highest modseq)``.

        Costs time in proportion to the changes, not to the mailbox (indexed on modseq).
        The highest modseq is read first and bounds both queries: a change committed
        between the queries is left for the next call instead of being skipped.
        """
        with self.engine.connect() as conn:
            highest = int(conn.execute(_HIGHEST_MODSEQ, {"b_id": mailbox_id}).scalar() or 0)
            if highest <= since_modseq:
                return [], [], highest
            bounds = {"b_mailbox": mailbox_id, "b_since": since_modseq, "b_highest": highest}
            rows = conn.execute(_CHANGED_MESSAGES, bounds).all()
            expunged = [int(row.uid) for row in conn.execute(_CHANGED_EXPUNGED, bounds)]
        return [_message_from_row(row) for row in rows], expunged, highest

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
        recent: list[int] = []
        announced = announced or {}
        kept: list[Any] = []
        with self.engine.begin() as conn:
            highest = int(conn.execute(_HIGHEST_MODSEQ, {"b_id": mailbox_id}).scalar() or 0)
            if highest <= since_modseq:
                return Changes([], [], highest, [])  # nothing happened: the usual case
            bounds = {"b_mailbox": mailbox_id, "b_since": since_modseq, "b_highest": highest}
            has_new_recent = False
            for chunk in conn.execute(_CHANGED_FLAGS, bounds).partitions(100):
                for uid, blob_id, flags, modseq, is_recent in chunk:
                    if take_recent_after is not None and uid > take_recent_after and is_recent:
                        has_new_recent = True
                    if announced.get(uid) != modseq:
                        kept.append((uid, blob_id, flags, modseq))
            expunged = [int(row.uid) for row in conn.execute(_CHANGED_EXPUNGED, bounds)]
            if has_new_recent:
                recent = sorted(
                    int(row.uid)
                    for row in conn.execute(
                        _TAKE_RECENT, {"b_mailbox": mailbox_id, "b_largest": MAX_UID}
                    )
                )
        return Changes(_index_rows(kept, ["flags", "modseq"]), expunged, highest, recent)

    def counts(self, mailbox_id: int) -> dict[str, int]:
        """MESSAGES, UNSEEN, RECENT, DELETED and SIZE of a mailbox (STATUS), by SQL aggregates."""
        flags = mail_messages.c.flags
        with self.engine.connect() as conn:
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

    def blob_meta(self, blob_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """Envelope, structure and sort keys of blobs, decoded from the index."""
        found: dict[int, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(blob_ids), 500):
                chunk = blob_ids[start : start + 500]
                for row in conn.execute(select(mail_blobs).where(mail_blobs.c.id.in_(chunk))):
                    found[int(row.id)] = {
                        "envelope": json.loads(row.envelope),
                        "structure": row.structure,
                        "sent_date": _aware(row.sent_date) if row.sent_date else None,
                        "subject_sort": row.subject_sort,
                        "from_sort": row.from_sort,
                        "to_sort": row.to_sort,
                        "cc_sort": row.cc_sort,
                        "has_attachment": bool(row.has_attachment),
                        "size": int(row.size),
                        "path": row.path,
                    }
        return found

    def structure(self, blob_id: int) -> mime.Part:
        """The MIME structure of a blob."""
        with self.engine.connect() as conn:
            raw = conn.execute(
                select(mail_blobs.c.structure).where(mail_blobs.c.id == blob_id)
            ).scalar_one()
        return mime.part_from_json(json.loads(raw))

    def search_text(self, field: str | None, query: str) -> set[int]:
        """Blob ids whose text matches (see ``mail.text_index``)."""
        with self.engine.connect() as conn:
            return self.text_index.blob_ids(conn, field, query)

    def usage(self, person_id: int) -> tuple[int, int]:
        """``(bytes, messages)`` stored for a person."""
        with self.engine.connect() as conn:
            row = conn.execute(_USAGE, {"b_person": person_id}).first()
        return (int(row.bytes), int(row.messages)) if row else (0, 0)

    def clear_recent(self, mailbox_id: int) -> list[int]:
        """Take the \\Recent flag for this session (RFC 3501 §2.3.2): the UIDs it had."""
        with self.engine.begin() as conn:
            return sorted(
                int(row.uid)
                for row in conn.execute(
                    _TAKE_RECENT, {"b_mailbox": mailbox_id, "b_largest": MAX_UID}
                )
            )

    def view(self, mailbox_id: int, *, take_recent: bool) -> MailboxView | None:
        """What SELECT (``take_recent``) or EXAMINE announces; None if the mailbox is gone.

        One pass over ``(uid, flags, is_recent)``: no message objects, no blob join.
        """
        with self.engine.begin() as conn:
            known = conn.execute(_HIGHEST_MODSEQ, {"b_id": mailbox_id}).scalar()
            if known is None:
                return None
            uids: list[int] = []
            flag_texts: set[str] = set()
            recent: set[int] = set()
            first_unseen: int | None = None
            # In small chunks: rows held in thousands outlive young collections and are
            # promoted, which brings on full collections (~90 ms over this process's
            # heap) every few SELECTs; a hundred at a time, they die young.
            for chunk in conn.execute(_VIEW, {"b_mailbox": mailbox_id}).partitions(100):
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
                        _TAKE_RECENT, {"b_mailbox": mailbox_id, "b_largest": uids[-1]}
                    )
                }
            row = conn.execute(_MAILBOX_BY_ID, {"b_id": mailbox_id}).first()
        if row is None:
            return None
        keywords = {
            flag for flags in flag_texts for flag in flags.split() if flag not in SYSTEM_FLAGS
        }
        return MailboxView(
            mailbox=_mailbox_from_row(row),
            known_modseq=int(known),
            uids=uids,
            keywords=frozenset(keywords),
            first_unseen=first_unseen,
            recent=frozenset(recent),
        )

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
        names = sorted(set(fields))
        unknown = set(names) - INDEX_FIELDS
        if unknown:
            raise ValueError(f"unknown index fields {sorted(unknown)}")
        columns = [_ROW_COLUMNS[name] for name in names]
        where = _prefilter_condition(prefilter) if prefilter is not None else None
        query = select(mail_messages.c.uid, mail_messages.c.blob_id, *columns).where(
            mail_messages.c.mailbox_id == mailbox_id
        )
        if where is not None:
            query = query.where(where)
        uses_blob = any(column.table is mail_blobs for column in columns) or (
            prefilter is not None and _uses_header_text(prefilter)
        )
        if uses_blob:
            query = query.join(mail_blobs, mail_blobs.c.id == mail_messages.c.blob_id)
        query = query.order_by(mail_messages.c.uid)
        with self.engine.connect() as conn:
            if uids is None:
                found = conn.execute(query).all()
            else:
                conditions = _uid_conditions(uids)
                found = []
                for condition in conditions:
                    found.extend(conn.execute(query.where(condition)).all())
                if len(conditions) > 1:
                    found.sort(key=lambda row: row[0])
        return _index_rows(found, names)

    def expunged_since(self, mailbox_id: int, modseq: int) -> list[int]:
        """UIDs expunged after ``modseq`` (QRESYNC VANISHED)."""
        with self.engine.connect() as conn:
            return [
                int(row.uid)
                for row in conn.execute(
                    select(mail_expunged.c.uid)
                    .where(
                        mail_expunged.c.mailbox_id == mailbox_id, mail_expunged.c.modseq > modseq
                    )
                    .order_by(mail_expunged.c.uid)
                )
            ]

    # --- changing messages -----------------------------------------------------------

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
        wanted = normalize_flags(flags)
        conditions = _uid_conditions(uids)
        if not conditions:
            return [], []
        with self.engine.connect() as conn:
            outcomes, failed = self._flag_outcomes(
                conn, mailbox_id, conditions, mode, wanted, unchanged_since
            )
        if not outcomes:
            return [], failed
        changed: list[tuple[int, frozenset[str], int]] = []
        in_mailbox = mail_messages.c.mailbox_id == mailbox_id
        unchanged = [] if unchanged_since is None else [mail_messages.c.modseq <= unchanged_since]
        with self.engine.begin() as conn:
            # The new MODSEQ first: it locks the mailbox (SQLite: the database), so the
            # flags read again below cannot change before they are written.
            modseq = self._bump_modseq(conn, mailbox_id)
            outcomes, failed = self._flag_outcomes(
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
        self._notify(mailbox_id)
        changed.sort(key=lambda item: item[0])
        return changed, failed

    @staticmethod
    def _flag_outcomes(
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
                text_
                for (text_,) in conn.execute(distinct.where(in_mailbox, condition, *unchanged))
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
        self, mailbox_id: int, uids: Iterable[int], target_id: int
    ) -> tuple[int, list[tuple[int, int]]]:
        """Copy messages (sharing their files): ``(target uidvalidity, [(old uid, new uid)])``.

        Raises:
            QuotaExceededError: the copies would exceed the quota; nothing is copied.
        """
        sources = self.messages(mailbox_id, uids)
        target = self.mailbox_by_id(target_id)
        if target is None:
            raise NotFoundError("mailbox", str(target_id))
        if not sources:
            return target.uidvalidity, []
        total = sum(message.size for message in sources)
        with self.engine.begin() as conn:
            quota = conn.execute(
                select(mail_usage.c.bytes).where(mail_usage.c.person_id == target.person_id)
            ).scalar()
            limit = self._quota_of(conn, target.person_id)
            if (quota or 0) + total > limit:
                raise QuotaExceededError(str(target.person_id), int(quota or 0), limit)
            first_uid, modseq, uidvalidity = allocate(conn, target_id, len(sources))
            # executemany: one round of the driver's loop, not one statement per message.
            conn.execute(
                _INSERT_MESSAGE,
                [
                    {
                        "mailbox_id": target_id,
                        "uid": first_uid + offset,
                        "modseq": modseq,
                        "blob_id": message.blob_id,
                        "flags": _flags_text(message.flags),
                        "internal_date": message.internal_date,
                        "is_recent": True,
                        "delivery_key": None,
                    }
                    for offset, message in enumerate(sources)
                ],
            )
            conn.execute(_ADD_REFERENCE, [{"b_blob": message.blob_id} for message in sources])
            pairs = [(message.uid, first_uid + offset) for offset, message in enumerate(sources)]
            conn.execute(
                update(mail_usage)
                .where(mail_usage.c.person_id == target.person_id)
                .values(
                    bytes=mail_usage.c.bytes + total, messages=mail_usage.c.messages + len(sources)
                )
            )
        self._notify(target_id)
        return uidvalidity, pairs

    def move(
        self, mailbox_id: int, uids: Iterable[int], target_id: int
    ) -> tuple[int, list[tuple[int, int]]]:
        """Move messages (RFC 6851): ``(target uidvalidity, [(old uid, new uid)])``."""
        source = self.mailbox_by_id(mailbox_id)
        target = self.mailbox_by_id(target_id)
        if source is None or target is None:
            raise NotFoundError("mailbox", str(target_id if source else mailbox_id))
        sources = self.messages(mailbox_id, uids)
        if not sources:
            return target.uidvalidity, []
        total = sum(message.size for message in sources)
        with self.engine.begin() as conn:
            if source.person_id != target.person_id:
                limit = self._quota_of(conn, target.person_id)
                used = conn.execute(
                    select(mail_usage.c.bytes).where(mail_usage.c.person_id == target.person_id)
                ).scalar()
                if (used or 0) + total > limit:
                    raise QuotaExceededError(str(target.person_id), int(used or 0), limit)
            first_uid, modseq, uidvalidity = allocate(conn, target_id, len(sources))
            source_modseq = self._bump_modseq(conn, mailbox_id)
            pairs = [(message.uid, first_uid + offset) for offset, message in enumerate(sources)]
            conn.execute(
                _MOVE_MESSAGE,
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
        self._notify(mailbox_id)
        self._notify(target_id)
        return uidvalidity, pairs

    def expunge(self, mailbox_id: int, uids: Iterable[int] | None = None) -> list[int]:
        """Remove the messages flagged \\Deleted (among ``uids`` when given): their UIDs."""
        mailbox = self.mailbox_by_id(mailbox_id)
        if mailbox is None:
            raise NotFoundError("mailbox", str(mailbox_id))
        limit = None if uids is None else set(uids)
        # Only (uid, flags), and only of rows whose text mentions \\Deleted at all.
        with self.engine.connect() as conn:
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
            if "\\Deleted" in _flags_set(flags) and (limit is None or uid in limit)
        ]
        if not doomed:
            return []
        with self.engine.begin() as conn:
            orphans = self._remove_messages(conn, mailbox_id, mailbox.person_id, doomed, track=True)
        self._unlink(orphans)
        self._notify(mailbox_id)
        return doomed

    def _remove_messages(
        self, conn: Connection, mailbox_id: int, person_id: int, uids: list[int], *, track: bool
    ) -> list[str]:
        """Delete message rows; returns the files no message references any more."""
        if not uids:
            return []
        modseq = self._bump_modseq(conn, mailbox_id) if track else 0
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
                        insert(mail_expunged).values(
                            mailbox_id=mailbox_id, uid=row.uid, modseq=modseq
                        )
                    )
                remaining = conn.execute(
                    update(mail_blobs)
                    .where(mail_blobs.c.id == row.id)
                    .values(refcount=mail_blobs.c.refcount - 1)
                    .returning(mail_blobs.c.refcount)
                ).scalar_one()
                if remaining <= 0:
                    self.text_index.remove(conn, int(row.id))
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

    def _quota_of(self, conn: Connection, person_id: int) -> int:
        return int(
            conn.execute(
                select(persons.c.quota_bytes).where(persons.c.id == person_id)
            ).scalar_one()
        )

    def _unlink(self, paths: list[str]) -> None:
        # After the commit: a crash before this leaves orphan files, never dangling rows.
        for path in paths:
            self.files.remove(path)

    def _notify(self, mailbox_id: int) -> None:
        mailbox = self.mailbox_by_id(mailbox_id)
        if mailbox is not None:
            self.events.publish(
                MailboxChanged(mailbox.person_id, mailbox_id, mailbox.highest_modseq)
            )

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


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
