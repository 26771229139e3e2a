# SPDX-License-Identifier: GPL-3.0-or-later
"""calendar-query / addressbook-query of a SQL-store collection, without Radicale's XML.

RFC 4791 §7.8, RFC 6352 §8.6. A phone showing a month asks for its events with a
time-range calendar-query. The candidates come from the index exactly as Radicale
gets them from this store (``SqlCollection.get_filtered``: each with "exact" when the
index alone decides, see ``dav.sqlstore.prefilter``); the others go through
Radicale's own ``test_filter``, as in ``radicale.app.report.xml_report``. What is
skipped is only Radicale's ElementTree per item: the responses are written by
``dav.reports``, from the item's stored text and ETag.

Radicale answers alone (``None`` here) for what ``dav.reports`` does not take, for a
filter of the other kind than the collection (Radicale refuses it with 400), and
whenever filtering raises (a malformed or unsupported filter: Radicale's 400 or
500, with its log line).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final
from xml.etree import ElementTree as ET  # noqa: S405 - the body passed dav.guard

from radicale.app.report import test_filter
from sqlalchemy import Row

from groupware.dav.fastpath import FastAnswer, LettersOf, ResolvePath
from groupware.dav.reports import (
    CALDAV,
    CARDDAV,
    ItemResponses,
    ReportSettings,
    multistatus,
    readable_collection,
    report_request,
)
from groupware.dav.sqlstore.collection import SqlCollection

#: Each query, the collection tag it is answered on here, and its filter element.
QUERIES: Final = {
    CALDAV + "calendar-query": ("VCALENDAR", CALDAV + "filter"),
    CARDDAV + "addressbook-query": ("VADDRESSBOOK", CARDDAV + "filter"),
}
FILTER_TAGS: Final = frozenset(filter_tag for _tag, filter_tag in QUERIES.values())

#: The SQL-store collection at a storage path, or ``None``.
CollectionAt = Callable[[str], SqlCollection | None]


class QueryFastPath:
    """Answers the calendar and address book queries it can, ``None`` otherwise."""

    def __init__(
        self,
        engine: Any,  # SQLAlchemy Engine
        settings: ReportSettings,
        collection_at: CollectionAt,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._collection_at = collection_at

    def answer(
        self,
        user: str,
        environ: dict[str, Any],
        *,
        resolve: ResolvePath,
        letters_of: LettersOf,
    ) -> FastAnswer | None:
        """The answer to ``environ`` as Radicale would give it, or ``None``."""
        request = report_request(environ, QUERIES)
        if request is None:
            return None
        collection_tag, filter_tag = QUERIES[request.root.tag]
        filters = [child for child in request.root if child.tag in FILTER_TAGS]
        if any(child.tag != filter_tag for child in filters):
            return None
        found = readable_collection(
            user,
            request,
            collection_tags=(collection_tag,),
            engine=self._engine,
            resolve=resolve,
            letters_of=letters_of,
        )
        collection = None if found is None else self._collection_at(found[1])
        if collection is None:
            return None
        responses = ItemResponses(request, self._settings.encoding)
        try:
            for row, is_exact in collection.filtered_rows(filters):
                if not (is_exact or _matches(collection, row, collection_tag, filters)):
                    continue
                responses.found((row.href, row.etag, row.text, row.name, row.component))
        except Exception:  # noqa: BLE001 - Radicale answers it, with its own status and log
            return None
        return multistatus(responses, self._settings, environ)


def _matches(
    collection: SqlCollection, row: Row[Any], collection_tag: str, filters: list[ET.Element]
) -> bool:
    """Radicale's own check of a candidate the index does not decide alone."""
    item = collection.item(row)  # type: ignore[arg-type]
    return all(test_filter(collection_tag, item, each) for each in filters)
