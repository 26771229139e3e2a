# SPDX-License-Identifier: GPL-3.0-or-later
"""XML of item responses, written as text: the pieces the DAV fast paths share.

``dav.fastpath`` lists every item of a collection at Depth 1: 10,000 responses that
differ only in a few values (href, ETag, modification time, content type, length).
:class:`PropfindItems` writes the response's text once per request as a template,
with a slot for each of those values, so that an item costs a ``str.format`` and the
values it needs; the whole listing is encoded once. Element names are written in the
``DAV:`` default namespace of Radicale's ``multistatus`` (other namespaces are
declared on their element), as in Radicale's ``xml_propfind_response``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final
from urllib.parse import quote
from xml.sax.saxutils import escape

from radicale import xmlutils

from groupware.dav.sqlstore.collection import http_date

DAV: Final = "{DAV:}"
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
STATUS_OK: Final = "<status>HTTP/1.1 200 OK</status>"
STATUS_NOT_FOUND: Final = "<status>HTTP/1.1 404 Not Found</status>"
CLOSING_TAG: Final = b"</multistatus>"
#: Names that ``urllib.parse.quote`` leaves as they are (its always-safe set and "/").
_UNQUOTED_NAME: Final = re.compile(r"[A-Za-z0-9_.~/-]*")
_XML_SPECIAL: Final = re.compile(r"[&<>]")
#: The ``dav_items`` columns each item property is written from.
SLOT_COLUMNS: Final = {
    DAV + "getetag": ("etag",),
    DAV + "getlastmodified": ("modified_at",),
    DAV + "getcontenttype": ("name", "component"),
    DAV + "getcontentlength": ("text",),
}

Row = Sequence[Any]


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


def quoted(name: str) -> str:
    """``quote(name)``, without its per-character work for the usual plain names."""
    return name if _UNQUOTED_NAME.fullmatch(name) else quote(name)


def escaped(text: str) -> str:
    """``escape(text)`` for element content, skipped when nothing needs it."""
    return escape(text) if _XML_SPECIAL.search(text) else text


class PropfindItems:
    """Writes the ``response`` of each item row, as Radicale's ``xml_propfind_response``."""

    def __init__(
        self,
        *,
        mode: str,  # "prop" | "allprop" | "propname"
        tags: Sequence[str],
        href_prefix: str,  # quoted, up to the collection's trailing "/"
        base_prefix: str,  # quoted
        user: str,
        owner: str,
        is_writable: bool,
        encoding: str,
    ) -> None:
        self._href_prefix = href_prefix
        self._encoding = encoding
        self._content_types: dict[tuple[str, str], str] = {}
        listed: Sequence[str] = {"prop": tags, "allprop": ALLPROP_ITEM, "propname": PROPNAME_ITEM}[
            mode
        ]
        fixed = {
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
        #: The columns to read, in row order: the href, then what the properties need
        #: (a listing of 10,000 items costs about 2 µs per column and row).
        self.columns = ("href", *_needed_columns(listed if mode != "propname" else ()))
        at = {name: index for index, name in enumerate(self.columns)}
        slots: dict[str, tuple[str, Callable[[list[tuple[Any, ...]]], Sequence[str]]]] = {
            DAV + "getetag": ("getetag", lambda columns: _escaped_all(columns[at["etag"]])),
            DAV + "getlastmodified": (
                "getlastmodified",
                lambda columns: _dates(columns[at["modified_at"]]),
            ),
            DAV + "getcontenttype": (
                "getcontenttype",
                lambda columns: list(
                    map(self._content_type, columns[at["name"]], columns[at["component"]])
                ),
            ),
            DAV + "getcontentlength": (
                "getcontentlength",
                lambda columns: [str(len(text.encode(encoding))) for text in columns[at["text"]]],
            ),
        }
        found: list[str] = []
        not_found: list[str] = []
        self._values: list[Callable[[list[tuple[Any, ...]]], Sequence[str]]] = []
        for tag in listed:
            if mode == "propname":
                found.append(_literal(element(tag)))
            elif tag in fixed:
                found.append(_literal(fixed[tag]))
            elif tag in slots:
                name, value = slots[tag]
                found.append(f"<{name}>{{}}</{name}>")
                self._values.append(value)
            else:
                not_found.append(_literal(element(tag)))
        template = [f"<response><href>{_literal(href_prefix)}{{}}</href>"]
        if found:
            template.append(f"<propstat><prop>{''.join(found)}</prop>{STATUS_OK}</propstat>")
        if not_found:
            template.append(
                f"<propstat><prop>{''.join(not_found)}</prop>{STATUS_NOT_FOUND}</propstat>"
            )
        template.append("</response>")
        self._template = "".join(template)

    def responses(self, rows: Sequence[Row]) -> bytes:
        """The responses of all ``rows``, encoded.

        Column by column: a check of all hrefs (or ETags) at once usually finds
        nothing to quote (or escape), and the per-item work left is one ``format``.
        """
        if not rows:
            return b""
        columns = list(zip(*rows, strict=True))
        hrefs = _quoted_all(columns[0])
        values = [value(columns) for value in self._values]
        text = "".join(itertools.starmap(self._template.format, zip(hrefs, *values, strict=True)))
        return text.encode(self._encoding)

    def _content_type(self, name: str, component: str) -> str:
        key = (name, component)
        known = self._content_types.get(key)
        if known is None:
            known = f"{xmlutils.OBJECT_MIMETYPES[key[0]]};charset={self._encoding}"
            if key[1]:
                known += f";component={key[1]}"
            known = self._content_types[key] = escape(known)
        return known


def _quoted_all(names: Sequence[str]) -> Sequence[str]:
    """``quote`` of each name; the names themselves when none needs it (one check)."""
    if _UNQUOTED_NAME.fullmatch("".join(names)):
        return names
    return [quoted(name) for name in names]


def _escaped_all(texts: Sequence[str]) -> Sequence[str]:
    """``escape`` of each text; the texts themselves when none needs it (one check)."""
    if not _XML_SPECIAL.search("".join(texts)):
        return texts
    return [escaped(text) for text in texts]


def _dates(stamps: Sequence[float]) -> list[str]:
    """HTTP-dates of POSIX times; items written together share their second."""
    known: dict[int, str] = {}
    dates = []
    for stamp in stamps:
        second = int(stamp)
        date = known.get(second)
        if date is None:
            date = known[second] = http_date(stamp)
        dates.append(date)
    return dates


def _needed_columns(tags: Iterable[str]) -> list[str]:
    needed: dict[str, None] = {}
    for tag in tags:
        for column in SLOT_COLUMNS.get(tag, ()):
            needed[column] = None
    return list(needed)


def _literal(text: str) -> str:
    """``text`` as it stands in a ``str.format`` template."""
    return text.replace("{", "{{").replace("}", "}}")


def _href(quoted_href: str) -> str:
    return f"<href>{escape(quoted_href)}</href>"


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
