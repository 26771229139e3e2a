# SPDX-License-Identifier: GPL-3.0-or-later
"""What the REPORT fast paths share: the request checks and the item responses.

``dav.multiget`` (calendar-multiget, addressbook-multiget) and ``dav.query``
(calendar-query, addressbook-query) answer REPORTs on SQL-store calendars and
address books without Radicale's ElementTree per item. Both follow
``radicale.app.report.xml_report`` (Radicale pinned to its minor): once the items
are known, each gets a ``response`` whose found properties are ``getetag``,
``getcontenttype`` and the item's text for ``calendar-data`` and ``address-data``
(whatever the collection), every other requested property ``404``; the same
``VEVENT`` count against ``max_expand_occurrence``; a ``207`` with Radicale's
``Content-Type``, its configured extra headers and gzip when asked.

A request qualifies here (:func:`report_request`) only when nothing in it needs
Radicale's other code: a REPORT on a sanitized collection path ``/<home>/<name>/``,
a body that parses, no ``C:expand`` anywhere, no sub-element in ``calendar-data`` /
``address-data`` (Radicale ignores ``C:comp`` and the like; not writing them keeps the
rule simple), a base prefix Radicale accepts; and (:func:`readable_collection`) "r"
on the path (Radicale's ``Access.check("r")`` and ``check("r", collection)`` for a
calendar or address book), a SQL-store calendar or address book without children of
the kind the report is for (Radicale answers the others with 403).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote
from xml.etree import ElementTree as ET  # noqa: S405 - the body passed dav.guard
from xml.sax.saxutils import escape

from radicale import pathutils, rights, xmlutils

from groupware.dav import directory_books
from groupware.dav.fastpath import (
    FastAnswer,
    LettersOf,
    ResolvePath,
    encode,
    final_headers,
    leaf_collection,
    read_body,
)
from groupware.dav.item_xml import CLOSING_TAG, DAV, STATUS_NOT_FOUND, STATUS_OK, element

CALDAV: Final = "{urn:ietf:params:xml:ns:caldav}"
CARDDAV: Final = "{urn:ietf:params:xml:ns:carddav}"
#: The properties whose value is the item's text (Radicale's ``xml_report``).
TEXT_PROPS: Final = frozenset({CALDAV + "calendar-data", CARDDAV + "address-data"})
GETETAG: Final = DAV + "getetag"
GETCONTENTTYPE: Final = DAV + "getcontenttype"
FOUND_PROPS: Final = frozenset({GETETAG, GETCONTENTTYPE, *TEXT_PROPS})
EXPAND: Final = CALDAV + "expand"
#: Radicale filters the items of any REPORT with one of these anywhere in its body.
FILTERS: Final = (CALDAV + "filter", CARDDAV + "filter")
VEVENT_LINE: Final = "BEGIN:VEVENT"
OPENING_TAG: Final = b'<multistatus xmlns="DAV:">'
MULTI_STATUS: Final = "207 Multi-Status"

#: One item as the responses need it: ``(href, etag, text, name, component)``.
ItemRow = tuple[str, str, str, str, str]


@dataclass(frozen=True, slots=True)
class ReportRequest:
    """A REPORT that may be answered here (see the module doc)."""

    path: str  # sanitized collection path, "/home/name/"
    base_prefix: str
    root: ET.Element
    tags: tuple[str, ...]  # requested properties, in order

    @property
    def has_filter(self) -> bool:
        """Whether a ``C:filter`` or ``CR:filter`` stands anywhere in the body."""
        return any(self.root.find(".//" + tag) is not None for tag in FILTERS)


@dataclass(frozen=True, slots=True)
class ReportSettings:
    """Radicale's settings the answers follow."""

    encoding: str
    max_vevents: int  # [reporting] max_expand_occurrence; 0: no limit
    extra_headers: tuple[tuple[str, str], ...]  # [headers]

    @classmethod
    def of(cls, configuration: Any) -> ReportSettings:
        """The settings of a Radicale configuration."""
        headers: Mapping[str, str] = {
            key: configuration.get("headers", key) for key in configuration.options("headers")
        }
        return cls(
            encoding=configuration.get("encoding", "request"),
            max_vevents=configuration.get("reporting", "max_expand_occurrence"),
            extra_headers=tuple(headers.items()),
        )


def report_request(environ: dict[str, Any], root_tags: Iterable[str]) -> ReportRequest | None:
    """The REPORT in ``environ`` if its top element is one of ``root_tags`` and it qualifies."""
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
    if root.tag not in root_tags or root.find(".//" + EXPAND) is not None:
        return None
    prop = root.find(DAV + "prop")
    tags = () if prop is None else tuple(child.tag for child in prop)
    if prop is not None and any(len(child) for child in prop if child.tag in TEXT_PROPS):
        return None
    return ReportRequest(path, base_prefix, root, tags)


def readable_collection(
    user: str,
    request: ReportRequest,
    *,
    collection_tags: Collection[str],
    engine: Any,  # SQLAlchemy Engine
    resolve: ResolvePath,
    letters_of: LettersOf,
) -> tuple[int, str] | None:
    """``(id, storage path)`` of the collection asked about, if it qualifies.

    ``collection_tags``: the kinds of collection the report is answered on here.
    """
    real = resolve(request.path)
    if not real or real.split("/", 1)[0] == directory_books.ROOT:
        return None
    if "r" not in rights.intersect(letters_of(user, request.path), "rw"):
        return None
    collection = leaf_collection(engine, real)
    if collection is None or collection[1] not in collection_tags:
        return None
    return collection[0], real


class ItemResponses:
    """One ``response`` per href, as Radicale's ``xml_item_response`` writes it."""

    def __init__(self, request: ReportRequest, encoding: str) -> None:
        self._base_prefix = request.base_prefix
        self._encoding = encoding
        self._collection_href = quote(request.base_prefix + request.path)
        self._tags = request.tags
        self._text_tags = sum(1 for tag in request.tags if tag in TEXT_PROPS)
        self._text_elements = {tag: _split_element(tag) for tag in TEXT_PROPS}
        self._not_found = "".join(element(tag) for tag in request.tags if tag not in FOUND_PROPS)
        self.vevents = 0  # what Radicale counts against max_expand_occurrence
        self.chunks: list[bytes] = []

    @property
    def wants_text(self) -> bool:
        """Whether the request asks for the items' text (``calendar-data``, ``address-data``)."""
        return self._text_tags > 0

    def not_found(self, path: str) -> None:
        """A ``404`` response for ``path`` (sanitized, below the base prefix)."""
        href = escape(quote(self._base_prefix + path))
        self.chunks.append(
            f"<response><href>{href}</href>{STATUS_NOT_FOUND}</response>".encode(self._encoding)
        )

    def found(self, row: ItemRow) -> None:
        """The response of one item of the collection."""
        href, etag, text, name, component = row
        found = "".join([self._value(tag, etag, text, name, component) for tag in self._tags])
        parts = [f"<response><href>{escape(self._collection_href + quote(href))}</href>"]
        if found:
            parts.append(f"<propstat><prop>{found}</prop>{STATUS_OK}</propstat>")
        if self._not_found:
            parts.append(f"<propstat><prop>{self._not_found}</prop>{STATUS_NOT_FOUND}</propstat>")
        parts.append("</response>")
        self.chunks.append("".join(parts).encode(self._encoding))
        if self._text_tags:
            # As Radicale's ``line.upper() == "BEGIN:VEVENT"`` per line: upper-casing
            # neither makes nor removes a line break.
            self.vevents += text.upper().splitlines().count(VEVENT_LINE) * self._text_tags

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


def multistatus(
    responses: ItemResponses, settings: ReportSettings, environ: dict[str, Any]
) -> FastAnswer | None:
    """The whole answer; ``None`` past ``max_expand_occurrence`` (Radicale: 400)."""
    if settings.max_vevents and responses.vevents > settings.max_vevents:
        return None
    encoding = settings.encoding
    head = f"<?xml version='1.0' encoding='{encoding}'?>\n".encode(encoding)
    body = b"".join((head, OPENING_TAG, *responses.chunks, CLOSING_TAG))
    encoded = encode(body, environ)
    content_type = [("Content-Type", f"text/xml; charset={encoding}")]
    headers = [*final_headers(content_type, environ, len(encoded)), *settings.extra_headers]
    return FastAnswer(MULTI_STATUS, headers, encoded)


def _split_element(tag: str) -> tuple[str, str, str]:
    """``tag`` empty, and its opening and closing tags around some content."""
    opening, closing = element(tag, "\0").split("\0")
    return element(tag), opening, closing
