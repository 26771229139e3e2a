# SPDX-License-Identifier: GPL-3.0-or-later
"""Mailbox management of the mail store: the folders of a person (RFC 3501 §6.3).

Creating the default and special-use folders, looking mailboxes up, CREATE, DELETE,
RENAME and SUBSCRIBE. Split out of ``mail.store``; each public function here is the
body of the :class:`~groupware.mail.store.MailStore` method of the same name, which
documents it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from groupware.core.db import write_transaction
from groupware.core.directory import Person
from groupware.errors import ConflictError, NotFoundError
from groupware.mail.schema import mail_expunged, mail_messages, mail_usage, mailboxes
from groupware.mail.store_model import (
    DELIMITER,
    INBOX,
    SPECIAL_FOLDERS,
    SPECIAL_USES,
    Mailbox,
    MailboxNameError,
    check_mailbox_name,
    mailbox_from_row,
)
from groupware.mail.store_queries import MAILBOX_BY_ID
from groupware.mail.store_update import remove_messages, unlink

if TYPE_CHECKING:
    from groupware.mail.store import MailStore


def ensure_mailboxes(store: MailStore, person: Person) -> None:
    """The work of :meth:`MailStore.ensure_mailboxes` (documented there)."""
    with store.engine.connect() as conn:
        wanted, has_usage = _missing(conn, person)
    if not wanted and has_usage:
        return  # every login but the first: a read, no write lock
    # Reads, then writes under savepoints: the write lock first (see write_transaction).
    with write_transaction(store.engine) as conn:
        wanted, has_usage = _missing(conn, person)
        for name, use in wanted:
            # A first delivery and a first IMAP login may make them at the same time.
            try:
                with conn.begin_nested():
                    insert_mailbox(conn, person.id, name, use)
            except IntegrityError:
                pass  # made concurrently by another session (PostgreSQL)
        if not has_usage:
            try:
                with conn.begin_nested():
                    conn.execute(
                        insert(mail_usage).values(person_id=person.id, bytes=0, messages=0)
                    )
            except IntegrityError:
                pass  # made concurrently by another session (PostgreSQL)


def _missing(conn: Connection, person: Person) -> tuple[list[tuple[str, str]], bool]:
    """The special folders ``person`` lacks (name, use), and whether the usage row exists."""
    rows = conn.execute(
        select(mailboxes.c.name, mailboxes.c.special_use).where(mailboxes.c.person_id == person.id)
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
    has_usage = conn.execute(
        select(mail_usage.c.person_id).where(mail_usage.c.person_id == person.id)
    ).first()
    return wanted, has_usage is not None


def insert_mailbox(conn: Connection, person_id: int, name: str, special_use: str) -> int:
    # UIDVALIDITY (RFC 3501 §2.3.1.1): never reused for a name, so strictly
    # increasing per person: the clock, or one more than the highest given.
    uidvalidity = next_uidvalidity(conn, person_id)
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
    key = result.inserted_primary_key
    assert key is not None  # an INSERT of one row
    return int(key[0])


def next_uidvalidity(conn: Connection, person_id: int) -> int:
    highest = conn.execute(
        select(func.max(mailboxes.c.uidvalidity)).where(mailboxes.c.person_id == person_id)
    ).scalar()
    return max(int(time.time()), int(highest or 0) + 1)


def list_mailboxes(store: MailStore, person_id: int) -> list[Mailbox]:
    """The work of :meth:`MailStore.list_mailboxes` (documented there)."""
    with store.engine.connect() as conn:
        rows = conn.execute(select(mailboxes).where(mailboxes.c.person_id == person_id)).all()
    found = [mailbox_from_row(row) for row in rows]
    return sorted(found, key=lambda m: (m.name != INBOX, m.name.lower()))


def find_mailbox(store: MailStore, person_id: int, name: str) -> Mailbox | None:
    """The work of :meth:`MailStore.find_mailbox` (documented there)."""
    try:
        name = check_mailbox_name(name)
    except MailboxNameError:
        return None
    with store.engine.connect() as conn:
        row = conn.execute(
            select(mailboxes).where(mailboxes.c.person_id == person_id, mailboxes.c.name == name)
        ).first()
    return mailbox_from_row(row) if row else None


def get_mailbox(store: MailStore, person_id: int, name: str) -> Mailbox:
    """The work of :meth:`MailStore.get_mailbox` (documented there)."""
    found = store.find_mailbox(person_id, name)
    if found is None:
        raise NotFoundError("mailbox", name)
    return found


def mailbox_by_id(store: MailStore, mailbox_id: int) -> Mailbox | None:
    """The work of :meth:`MailStore.mailbox_by_id` (documented there)."""
    with store.engine.connect() as conn:
        row = conn.execute(MAILBOX_BY_ID, {"b_id": mailbox_id}).first()
    return mailbox_from_row(row) if row else None


def create_mailbox(store: MailStore, person_id: int, name: str, special_use: str = "") -> Mailbox:
    """The work of :meth:`MailStore.create_mailbox` (documented there)."""
    name = check_mailbox_name(name)
    if special_use and special_use not in SPECIAL_USES:
        raise MailboxNameError(f"unknown special use {special_use!r}")
    with store.engine.begin() as conn:
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
                insert_mailbox(conn, person_id, parent, "")
        insert_mailbox(conn, person_id, name, special_use)
    return store.get_mailbox(person_id, name)


def delete_mailbox(store: MailStore, person_id: int, name: str) -> None:
    """The work of :meth:`MailStore.delete_mailbox` (documented there)."""
    mailbox = store.get_mailbox(person_id, name)
    if mailbox.name == INBOX:
        raise MailboxNameError("INBOX cannot be deleted")
    with store.engine.begin() as conn:
        uids = [
            row.uid
            for row in conn.execute(
                select(mail_messages.c.uid).where(mail_messages.c.mailbox_id == mailbox.id)
            )
        ]
        orphans = remove_messages(store, conn, mailbox.id, person_id, uids, track=False)
        conn.execute(delete(mail_expunged).where(mail_expunged.c.mailbox_id == mailbox.id))
        conn.execute(delete(mailboxes).where(mailboxes.c.id == mailbox.id))
    unlink(store, orphans)


def rename_mailbox(store: MailStore, person_id: int, old: str, new: str) -> None:
    """The work of :meth:`MailStore.rename_mailbox` (documented there)."""
    source = store.get_mailbox(person_id, old)
    new = check_mailbox_name(new)
    if store.find_mailbox(person_id, new) is not None:
        raise ConflictError(f"mailbox {new} already exists")
    if source.name == INBOX:
        target = store.create_mailbox(person_id, new)
        with store.engine.begin() as conn:
            uids = [
                row.uid
                for row in conn.execute(
                    select(mail_messages.c.uid).where(mail_messages.c.mailbox_id == source.id)
                )
            ]
        store.move(source.id, uids, target.id)
        return
    if new.startswith(source.name + DELIMITER):
        raise MailboxNameError("a mailbox cannot be moved inside itself")
    with store.engine.begin() as conn:
        rows = conn.execute(
            select(mailboxes.c.id, mailboxes.c.name).where(mailboxes.c.person_id == person_id)
        ).all()
        names = {row.name for row in rows}
        levels = new.split(DELIMITER)
        for depth in range(1, len(levels)):
            parent = DELIMITER.join(levels[:depth])
            if parent not in names:
                insert_mailbox(conn, person_id, parent, "")
        for row in rows:
            if row.name == source.name or row.name.startswith(source.name + DELIMITER):
                renamed = new + row.name[len(source.name) :]
                # A renamed mailbox is a new one for clients: new UIDVALIDITY.
                conn.execute(
                    update(mailboxes)
                    .where(mailboxes.c.id == row.id)
                    .values(name=renamed, uidvalidity=next_uidvalidity(conn, person_id))
                )


def set_subscribed(store: MailStore, person_id: int, name: str, is_subscribed: bool) -> None:
    """The work of :meth:`MailStore.set_subscribed` (documented there)."""
    mailbox = store.get_mailbox(person_id, name)
    with store.engine.begin() as conn:
        conn.execute(
            update(mailboxes)
            .where(mailboxes.c.id == mailbox.id)
            .values(is_subscribed=is_subscribed)
        )
