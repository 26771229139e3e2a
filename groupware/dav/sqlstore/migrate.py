# SPDX-License-Identifier: GPL-3.0-or-later
"""Moving calendars and address books between a Radicale file store and the SQL store.

The file layout is Radicale's ``multifilesystem``: one folder per collection (under
``collection-root/`` when given the storage folder itself), its properties in
``.Radicale.props`` (JSON), one ``.ics`` or ``.vcf`` file per item, named by its href.
Import keeps every href, so clients' URLs and ETags of the same text stay valid;
export writes the same layout (plain files Radicale itself can serve), each file
written to a temporary name, fsynced, then renamed.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import vobject  # type: ignore[import-untyped]
from radicale import item as radicale_item
from radicale import pathutils
from sqlalchemy import delete, select

from groupware.dav.sqlstore import writes
from groupware.dav.sqlstore.indexing import ItemIndex, index_item
from groupware.dav.sqlstore.schema import dav_collections, dav_items, dav_tombstones
from groupware.dav.sqlstore.storage import SqlStorage

log = logging.getLogger(__name__)

PROPS_FILE: Final = ".Radicale.props"
ROOT_FOLDER: Final = "collection-root"
#: Items per transaction while importing (each transaction is one revision).
BATCH_SIZE: Final = 500
_TAG_OF_NAME: Final = {"VCALENDAR": "VCALENDAR", "VCARD": "VADDRESSBOOK"}


@dataclass(slots=True)
class MigrationReport:
    """What an import or export did."""

    collections: int = 0
    items: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


@dataclass(frozen=True, slots=True)
class FileCollection:
    """One collection folder of a file store."""

    path: str  # sanitized, e.g. "alice/calendar"
    folder: Path
    props: dict[str, str]
    hrefs: tuple[str, ...]


def scan_file_store(source: Path) -> list[FileCollection]:
    """Every collection folder under ``source`` (a storage folder or its root)."""
    root = source / ROOT_FOLDER if (source / ROOT_FOLDER).is_dir() else source
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if pathutils.is_safe_filesystem_path_component(d))
        here = Path(folder)
        path = "/".join(here.relative_to(root).parts)
        if not path:
            continue
        props: dict[str, str] = {}
        if PROPS_FILE in files:
            props = json.loads((here / PROPS_FILE).read_text(encoding="utf-8"))
        hrefs = tuple(
            sorted(
                name
                for name in files
                if pathutils.is_safe_filesystem_path_component(name)
                and name != PROPS_FILE
                and not name.startswith(".Radicale")
            )
        )
        found.append(FileCollection(path, here, props, hrefs))
    return found


def import_file_store(
    store: SqlStorage, source: Path, on_item: Callable[[], None] | None = None
) -> MigrationReport:
    """Copy every collection and item under ``source`` into ``store`` (idempotent).

    An item that does not parse, or does not belong in its collection, is reported
    and skipped; the others are imported.
    """
    report = MigrationReport()
    for collection in scan_file_store(source):
        _import_collection(store, collection, report, on_item)
    return report


def _import_collection(
    store: SqlStorage,
    collection: FileCollection,
    report: MigrationReport,
    on_item: Callable[[], None] | None,
) -> None:
    tag = collection.props.get("tag", "")
    with store.engine.begin() as conn:
        state = writes.ensure_collection(conn, collection.path, time.time())
    writes.set_props(store.engine, state.id, collection.props)
    report.collections += 1
    batch: list[tuple[str, ItemIndex]] = []
    for href in collection.hrefs:
        indexed = _read_item(collection, href, tag, store, report)
        if indexed is not None:
            batch.append((href, indexed))
        if on_item is not None:
            on_item()
        if len(batch) >= BATCH_SIZE:
            _write_batch(store, state.id, batch)
            report.items += len(batch)
            batch = []
    if batch:
        _write_batch(store, state.id, batch)
        report.items += len(batch)


def _read_item(
    collection: FileCollection, href: str, tag: str, store: SqlStorage, report: MigrationReport
) -> ItemIndex | None:
    where = f"{collection.path}/{href}"
    try:
        text = (collection.folder / href).read_text(encoding="utf-8")
        components = radicale_item.read_components(text)
        radicale_item.check_and_sanitize_items(components, store.max_occurrences, tag=tag)
        if len(components) != 1 or _TAG_OF_NAME.get(components[0].name) != tag:
            raise ValueError(f"not one item of a {tag or 'plain'} collection")
        item = radicale_item.Item(collection_path=collection.path, vobject_item=components[0])
        return index_item(item)
    except (OSError, ValueError, RuntimeError, vobject.base.VObjectError) as exc:
        log.warning("dav.import.rejected path=%s reason=%s", where, exc)
        report.rejected.append((where, str(exc)))
        return None


def _write_batch(store: SqlStorage, collection_id: int, batch: list[tuple[str, ItemIndex]]) -> None:
    hrefs = [href for href, _index in batch]
    now = time.time()
    with store.engine.begin() as conn:
        state = writes.bump(conn, collection_id, now)
        old = [
            row.id
            for row in conn.execute(
                select(dav_items.c.id).where(
                    dav_items.c.collection_id == collection_id, dav_items.c.href.in_(hrefs)
                )
            )
        ]
        writes.delete_items(conn, collection_id, old)
        conn.execute(
            delete(dav_tombstones).where(
                dav_tombstones.c.collection_id == collection_id,
                dav_tombstones.c.href.in_(hrefs),
            )
        )
        writes.insert_items(conn, collection_id, batch, state.revision, now)


# --- export --------------------------------------------------------------------------


def export_file_store(store: SqlStorage, destination: Path) -> MigrationReport:
    """Write every collection of ``store`` under ``destination`` as plain files."""
    report = MigrationReport()
    with store.engine.connect() as conn:
        collections = list(
            conn.execute(select(dav_collections).where(dav_collections.c.path != ""))
        )
    for row in sorted(collections, key=lambda r: r.path):
        folder = destination.joinpath(*row.path.split("/"))
        folder.mkdir(parents=True, exist_ok=True)
        props = json.loads(row.props)
        if props:
            _write_file(folder / PROPS_FILE, json.dumps(props, sort_keys=True))
        report.collections += 1
        for href, text in _item_texts(store, row.id):
            _write_file(folder / href, text)
            report.items += 1
    return report


def _item_texts(store: SqlStorage, collection_id: int) -> Iterator[tuple[str, str]]:
    query = (
        select(dav_items.c.href, dav_items.c.text)
        .where(dav_items.c.collection_id == collection_id)
        .order_by(dav_items.c.href)
    )
    with store.engine.connect() as conn:
        yield from ((row.href, row.text) for row in conn.execute(query))


def _write_file(path: Path, text: str) -> None:
    """Write, fsync, rename: a reader never sees half a file."""
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", encoding="utf-8", newline="") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)
