# SPDX-License-Identifier: GPL-3.0-or-later
"""Radicale's ``BaseStorage`` over SQL: discovery, collections, moves and locks.

Locks are per collection, not per storage: a write holds the lock of the collection
it writes to (both, in path order, for a MOVE), so that Radicale's check-then-write
sequences (``If-Match``, UID uniqueness) see no other writer of that collection
in this process, and a write to one collection never waits for another. For other
processes (``groupware.http_workers``, other nodes) the same lock is also taken as
an advisory lock on PostgreSQL and, on SQLite, as a file lock (``flock``) on one of
``FILE_LOCK_STRIPES_COUNT`` files beside the database: two collections may share a
file (a write then waits for an unrelated one, briefly), never one collection two.
Reads take no lock: each statement sees committed data, and revisions (see
``dav.sqlstore.writes``) keep sync tokens exact.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from radicale import item as radicale_item
from radicale import pathutils, storage, types
from sqlalchemy import Connection, Engine, bindparam, select, text

from groupware.core.db import write_transaction
from groupware.dav.sqlstore import writes
from groupware.dav.sqlstore.collection import SqlCollection
from groupware.dav.sqlstore.schema import SQLITE_TEXTS_INDEX, dav_collections, metadata
from groupware.dav.sqlstore.writes import CollectionState

#: Collection lock files beside a SQLite database (see the module doc).
FILE_LOCKS_FOLDER: Final = "dav-locks"
FILE_LOCK_STRIPES_COUNT: Final = 64
#: Radicale's default (``[storage] max_sync_token_age``), if its configuration lacks it.
DEFAULT_TOKEN_AGE_SECONDS: Final = 30 * 24 * 3600

#: Discovery's one read of a path and its parent (every request), built once.
_COLLECTIONS_AT: Final = select(dav_collections).where(
    dav_collections.c.path.in_(bindparam("paths", expanding=True))
)


class CollectionLocks:
    """One re-entrant lock per collection path, made on demand and dropped when free."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.RLock, int]] = {}

    @contextlib.contextmanager
    def hold(self, keys: Iterable[str]) -> Iterator[None]:
        """Hold the locks of ``keys``, taken in sorted order (no deadlock)."""
        ordered = sorted(set(keys))
        with contextlib.ExitStack() as stack:
            for key in ordered:
                stack.enter_context(self._one(key))
            yield

    @contextlib.contextmanager
    def _one(self, key: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(key, (threading.RLock(), 0))
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)


def lock_key(path: str) -> str:
    """The collection a write to ``path`` is about: its first two path segments."""
    parts = [part for part in pathutils.strip_path(path).split("/") if part]
    return "/".join(parts[:2])


class SqlStorage(storage.BaseStorage):
    """Calendars and address books in SQL tables (``dav.sqlstore.schema``)."""

    # Hrefs are keys, not file names: any safe path component is one item.
    _is_collision_free = True
    _supports_unicode = True
    _supports_trailing_whitespace = True
    _supports_problematic_chars = True

    def __init__(self, configuration: Any, engine: Engine) -> None:  # Radicale seam
        super().__init__(configuration)
        self.engine = engine
        metadata.create_all(engine)
        # create_all makes the indexes of the tables it makes: a store made by an
        # earlier version gets the ones added since here.
        for table in metadata.sorted_tables:
            for index in table.indexes:
                index.create(engine, checkfirst=True)
        try:
            self.token_age_seconds = int(configuration.get("storage", "max_sync_token_age"))
        except KeyError:
            self.token_age_seconds = DEFAULT_TOKEN_AGE_SECONDS
        self._locks = CollectionLocks()
        self._lock_folder = _file_lock_folder(engine)
        self.max_occurrences = int(configuration.get("server", "max_vevent_rrule_occurrence"))
        # Under the write lock from the start: HTTP workers (groupware.http_workers)
        # open the store of a new data folder at the same moment, and each would
        # otherwise find no root and insert one.
        with write_transaction(engine) as conn:
            writes.ensure_collection(conn, "", time.time())
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql(SQLITE_TEXTS_INDEX)

    # --- discovery -------------------------------------------------------------------

    def discover(
        self,
        path: str,
        depth: str = "0",
        child_context_manager: Callable[[str, str | None], contextlib.AbstractContextManager[None]]
        | None = None,
        user_groups: set[str] | None = None,
    ) -> Iterator[Any]:  # Radicale seam: collections and items
        """The collection or item at ``path`` and, at depth 1, its children."""
        sane = pathutils.strip_path(path)
        parent = writes.parent_of(sane)
        with self.engine.connect() as conn:
            rows = {
                row.path: row for row in conn.execute(_COLLECTIONS_AT, {"paths": [sane, parent]})
            }
            found = rows.get(sane)
            item = None
            if found is None and sane and parent in rows:
                item = self._item_at(conn, CollectionState.from_row(rows[parent]), sane)
        if found is None:
            if item is not None:
                yield item
            return
        collection = SqlCollection(self, CollectionState.from_row(found))
        yield collection
        if depth == "0":
            return
        manager = child_context_manager or _no_context
        for entry in collection.get_all():
            with manager(sane, entry.href):
                yield entry
        for child in self._children(sane):
            with manager(child.path, None):
                yield child

    def _item_at(
        self, conn: Connection, parent: CollectionState, sane: str
    ) -> radicale_item.Item | None:
        href = sane.rsplit("/", 1)[-1]
        row = conn.execute(writes.ITEM_AT, {"cid": parent.id, "at": href}).first()
        return None if row is None else SqlCollection(self, parent).item(row)

    def _children(self, sane: str) -> list[SqlCollection]:
        query = (
            select(dav_collections)
            .where(dav_collections.c.parent == sane)
            .order_by(dav_collections.c.path)
        )
        with self.engine.connect() as conn:
            return [
                SqlCollection(self, CollectionState.from_row(row)) for row in conn.execute(query)
            ]

    # --- changes ---------------------------------------------------------------------

    def create_collection(
        self,
        href: str,
        items: Iterable[radicale_item.Item] | None = None,
        props: Mapping[str, str] | None = None,
    ) -> tuple[SqlCollection, dict[str, radicale_item.Item], list[str]]:
        """Make a collection, or (with ``props``) make or replace it with ``items``."""
        sane = pathutils.strip_path(href)
        if not props:
            with self.engine.begin() as conn:
                state = writes.ensure_collection(conn, sane, time.time())
            return SqlCollection(self, state), {}, []
        state, replaced, new_hrefs = writes.create_collection(
            self.engine, sane, props, items, self.token_age_seconds
        )
        collection = SqlCollection(self, state)
        return collection, {h: collection.item(r) for h, r in replaced.items()}, new_hrefs

    def move(
        self, item: radicale_item.Item, to_collection: storage.BaseCollection, to_href: str
    ) -> None:
        """Move ``item`` to ``to_href`` in ``to_collection`` (replacing what is there)."""
        if not pathutils.is_safe_filesystem_path_component(to_href):
            raise pathutils.UnsafePathError(to_href)
        source = item.collection
        if not isinstance(source, SqlCollection) or not isinstance(to_collection, SqlCollection):
            raise TypeError("both collections must belong to the SQL store")
        assert item.href is not None  # items found by discovery have one
        from_state, to_state = writes.move(
            self.engine,
            source.state.id,
            item.href,
            to_collection.state.id,
            to_href,
            self.token_age_seconds,
        )
        source.state = from_state
        to_collection.state = to_state

    @types.contextmanager
    def acquire_lock(self, mode: str, user: str = "", *args: Any, **kwargs: Any) -> Iterator[None]:
        """For writes, the lock of each collection written (see the module doc)."""
        if mode != "w":
            yield
            return
        paths = [kwargs.get("path") or f"/{user}/", kwargs.get("to_path") or ""]
        keys = sorted({lock_key(path) for path in paths if path})
        with self._locks.hold(keys), self._advisory(keys), self._file_locks(keys):
            yield

    @contextlib.contextmanager
    def _file_locks(self, keys: list[str]) -> Iterator[None]:
        """SQLite: ``flock`` of the stripes of ``keys``, in order (other processes)."""
        folder = self._lock_folder
        if folder is None:
            yield
            return
        stripes = sorted({_lock_number(key) % FILE_LOCK_STRIPES_COUNT for key in keys})
        held: list[int] = []
        try:
            for stripe in stripes:
                fd = os.open(folder / f"{stripe:02x}.lock", os.O_RDWR | os.O_CREAT, 0o600)
                held.append(fd)
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            for fd in reversed(held):
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)

    @contextlib.contextmanager
    def _advisory(self, keys: list[str]) -> Iterator[None]:
        """PostgreSQL advisory locks of ``keys``, held on one connection (other nodes)."""
        if self.engine.dialect.name != "postgresql":
            yield
            return
        numbers = [_lock_number(key) for key in keys]
        with self.engine.connect() as conn:
            for number in numbers:
                conn.execute(text("SELECT pg_advisory_lock(:n)"), {"n": number})
            conn.commit()
            try:
                yield
            finally:
                for number in reversed(numbers):
                    conn.execute(text("SELECT pg_advisory_unlock(:n)"), {"n": number})
                conn.commit()

    def verify(self) -> bool:
        """Every stored item parses as what its collection holds."""
        is_ok = True
        for collection in self._children_deep(""):
            tag = collection.tag
            for entry in collection.get_all():
                try:
                    radicale_item.check_and_sanitize_items(
                        radicale_item.read_components(entry.serialize()),
                        self.max_occurrences,
                        tag=tag,
                    )
                except ValueError:
                    is_ok = False
        return is_ok

    def _children_deep(self, sane: str) -> Iterator[SqlCollection]:
        for child in self._children(sane):
            yield child
            yield from self._children_deep(child.path)


@contextlib.contextmanager
def _no_context(_path: str, _href: str | None) -> Iterator[None]:
    yield


def _file_lock_folder(engine: Engine) -> Path | None:
    """Where a SQLite database file's collection lock files go (made); else ``None``."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    folder = Path(database).parent / FILE_LOCKS_FOLDER
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def _lock_number(key: str) -> int:
    """A signed 64-bit advisory lock number for a collection key."""
    digest = hashlib.sha256(b"groupware-dav:" + key.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
