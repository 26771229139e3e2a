# SPDX-License-Identifier: GPL-3.0-or-later
"""Depth-1 PROPFIND of a SQL-store calendar or address book, from the index rows.

RFC 4918 §9.1 (PROPFIND), RFC 4791 §4 / RFC 6352 §5 (calendar and address object
resources). A client's sync starts with a Depth-1 PROPFIND listing every item's
ETag; Radicale builds an ElementTree response per item, asking the rights plugin,
``make_href`` and the item again for each: 900 ms for 10,000 events. Here the
collection's own ``response`` is still Radicale's (a Depth-0 PROPFIND of the same
path with the same body: the same rights checks, statuses, headers and collection
properties), and the items' ``response`` elements are written as bytes from the
``dav_items`` rows (href, ETag, component, modification time), values Radicale
would read from the very same columns.

The fast path answers only what it writes exactly as Radicale would; for anything
else :meth:`PropfindFastPath.answer` returns ``None`` and Radicale answers in full:

- not PROPFIND, Depth other than ``1``, a path that is not a sanitized collection
  path ``/<home>/<name>/``, a mount of a directory book, a collection that is not a
  calendar or an address book of the SQL store, or that has child collections;
- rights without ``r`` (free/busy only is refused at Depth 1 by Radicale itself);
- a body that does not parse, whose top element is not ``prop``, ``allprop`` or
  ``propname``, or that asks for ``C:max-resource-size``;
- Radicale's Depth-0 answer is not a ``207`` multistatus of the expected shape.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote
from xml.etree import ElementTree as ET  # noqa: S405 - the body passed dav.guard

from radicale import pathutils, rights

from groupware.dav import directory_books
from groupware.dav.item_xml import CLOSING_TAG, DAV, MAX_RESOURCE_SIZE, PropfindItems
from groupware.dav.sqlstore.rawsql import fetch_all

LEAF_TAGS: Final = frozenset({"VCALENDAR", "VADDRESSBOOK"})
LEAF_COLLECTION_SQL: Final = (
    "SELECT c.id, c.tag, EXISTS (SELECT 1 FROM dav_collections k WHERE k.parent = c.path)"
    " FROM dav_collections c WHERE c.path = ?"
)
ITEM_ROWS_SQL: Final = "SELECT {columns} FROM dav_items WHERE collection_id = ? ORDER BY href"

#: Calls Radicale with an environ and a start_response; returns the body chunks.
CallRadicale = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
#: Radicale's permission letters for ``(user, path)``.
LettersOf = Callable[[str, str], str]
#: The storage path of a request path (a mount's target), in the request's scope.
ResolvePath = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class FastAnswer:
    """A complete WSGI answer."""

    status: str
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True, slots=True)
class _Request:
    path: str  # sanitized, "/home/name/"
    body: bytes
    mode: str  # "prop" | "allprop" | "propname"
    tags: tuple[str, ...]


class PropfindFastPath:
    """Answers the Depth-1 PROPFINDs it can (see the module doc), ``None`` otherwise."""

    def __init__(self, engine: Any, *, encoding: str) -> None:  # SQLAlchemy Engine
        self._engine = engine
        self._encoding = encoding

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
        permissions = rights.intersect(letters_of(user, request.path), "rw")
        if "r" not in permissions:
            return None
        collection = leaf_collection(self._engine, real)
        if collection is None:
            return None
        collection_id = collection[0]
        depth0 = _radicale_depth0(environ, request, call_radicale)
        if depth0 is None:
            return None
        status, headers, document = depth0
        head, base_prefix = _splice_point(document, request.path)
        if head is None:
            return None
        items = PropfindItems(
            mode=request.mode,
            tags=request.tags,
            href_prefix=base_prefix + quote(request.path),
            base_prefix=base_prefix,
            user=user,
            owner=real.split("/", 1)[0],
            is_writable="w" in permissions,
            encoding=self._encoding,
        )
        rows = self._rows(collection_id, items.columns)
        body = b"".join((head, items.responses(rows), CLOSING_TAG))
        encoded = encode(body, environ)
        return FastAnswer(status, final_headers(headers, environ, len(encoded)), encoded)

    def _rows(self, collection_id: int, columns: Sequence[str]) -> list[tuple[Any, ...]]:
        """``columns`` (names of ``item_xml.SLOT_COLUMNS``) of every item, in href order.

        Plain DB-API: 10,000 rows.
        """
        sql = ITEM_ROWS_SQL.format(columns=", ".join(columns))
        return fetch_all(self._engine, sql, [collection_id])


def leaf_collection(engine: Any, real: str) -> tuple[int, str] | None:
    """``(id, tag)`` of the calendar or address book at ``real``, without children."""
    rows = fetch_all(engine, LEAF_COLLECTION_SQL, [real])
    if not rows or rows[0][1] not in LEAF_TAGS or rows[0][2]:
        return None
    return int(rows[0][0]), str(rows[0][1])


def _qualifying_request(environ: dict[str, Any]) -> _Request | None:
    if environ.get("REQUEST_METHOD") != "PROPFIND" or environ.get("HTTP_DEPTH") != "1":
        return None
    path = environ.get("PATH_INFO", "")
    if not path.endswith("/") or pathutils.sanitize_path(path) != path:
        return None
    if len([part for part in path.split("/") if part]) != 2:
        return None
    body = read_body(environ)
    if body is None:
        return None
    parsed = _parsed_props(body)
    if parsed is None:
        return None
    mode, tags = parsed
    if MAX_RESOURCE_SIZE in tags:
        return None
    return _Request(path, body, mode, tags)


def read_body(environ: dict[str, Any]) -> bytes | None:
    """The body as Radicale reads it (CONTENT_LENGTH bytes), left readable for it.

    ``None`` for a length that is not a number (Radicale answers those itself).
    """
    length_text = environ.get("CONTENT_LENGTH") or "0"
    if not length_text.isdigit():
        return None
    # dav.guard buffered the body already.
    body = environ["wsgi.input"].read(int(length_text)) if int(length_text) else b""
    environ["wsgi.input"] = io.BytesIO(body)  # for Radicale, should we fall back
    return body


def _parsed_props(body: bytes) -> tuple[str, tuple[str, ...]] | None:
    """``(mode, tags)`` of a PROPFIND body (RFC 4918 §9.1: empty means ``allprop``)."""
    if not body.strip():
        return "allprop", ()
    try:
        root = ET.fromstring(body)  # noqa: S314 - dav.guard screened the body
    except ET.ParseError:
        return None
    if root.tag != DAV + "propfind" or len(root) == 0:
        return None
    top = root[0]
    if top.tag == DAV + "allprop":
        return "allprop", ()
    if top.tag == DAV + "propname":
        return "propname", ()
    if top.tag == DAV + "prop":
        return "prop", tuple(child.tag for child in top)
    return None


def _radicale_depth0(
    environ: dict[str, Any], request: _Request, call_radicale: CallRadicale
) -> tuple[str, list[tuple[str, str]], bytes] | None:
    """Radicale's answer about the collection alone (same path, same body)."""
    inner = dict(environ)
    inner["HTTP_DEPTH"] = "0"
    inner["wsgi.input"] = io.BytesIO(request.body)
    inner["CONTENT_LENGTH"] = str(len(request.body))
    inner.pop("HTTP_ACCEPT_ENCODING", None)  # compressed, if asked, once whole
    answer: dict[str, Any] = {}

    def keep(status: str, headers: list[tuple[str, str]], *_rest: Any) -> None:
        answer["status"] = status
        answer["headers"] = list(headers)

    chunks = call_radicale(inner, keep)
    body = b"".join(chunks)
    if not str(answer.get("status", "")).startswith("207"):
        return None
    return answer["status"], answer["headers"], body


def _splice_point(document: bytes, path: str) -> tuple[bytes | None, str]:
    """Radicale's document before its closing tag, and the quoted href prefix.

    The items' responses go before ``</multistatus>``; they rely on the document's
    default namespace being ``DAV:`` and declare any other namespace themselves.
    """
    start = document.find(b"<multistatus")
    start_end = document.find(b">", start)
    if start < 0 or start_end < 0 or b'xmlns="DAV:"' not in document[start:start_end]:
        return None, ""
    if not document.endswith(CLOSING_TAG):
        return None, ""
    href_start = document.find(b"<href>", start_end)
    href_end = document.find(b"</href>", href_start)
    if href_start < 0 or href_end < 0:
        return None, ""
    collection_href = document[href_start + len(b"<href>") : href_end].decode()
    quoted_path = quote(path)
    if not collection_href.endswith(quoted_path):
        return None, ""
    return document[: -len(CLOSING_TAG)], collection_href[: -len(quoted_path)]


def final_headers(
    headers: list[tuple[str, str]], environ: dict[str, Any], length: int
) -> list[tuple[str, str]]:
    """Radicale's Depth-0 headers, with the length (and encoding) of the whole answer."""
    kept = [(name, value) for name, value in headers if name.lower() != "content-length"]
    if _wants_gzip(environ):
        kept.append(("Content-Encoding", "gzip"))
    kept.append(("Content-Length", str(length)))
    return kept


def _wants_gzip(environ: dict[str, Any]) -> bool:
    """Radicale's rule: ``gzip`` listed in Accept-Encoding, whatever its q-value."""
    listed = [part.strip() for part in environ.get("HTTP_ACCEPT_ENCODING", "").split(",")]
    return "gzip" in listed


def encode(body: bytes, environ: dict[str, Any]) -> bytes:
    if not _wants_gzip(environ):
        return body
    compressor = zlib.compressobj(wbits=16 + zlib.MAX_WBITS)
    return compressor.compress(body) + compressor.flush()
