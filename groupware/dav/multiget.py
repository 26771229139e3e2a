# SPDX-License-Identifier: GPL-3.0-or-later
"""calendar-multiget / addressbook-multiget of a SQL-store collection, from index rows.

RFC 4791 §7.9, RFC 6352 §8.7. After a sync, a client fetches the changed items by
href in batches of about a hundred; Radicale builds an ``Item`` per href, an
ElementTree per response and serializes the whole tree (28 ms for 100 events).
Here the responses are written from the ``dav_items`` rows (``dav.reports``): the
stored text is what Radicale's ``Item.serialize`` returns for an item of this store,
the ETag the column it reads.

What Radicale does with the hrefs is kept (``radicale.app.report.xml_report`` and
``retrieve_items``): a path outside the base prefix is skipped; one outside the
collection, or not a safe name, gets a ``404`` response with its own href; a missing
item gets a ``404``; duplicates are answered once.

Radicale answers alone (``None`` here) for what ``dav.reports`` does not take, and
for a ``filter`` anywhere in the body (Radicale then filters the items), an ``href``
without text, naming the collection itself (Radicale then lists it all) or the base
prefix alone (an assertion fails in Radicale).
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from typing import Any, Final
from urllib.parse import unquote, urlparse
from xml.etree import ElementTree as ET  # noqa: S405 - the body passed dav.guard

from radicale import pathutils

from groupware.dav.fastpath import FastAnswer, LettersOf, ResolvePath
from groupware.dav.item_xml import DAV
from groupware.dav.reports import (
    CALDAV,
    CARDDAV,
    ItemResponses,
    ItemRow,
    ReportSettings,
    multistatus,
    readable_collection,
    report_request,
)
from groupware.dav.sqlstore.collection import CHUNK_SIZE
from groupware.dav.sqlstore.rawsql import fetch_all, in_list

#: The collection tag each report is for (Radicale answers others with 403).
MULTIGETS: Final = {
    CALDAV + "calendar-multiget": "VCALENDAR",
    CARDDAV + "addressbook-multiget": "VADDRESSBOOK",
}
ITEMS_SQL: Final = (
    "SELECT href, etag, text, name, component FROM dav_items WHERE collection_id = ? AND href IN "
)
#: Characters that make ``urlparse`` split a path (query, fragment, parameters) or
#: that it removes (tab, line breaks).
URL_SPECIALS: Final = frozenset("?#;\t\r\n")


class MultigetFastPath:
    """Answers the multiget REPORTs it can (see the module doc), ``None`` otherwise."""

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
        request = report_request(environ, MULTIGETS)
        if request is None or request.has_filter:
            return None
        hrefs = _request_hrefs(request.root, request.base_prefix)
        if hrefs is None:
            return None
        names, outside = _names(request.path, hrefs)
        if names is None:
            return None
        collection = readable_collection(
            user,
            request,
            collection_tags=(MULTIGETS[request.root.tag],),
            engine=self._engine,
            resolve=resolve,
            letters_of=letters_of,
        )
        if collection is None:
            return None
        rows = self._rows(collection[0], names)
        responses = ItemResponses(request, self._settings.encoding)
        for href in outside:
            responses.not_found(href)
        for name in names:
            row = rows.get(name)
            if row is None:
                responses.not_found(posixpath.join(request.path, name))
            else:
                responses.found(row)
        return multistatus(responses, self._settings, environ)

    def _rows(self, collection_id: int, names: Sequence[str]) -> dict[str, ItemRow]:
        """``name → (href, etag, text, name, component)`` of the items found."""
        found: dict[str, ItemRow] = {}
        for start in range(0, len(names), CHUNK_SIZE):
            chunk = names[start : start + CHUNK_SIZE]
            sql = ITEMS_SQL + in_list(len(chunk))
            for row in fetch_all(self._engine, sql, [collection_id, *chunk]):
                found[row[0]] = row  # type: ignore[assignment]
        return found


def _url_path(href: str) -> str:
    """``urlparse(href).path``, without parsing the common plain absolute path."""
    if href.startswith("/") and not href.startswith("//") and not URL_SPECIALS & set(href):
        return href
    return urlparse(href).path


def _request_hrefs(root: ET.Element, base_prefix: str) -> tuple[str, ...] | None:
    """The hrefs as Radicale keeps them: unquoted, sanitized, below the base prefix."""
    kept: dict[str, None] = {}
    for href in root.findall(DAV + "href"):
        if not href.text:
            return None
        path = pathutils.sanitize_path(unquote(_url_path(href.text)))
        if (path + "/").startswith(base_prefix + "/"):
            if path == base_prefix:
                return None  # Radicale fails on it (an assertion): let it answer
            kept[path[len(base_prefix) :]] = None
    return tuple(kept)


def _names(path: str, hrefs: Sequence[str]) -> tuple[list[str] | None, list[str]]:
    """Item names asked for in the collection at ``path``, and the hrefs answered 404.

    ``None`` when an href names the collection itself (Radicale then lists it all).
    """
    names: dict[str, None] = {}
    outside: list[str] = []
    for href in hrefs:
        if not (href + "/").startswith(path):
            outside.append(href)
            continue
        name = href[len(path) :]
        if not name:
            return None, []
        if not pathutils.is_safe_path_component(name):
            outside.append(href)
            continue
        names[name] = None
    return list(names), outside
