# SPDX-License-Identifier: GPL-3.0-or-later
"""SQL index of the mail store (owned by ``mail.store``).

- ``mail_blobs``: one row per message file, with what the content alone determines
  (size, envelope, MIME structure, sort keys); copies of a message share a blob. The
  ``*_imap`` columns hold ENVELOPE, BODY and BODYSTRUCTURE as sent to a client without
  UTF8=ACCEPT, rendered at delivery so that listing a folder is concatenation;
  ``header_text`` is the lower-cased text SEARCH matches header keys against;
  ``thread_refs`` the message ids THREAD=REFERENCES links a message to (References,
  else In-Reply-To). All five are NULL for blobs indexed before they existed (readers
  then render from the JSON, or read the file).
- ``mailboxes``: per person, with UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ (RFC 3501, 7162).
- ``mail_messages``: a message in a mailbox: UID, MODSEQ, flags, internal date.
- ``mail_expunged``: expunged UIDs with their MODSEQ, for QRESYNC's VANISHED.
- ``mail_usage``: bytes and messages per person, updated in the same transaction as
  every change, so that the quota is counted exactly.

Portable SQL only (SQLite and PostgreSQL); the full-text index lives in ``mail.text_index``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import Table as _Table

from groupware.core.db import metadata as core_metadata

metadata = MetaData()
# The persons table, so that foreign keys resolve within this metadata.
persons = core_metadata.tables["persons"].to_metadata(metadata)

mail_blobs = _Table(
    "mail_blobs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("path", String(255), nullable=False, unique=True),
    Column("size", BigInteger, nullable=False),
    Column("refcount", Integer, nullable=False),
    Column("envelope", Text, nullable=False),  # JSON
    Column("structure", Text, nullable=False),  # JSON, see mail.mime.Part.to_json
    Column("sent_date", DateTime(timezone=True), nullable=True),  # Date: header, for SORT
    Column("subject_sort", String(255), nullable=False, default=""),
    Column("from_sort", String(255), nullable=False, default=""),
    Column("to_sort", String(255), nullable=False, default=""),
    Column("cc_sort", String(255), nullable=False, default=""),
    Column("message_id", String(255), nullable=False, default=""),
    Column("has_attachment", Boolean, nullable=False, default=False),
    # Added after the first release: nullable, and added to older databases by
    # ``MailStore`` (``metadata.create_all`` does not add columns to existing tables).
    Column("envelope_imap", LargeBinary, nullable=True),
    Column("body_imap", LargeBinary, nullable=True),
    Column("bodystructure_imap", LargeBinary, nullable=True),
    Column("header_text", Text, nullable=True),
    Column("thread_refs", Text, nullable=True),  # space-separated "<id>"s, oldest first
)
# The columns a database made before them may lack (see ``MailStore``).
LATE_BLOB_COLUMNS = (
    *("envelope_imap", "body_imap", "bodystructure_imap", "header_text", "thread_refs"),
)

mailboxes = _Table(
    "mailboxes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("person_id", Integer, ForeignKey("persons.id"), nullable=False),
    Column("name", String(512), nullable=False),  # Unicode, hierarchy delimiter "/"
    Column("special_use", String(16), nullable=False, default=""),
    Column("uidvalidity", BigInteger, nullable=False),
    Column("uid_next", BigInteger, nullable=False),
    Column("highest_modseq", BigInteger, nullable=False),
    Column("is_subscribed", Boolean, nullable=False, default=True),
    UniqueConstraint("person_id", "name", name="uq_mailboxes_person_name"),
)

mail_messages = _Table(
    "mail_messages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("mailbox_id", Integer, ForeignKey("mailboxes.id"), nullable=False),
    Column("uid", BigInteger, nullable=False),
    Column("modseq", BigInteger, nullable=False),
    Column("blob_id", Integer, ForeignKey("mail_blobs.id"), nullable=False, index=True),
    Column("flags", String(1024), nullable=False, default=""),  # space-separated, sorted
    Column("internal_date", DateTime(timezone=True), nullable=False),
    Column("is_recent", Boolean, nullable=False, default=True),
    # "<spool id>:<person id>" for delivered mail: makes redelivery after a crash a no-op.
    Column("delivery_key", String(96), nullable=True, unique=True),
    UniqueConstraint("mailbox_id", "uid", name="uq_mail_messages_mailbox_uid"),
)
Index("ix_mail_messages_mailbox_modseq", mail_messages.c.mailbox_id, mail_messages.c.modseq)

mail_expunged = _Table(
    "mail_expunged",
    metadata,
    Column("mailbox_id", Integer, ForeignKey("mailboxes.id"), primary_key=True),
    Column("uid", BigInteger, primary_key=True),
    Column("modseq", BigInteger, nullable=False),
)

mail_usage = _Table(
    "mail_usage",
    metadata,
    Column("person_id", Integer, ForeignKey("persons.id"), primary_key=True),
    Column("bytes", BigInteger, nullable=False),
    Column("messages", BigInteger, nullable=False),
)
