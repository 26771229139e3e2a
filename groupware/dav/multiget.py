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

import io
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote, unquote, urlparse
from xml.etree import ElementTree as ET  # noqa: S405 - the body passed dav.guard
from xml.sax.saxutils import escape

from radicale import pathutils, rights, xmlutils
from sqlalchemy import select

from groupware.dav import directory_books
from groupware.dav.fastpath import (
    CLOSING_TAG,
    DAV,
    STATUS_NOT_FOUND,
    STATUS_OK,
    CallRadicale,
    FastAnswer,
    LettersOf,
    ResolvePath,
    collection_id_of,
    element,
    encode,
    final_headers,
    read_body,
)
from groupware.dav.sqlstore.collection import CHUNK_SIZE
from groupware.dav.sqlstore.schema import dav_items

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
#: Radicale's answer to a multiget without hrefs, after its XML declaration.
EMPTY_MULTISTATUS: Final = b'<multistatus xmlns="DAV:" />'


@dataclass(frozen=True, slots=True)
class _Multiget:
    path: str  # sanitized collection path, "/home/name/"
    root_tag: str
    tags: tuple[str, ...]  # requested properties, in order
    hrefs: tuple[str, ...]  # sanitized paths below the base prefix, deduplicated


class MultigetFastPath:
    """Answers the multiget REPORTs it can (see the module doc), ``None`` otherwise."""

    def __init__(self, engine: Any, *, encoding: str, max_vevents: int) -> None:
        self._engine = engine
        self._encoding = encoding
        self._max_vevents = max_vevents

    def answer(
        self,
        user: str,
        environ: dict[str, Any],
        *,
        resolve: ResolvePath,
        letters_of: LettersOf,
        call_radicale: CallRadicale,
    ) -> FastAnswer | None:
        """The answer to ``environ`` as Radicale would give it, or ``None``."""
        request = _qualifying_request(environ)
        if request is None:
            return None
        real = resolve(request.path)
        if not real or real.split("/", 1)[0] == directory_books.ROOT:
            return None
        if "r" not in rights.intersect(letters_of(user, request.path), "rw"):
            return None
        collection_id = collection_id_of(self._engine, real)
        if collection_id is None:
            return None
        names, outside = _names(request)
        if names is None:
            return None
        rows = self._rows(collection_id, names)
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
        inner = _radicale_empty_answer(environ, request, call_radicale)
        if inner is None:
            return None
        status, headers, head = inner
        body = b"".join((head, *responses, CLOSING_TAG))
        encoded = encode(body, environ)
        return FastAnswer(status, final_headers(headers, environ, len(encoded)), encoded)

    def _rows(self, collection_id: int, names: Sequence[str]) -> dict[str, tuple[Any, ...]]:
        """``name → (href, etag, text, name, component)`` of the items found."""
        columns = (
            dav_items.c.href,
            dav_items.c.etag,
            dav_items.c.text,
            dav_items.c.name,
            dav_items.c.component,
        )
        found: dict[str, tuple[Any, ...]] = {}
        with self._engine.connect() as conn:
            for start in range(0, len(names), CHUNK_SIZE):
                query = select(*columns).where(
                    dav_items.c.collection_id == collection_id,
                    dav_items.c.href.in_(names[start : start + CHUNK_SIZE]),
                )
                for row in conn.execute(query):
                    found[row[0]] = tuple(row)
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


def _request_hrefs(root: ET.Element, base_prefix: str) -> tuple[str, ...] | None:
    """The hrefs as Radicale keeps them: unquoted, sanitized, below the base prefix."""
    kept: dict[str, None] = {}
    for href in root.findall(DAV + "href"):
        if not href.text:
            return None
        path = pathutils.sanitize_path(unquote(urlparse(href.text).path))
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
        self._not_found = "".join(element(tag) for tag in request.tags if tag not in FOUND_PROPS)

    def not_found(self, path: str) -> bytes:
        href = escape(quote(self._base_prefix + path))
        return f"<response><href>{href}</href>{STATUS_NOT_FOUND}</response>".encode(self._encoding)

    def found(self, row: tuple[Any, ...]) -> bytes:
        href, etag, text, name, component = row
        found = "".join(self._value(tag, etag, text, name, component) for tag in self._tags)
        parts = [f"<response><href>{escape(self._collection_href + quote(href))}</href>"]
        if found:
            parts.append(f"<propstat><prop>{found}</prop>{STATUS_OK}</propstat>")
        if self._not_found:
            parts.append(f"<propstat><prop>{self._not_found}</prop>{STATUS_NOT_FOUND}</propstat>")
        parts.append("</response>")
        return "".join(parts).encode(self._encoding)

    def vevents(self, text: str) -> int:
        """What Radicale counts against ``max_expand_occurrence`` for this item."""
        if not self._text_tags or VEVENT_LINE not in text.upper():
            return 0
        per_text = sum(1 for line in text.splitlines() if line.upper() == VEVENT_LINE)
        return per_text * self._text_tags

    def _value(self, tag: str, etag: str, text: str, name: str, component: str) -> str:
        if tag == GETETAG:
            return f"<getetag>{escape(etag)}</getetag>"
        if tag in TEXT_PROPS:
            return element(tag, escape(text)) if text else element(tag)
        if tag == GETCONTENTTYPE:
            content_type = f"{xmlutils.OBJECT_MIMETYPES[name]};charset={self._encoding}"
            if component:
                content_type += f";component={component}"
            return f"<getcontenttype>{escape(content_type)}</getcontenttype>"
        return ""


def _radicale_empty_answer(
    environ: dict[str, Any], request: _Multiget, call_radicale: CallRadicale
) -> tuple[str, list[tuple[str, str]], bytes] | None:
    """Radicale's answer to the same multiget without hrefs, before ``</multistatus>``."""
    namespace, local_name = request.root_tag[1:].split("}", 1)
    body = f'<{local_name} xmlns="{namespace}" />'.encode()
    inner = dict(environ)
    inner["wsgi.input"] = io.BytesIO(body)
    inner["CONTENT_LENGTH"] = str(len(body))
    inner.pop("HTTP_ACCEPT_ENCODING", None)  # compressed, if asked, once whole
    answer: dict[str, Any] = {}

    def keep(status: str, headers: list[tuple[str, str]], *_rest: Any) -> None:
        answer["status"] = status
        answer["headers"] = list(headers)

    document = b"".join(call_radicale(inner, keep))
    if not str(answer.get("status", "")).startswith("207"):
        return None
    if not document.rstrip().endswith(EMPTY_MULTISTATUS):
        return None
    head = document.rstrip()[: -len(EMPTY_MULTISTATUS)]
    return answer["status"], answer["headers"], head + b'<multistatus xmlns="DAV:">'
