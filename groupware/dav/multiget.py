# SPDX-License-Identifier: GPL-3.0-or-later
"""calendar-multiget / addressbook-multiget of a SQL-store collection, from index rows.

RFC 4791 §7.9, RFC 6352 §8.7. After a sync, a client fetches the changed items by
href in batches of about a hundred; Radicale builds an ``Item`` per href, an
ElementTree per response and serializes the whole tree (28 ms for 100 events).
Here, as in ``dav.fastpath``, Radicale still answers about the collection: the same
REPORT with no ``href`` (its rights, report-type check, statuses and headers; an
empty ``multistatus``), and the items' responses are written from the ``dav_items``
rows: the stored text is what Radicale's ``Item.serialize`` returns for an item of
this store, the ETag the column it reads.

What Radicale does with the hrefs is kept (``radicale.app.report.xml_report`` and
``retrieve_items``): a path outside the base prefix is skipped; one outside the
collection, or not a safe name, gets a ``404`` response with its own href; a missing
item gets a ``404``; duplicates are answered once. ``getetag``, ``getcontenttype``,
``calendar-data`` and ``address-data`` are found (Radicale answers the item's text
for the latter two whatever the collection); any other property is ``404``.

Radicale answers alone (``None`` here) for: another method or path shape, a body
that does not parse or is not a multiget, a ``filter`` or an ``expand`` anywhere, a
``calendar-data``/``address-data`` with sub-elements, an ``href`` without text or
naming the collection itself, rights without ``r``, a collection that is not a
calendar or address book of the SQL store, a base prefix Radicale would refuse, more
``VEVENT`` lines than Radicale's ``max_expand_occurrence``, or an internal answer
that is not an empty ``207`` multistatus.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote, unquote, urlparse
from xml.etree import ElementTree as ET  # noqa: S405 - the body passed dav.guard
from xml.sax.saxutils import escape

from radicale import pathutils, rights, xmlutils

from groupware.dav import directory_books
from groupware.dav.fastpath import (
    CLOSING_TAG,
    DAV,
    STATUS_NOT_FOUND,
    STATUS_OK,
    FastAnswer,
    LettersOf,
    ResolvePath,
    element,
    encode,
    final_headers,
    leaf_collection,
    read_body,
)
from groupware.dav.sqlstore.collection import CHUNK_SIZE
from groupware.dav.sqlstore.rawsql import fetch_all, in_list

CALDAV: Final = "{urn:ietf:params:xml:ns:caldav}"
CARDDAV: Final = "{urn:ietf:params:xml:ns:carddav}"
MULTIGETS: Final = frozenset({CALDAV + "calendar-multiget", CARDDAV + "addressbook-multiget"})
#: The properties whose value is the item's text (Radicale's ``xml_report``).
TEXT_PROPS: Final = frozenset({CALDAV + "calendar-data", CARDDAV + "address-data"})
GETETAG: Final = DAV + "getetag"
GETCONTENTTYPE: Final = DAV + "getcontenttype"
FOUND_PROPS: Final = frozenset({GETETAG, GETCONTENTTYPE, *TEXT_PROPS})
#: Elements whose presence changes Radicale's answer beyond what is written here.
FALLBACK_TAGS: Final = (CALDAV + "filter", CARDDAV + "filter", CALDAV + "expand")
VEVENT_LINE: Final = "BEGIN:VEVENT"
#: The collection tag each report is for (Radicale answers others with 403).
REPORT_TAGS: Final = {
    CALDAV + "calendar-multiget": "VCALENDAR",
    CARDDAV + "addressbook-multiget": "VADDRESSBOOK",
}
ITEMS_SQL: Final = (
    "SELECT href, etag, text, name, component FROM dav_items WHERE collection_id = ? AND href IN "
)
#: Characters that make ``urlparse`` split a path (query, fragment, parameters) or
#: that it removes (tab, line breaks).
URL_SPECIALS: Final = frozenset("?#;\t\r\n")
OPENING_TAG: Final = b'<multistatus xmlns="DAV:">'
MULTI_STATUS: Final = "207 Multi-Status"


@dataclass(frozen=True, slots=True)
class _Multiget:
    path: str  # sanitized collection path, "/home/name/"
    root_tag: str
    tags: tuple[str, ...]  # requested properties, in order
    hrefs: tuple[str, ...]  # sanitized paths below the base prefix, deduplicated


class MultigetFastPath:
    """Answers the multiget REPORTs it can (see the module doc), ``None`` otherwise."""

    def __init__(
        self,
        engine: Any,  # SQLAlchemy Engine
        *,
        encoding: str,
        max_vevents: int,
        extra_headers: Mapping[str, str],
    ) -> None:
        self._engine = engine
        self._encoding = encoding
        self._max_vevents = max_vevents
        self._extra_headers = tuple(extra_headers.items())

    def answer(
        self,
        user: str,
        environ: dict[str, Any],
        *,
        resolve: ResolvePath,
        letters_of: LettersOf,
    ) -> FastAnswer | None:
        """The answer to ``environ`` as Radicale would give it, or ``None``."""
        request = _qualifying_request(environ)
        if request is None:
            return None
        real = resolve(request.path)
        if not real or real.split("/", 1)[0] == directory_books.ROOT:
            return None
        # Radicale's ``Access.check("r")`` and ``check("r", collection)`` for a
        # calendar or address book: both are "r" on the path itself.
        if "r" not in rights.intersect(letters_of(user, request.path), "rw"):
            return None
        collection = leaf_collection(self._engine, real)
        if collection is None or REPORT_TAGS[request.root_tag] != collection[1]:
            return None  # Radicale: 404, or 403 for the wrong report type
        names, outside = _names(request)
        if names is None:
            return None
        rows = self._rows(collection[0], names)
        writer = _ResponseWriter(request, environ["SCRIPT_NAME"], self._encoding)
        responses = [writer.not_found(href) for href in outside]
        vevents = 0
        for name in names:
            row = rows.get(name)
            if row is None:
                responses.append(writer.not_found(posixpath.join(request.path, name)))
                continue
            responses.append(writer.found(row))
            vevents += writer.vevents(row[2])
        if self._max_vevents and vevents > self._max_vevents:
            return None  # Radicale refuses it with 400
        head = f"<?xml version='1.0' encoding='{self._encoding}'?>\n".encode(self._encoding)
        body = b"".join((head, OPENING_TAG, *responses, CLOSING_TAG))
        encoded = encode(body, environ)
        headers = [("Content-Type", f"text/xml; charset={self._encoding}")]
        headers = final_headers(headers, environ, len(encoded)) + list(self._extra_headers)
        return FastAnswer(MULTI_STATUS, headers, encoded)

    def _rows(self, collection_id: int, names: Sequence[str]) -> dict[str, tuple[Any, ...]]:
        """``name → (href, etag, text, name, component)`` of the items found."""
        found: dict[str, tuple[Any, ...]] = {}
        for start in range(0, len(names), CHUNK_SIZE):
            chunk = names[start : start + CHUNK_SIZE]
            sql = ITEMS_SQL + in_list(len(chunk))
            for row in fetch_all(self._engine, sql, [collection_id, *chunk]):
                found[row[0]] = row
        return found


def _qualifying_request(environ: dict[str, Any]) -> _Multiget | None:
    if environ.get("REQUEST_METHOD") != "REPORT":
        return None
    path = environ.get("PATH_INFO", "")
    if not path.endswith("/") or pathutils.sanitize_path(path) != path:
        return None
    if len([part for part in path.split("/") if part]) != 2:
        return None
    base_prefix = environ.get("SCRIPT_NAME", "")
    if (base_prefix and not base_prefix.startswith("/")) or base_prefix.endswith("/"):
        return None
    body = read_body(environ)
    if body is None or not body.strip():
        return None
    try:
        root = ET.fromstring(body)  # noqa: S314 - dav.guard screened the body
    except ET.ParseError:
        return None
    if root.tag not in MULTIGETS:
        return None
    if any(root.find(".//" + tag) is not None for tag in FALLBACK_TAGS):
        return None
    prop = root.find(DAV + "prop")
    tags = () if prop is None else tuple(child.tag for child in prop)
    if prop is not None and any(len(child) for child in prop if child.tag in TEXT_PROPS):
        return None
    hrefs = _request_hrefs(root, base_prefix)
    if hrefs is None:
        return None
    return _Multiget(path, root.tag, tags, hrefs)


def _split_element(tag: str) -> tuple[str, str, str]:
    """``tag`` empty, and its opening and closing tags around some content."""
    whole = element(tag, "\0")
    opening, closing = whole.split("\0")
    return element(tag), opening, closing


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


def _names(request: _Multiget) -> tuple[list[str] | None, list[str]]:
    """Item names asked for in the collection, and the hrefs Radicale answers 404.

    ``None`` when an href names the collection itself (Radicale then lists it all).
    """
    names: dict[str, None] = {}
    outside: list[str] = []
    for href in request.hrefs:
        if not (href + "/").startswith(request.path):
            outside.append(href)
            continue
        name = href[len(request.path) :]
        if not name:
            return None, []
        if not pathutils.is_safe_path_component(name):
            outside.append(href)
            continue
        names[name] = None
    return list(names), outside


class _ResponseWriter:
    """One ``response`` per href, as Radicale's ``xml_item_response`` writes it."""

    def __init__(self, request: _Multiget, base_prefix: str, encoding: str) -> None:
        self._base_prefix = base_prefix
        self._encoding = encoding
        self._collection_href = quote(base_prefix + request.path)
        self._tags = request.tags
        self._text_tags = sum(1 for tag in request.tags if tag in TEXT_PROPS)
        self._text_elements = {tag: _split_element(tag) for tag in TEXT_PROPS}
        self._not_found = "".join(element(tag) for tag in request.tags if tag not in FOUND_PROPS)

    def not_found(self, path: str) -> bytes:
        href = escape(quote(self._base_prefix + path))
        return f"<response><href>{href}</href>{STATUS_NOT_FOUND}</response>".encode(self._encoding)

    def found(self, row: tuple[Any, ...]) -> bytes:
        href, etag, text, name, component = row
        found = "".join([self._value(tag, etag, text, name, component) for tag in self._tags])
        parts = [f"<response><href>{escape(self._collection_href + quote(href))}</href>"]
        if found:
            parts.append(f"<propstat><prop>{found}</prop>{STATUS_OK}</propstat>")
        if self._not_found:
            parts.append(f"<propstat><prop>{self._not_found}</prop>{STATUS_NOT_FOUND}</propstat>")
        parts.append("</response>")
        return "".join(parts).encode(self._encoding)

    def vevents(self, text: str) -> int:
        """What Radicale counts against ``max_expand_occurrence`` for this item."""
        if not self._text_tags:
            return 0
        # As Radicale's ``line.upper() == "BEGIN:VEVENT"`` per line: upper-casing
        # neither makes nor removes a line break.
        return text.upper().splitlines().count(VEVENT_LINE) * self._text_tags

    def _value(self, tag: str, etag: str, text: str, name: str, component: str) -> str:
        if tag == GETETAG:
            return f"<getetag>{escape(etag)}</getetag>"
        if tag in TEXT_PROPS:
            empty, opening, closing = self._text_elements[tag]
            return f"{opening}{escape(text)}{closing}" if text else empty
        if tag == GETCONTENTTYPE:
            content_type = f"{xmlutils.OBJECT_MIMETYPES[name]};charset={self._encoding}"
            if component:
                content_type += f";component={component}"
            return f"<getcontenttype>{escape(content_type)}</getcontenttype>"
        return ""
