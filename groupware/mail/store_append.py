# SPDX-License-Identifier: GPL-3.0-or-later
"""Adding messages to the mail store: APPEND and delivery (one or many at once).

The quota is checked before any file is written and again in the transaction; files
are written and fsynced while another thread parses them (``store_write`` holds what a
new message puts in the index). Split out of ``mail.store``; each public function here
is the body of the :class:`~groupware.mail.store.MailStore` method of the same name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from groupware.core.directory import Person
from groupware.core.events import MailboxChanged
from groupware.errors import NotFoundError
from groupware.mail.store_model import (
    INBOX,
    Mailbox,
    MailboxNameError,
    QuotaExceededError,
    check_mailbox_name,
    flags_text,
    mailbox_from_row,
    normalize_flags,
)
from groupware.mail.store_queries import INBOXES, MAILBOX_AND_USAGE, MAX_BOUND_VALUES, USED_BYTES
from groupware.mail.store_write import (
    AppendResult,
    Filing,
    InboxDelivery,
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

if TYPE_CHECKING:
    from groupware.mail.store import MailStore


def append(
    store: MailStore,
    person: Person,
    mailbox_name: str,
    data: bytes,
    flags: Iterable[str] = (),
    internal_date: datetime | None = None,
    delivery_key: str | None = None,
    *,
    recent_taken_in: int | None = None,
) -> AppendResult:
    """The work of :meth:`MailStore.append` (documented there)."""
    if delivery_key is not None:
        earlier = delivered_before(store.engine, [delivery_key]).get(delivery_key)
        if earlier is not None:
            return earlier
    data = to_crlf(data)
    mailbox, quota_bytes = mailbox_checking_quota(store, person, mailbox_name, len(data))
    [prepared], [path] = write_and_prepare(store, [data])
    row = NewRow(
        prepared=prepared,
        path=path,
        mailbox_id=mailbox.id,
        uid=0,
        modseq=0,
        flags=flags_text(normalize_flags(flags)),
        # The index keeps naive UTC (SQLite drops the zone): convert, so the
        # instant survives and not just the wall-clock reading.
        internal_date=(internal_date or datetime.now(UTC)).astimezone(UTC),
        is_recent=mailbox.id != recent_taken_in,
        delivery_key=delivery_key,
    )
    try:
        result = index_new(store, person, quota_bytes, row)
    except BaseException:
        store.files.remove(path)
        raise
    store.events.publish(MailboxChanged(person.id, mailbox.id, 0))
    return result


def deliver_many(store: MailStore, messages: Sequence[InboxDelivery]) -> list[AppendResult | None]:
    """The work of :meth:`MailStore.deliver_many` (documented there)."""
    results: list[AppendResult | None] = [None] * len(messages)
    filings = pending_filings(store, messages, results)
    if not filings:
        return results
    prepared, paths = write_and_prepare(store, [filing.data for filing in filings])
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
        stored = set(index_filings(store.engine, store.text_index, filings))
    except BaseException:
        for path in paths:
            store.files.remove(path)
        raise
    for filing in filings:
        if filing in stored:
            results[filing.index] = AppendResult(
                filing.mailbox_id, filing.uidvalidity, filing.row.uid
            )
        else:
            store.files.remove(filing.row.path)  # refused by the quota meanwhile
    for mailbox_id, filing in {f.mailbox_id: f for f in stored}.items():
        store.events.publish(MailboxChanged(filing.person_id, mailbox_id, filing.row.modseq))
    return results


def pending_filings(
    store: MailStore, messages: Sequence[InboxDelivery], results: list[AppendResult | None]
) -> list[Filing]:
    """The messages still to store and with room for them; ``results`` of the others.

    A delivery key seen before gets its first result; a message over the quota as
    read now gets None and no file (the transaction checks the quota again).
    """
    earlier = delivered_before(store.engine, [message.delivery_key for message in messages])
    pending = [
        (index, message)
        for index, message in enumerate(messages)
        if message.delivery_key not in earlier
    ]
    for index, message in enumerate(messages):
        results[index] = earlier.get(message.delivery_key)
    inboxes = read_inboxes(store, {message.person.id for _index, message in pending})
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


def write_and_prepare(
    store: MailStore, contents: Sequence[bytes]
) -> tuple[list[Prepared], list[str]]:
    """The files written durably and their index data, computed side by side.

    Another thread parses while this one writes: write and fsync release the GIL,
    so the parsing runs during the fsyncs; both precede the index rows. On an
    error no file stays.
    """
    parsing = store.parser_pool.submit(lambda: [prepare(data) for data in contents])
    try:
        paths = store.files.write_many(contents)
    except BaseException:
        parsing.cancel()
        raise
    try:
        prepared = parsing.result()
    except BaseException:
        for path in paths:
            store.files.remove(path)
        raise
    return prepared, paths


def mailbox_checking_quota(
    store: MailStore, person: Person, mailbox_name: str, size: int
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
    with store.engine.connect() as conn:
        row = conn.execute(MAILBOX_AND_USAGE, {"b_person": person.id, "b_name": name}).first()
    if row is None:
        raise NotFoundError("mailbox", mailbox_name)
    used, limit = int(row.used_bytes or 0), int(row.quota_bytes)
    if used + size > limit:
        raise QuotaExceededError(person.login, used, limit)
    return mailbox_from_row(row), limit


def read_inboxes(
    store: MailStore, person_ids: Iterable[int]
) -> dict[int, tuple[Mailbox, int, int]]:
    """Person id -> ``(INBOX, used bytes, quota bytes)``, read as for one append."""
    ordered = sorted(person_ids)
    found = {}
    with store.engine.connect() as conn:
        for start in range(0, len(ordered), MAX_BOUND_VALUES):
            chunk = ordered[start : start + MAX_BOUND_VALUES]
            for row in conn.execute(INBOXES, {"b_persons": chunk}):
                mailbox = mailbox_from_row(row)
                found[mailbox.person_id] = (
                    mailbox,
                    int(row.used_bytes or 0),
                    int(row.quota_bytes),
                )
    return found


def index_new(store: MailStore, person: Person, quota_bytes: int, row: NewRow) -> AppendResult:
    """Index one appended message; ``row`` without its UID and MODSEQ yet."""
    with store.engine.begin() as conn:
        # The mailbox row first, then the usage row: the order copy() and move()
        # take them in too, so that concurrent writers never deadlock.
        uid, modseq, uidvalidity = allocate(conn, row.mailbox_id, 1)
        if not charge_quota(conn, person.id, [row.prepared.size], quota_bytes)[0]:
            used = conn.execute(USED_BYTES, {"b_person": person.id}).scalar()
            raise QuotaExceededError(person.login, int(used or 0), quota_bytes)
        insert_messages(conn, store.text_index, [replace(row, uid=uid, modseq=modseq)])
    return AppendResult(row.mailbox_id, uidvalidity, uid)
