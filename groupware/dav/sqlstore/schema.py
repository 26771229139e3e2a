# SPDX-License-Identifier: GPL-3.0-or-later
"""SQL tables of the DAV store (owned by ``dav.sqlstore``).

- ``dav_collections``: one row per collection (principals included), by sanitized
  path, with its properties (JSON), a random ``sync_key`` made at creation and a
  ``revision`` bumped by every change in the same transaction as the change: the
  collection's ETag (CTag) and sync token are read from this one row.
- ``dav_items``: one row per calendar object or vCard, with its text and what
  Radicale asks of an item without parsing it (UID, ETag, component, enclosing time
  range); ``revision`` is the collection revision that last wrote it.
- ``dav_item_ranges``: the time ranges an item covers (RFC 4791 §9.9), recurrences
  expanded up to a horizon; ``dav_items.indexed_until`` says up to where the ranges
  are complete (``TIMESTAMP_MAX`` when the item was expanded in full).
- ``dav_item_texts``: lower-cased values of the vCard properties that address book
  searches match on (names, emails, phone numbers, organisation). On SQLite a
  covering index (``SQLITE_TEXTS_INDEX``) lets a ``LIKE '%...%'`` read the index
  alone (10,000 cards: 7.6 → 2.5 ms); PostgreSQL limits an index entry to about
  2.7 kB, which a hostile vCard's value could pass, so it keeps the plain index.
- ``dav_tombstones``: deleted hrefs with the revision of their deletion, so that a
  sync-collection REPORT costs the changes since its token.

Portable SQL only: the same tables run on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

#: The longest href or UID an item may have (PostgreSQL refuses longer ones).
MAX_KEY_CHARS: Final = 512

metadata = MetaData()

dav_collections = Table(
    "dav_collections",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("path", String(1024), nullable=False, unique=True),
    Column("parent", String(1024), nullable=False, index=True),
    Column("tag", String(16), nullable=False, default=""),
    Column("props", Text, nullable=False, default="{}"),  # JSON
    Column("sync_key", String(32), nullable=False),
    Column("revision", BigInteger, nullable=False, default=0),
    # Tombstones older than this revision were pruned: older tokens are refused.
    Column("oldest_revision", BigInteger, nullable=False, default=0),
    Column("modified_at", Float, nullable=False),  # POSIX seconds
)

dav_items = Table(
    "dav_items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "collection_id",
        Integer,
        ForeignKey("dav_collections.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("href", String(MAX_KEY_CHARS), nullable=False),
    Column("uid", String(MAX_KEY_CHARS), nullable=False),
    Column("etag", String(80), nullable=False),
    Column("name", String(16), nullable=False),  # VCALENDAR | VCARD
    Column("component", String(16), nullable=False),  # VEVENT | VTODO | VJOURNAL | ""
    Column("text", Text, nullable=False),
    Column("start_ts", BigInteger, nullable=False),  # enclosing range (find_time_range)
    Column("end_ts", BigInteger, nullable=False),
    Column("indexed_until", BigInteger, nullable=False),
    Column("is_infinite", Boolean, nullable=False, default=False),
    Column("revision", BigInteger, nullable=False),
    Column("modified_at", Float, nullable=False),
    UniqueConstraint("collection_id", "href", name="uq_dav_items_href"),
)
Index("ix_dav_items_uid", dav_items.c.collection_id, dav_items.c.uid)
# What a Depth-1 listing reads of every item (``dav.fastpath``), in href order, read
# from the index alone: the rows themselves hold the texts (10,000 events: 31 → 16 ms).
Index(
    "ix_dav_items_listing",
    dav_items.c.collection_id,
    dav_items.c.href,
    dav_items.c.etag,
    dav_items.c.name,
    dav_items.c.component,
    dav_items.c.modified_at,
)
Index("ix_dav_items_revision", dav_items.c.collection_id, dav_items.c.revision)

dav_item_ranges = Table(
    "dav_item_ranges",
    metadata,
    Column("item_id", Integer, ForeignKey("dav_items.id", ondelete="CASCADE"), nullable=False),
    Column("collection_id", Integer, nullable=False),
    # Ranges longer than LONG_RANGE_SECONDS are few; the others are found by their
    # start within [query start - LONG_RANGE_SECONDS, query end).
    Column("is_long", Boolean, nullable=False),
    Column("start_ts", BigInteger, nullable=False),
    Column("end_ts", BigInteger, nullable=False),
)
Index(
    "ix_dav_item_ranges_start",
    dav_item_ranges.c.collection_id,
    dav_item_ranges.c.is_long,
    dav_item_ranges.c.start_ts,
)
Index("ix_dav_item_ranges_item", dav_item_ranges.c.item_id)

dav_item_texts = Table(
    "dav_item_texts",
    metadata,
    Column("item_id", Integer, ForeignKey("dav_items.id", ondelete="CASCADE"), nullable=False),
    Column("collection_id", Integer, nullable=False),
    Column("prop", String(16), nullable=False),  # vobject's lower-case name: fn, email...
    Column("value", Text, nullable=False),  # lower-cased as Radicale's text-match does
)
Index("ix_dav_item_texts_prop", dav_item_texts.c.collection_id, dav_item_texts.c.prop)
#: Made by ``SqlStorage`` on SQLite, also in stores made before it (see the module doc).
SQLITE_TEXTS_INDEX: Final = (
    "CREATE INDEX IF NOT EXISTS ix_dav_item_texts_value"
    " ON dav_item_texts (collection_id, prop, value, item_id)"
)
Index("ix_dav_item_texts_item", dav_item_texts.c.item_id)

dav_tombstones = Table(
    "dav_tombstones",
    metadata,
    Column(
        "collection_id",
        Integer,
        ForeignKey("dav_collections.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("href", String(MAX_KEY_CHARS), primary_key=True),
    Column("revision", BigInteger, nullable=False),
    Column("deleted_at", Float, nullable=False),
)
Index("ix_dav_tombstones_revision", dav_tombstones.c.collection_id, dav_tombstones.c.revision)
Index("ix_dav_items_indexed_until", dav_items.c.collection_id, dav_items.c.indexed_until)

#: What reading an item needs (``dav.sqlstore.collection.SqlCollection.item``).
ITEM_COLUMNS = (
    dav_items.c.id,
    dav_items.c.href,
    dav_items.c.uid,
    dav_items.c.etag,
    dav_items.c.name,
    dav_items.c.component,
    dav_items.c.text,
    dav_items.c.start_ts,
    dav_items.c.end_ts,
    dav_items.c.modified_at,
)
