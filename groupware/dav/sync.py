# SPDX-License-Identifier: GPL-3.0-or-later
"""sync-collection REPORT of a SQL-store collection, from the change log.

RFC 6578 §3.2. Phones poll with the token of their last sync and get what changed
since. Radicale asks the store for the changed hrefs (``SqlCollection.sync``: one
read of the change log), then reads each item again through ``get_multi`` and
builds an ElementTree per response. Here the changed items come with their index
columns in the same read as the change log, and the responses are written as
``dav.reports`` writes them for the multigets.

What Radicale's ``xml_report`` does is kept: the collection's current token comes
first in the multistatus, then one response per changed href in href order, each
with the requested properties of the item, or ``404`` for an href deleted since the
token; an empty or absent token lists every item; ``sync-level`` and ``limit`` are
ignored, as Radicale ignores them.

Radicale answers alone (``None`` here) for what ``dav.reports`` does not take, a
filter in the body, and a token that is not one of the collection's own or that
is older than its change log (Radicale's ``403 valid-sync-token``).
"""

from __future__ import annotations

from typing import Any, Final
from xml.sax.saxutils import escape

from groupware.dav.fastpath import FastAnswer, LettersOf, ResolvePath
from groupware.dav.item_xml import DAV
from groupware.dav.reports import (
    ItemResponses,
    ReportSettings,
    multistatus,
    readable_collection,
    report_request,
)
from groupware.dav.sqlstore.collection import SYNC_PREFIX, token_revision
from groupware.dav.sqlstore.rawsql import fetch_all

SYNC_COLLECTION: Final = DAV + "sync-collection"
SYNC_TOKEN: Final = DAV + "sync-token"
LEAF_TAGS: Final = ("VCALENDAR", "VADDRESSBOOK")
STATE_SQL: Final = "SELECT sync_key, revision, oldest_revision FROM dav_collections WHERE id = ?"
#: Items written after a revision, with their text or without (when no text is asked).
CHANGED_ITEMS_SQL: Final = {
    True: "SELECT href, etag, text, name, component FROM dav_items"
    " WHERE collection_id = ? AND revision > ? AND revision <= ?",
    False: "SELECT href, etag, '', name, component FROM dav_items"
    " WHERE collection_id = ? AND revision > ? AND revision <= ?",
}
DELETED_SQL: Final = (
    "SELECT href FROM dav_tombstones WHERE collection_id = ? AND revision > ? AND revision <= ?"
)


class SyncFastPath:
    """Answers the sync-collection REPORTs it can (see the module doc), ``None`` otherwise."""

    def __init__(self, engine: Any, settings: ReportSettings) -> None:  # SQLAlchemy Engine
        self._engine = engine
        self._settings = settings

    def answer(
        self,
        user: str,
        environ: dict[str, Any],
        *,
        resolve: ResolvePath,
        letters_of: LettersOf,
    ) -> FastAnswer | None:
        """The answer to ``environ`` as Radicale would give it, or ``None``."""
        request = report_request(environ, (SYNC_COLLECTION,))
        if request is None or request.has_filter:
            return None
        collection = readable_collection(
            user,
            request,
            collection_tags=LEAF_TAGS,
            engine=self._engine,
            resolve=resolve,
            letters_of=letters_of,
        )
        if collection is None:
            return None
        collection_id = collection[0]
        rows = fetch_all(self._engine, STATE_SQL, [collection_id])
        if not rows:
            return None
        sync_key, revision, oldest = rows[0]
        asked = (request.root.findtext(SYNC_TOKEN) or "").strip()
        since = -1
        if asked:
            found = token_revision(asked, sync_key)
            if found is None or not oldest <= found <= revision:
                return None  # Radicale: 403 valid-sync-token
            since = found
        responses = ItemResponses(request, self._settings.encoding)
        token = f"{SYNC_PREFIX}{sync_key}:{revision}"
        element = f"<sync-token>{escape(token)}</sync-token>"
        responses.chunks.append(element.encode(self._settings.encoding))
        if since < revision:
            self._changes(request.path, collection_id, since, revision, responses)
        return multistatus(responses, self._settings, environ)

    def _changes(
        self, path: str, collection_id: int, since: int, revision: int, responses: ItemResponses
    ) -> None:
        """One response per href changed after ``since``, in href order."""
        bounds = [collection_id, since, revision]
        items = fetch_all(self._engine, CHANGED_ITEMS_SQL[responses.wants_text], bounds)
        changed: dict[str, Any] = {row[0]: row for row in items}
        if since >= 0:
            for (href,) in fetch_all(self._engine, DELETED_SQL, bounds):
                changed.setdefault(href, None)
        for href in sorted(changed):
            row = changed[href]
            if row is None:
                responses.not_found(path + href)
            else:
                responses.found(row)
