# SPDX-License-Identifier: GPL-3.0-or-later
"""Every change to the SQL store, each in one transaction.

A change bumps its collection's ``revision`` (``UPDATE ... RETURNING``), which also
row-locks the collection until commit on PostgreSQL: revisions follow commit order,
so a sync token never skips a change. The item, its index rows and the tombstone
are written in the same transaction: after a crash a write is wholly there or
absent. Items are parsed and indexed before the transaction opens.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from radicale import item as radicale_item
from radicale import pathutils
from sqlalchemy import Connection, Engine, Row, bindparam, delete, insert, or_, select, update

from groupware.dav.sqlstore.indexing import LONG_RANGE_SECONDS, ItemIndex, index_item
from groupware.dav.sqlstore.rawsql import RawCursor
from groupware.dav.sqlstore.schema import (
    ITEM_COLUMNS,
    MAX_KEY_CHARS,
    dav_collections,
    dav_item_ranges,
    dav_item_texts,
    dav_items,
    dav_tombstones,
)

# The statements of every item write and of discovery, built once: SQLAlchemy then
# reuses their compiled form instead of building and hashing each one per request
# (about half of a statement's cost in Python).
ITEM_AT: Final = select(*ITEM_COLUMNS).where(
    dav_items.c.collection_id == bindparam("cid"), dav_items.c.href == bindparam("at")
)
_BUMP: Final = (
    update(dav_collections)
    .where(dav_collections.c.id == bindparam("cid"))
    .values(revision=dav_collections.c.revision + 1, modified_at=bindparam("now"))
    .returning(*dav_collections.c)
)
_INSERT_ITEMS: Final = insert(dav_items).returning(dav_items.c.id, sort_by_parameter_order=True)
_INSERT_RANGES: Final = insert(dav_item_ranges)
_INSERT_TEXTS: Final = insert(dav_item_texts)
_DELETE_INDEX: Final = tuple(
    delete(table).where(table.c.item_id.in_(bindparam("ids", expanding=True)))
    for table in (dav_item_ranges, dav_item_texts)
)
_DELETE_ITEMS: Final = delete(dav_items).where(
    dav_items.c.collection_id == bindparam("cid"),
    dav_items.c.id.in_(bindparam("ids", expanding=True)),
)


#: The statements of ``upload``, in ``rawsql`` form (``?`` parameters); "bump" returns
#: the ``_state_of`` columns, "old" the ``ItemRow`` ones (``ITEM_COLUMNS``).
_UPLOAD_SQL: Final = {
    "bump": "UPDATE dav_collections SET revision = revision + 1, modified_at = ? WHERE id = ?"
    " RETURNING id, path, props, sync_key, revision, oldest_revision, modified_at",
    "old": "SELECT id, href, uid, etag, name, component, text, start_ts, end_ts, modified_at"
    " FROM dav_items WHERE collection_id = ? AND href = ?",
    "uid held": "SELECT 1 FROM dav_items WHERE collection_id = ? AND uid = ?",
    "delete ranges": "DELETE FROM dav_item_ranges WHERE item_id = ?",
    "delete texts": "DELETE FROM dav_item_texts WHERE item_id = ?",
    "delete item": "DELETE FROM dav_items WHERE id = ?",
    "forget tombstone": "DELETE FROM dav_tombstones WHERE collection_id = ? AND href = ?",
    "insert item": "INSERT INTO dav_items (collection_id, href, uid, etag, name, component,"
    " text, start_ts, end_ts, indexed_until, is_infinite, revision, modified_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    "insert range": "INSERT INTO dav_item_ranges (item_id, collection_id, is_long, start_ts,"
    " end_ts) VALUES (?, ?, ?, ?, ?)",
    "insert text": "INSERT INTO dav_item_texts (item_id, collection_id, prop, value)"
    " VALUES (?, ?, ?, ?)",
}


#: The columns "insert item" names, in its order.
_INSERTED: Final = (
    "collection_id",
    "href",
    "uid",
    "etag",
    "name",
    "component",
    "text",
    "start_ts",
    "end_ts",
    "indexed_until",
    "is_infinite",
    "revision",
    "modified_at",
)


class ItemRecord(Protocol):
    """What reading an item needs: a row of ``ITEM_COLUMNS`` or an ``ItemRow``."""

    @property
    def href(self) -> str: ...  # noqa: D102 - the column of the same name
    @property
    def uid(self) -> str: ...  # noqa: D102
    @property
    def etag(self) -> str: ...  # noqa: D102
    @property
    def name(self) -> str: ...  # noqa: D102
    @property
    def component(self) -> str: ...  # noqa: D102
    @property
    def text(self) -> str: ...  # noqa: D102
    @property
    def start_ts(self) -> int: ...  # noqa: D102
    @property
    def end_ts(self) -> int: ...  # noqa: D102
    @property
    def modified_at(self) -> float: ...  # noqa: D102


@dataclass(frozen=True, slots=True)
class ItemRow:
    """An item just written, as a reader would get it back."""

    id: int
    href: str
    uid: str
    etag: str
    name: str
    component: str
    text: str
    start_ts: int
    end_ts: int
    modified_at: float


@dataclass(frozen=True, slots=True)
class CollectionState:
    """A ``dav_collections`` row as discovered."""

    id: int
    path: str
    props: Mapping[str, str]
    sync_key: str
    revision: int
    oldest_revision: int
    modified_at: float

    @classmethod
    def from_row(cls, row: Row[Any]) -> CollectionState:
        """The state in a row of ``dav_collections``."""
        return cls(
            id=row.id,
            path=row.path,
            props=json.loads(row.props),
            sync_key=row.sync_key,
            revision=row.revision,
            oldest_revision=row.oldest_revision,
            modified_at=row.modified_at,
        )


# --- collections ---------------------------------------------------------------------


def parent_of(path: str) -> str:
    """The parent path of a sanitized collection path (the root's parent is ``/``)."""
    if not path:
        return "/"
    return path.rsplit("/", 1)[0] if "/" in path else ""


def ensure_collection(conn: Connection, path: str, now: float) -> CollectionState:
    """The collection at ``path``, made (with any missing parent) when absent."""
    row = conn.execute(select(dav_collections).where(dav_collections.c.path == path)).first()
    if row is not None:
        return CollectionState.from_row(row)
    if path:
        ensure_collection(conn, parent_of(path), now)
    row = conn.execute(
        insert(dav_collections)
        .values(
            path=path,
            parent=parent_of(path),
            tag="",
            props="{}",
            sync_key=secrets.token_hex(8),
            revision=0,
            oldest_revision=0,
            modified_at=now,
        )
        .returning(*dav_collections.c)
    ).one()
    return CollectionState.from_row(row)


def bump(conn: Connection, collection_id: int, now: float, **values: Any) -> CollectionState:
    """Move the collection to its next revision (and set ``values``); its new state."""
    if not values:
        return CollectionState.from_row(
            conn.execute(_BUMP, {"cid": collection_id, "now": now}).one()
        )
    row = conn.execute(
        update(dav_collections)
        .where(dav_collections.c.id == collection_id)
        .values(revision=dav_collections.c.revision + 1, modified_at=now, **values)
        .returning(*dav_collections.c)
    ).one()
    return CollectionState.from_row(row)


def set_props(engine: Engine, collection_id: int, props: Mapping[str, str]) -> CollectionState:
    """Replace a collection's properties (PROPPATCH, MKCOL)."""
    with engine.begin() as conn:
        return bump(
            conn,
            collection_id,
            time.time(),
            props=json.dumps(dict(props), sort_keys=True),
            tag=props.get("tag", ""),
        )


def delete_collection(engine: Engine, path: str) -> None:
    """Delete the collection at ``path`` with everything under it."""
    under = path + "/"
    with engine.begin() as conn:
        ids = [
            row.id
            for row in conn.execute(
                select(dav_collections.c.id).where(
                    or_(
                        dav_collections.c.path == path,
                        dav_collections.c.path.startswith(under, autoescape=True),
                    )
                )
            )
        ]
        for table in (dav_item_ranges, dav_item_texts, dav_tombstones, dav_items):
            conn.execute(delete(table).where(table.c.collection_id.in_(ids)))
        conn.execute(delete(dav_collections).where(dav_collections.c.id.in_(ids)))


def create_collection(
    engine: Engine,
    path: str,
    props: Mapping[str, str],
    items: Iterable[radicale_item.Item] | None,
    token_age_seconds: int,
) -> tuple[CollectionState, dict[str, ItemRow], list[str]]:
    """Make or replace the collection at ``path`` with ``props`` and ``items``.

    Returns the state, the replaced items by href and the hrefs that are new.
    """
    suffix = {"VCALENDAR": ".ics", "VADDRESSBOOK": ".vcf"}.get(props.get("tag", ""), "")
    indexed = _with_hrefs(items if items is not None and suffix else (), suffix)
    now = time.time()
    with engine.begin() as conn:
        state = ensure_collection(conn, path, now)
        old = {row.href: row for row in conn.execute(_rows_query(state.id))}
        state = bump(
            conn,
            state.id,
            now,
            props=json.dumps(dict(props), sort_keys=True),
            tag=props.get("tag", ""),
        )
        delete_items(conn, state.id, [row.id for row in old.values()])
        new_hrefs = {href for href, _index in indexed}
        for href in set(old) - new_hrefs:
            _tombstone(conn, state.id, href, state.revision, now)
        insert_items(conn, state.id, indexed, state.revision, now)
        _prune(conn, state.id, now, token_age_seconds)
    replaced = {href: _item_row(row) for href, row in old.items() if href in new_hrefs}
    return state, replaced, sorted(new_hrefs - set(old))


def _with_hrefs(items: Iterable[radicale_item.Item], suffix: str) -> list[tuple[str, ItemIndex]]:
    """Each item with the href the file store would give it (see ``_upload_all_nonatomic``)."""
    taken: set[str] = set()
    found = []

    def is_free(href: str) -> bool:
        return pathutils.is_safe_filesystem_path_component(href) and href not in taken

    for item in items:
        uid = item.uid
        candidates = [
            uid if uid.lower().endswith(suffix.lower()) else uid + suffix,
            radicale_item.get_etag(uid).strip('"') + suffix,
        ]
        href = next((c for c in candidates if is_free(c)), None)
        if href is None:
            href = radicale_item.find_available_uid(lambda h: not is_free(h), suffix)
        taken.add(href)
        found.append((href, index_item(item)))
    return found


# --- items ---------------------------------------------------------------------------


def _rows_query(collection_id: int, *conditions: Any) -> Any:  # a SQLAlchemy Select
    return select(*ITEM_COLUMNS).where(dav_items.c.collection_id == collection_id, *conditions)


def _item_row(row: Row[Any]) -> ItemRow:
    return ItemRow(**{column.name: getattr(row, column.name) for column in ITEM_COLUMNS})


def insert_items(
    conn: Connection,
    collection_id: int,
    indexed: list[tuple[str, ItemIndex]],
    revision: int,
    now: float,
) -> list[ItemRow]:
    """Insert new items with their index rows (hrefs must be free)."""
    if not indexed:
        return []
    rows = [_item_values(collection_id, href, index, revision, now) for href, index in indexed]
    ids = [row.id for row in conn.execute(_INSERT_ITEMS, rows)]
    ranges: list[dict[str, Any]] = []
    texts: list[dict[str, Any]] = []
    for item_id, (_href, index) in zip(ids, indexed, strict=True):
        ranges.extend(
            {
                "item_id": item_id,
                "collection_id": collection_id,
                "is_long": end - start > LONG_RANGE_SECONDS,
                "start_ts": start,
                "end_ts": end,
            }
            for start, end in index.ranges
        )
        texts.extend(
            {"item_id": item_id, "collection_id": collection_id, "prop": prop, "value": value}
            for prop, value in index.texts
        )
    if ranges:
        conn.execute(_INSERT_RANGES, ranges)
    if texts:
        conn.execute(_INSERT_TEXTS, texts)
    return [
        _written_row(item_id, href, index, now)
        for item_id, (href, index) in zip(ids, indexed, strict=True)
    ]


def fits(href: str, uid: str) -> bool:
    """Whether the store keeps an item of this href and UID (``MAX_KEY_CHARS``)."""
    return len(href) <= MAX_KEY_CHARS and len(uid) <= MAX_KEY_CHARS


def _written_row(item_id: int, href: str, index: ItemIndex, now: float) -> ItemRow:
    """The row of an item just inserted, as a reader would get it back."""
    return ItemRow(
        id=item_id,
        href=href,
        uid=index.uid,
        etag=index.etag,
        name=index.name,
        component=index.component,
        text=index.text,
        start_ts=index.start_ts,
        end_ts=index.end_ts,
        modified_at=now,
    )


def _item_values(
    collection_id: int, href: str, index: ItemIndex, revision: int, now: float
) -> dict[str, Any]:
    """The ``dav_items`` row of an item; ``ValueError`` (Radicale: 400) for too long a key."""
    if not fits(href, index.uid):
        raise ValueError(f"an href or UID longer than {MAX_KEY_CHARS} characters: {href[:64]!r}")
    return {
        "collection_id": collection_id,
        "href": href,
        "uid": index.uid,
        "etag": index.etag,
        "name": index.name,
        "component": index.component,
        "text": index.text,
        "start_ts": index.start_ts,
        "end_ts": index.end_ts,
        "indexed_until": index.indexed_until,
        "is_infinite": index.is_infinite,
        "revision": revision,
        "modified_at": now,
    }


def delete_items(conn: Connection, collection_id: int, item_ids: list[int]) -> None:
    if not item_ids:
        return
    for statement in _DELETE_INDEX:
        conn.execute(statement, {"ids": item_ids})
    conn.execute(_DELETE_ITEMS, {"cid": collection_id, "ids": item_ids})


class WriteRefused(Exception):  # noqa: N818 - a refusal, not an error
    """The caller's ``accept`` refused the write: nothing was written."""


#: Whether a write may go on, given the item now at the href and whether another
#: item holds the new UID (asked only when the href holds none).
Accept = Callable[[ItemRow | None, bool], bool]


def upload(
    engine: Engine,
    collection_id: int,
    href: str,
    item: radicale_item.Item,
    index: ItemIndex | None = None,
    accept: Accept | None = None,
) -> tuple[CollectionState, ItemRow, ItemRow | None]:
    """Store ``item`` at ``href`` (new or replacing); returns state, new and old rows.

    ``index``: the item's ``index_item``, when the caller made it already.
    ``accept``: the caller's conditions (``If-Match``, UID conflicts), checked on what
    the transaction reads, after the revision bump has taken the collection's write
    lock; ``WriteRefused`` when they fail. The statements are ``_UPLOAD_SQL``'s, on
    the transaction's DB-API cursor.
    """
    if index is None:
        index = index_item(item)
    now = time.time()
    with engine.begin() as conn:
        cursor = RawCursor(conn)
        try:
            bumped = cursor.execute(_UPLOAD_SQL["bump"], (now, collection_id)).fetchone()
            if bumped is None:
                raise ValueError(f"no collection {collection_id}")
            state = _state_of(bumped)
            old = cursor.execute(_UPLOAD_SQL["old"], (collection_id, href)).fetchone()
            if accept is not None:
                elsewhere = old is None and (
                    cursor.execute(_UPLOAD_SQL["uid held"], (collection_id, index.uid)).fetchone()
                    is not None
                )
                if not accept(None if old is None else ItemRow(*old), elsewhere):
                    raise WriteRefused(href)
            if old is not None:
                for statement in ("delete ranges", "delete texts", "delete item"):
                    cursor.execute(_UPLOAD_SQL[statement], (old[0],))
            cursor.execute(_UPLOAD_SQL["forget tombstone"], (collection_id, href))
            values = _item_values(collection_id, href, index, state.revision, now)
            inserted = cursor.execute(
                _UPLOAD_SQL["insert item"], tuple(values[name] for name in _INSERTED)
            )
            (item_id,) = inserted.fetchone() or (None,)
            if index.ranges:
                cursor.executemany(
                    _UPLOAD_SQL["insert range"],
                    [
                        (item_id, collection_id, end - start > LONG_RANGE_SECONDS, start, end)
                        for start, end in index.ranges
                    ],
                )
            if index.texts:
                cursor.executemany(
                    _UPLOAD_SQL["insert text"],
                    [(item_id, collection_id, prop, value) for prop, value in index.texts],
                )
        finally:
            cursor.close()
    row = _written_row(int(item_id), href, index, now)
    return state, row, None if old is None else ItemRow(*old)


def _state_of(row: tuple[Any, ...]) -> CollectionState:
    """The state in a ``dav_collections`` row of ``_STATE_COLUMNS``."""
    return CollectionState(
        id=row[0],
        path=row[1],
        props=json.loads(row[2]),
        sync_key=row[3],
        revision=row[4],
        oldest_revision=row[5],
        modified_at=row[6],
    )


def delete_item(
    engine: Engine, collection_id: int, href: str, token_age_seconds: int
) -> CollectionState | None:
    """Delete the item at ``href``; ``None`` when there is none."""
    now = time.time()
    with engine.begin() as conn:
        old = conn.execute(
            select(dav_items.c.id).where(
                dav_items.c.collection_id == collection_id, dav_items.c.href == href
            )
        ).first()
        if old is None:
            return None
        state = bump(conn, collection_id, now)
        delete_items(conn, collection_id, [old.id])
        _tombstone(conn, collection_id, href, state.revision, now)
        _prune(conn, collection_id, now, token_age_seconds)
    return state


def move(
    engine: Engine,
    from_id: int,
    href: str,
    to_id: int,
    to_href: str,
    token_age_seconds: int,
) -> tuple[CollectionState, CollectionState]:
    """Move an item (MOVE), replacing any item at ``to_href``; both states after.

    ``ValueError`` (Radicale: 400) for a destination href the store cannot keep.
    """
    if not fits(to_href, ""):
        raise ValueError(f"an href longer than {MAX_KEY_CHARS} characters: {to_href[:64]!r}")
    now = time.time()
    with engine.begin() as conn:
        to_state = bump(conn, to_id, now)
        from_state = to_state if from_id == to_id else bump(conn, from_id, now)
        moving = conn.execute(
            select(dav_items.c.id).where(
                dav_items.c.collection_id == from_id, dav_items.c.href == href
            )
        ).one()
        target = conn.execute(
            select(dav_items.c.id).where(
                dav_items.c.collection_id == to_id, dav_items.c.href == to_href
            )
        ).first()
        if target is not None and target.id != moving.id:
            delete_items(conn, to_id, [target.id])
        conn.execute(
            update(dav_items)
            .where(dav_items.c.id == moving.id)
            .values(collection_id=to_id, href=to_href, revision=to_state.revision)
        )
        for table in (dav_item_ranges, dav_item_texts):
            conn.execute(
                update(table).where(table.c.item_id == moving.id).values(collection_id=to_id)
            )
        conn.execute(
            delete(dav_tombstones).where(
                dav_tombstones.c.collection_id == to_id, dav_tombstones.c.href == to_href
            )
        )
        if (from_id, href) != (to_id, to_href):
            _tombstone(conn, from_id, href, from_state.revision, now)
        _prune(conn, from_id, now, token_age_seconds)
    return from_state, to_state


# --- tombstones ----------------------------------------------------------------------


def _tombstone(conn: Connection, collection_id: int, href: str, revision: int, now: float) -> None:
    conn.execute(
        delete(dav_tombstones).where(
            dav_tombstones.c.collection_id == collection_id, dav_tombstones.c.href == href
        )
    )
    conn.execute(
        insert(dav_tombstones).values(
            collection_id=collection_id, href=href, revision=revision, deleted_at=now
        )
    )


def _prune(conn: Connection, collection_id: int, now: float, token_age_seconds: int) -> None:
    """Forget deletions older than the sync-token age; tokens from before are refused."""
    if token_age_seconds <= 0:
        return
    expired = (
        dav_tombstones.c.collection_id == collection_id,
        dav_tombstones.c.deleted_at < now - token_age_seconds,
    )
    newest = conn.execute(
        select(dav_tombstones.c.revision)
        .where(*expired)
        .order_by(dav_tombstones.c.revision.desc())
        .limit(1)
    ).scalar()
    if newest is None:
        return
    conn.execute(delete(dav_tombstones).where(*expired))
    conn.execute(
        update(dav_collections)
        .where(dav_collections.c.id == collection_id)
        .values(oldest_revision=newest)
    )
