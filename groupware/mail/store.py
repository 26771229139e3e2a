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

import contextlib
import json
import logging
import os
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Connection, Engine, case, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from groupware.core.directory import Person
from groupware.core.events import EventBus, MailboxChanged
from groupware.errors import ConflictError, GroupwareError, NotFoundError
from groupware.mail import mime, text
from groupware.mail.schema import (
    mail_blobs,
    mail_expunged,
    mail_messages,
    mail_usage,
    mailboxes,
    metadata,
)
from groupware.mail.text_index import TextIndex, text_index_for

log = logging.getLogger(__name__)

INBOX: Final = "INBOX"
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


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Where an appended message landed (RFC 4315 APPENDUID)."""

    mailbox_id: int
    uidvalidity: int
    uid: int


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


class BlobFiles:
    """Immutable message files under one folder, written durably."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def write(self, data: bytes) -> str:
        """Store ``data`` durably; returns its path relative to the root."""
        name = secrets.token_hex(16)
        relative = f"{name[:2]}/{name[2:4]}/{name}.eml"
        target = self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, target)
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return relative

    def read(self, relative: str) -> bytes:
        """The bytes of one file."""
        return (self.root / relative).read_bytes()

    def read_range(self, relative: str, start: int, end: int) -> bytes:
        """``data[start:end]`` of one file without reading the rest."""
        with (self.root / relative).open("rb") as handle:
            handle.seek(start)
            return handle.read(max(0, end - start))

    def remove(self, relative: str) -> None:
        """Delete one file (missing is fine: removal is idempotent)."""
        with contextlib.suppress(FileNotFoundError):
            (self.root / relative).unlink()


@dataclass(frozen=True, slots=True)
class _Prepared:
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


def prepare(data: bytes) -> _Prepared:
    """Everything the index keeps about a message, computed from its bytes once."""
    data = mime.to_crlf(data)
    top, envelope = mime.parse_message(data)
    subject = text.decode_words(envelope["subject"])
    addresses = []
    for key in ("from", "to", "cc", "bcc", "reply-to"):
        addresses.extend(text.display_names(envelope[key]))
    return _Prepared(
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
    )


class MailStore:
    """Mailboxes and messages of every person."""

    def __init__(self, engine: Engine, root: Path, events: EventBus) -> None:
        self.engine = engine
        self.files = BlobFiles(root / "blobs")
        self.events = events
        self.text_index: TextIndex = text_index_for(engine)
        metadata.create_all(engine)
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
            if INBOX not in names:
                self._insert_mailbox(conn, person.id, INBOX, "")
            for name, use in SPECIAL_FOLDERS.get(person.language, SPECIAL_FOLDERS["en"]):
                if use not in uses and name not in names:
                    self._insert_mailbox(conn, person.id, name, use)
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
            row = conn.execute(select(mailboxes).where(mailboxes.c.id == mailbox_id)).first()
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

        Raises:
            NotFoundError: no such mailbox.
            QuotaExceededError: the person's quota would be exceeded; nothing is stored.
        """
        if delivery_key is not None:
            earlier = self._delivered(delivery_key)
            if earlier is not None:
                return earlier
        prepared = prepare(data)
        mailbox = self.get_mailbox(person.id, mailbox_name)
        self._check_quota(person, prepared.size)
        path = self.files.write(prepared.data)
        try:
            result = self._index_new(
                person, mailbox, prepared, path, flags, internal_date, delivery_key
            )
        except BaseException:
            self.files.remove(path)
            raise
        self.events.publish(MailboxChanged(person.id, mailbox.id, 0))
        return result

    def _check_quota(self, person: Person, size: int) -> None:
        with self.engine.connect() as conn:
            used = conn.execute(
                select(mail_usage.c.bytes).where(mail_usage.c.person_id == person.id)
            ).scalar()
        if (used or 0) + size > person.quota_bytes:
            raise QuotaExceededError(person.login, int(used or 0), person.quota_bytes)

    def _index_new(
        self,
        person: Person,
        mailbox: Mailbox,
        prepared: _Prepared,
        path: str,
        flags: Iterable[str],
        internal_date: datetime | None,
        delivery_key: str | None = None,
    ) -> AppendResult:
        with self.engine.begin() as conn:
            charged = conn.execute(
                update(mail_usage)
                .where(
                    mail_usage.c.person_id == person.id,
                    mail_usage.c.bytes + prepared.size <= person.quota_bytes,
                )
                .values(
                    bytes=mail_usage.c.bytes + prepared.size,
                    messages=mail_usage.c.messages + 1,
                )
            )
            if charged.rowcount == 0:
                used = conn.execute(
                    select(mail_usage.c.bytes).where(mail_usage.c.person_id == person.id)
                ).scalar()
                raise QuotaExceededError(person.login, int(used or 0), person.quota_bytes)
            blob_id = int(
                conn.execute(
                    insert(mail_blobs).values(
                        path=path,
                        size=prepared.size,
                        refcount=1,
                        envelope=prepared.envelope,
                        structure=prepared.structure,
                        sent_date=prepared.sent_date,
                        subject_sort=prepared.subject_sort,
                        from_sort=prepared.from_sort,
                        to_sort=prepared.to_sort,
                        cc_sort=prepared.cc_sort,
                        message_id=prepared.message_id,
                        has_attachment=prepared.has_attachment,
                    )
                ).inserted_primary_key[0]
            )
            self.text_index.add(
                conn, blob_id, prepared.subject_text, prepared.addresses_text, prepared.body_text
            )
            uid, modseq, uidvalidity = self._allocate(conn, mailbox.id, 1)
            conn.execute(
                insert(mail_messages).values(
                    mailbox_id=mailbox.id,
                    uid=uid,
                    modseq=modseq,
                    blob_id=blob_id,
                    flags=_flags_text(normalize_flags(flags)),
                    # The index keeps naive UTC (SQLite drops the zone): convert, so the
                    # instant survives and not just the wall-clock reading.
                    internal_date=(internal_date or datetime.now(UTC)).astimezone(UTC),
                    is_recent=True,
                    delivery_key=delivery_key,
                )
            )
        return AppendResult(mailbox.id, uidvalidity, uid)

    def _delivered(self, delivery_key: str) -> AppendResult | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(mail_messages.c.mailbox_id, mail_messages.c.uid, mailboxes.c.uidvalidity)
                .join(mailboxes, mailboxes.c.id == mail_messages.c.mailbox_id)
                .where(mail_messages.c.delivery_key == delivery_key)
            ).first()
        return (
            AppendResult(int(row.mailbox_id), int(row.uidvalidity), int(row.uid)) if row else None
        )

    def _allocate(self, conn: Connection, mailbox_id: int, count: int) -> tuple[int, int, int]:
        """Reserve ``count`` UIDs and one MODSEQ: ``(first uid, modseq, uidvalidity)``."""
        row = conn.execute(
            select(mailboxes.c.uid_next, mailboxes.c.highest_modseq, mailboxes.c.uidvalidity)
            .where(mailboxes.c.id == mailbox_id)
            .with_for_update()
        ).one()
        modseq = row.highest_modseq + 1
        conn.execute(
            update(mailboxes)
            .where(mailboxes.c.id == mailbox_id)
            .values(uid_next=row.uid_next + count, highest_modseq=modseq)
        )
        return int(row.uid_next), int(modseq), int(row.uidvalidity)

    def _bump_modseq(self, conn: Connection, mailbox_id: int) -> int:
        row = conn.execute(
            select(mailboxes.c.highest_modseq).where(mailboxes.c.id == mailbox_id).with_for_update()
        ).one()
        modseq = int(row.highest_modseq) + 1
        conn.execute(
            update(mailboxes).where(mailboxes.c.id == mailbox_id).values(highest_modseq=modseq)
        )
        return modseq

    # --- reading -------------------------------------------------------------------

    def messages(self, mailbox_id: int, uids: Iterable[int] | None = None) -> list[MessageInfo]:
        """Messages of a mailbox in UID order (all, or those of ``uids``)."""
        query = (
            select(
                mail_messages.c.uid,
                mail_messages.c.modseq,
                mail_messages.c.flags,
                mail_messages.c.internal_date,
                mail_messages.c.is_recent,
                mail_blobs.c.id.label("blob_id"),
                mail_blobs.c.size,
                mail_blobs.c.path,
            )
            .join(mail_blobs, mail_blobs.c.id == mail_messages.c.blob_id)
            .where(mail_messages.c.mailbox_id == mailbox_id)
            .order_by(mail_messages.c.uid)
        )
        wanted = None if uids is None else set(uids)
        if wanted is not None and len(wanted) <= 500:
            query = query.where(mail_messages.c.uid.in_(wanted))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            MessageInfo(
                uid=int(row.uid),
                modseq=int(row.modseq),
                flags=_flags_set(row.flags),
                internal_date=_aware(row.internal_date),
                size=int(row.size),
                blob_id=int(row.blob_id),
                blob_path=row.path,
                is_recent=bool(row.is_recent),
            )
            for row in rows
            if wanted is None or row.uid in wanted
        ]

    def changes(
        self, mailbox_id: int, since_modseq: int
    ) -> tuple[list[MessageInfo], list[int], int]:
        """What changed after ``since_modseq``: ``(messages, expunged uids, highest modseq)``.

        Costs time in proportion to the changes, not to the mailbox (indexed on modseq).
        The highest modseq is read first and bounds both queries: a change committed
        between the queries is left for the next call instead of being skipped.
        """
        with self.engine.connect() as conn:
            highest = int(
                conn.execute(
                    select(mailboxes.c.highest_modseq).where(mailboxes.c.id == mailbox_id)
                ).scalar()
                or 0
            )
        query = (
            select(
                mail_messages.c.uid,
                mail_messages.c.modseq,
                mail_messages.c.flags,
                mail_messages.c.internal_date,
                mail_messages.c.is_recent,
                mail_blobs.c.id.label("blob_id"),
                mail_blobs.c.size,
                mail_blobs.c.path,
            )
            .join(mail_blobs, mail_blobs.c.id == mail_messages.c.blob_id)
            .where(
                mail_messages.c.mailbox_id == mailbox_id,
                mail_messages.c.modseq > since_modseq,
                mail_messages.c.modseq <= highest,
            )
            .order_by(mail_messages.c.uid)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            expunged = [
                int(row.uid)
                for row in conn.execute(
                    select(mail_expunged.c.uid)
                    .where(
                        mail_expunged.c.mailbox_id == mailbox_id,
                        mail_expunged.c.modseq > since_modseq,
                        mail_expunged.c.modseq <= highest,
                    )
                    .order_by(mail_expunged.c.uid)
                )
            ]
        messages = [
            MessageInfo(
                uid=int(row.uid),
                modseq=int(row.modseq),
                flags=_flags_set(row.flags),
                internal_date=_aware(row.internal_date),
                size=int(row.size),
                blob_id=int(row.blob_id),
                blob_path=row.path,
                is_recent=bool(row.is_recent),
            )
            for row in rows
        ]
        return messages, expunged, highest

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
            row = conn.execute(
                select(mail_usage.c.bytes, mail_usage.c.messages).where(
                    mail_usage.c.person_id == person_id
                )
            ).first()
        return (int(row.bytes), int(row.messages)) if row else (0, 0)

    def clear_recent(self, mailbox_id: int) -> list[int]:
        """Take the \\Recent flag for this session (RFC 3501 §2.3.2): the UIDs it had."""
        with self.engine.begin() as conn:
            uids = [
                int(row.uid)
                for row in conn.execute(
                    select(mail_messages.c.uid).where(
                        mail_messages.c.mailbox_id == mailbox_id,
                        mail_messages.c.is_recent.is_(True),
                    )
                )
            ]
            if uids:
                conn.execute(
                    update(mail_messages)
                    .where(
                        mail_messages.c.mailbox_id == mailbox_id,
                        mail_messages.c.is_recent.is_(True),
                    )
                    .values(is_recent=False)
                )
        return uids

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

        Returns:
            ``([(uid, new flags, modseq)] of changed messages, [uids failing UNCHANGEDSINCE])``.
        """
        wanted = normalize_flags(flags)
        changed: list[tuple[int, frozenset[str], int]] = []
        failed: list[int] = []
        uid_list = sorted(set(uids))
        with self.engine.begin() as conn:
            rows = []
            for start in range(0, len(uid_list), 500):
                rows.extend(
                    conn.execute(
                        select(
                            mail_messages.c.id,
                            mail_messages.c.uid,
                            mail_messages.c.flags,
                            mail_messages.c.modseq,
                        ).where(
                            mail_messages.c.mailbox_id == mailbox_id,
                            mail_messages.c.uid.in_(uid_list[start : start + 500]),
                        )
                    ).all()
                )
            updates = []
            for row in rows:
                if unchanged_since is not None and row.modseq > unchanged_since:
                    failed.append(int(row.uid))
                    continue
                current = _flags_set(row.flags)
                if mode == "add":
                    new = current | wanted
                elif mode == "remove":
                    new = current - wanted
                else:
                    new = wanted
                if new != current:
                    updates.append((row.id, int(row.uid), new))
            if updates:
                modseq = self._bump_modseq(conn, mailbox_id)
                for row_id, uid, new in updates:
                    conn.execute(
                        update(mail_messages)
                        .where(mail_messages.c.id == row_id)
                        .values(flags=_flags_text(new), modseq=modseq)
                    )
                    changed.append((uid, new, modseq))
        if changed:
            self._notify(mailbox_id)
        return changed, sorted(failed)

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
        pairs: list[tuple[int, int]] = []
        with self.engine.begin() as conn:
            quota = conn.execute(
                select(mail_usage.c.bytes).where(mail_usage.c.person_id == target.person_id)
            ).scalar()
            limit = self._quota_of(conn, target.person_id)
            if (quota or 0) + total > limit:
                raise QuotaExceededError(str(target.person_id), int(quota or 0), limit)
            first_uid, modseq, uidvalidity = self._allocate(conn, target_id, len(sources))
            for offset, message in enumerate(sources):
                new_uid = first_uid + offset
                conn.execute(
                    insert(mail_messages).values(
                        mailbox_id=target_id,
                        uid=new_uid,
                        modseq=modseq,
                        blob_id=message.blob_id,
                        flags=_flags_text(message.flags),
                        internal_date=message.internal_date,
                        is_recent=True,
                    )
                )
                conn.execute(
                    update(mail_blobs)
                    .where(mail_blobs.c.id == message.blob_id)
                    .values(refcount=mail_blobs.c.refcount + 1)
                )
                pairs.append((message.uid, new_uid))
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
        pairs: list[tuple[int, int]] = []
        total = sum(message.size for message in sources)
        with self.engine.begin() as conn:
            if source.person_id != target.person_id:
                limit = self._quota_of(conn, target.person_id)
                used = conn.execute(
                    select(mail_usage.c.bytes).where(mail_usage.c.person_id == target.person_id)
                ).scalar()
                if (used or 0) + total > limit:
                    raise QuotaExceededError(str(target.person_id), int(used or 0), limit)
            first_uid, modseq, uidvalidity = self._allocate(conn, target_id, len(sources))
            source_modseq = self._bump_modseq(conn, mailbox_id)
            for offset, message in enumerate(sources):
                new_uid = first_uid + offset
                conn.execute(
                    update(mail_messages)
                    .where(
                        mail_messages.c.mailbox_id == mailbox_id, mail_messages.c.uid == message.uid
                    )
                    .values(mailbox_id=target_id, uid=new_uid, modseq=modseq, is_recent=True)
                )
                conn.execute(
                    insert(mail_expunged).values(
                        mailbox_id=mailbox_id, uid=message.uid, modseq=source_modseq
                    )
                )
                pairs.append((message.uid, new_uid))
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
        doomed = [
            message.uid
            for message in self.messages(mailbox_id)
            if "\\Deleted" in message.flags and (limit is None or message.uid in limit)
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
        from groupware.core.db import persons

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
