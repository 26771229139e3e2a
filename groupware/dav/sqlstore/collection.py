# SPDX-License-Identifier: GPL-3.0-or-later
"""One collection of the SQL store, as Radicale's ``BaseCollection``.

A collection object holds the row it was discovered with (properties, revision),
so that its ETag, sync token and properties cost no further query; items are read
from ``dav_items`` without parsing (their UID, ETag, component and time range are
columns). Writes go through ``dav.sqlstore.writes`` in one transaction each.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET  # noqa: S405 - reads parsed elements only
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final

from radicale import item as radicale_item
from radicale import pathutils, storage
from sqlalchemy import Row, and_, bindparam, false, or_, select, true, union

from groupware.dav.sqlstore import writes
from groupware.dav.sqlstore.indexing import LONG_RANGE_SECONDS
from groupware.dav.sqlstore.prefilter import CardFilterPlan, card_plans, time_plan
from groupware.dav.sqlstore.schema import (
    ITEM_COLUMNS,
    dav_item_ranges,
    dav_item_texts,
    dav_items,
    dav_tombstones,
)
from groupware.dav.sqlstore.writes import CollectionState

if TYPE_CHECKING:
    from groupware.dav.sqlstore.storage import SqlStorage

SYNC_PREFIX: Final = "urn:groupware:dav-sync:"
#: Bound parameters per ``IN (...)`` list (SQLite allows 32,766; PostgreSQL 65,535).
CHUNK_SIZE: Final = 500


def http_date(posix_seconds: float) -> str:
    """An HTTP-date (RFC 9110 §5.6.7), as Radicale writes ``Last-Modified``."""
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(posix_seconds))


#: Radicale's UID check before every new item (PUT), built once.
_HAS_UID: Final = (
    select(dav_items.c.id)
    .where(dav_items.c.collection_id == bindparam("cid"), dav_items.c.uid == bindparam("uid"))
    .limit(1)
)


class SqlCollection(storage.BaseCollection):
    """A calendar, address book or plain collection stored in SQL."""

    def __init__(self, store: SqlStorage, state: CollectionState) -> None:
        self._store = store
        self.state = state

    # --- properties ------------------------------------------------------------------

    @property
    def path(self) -> str:
        return self.state.path

    @property
    def etag(self) -> str:
        return radicale_item.get_etag(f"{self.state.sync_key}/{self.state.revision}")

    @property
    def last_modified(self) -> str:
        return http_date(self.state.modified_at)

    def get_meta(self, key: str | None = None) -> Any:  # Radicale seam: str or mapping
        props = radicale_item.check_and_sanitize_props(dict(self.state.props))
        return props if key is None else props.get(key)

    def set_meta(self, props: Mapping[str, str]) -> None:
        self._changed(writes.set_props(self._store.engine, self.state.id, dict(props)))

    def _changed(self, state: CollectionState) -> None:
        self.state = state

    # --- reading ---------------------------------------------------------------------

    def item(self, row: writes.ItemRecord) -> radicale_item.Item:
        """A Radicale item from a row of ``dav_items`` (no parsing)."""
        return radicale_item.Item(
            collection=self,
            href=row.href,
            last_modified=http_date(row.modified_at),
            etag=row.etag,
            text=row.text,
            uid=row.uid,
            name=row.name,
            component_name=row.component,
            time_range=(row.start_ts, row.end_ts),
        )

    def _rows(self, *conditions: Any) -> list[Row[Any]]:
        query = (
            select(*ITEM_COLUMNS)
            .where(dav_items.c.collection_id == self.state.id, *conditions)
            .order_by(dav_items.c.href)
        )
        with self._store.engine.connect() as conn:
            return list(conn.execute(query))

    def _rows_by_id(self, ids_condition: Any, *conditions: Any) -> list[Row[Any]]:
        """Rows whose ids ``ids_condition`` gives (ids of this collection), unordered.

        Looked up by primary key: with the collection's condition and the href order
        of :meth:`_rows`, SQLite walks the whole collection's (collection_id, href)
        index testing each id (16 ms at 10,000 items instead of 1).
        """
        query = select(*ITEM_COLUMNS).where(ids_condition, *conditions)
        with self._store.engine.connect() as conn:
            return list(conn.execute(query))

    def get_multi(self, hrefs: Iterable[str]) -> Iterator[tuple[str, radicale_item.Item | None]]:
        wanted = list(dict.fromkeys(hrefs))
        found: dict[str, Row[Any]] = {}
        for start in range(0, len(wanted), CHUNK_SIZE):
            for row in self._rows(dav_items.c.href.in_(wanted[start : start + CHUNK_SIZE])):
                found[row.href] = row
        for href in wanted:
            hit = found.get(href)
            yield href, None if hit is None else self.item(hit)

    def get_all(self) -> Iterator[radicale_item.Item]:
        return (self.item(row) for row in self._rows())

    def has_uid(self, uid: str) -> bool:
        with self._store.engine.connect() as conn:
            return conn.execute(_HAS_UID, {"cid": self.state.id, "uid": uid}).first() is not None

    def get_filtered(
        self, filters: Iterable[ET.Element]
    ) -> Iterator[tuple[radicale_item.Item, bool]]:
        """Items that may match ``filters``, found in the index; ``True`` when exact."""
        return ((self.item(row), is_exact) for row, is_exact in self.filtered_rows(filters))

    def filtered_rows(self, filters: Iterable[ET.Element]) -> Iterator[tuple[Row[Any], bool]]:
        """:meth:`get_filtered` as ``dav_items`` rows (``ITEM_COLUMNS``), in href order.

        For ``dav.query``, which needs the items themselves only when not exact.
        """
        filters = list(filters)
        tag = self.tag
        if tag == "VCALENDAR":
            yield from self._calendar_filtered(filters)
        elif tag == "VADDRESSBOOK":
            yield from self._card_filtered(filters)

    def _calendar_filtered(self, filters: Sequence[ET.Element]) -> Iterator[tuple[Row[Any], bool]]:
        plan = time_plan(filters, "VCALENDAR")
        component = [dav_items.c.component == plan.component] if plan.component is not None else []
        if plan.is_unbounded:
            for row in self._rows(*component):
                yield row, plan.is_simple
            return
        cid = dav_item_ranges.c.collection_id
        overlapping = select(dav_item_ranges.c.item_id).where(
            cid == self.state.id,
            dav_item_ranges.c.start_ts < plan.end,
            dav_item_ranges.c.end_ts > plan.start,
            or_(
                and_(
                    dav_item_ranges.c.is_long == false(),
                    dav_item_ranges.c.start_ts >= plan.start - LONG_RANGE_SECONDS,
                ),
                dav_item_ranges.c.is_long == true(),
            ),
        )
        found = self._rows_by_id(dav_items.c.id.in_(overlapping), *component)
        rows = {row.id: row for row in found}
        exact = set(rows)
        # Items whose expansion stops before the query's end: Radicale checks them.
        partial = self._rows(
            dav_items.c.indexed_until < plan.end,
            dav_items.c.start_ts < plan.end,
            dav_items.c.end_ts > plan.start,
            *component,
        )
        for row in partial:
            rows.setdefault(row.id, row)
        for item_id, row in sorted(rows.items(), key=lambda pair: pair[1].href):
            yield row, plan.is_simple and item_id in exact

    def _card_filtered(self, filters: Sequence[ET.Element]) -> Iterator[tuple[Row[Any], bool]]:
        plans = card_plans(filters)
        is_exact = bool(plans) and all(plan.props is not None for plan in plans)
        wanted: set[int] | None = None
        for plan in plans:
            found = self._card_candidates(plan)
            if found is not None:
                wanted = found if wanted is None else wanted & found
        if wanted is None:
            for row in self._rows():
                yield row, False
            return
        ids = sorted(wanted)
        rows: list[Row[Any]] = []
        for start in range(0, len(ids), CHUNK_SIZE):
            rows.extend(self._rows_by_id(dav_items.c.id.in_(ids[start : start + CHUNK_SIZE])))
        for row in sorted(rows, key=lambda r: r.href):
            yield row, is_exact

    def _card_candidates(self, plan: CardFilterPlan) -> set[int] | None:
        """Ids of the items matching one ``CR:filter``, or ``None`` for "any"."""
        if plan.props is None:
            return None
        sets = []
        with self._store.engine.connect() as conn:
            for prop in plan.props:
                per_test = [
                    {
                        row.item_id
                        for row in conn.execute(
                            select(dav_item_texts.c.item_id).where(
                                dav_item_texts.c.collection_id == self.state.id,
                                dav_item_texts.c.prop == test.prop,
                                dav_item_texts.c.value == test.text
                                if test.match_type == "equals"
                                else dav_item_texts.c.value.like(test.like_pattern(), escape="\\"),
                            )
                        )
                    }
                    for test in prop.tests
                ]
                sets.append(_combine(per_test, is_anyof=prop.is_anyof))
        return _combine(sets, is_anyof=plan.is_anyof)

    # --- sync (RFC 6578) -------------------------------------------------------------

    def sync(self, old_token: str = "") -> tuple[str, Iterable[str]]:
        state = self.state
        token = f"{SYNC_PREFIX}{state.sync_key}:{state.revision}"
        if not old_token:
            # Lazy: a PROPFIND of ``sync-token`` wants the token alone, and reading
            # every href would make it grow with the collection.
            return token, self._all_hrefs(state.revision)
        revision = token_revision(old_token, state.sync_key)
        if revision is None or not state.oldest_revision <= revision <= state.revision:
            raise ValueError(f"unknown or expired sync token: {old_token!r}")
        if revision == state.revision:
            return token, []
        changed = union(
            select(dav_items.c.href).where(
                dav_items.c.collection_id == state.id,
                dav_items.c.revision > revision,
                dav_items.c.revision <= state.revision,
            ),
            select(dav_tombstones.c.href).where(
                dav_tombstones.c.collection_id == state.id,
                dav_tombstones.c.revision > revision,
                dav_tombstones.c.revision <= state.revision,
            ),
        )
        with self._store.engine.connect() as conn:
            return token, sorted(row.href for row in conn.execute(changed))

    def _all_hrefs(self, revision: int) -> Iterator[str]:
        """Every href at ``revision``, read only when first iterated."""
        yield from [row.href for row in self._hrefs(revision)]

    def _hrefs(self, revision: int) -> list[Row[Any]]:
        query = select(dav_items.c.href).where(
            dav_items.c.collection_id == self.state.id,
            dav_items.c.revision <= revision,
        )
        with self._store.engine.connect() as conn:
            return list(conn.execute(query.order_by(dav_items.c.href)))

    # --- writing ---------------------------------------------------------------------

    def upload(
        self, href: str, item: radicale_item.Item
    ) -> tuple[radicale_item.Item, radicale_item.Item | None]:
        if not pathutils.is_safe_filesystem_path_component(href):
            raise pathutils.UnsafePathError(href)
        state, row, old_row = writes.upload(self._store.engine, self.state.id, href, item)
        self._changed(state)
        return self.item(row), None if old_row is None else self.item(old_row)

    def delete(self, href: str | None = None) -> None:
        if href is None:
            writes.delete_collection(self._store.engine, self.state.path)
            return
        state = writes.delete_item(
            self._store.engine, self.state.id, href, self._store.token_age_seconds
        )
        if state is None:
            raise storage.ComponentNotFoundError(href)
        self._changed(state)

    def with_state(self, state: CollectionState) -> SqlCollection:
        """This collection at another revision (after a move into or out of it)."""
        return SqlCollection(self._store, replace(state))


def _combine(sets: list[set[int]], *, is_anyof: bool) -> set[int]:
    if not sets:
        return set()
    if is_anyof:
        return set().union(*sets)
    return set.intersection(*sets)


def token_revision(token: str, sync_key: str) -> int | None:
    """The revision a sync token of this collection names (``None``: not one of its own)."""
    prefix = f"{SYNC_PREFIX}{sync_key}:"
    if not token.startswith(prefix):
        return None
    number = token[len(prefix) :]
    return int(number) if number.isdigit() else None
