# SPDX-License-Identifier: GPL-3.0-or-later
"""The SQL the mail store's parts share: prebuilt statements, conditions, row decoding.

Split out of ``mail.store``: the statements are used by more than one part
(``store_read``, ``store_sync``, ``store_update``, ``store_append``), and building them
once at import is the point (see below).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, and_, bindparam, false, insert, or_, select, true, update

from groupware.mail.schema import (
    mail_blobs,
    mail_expunged,
    mail_messages,
    mail_usage,
    mailboxes,
    persons,
)
from groupware.mail.store_model import (
    INBOX,
    AnyOf,
    BlobIn,
    HeaderContains,
    IndexRow,
    MessageInfo,
    Prefilter,
    aware,
    flags_set,
)

# Statements of the busy paths, built once: SQLAlchemy then skips building the
# expression and computing its cache key on every call (a good part of an APPEND).
# Bound names start with "b_" so that they never clash with a column in SET.
MAILBOX_BY_ID: Final = select(mailboxes).where(mailboxes.c.id == bindparam("b_id"))
MAILBOXES_BY_IDS: Final = select(mailboxes).where(
    mailboxes.c.id.in_(bindparam("b_ids", expanding=True))
)
MAILBOX_AND_USAGE: Final = (
    select(
        mailboxes,
        mail_usage.c.bytes.label("used_bytes"),
        persons.c.quota_bytes.label("quota_bytes"),
    )
    .join(persons, persons.c.id == mailboxes.c.person_id)
    .outerjoin(mail_usage, mail_usage.c.person_id == mailboxes.c.person_id)
    .where(mailboxes.c.person_id == bindparam("b_person"), mailboxes.c.name == bindparam("b_name"))
)
USED_BYTES: Final = select(mail_usage.c.bytes).where(
    mail_usage.c.person_id == bindparam("b_person")
)
USAGE: Final = select(mail_usage.c.bytes, mail_usage.c.messages).where(
    mail_usage.c.person_id == bindparam("b_person")
)
INBOXES: Final = (
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
INSERT_MESSAGE: Final = insert(mail_messages)
BUMP_MODSEQ: Final = (
    update(mailboxes)
    .where(mailboxes.c.id == bindparam("b_id"))
    .values(highest_modseq=mailboxes.c.highest_modseq + 1)
    .returning(mailboxes.c.highest_modseq)
)
ADD_REFERENCE: Final = (
    update(mail_blobs)
    .where(mail_blobs.c.id == bindparam("b_blob"))
    .values(refcount=mail_blobs.c.refcount + 1)
)
MOVE_MESSAGE: Final = (
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
HIGHEST_MODSEQ: Final = select(mailboxes.c.highest_modseq).where(
    mailboxes.c.id == bindparam("b_id")
)
TAKE_RECENT: Final = (
    update(mail_messages)
    .where(
        mail_messages.c.mailbox_id == bindparam("b_mailbox"),
        mail_messages.c.is_recent.is_(True),
        mail_messages.c.uid <= bindparam("b_largest"),
    )
    .values(is_recent=False)
    .returning(mail_messages.c.uid)
)
VIEW: Final = (
    select(mail_messages.c.uid, mail_messages.c.flags, mail_messages.c.is_recent)
    .where(mail_messages.c.mailbox_id == bindparam("b_mailbox"))
    .order_by(mail_messages.c.uid)
)
MESSAGE_COLUMNS: Final = (
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
ROW_COLUMNS: Final = {
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
    "message_id": mail_blobs.c.message_id,
    "thread_refs": mail_blobs.c.thread_refs,
}
CHANGED_MESSAGES: Final = (
    select(*MESSAGE_COLUMNS)
    .join(mail_blobs, mail_blobs.c.id == mail_messages.c.blob_id)
    .where(
        mail_messages.c.mailbox_id == bindparam("b_mailbox"),
        mail_messages.c.modseq > bindparam("b_since"),
        mail_messages.c.modseq <= bindparam("b_highest"),
    )
    .order_by(mail_messages.c.uid)
)
CHANGED_FLAGS: Final = (
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
CHANGED_EXPUNGED: Final = (
    select(mail_expunged.c.uid)
    .where(
        mail_expunged.c.mailbox_id == bindparam("b_mailbox"),
        mail_expunged.c.modseq > bindparam("b_since"),
        mail_expunged.c.modseq <= bindparam("b_highest"),
    )
    .order_by(mail_expunged.c.uid)
)
MAX_BOUND_VALUES: Final = 500
MAX_RANGES: Final = 20


def message_from_row(row: Any) -> MessageInfo:
    return MessageInfo(
        uid=int(row.uid),
        modseq=int(row.modseq),
        flags=flags_set(row.flags),
        internal_date=aware(row.internal_date),
        size=int(row.size),
        blob_id=int(row.blob_id),
        blob_path=row.path,
        is_recent=bool(row.is_recent),
    )


def index_rows(found: Sequence[Any], names: list[str]) -> list[IndexRow]:
    """IndexRows from ``(uid, blob_id, *names)`` rows."""
    converters = [
        (position, flags_set if name == "flags" else aware_or_none)
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


def aware_or_none(moment: datetime | None) -> datetime | None:
    return None if moment is None else aware(moment)


def prefilter_condition(prefilter: Prefilter) -> ColumnElement[bool]:
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
    parts = [prefilter_condition(part) for part in prefilter.parts]
    if isinstance(prefilter, AnyOf):
        return or_(false(), *parts)
    return and_(true(), *parts)


def uses_header_text(prefilter: Prefilter) -> bool:
    if isinstance(prefilter, HeaderContains):
        return True
    if isinstance(prefilter, BlobIn):
        return False
    return any(uses_header_text(part) for part in prefilter.parts)


def uid_conditions(uids: Iterable[int]) -> list[ColumnElement[bool]]:
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
        if len(singles) >= MAX_BOUND_VALUES or len(spans) >= MAX_RANGES:
            flush()
    flush()
    return conditions
