# SPDX-License-Identifier: GPL-3.0-or-later
"""PUT of one calendar object or vCard into a SQL-store collection, parsed once.

RFC 4791 §5.3.2 and RFC 6352 §6.3.2 (creating and changing an object resource),
RFC 9110 §13.1 (``If-Match``, ``If-None-Match: *``). Radicale's ``do_PUT`` parses
the body, sanitizes and serializes it and computes its enclosing time range (one
recurrence expansion); then, under the collection's lock, it discovers the item
and its collection (two store reads) and asks whether the UID is taken (a third),
and the store indexes the item (a second expansion) before writing it.

Here the same Radicale functions read, sanitize and serialize the item
(``read_components``, ``check_and_sanitize_items``, ``Item.serialize``), so the
stored text and ETag are the ones Radicale would store; one expansion gives both
the index's ranges and the enclosing range (``indexing.enclosing_range``, or
Radicale's ``find_time_range`` where that one would stop earlier); the write is
``writes.upload``, as for Radicale's own uploads, under the same collection lock,
and the preconditions and the UID rule are checked inside its transaction on the
item it reads there (``accept``), so nothing is read twice.

This path writes only what Radicale would write and answers only what it would
answer with success (``201`` for a new item, ``204`` for a replaced one, each with
the new ETag and Radicale's configured headers). For anything else
:meth:`PutFastPath.answer` returns ``None`` before writing, and Radicale answers
in full (the body is left readable for it):

- Radicale's hooks or its own sharing are configured (they act on each PUT);
- not PUT, or a path that is not a sanitized ``/<home>/<collection>/<name>`` or
  that Radicale's path check refuses, or whose name is not a safe file name;
- a directory book, or a collection that is not a calendar or address book of the
  SQL store, or that has child collections;
- no ``w`` on the collection (Radicale then refuses, or writes a whole collection);
- a body that is not text in the request's charset, that Radicale cannot read or
  sanitize, or longer than ``max_resource_size`` once serialized, or an href or UID
  longer than the store keeps (``writes.fits``: Radicale's upload then fails, 400);
- a failed precondition (``412``) or a UID held by another item (``409``).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any, Final

from radicale import httputils, pathutils, rights
from radicale import item as radicale_item
from radicale.app import base as radicale_app_base

from groupware.dav import directory_books
from groupware.dav.fastpath import FastAnswer, LettersOf, ResolvePath, leaf_collection, read_body
from groupware.dav.sqlstore import writes
from groupware.dav.sqlstore.indexing import enclosing_range, expand_item, index_item

#: What each collection holds: the top component Radicale accepts in it.
ITEM_NAMES: Final = {"VCALENDAR": "VCALENDAR", "VADDRESSBOOK": "VCARD"}


@dataclass(frozen=True, slots=True)
class PutSettings:
    """The settings of Radicale's ``do_PUT`` this path follows, read from its application."""

    configuration: Any  # radicale.config.Configuration, for decode_request
    validate_path: str
    strict_preconditions: bool
    max_resource_size: int
    max_occurrences: int
    extra_headers: tuple[tuple[str, str], ...]
    #: Radicale's hooks or its own sharing are on: they act on PUTs, this path does not.
    radicale_acts_on_puts: bool

    @classmethod
    def of(cls, application: Any) -> PutSettings:  # radicale.Application
        """The values ``application`` itself answers a PUT with."""
        return cls(
            configuration=application.configuration,
            validate_path=application._validate_path_value,  # noqa: SLF001 - Radicale seam
            strict_preconditions=application._strict_preconditions,  # noqa: SLF001
            max_resource_size=application._max_resource_size,  # noqa: SLF001
            max_occurrences=application._max_vevent_rrule_occurrence,  # noqa: SLF001
            extra_headers=tuple(application._extra_headers.items()),  # noqa: SLF001
            radicale_acts_on_puts=bool(
                application._hook.enabled  # noqa: SLF001
                or application._sharing._enabled  # noqa: SLF001
            ),
        )


@dataclass(frozen=True, slots=True)
class _Target:
    path: str  # the request path, sanitized: "/home/collection/name"
    collection_path: str  # "/home/collection/", as the request names it
    name: str
    collection_id: int
    tag: str


class PutFastPath:
    """Writes the PUTs it can (see the module doc) and answers them; ``None`` otherwise."""

    def __init__(self, engine: Any, storage: Any, settings: PutSettings) -> None:
        self._engine = engine  # SQLAlchemy Engine
        self._storage = storage  # dav.storage.Storage: its locks resolve mounts
        self._settings = settings

    def answer(
        self,
        user: str,
        environ: dict[str, Any],
        *,
        resolve: ResolvePath,
        letters_of: LettersOf,
    ) -> FastAnswer | None:
        """Write the item and answer as Radicale would, or ``None`` (nothing written)."""
        target = self._target(user, environ, resolve, letters_of)
        if target is None:
            return None
        body = read_body(environ)
        if body is None:
            return None
        prepared = self._prepared(environ, body, target)
        if prepared is None:
            return None
        item, index = prepared

        def accept(existing: writes.ItemRow | None, uid_elsewhere: bool) -> bool:
            return self._preconditions_hold(environ, existing) and not _uid_conflict(
                existing, uid_elsewhere, index.uid
            )

        try:
            with self._storage.acquire_lock("w", user, path=target.path, request="PUT"):
                _state, row, replaced = writes.upload(
                    self._engine, target.collection_id, target.name, item, index, accept
                )
        except writes.WriteRefused:
            return None  # Radicale answers 412 or 409 (its own check, its own body)
        status = "201 Created" if replaced is None else "204 No Content"
        return FastAnswer(status, [("ETag", row.etag), *self._settings.extra_headers], b"")

    def _target(
        self, user: str, environ: dict[str, Any], resolve: ResolvePath, letters_of: LettersOf
    ) -> _Target | None:
        if environ.get("REQUEST_METHOD") != "PUT" or self._settings.radicale_acts_on_puts:
            return None
        path = environ.get("PATH_INFO", "")
        if path.endswith("/") or pathutils.sanitize_path(path) != path:
            return None
        parts = path.split("/")[1:]
        if len(parts) != 3 or not pathutils.is_safe_filesystem_path_component(parts[2]):
            return None
        if not radicale_app_base._check_path_format(  # noqa: SLF001 - Radicale's own check
            self._storage, path, self._settings.validate_path
        ):
            return None
        collection_path = f"/{parts[0]}/{parts[1]}/"
        real = resolve(collection_path)
        if not real or real.split("/", 1)[0] == directory_books.ROOT:
            return None
        if "w" not in rights.intersect(letters_of(user, collection_path), "w"):
            return None
        collection = leaf_collection(self._engine, real)
        if collection is None:
            return None
        return _Target(path, collection_path, parts[2], collection[0], collection[1])

    def _prepared(
        self, environ: dict[str, Any], body: bytes, target: _Target
    ) -> tuple[radicale_item.Item, writes.ItemIndex] | None:
        """The item and its index as Radicale's ``prepare`` would make it, or ``None``."""
        settings = self._settings
        try:
            text = httputils.decode_request(settings.configuration, environ, body)
            components = radicale_item.read_components(text)
            radicale_item.check_and_sanitize_items(
                components,
                max_vevent_rrule_occurrence=settings.max_occurrences,
                is_collection=False,
                tag=target.tag,
            )
            (component,) = components
            component_name = radicale_item.find_tag(component)
            expansion = None
            time_range = None
            if component.name == "VCALENDAR" and component_name:
                expansion = expand_item(component, component_name)
                time_range = enclosing_range(expansion)
            item = radicale_item.Item(
                collection_path=posixpath.dirname(pathutils.strip_path(target.path)),
                vobject_item=component,
                component_name=component_name,
                time_range=time_range,
            )
            index = index_item(item, expansion=expansion)
        except Exception:  # noqa: BLE001 - whatever Radicale's prepare fails on, it answers
            return None
        if len(index.text) > settings.max_resource_size or index.name != ITEM_NAMES[target.tag]:
            return None
        if not writes.fits(target.name, index.uid):
            return None
        return item, index

    def _preconditions_hold(self, environ: dict[str, Any], existing: writes.ItemRow | None) -> bool:
        """Radicale's checks of ``If-Match`` and ``If-None-Match: *`` (RFC 9110 §13.1)."""
        etag = environ.get("HTTP_IF_MATCH", "")
        if existing is not None and not etag and self._settings.strict_preconditions:
            return False
        if existing is None and etag:
            return False
        if existing is not None and etag and etag not in ("*", existing.etag):
            return False
        return not (existing is not None and environ.get("HTTP_IF_NONE_MATCH", "") == "*")


def _uid_conflict(existing: writes.ItemRow | None, uid_elsewhere: bool, uid: str) -> bool:
    """Radicale's ``no-uid-conflict`` rule: the href's item keeps its UID, no other has it."""
    if existing is not None:
        return existing.uid != uid
    return uid_elsewhere
