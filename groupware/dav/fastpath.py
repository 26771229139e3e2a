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
from xml.sax.saxutils import escape

from radicale import pathutils, rights, xmlutils
from sqlalchemy import select

from groupware.dav import directory_books
from groupware.dav.sqlstore.collection import http_date
from groupware.dav.sqlstore.rawsql import fetch_all
from groupware.dav.sqlstore.schema import dav_items

DAV: Final = "{DAV:}"
LEAF_TAGS: Final = frozenset({"VCALENDAR", "VADDRESSBOOK"})
#: What ``allprop`` lists for an item (Radicale's ``xml_propfind_response``).
ALLPROP_ITEM: Final = tuple(
    DAV + name
    for name in (
        "principal-collection-set",
        "current-user-principal",
        "current-user-privilege-set",
        "supported-report-set",
        "resourcetype",
        "owner",
        "getetag",
        "getlastmodified",
        "getcontenttype",
        "getcontentlength",
    )
)
#: ``propname`` adds this one; asked for by name, it sends us back to Radicale.
MAX_RESOURCE_SIZE: Final = "{urn:ietf:params:xml:ns:caldav}max-resource-size"
PROPNAME_ITEM: Final = (*ALLPROP_ITEM, MAX_RESOURCE_SIZE)
#: Reports of a plain resource (Radicale lists these three, not implemented, on items).
ITEM_REPORTS: Final = (
    "expand-property",
    "principal-search-property-set",
    "principal-property-search",
)
LEAF_COLLECTION_SQL: Final = (
    "SELECT c.id, c.tag, EXISTS (SELECT 1 FROM dav_collections k WHERE k.parent = c.path)"
    " FROM dav_collections c WHERE c.path = ?"
)
STATUS_OK: Final = "<status>HTTP/1.1 200 OK</status>"
STATUS_NOT_FOUND: Final = "<status>HTTP/1.1 404 Not Found</status>"
CLOSING_TAG: Final = b"</multistatus>"

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
        items = _ItemWriter(
            request,
            base_prefix,
            user=user,
            owner=real.split("/", 1)[0],
            is_writable="w" in permissions,
            encoding=self._encoding,
        )
        body = b"".join(
            (head, *items.responses(self._rows(collection_id, items.needs_text)), CLOSING_TAG)
        )
        encoded = encode(body, environ)
        return FastAnswer(status, final_headers(headers, environ, len(encoded)), encoded)

    def _rows(self, collection_id: int, needs_text: bool) -> list[Any]:
        columns = [
            dav_items.c.href,
            dav_items.c.etag,
            dav_items.c.name,
            dav_items.c.component,
            dav_items.c.modified_at,
        ]
        if needs_text:
            columns.append(dav_items.c.text)
        query = (
            select(*columns)
            .where(dav_items.c.collection_id == collection_id)
            .order_by(dav_items.c.href)
        )
        with self._engine.connect() as conn:
            return list(conn.execute(query))


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


class _ItemWriter:
    """Writes the ``response`` of each item row, as Radicale's ``xml_propfind_response``."""

    def __init__(
        self,
        request: _Request,
        base_prefix: str,
        *,
        user: str,
        owner: str,
        is_writable: bool,
        encoding: str,
    ) -> None:
        self._href_prefix = base_prefix + quote(request.path)
        self._encoding = encoding
        tags: Sequence[str] = {
            "prop": request.tags,
            "allprop": ALLPROP_ITEM,
            "propname": PROPNAME_ITEM,
        }[request.mode]
        self._is_propname = request.mode == "propname"
        self._fixed = {
            DAV + "principal-collection-set": element(
                DAV + "principal-collection-set", _href(base_prefix + "/")
            ),
            DAV + "current-user-principal": element(
                DAV + "current-user-principal", _href(base_prefix + quote(f"/{user}/"))
            ),
            DAV + "current-user-privilege-set": element(
                DAV + "current-user-privilege-set", _privileges(is_writable)
            ),
            DAV + "supported-report-set": element(DAV + "supported-report-set", _reports()),
            DAV + "resourcetype": element(DAV + "resourcetype"),
            DAV + "owner": element(DAV + "owner", _href(base_prefix + quote(f"/{owner}/"))),
        }
        self._tags = tuple(tags)
        self.needs_text = not self._is_propname and DAV + "getcontentlength" in self._tags
        self._not_found = "".join(
            element(tag) for tag in self._tags if not self._is_item_property(tag)
        )

    @staticmethod
    def _is_item_property(tag: str) -> bool:
        return tag in ALLPROP_ITEM

    def responses(self, rows: Iterable[Any]) -> Iterable[bytes]:
        """One ``response`` per row, encoded."""
        encoding = self._encoding
        for row in rows:
            yield self._response(row).encode(encoding)

    def _response(self, row: Any) -> str:
        if self._is_propname:
            found = "".join(element(tag) for tag in self._tags)
            not_found = ""
        else:
            found = "".join(
                self._value(tag, row) for tag in self._tags if self._is_item_property(tag)
            )
            not_found = self._not_found
        parts = [f"<response><href>{self._href_prefix}{quote(row.href)}</href>"]
        if found:
            parts.append(f"<propstat><prop>{found}</prop>{STATUS_OK}</propstat>")
        if not_found:
            parts.append(f"<propstat><prop>{not_found}</prop>{STATUS_NOT_FOUND}</propstat>")
        parts.append("</response>")
        return "".join(parts)

    def _value(self, tag: str, row: Any) -> str:
        fixed = self._fixed.get(tag)
        if fixed is not None:
            return fixed
        if tag == DAV + "getetag":
            return f"<getetag>{escape(row.etag)}</getetag>"
        if tag == DAV + "getlastmodified":
            return f"<getlastmodified>{http_date(row.modified_at)}</getlastmodified>"
        if tag == DAV + "getcontenttype":
            content_type = f"{xmlutils.OBJECT_MIMETYPES[row.name]};charset={self._encoding}"
            if row.component:
                content_type += f";component={row.component}"
            return f"<getcontenttype>{escape(content_type)}</getcontenttype>"
        length = len(row.text.encode(self._encoding))
        return f"<getcontentlength>{length}</getcontentlength>"


def element(tag: str, content: str = "") -> str:
    """``tag`` (Clark notation) written with its own namespace unless it is ``DAV:``."""
    if tag.startswith(DAV):
        name, declaration = tag[len(DAV) :], ""
    elif tag.startswith("{"):
        namespace, name = tag[1:].split("}", 1)
        declaration = f' xmlns="{escape(namespace, {chr(34): "&quot;"})}"'
    else:
        name, declaration = tag, ' xmlns=""'
    if not content:
        return f"<{name}{declaration} />"
    return f"<{name}{declaration}>{content}</{name}>"


def _href(quoted: str) -> str:
    return f"<href>{escape(quoted)}</href>"


def _privileges(is_writable: bool) -> str:
    names = ["read"]
    if is_writable:
        # Radicale's order; no "l" letter in dav.rights, so write-properties always.
        names += ["all", "write", "write-properties", "write-content"]
    return "".join(f"<privilege><{name} /></privilege>" for name in names)


def _reports() -> str:
    return "".join(
        f"<supported-report><report><{name} /></report></supported-report>" for name in ITEM_REPORTS
    )


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
