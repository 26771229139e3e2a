# SPDX-License-Identifier: GPL-3.0-or-later
"""The portal as a CalDAV/CardDAV client of its own DAV front, in process.

Every read and write of the agenda and contacts pages is a DAV request made as the
signed-in person through ``DavRequests.request_as``: the same rights, the same
storage, the same checks as a phone. Nothing here touches Radicale or its files.

RFC 4918 (PROPFIND, PROPPATCH, ETags and preconditions), RFC 4791 §7.8
(calendar-query with a time-range), RFC 6352 §8.6 (addressbook-query), RFC 3744 §5.4
(current-user-privilege-set tells whether the person may write).
"""

from __future__ import annotations

import logging
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final
from xml.sax.saxutils import escape

from groupware.core.directory import Person
from groupware.errors import GroupwareError

if TYPE_CHECKING:  # context imports the import jobs, which use this client
    from groupware.web.context import DavReply, DavRequests

log = logging.getLogger(__name__)

DAV_PREFIX: Final = "/dav"
MOUNT_MARK: Final = "~"
_NS: Final = {
    "d": "DAV:",
    "c": "urn:ietf:params:xml:ns:caldav",
    "card": "urn:ietf:params:xml:ns:carddav",
    "cs": "http://calendarserver.org/ns/",
    "i": "http://apple.com/ns/ical/",
}
_XML_HEADERS: Final = {"Content-Type": "application/xml; charset=utf-8"}
_WRITE_PRIVILEGES: Final = frozenset({"write", "write-content", "all"})
_LIST_BODY: Final = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<d:propfind xmlns:d="DAV:" xmlns:cs="http://calendarserver.org/ns/"'
    b' xmlns:i="http://apple.com/ns/ical/"><d:prop><d:displayname/><d:resourcetype/>'
    b"<i:calendar-color/><d:current-user-privilege-set/><cs:getctag/></d:prop></d:propfind>"
)


class DavClientError(GroupwareError):
    """The DAV front refused or failed a request the portal made."""

    def __init__(self, method: str, path: str, status: int) -> None:
        super().__init__(f"{method} {path}: {status}")
        self.method = method
        self.path = path
        self.status = status


class ChangedElsewhereError(DavClientError):
    """The resource changed since it was read (412): someone else saved first."""


class ForbiddenError(DavClientError):
    """The person may not do this (403): a read-only share, for one."""


@dataclass(frozen=True, slots=True)
class Collection:
    """A calendar or address book in the person's home, as the portal lists it."""

    path: str  # under /dav, e.g. "/bob.durand/alice.martin~calendar/"
    segment: str  # its last segment, e.g. "alice.martin~calendar"
    display_name: str
    color: str
    kind: str  # calendar | addressbook
    is_writable: bool
    ctag: str

    @property
    def is_mount(self) -> bool:
        """Someone else's collection (shared, a department's, the directory)."""
        return MOUNT_MARK in self.segment


@dataclass(frozen=True, slots=True)
class Resource:
    """One calendar object or vCard with its ETag."""

    path: str  # under /dav
    etag: str
    text: str


class DavClient:
    """A person's DAV requests, through the in-process front."""

    def __init__(self, requests: DavRequests, person: Person) -> None:
        self._requests = requests
        self.person = person

    @property
    def home(self) -> str:
        """The person's home collection."""
        return f"/{self.person.login}/"

    # --- requests --------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        *,
        expect: tuple[int, ...],
    ) -> DavReply:
        reply = self._requests.request_as(self.person, method, path, body, headers)
        if reply.status in expect:
            return reply
        log.info(
            "web.dav.refused user=%s method=%s path=%s status=%s",
            self.person.login,
            method,
            path,
            reply.status,
        )
        if reply.status == 412:
            raise ChangedElsewhereError(method, path, reply.status)
        if reply.status in (401, 403):
            raise ForbiddenError(method, path, reply.status)
        raise DavClientError(method, path, reply.status)

    # --- collections -----------------------------------------------------------------

    def collections(self) -> list[Collection]:
        """Every calendar and address book in the home, its own first (PROPFIND depth 1)."""
        reply = self._send(
            "PROPFIND", self.home, _LIST_BODY, {"Depth": "1", **_XML_HEADERS}, expect=(207,)
        )
        found = [c for c in _collections_of(reply.body) if c.path != self.home]
        return sorted(found, key=lambda c: (c.is_mount, c.kind != "calendar"))

    def set_properties(self, path: str, *, display_name: str, color: str) -> None:
        """PROPPATCH a name and a colour (on a mount: the person's own view only)."""
        props = f"<d:displayname>{escape(display_name)}</d:displayname>"
        if color:
            props += f"<i:calendar-color>{escape(color)}</i:calendar-color>"
        body = (
            '<?xml version="1.0" encoding="utf-8"?><d:propertyupdate xmlns:d="DAV:"'
            ' xmlns:i="http://apple.com/ns/ical/"><d:set><d:prop>'
            f"{props}</d:prop></d:set></d:propertyupdate>"
        ).encode()
        self._send("PROPPATCH", path, body, _XML_HEADERS, expect=(207,))

    # --- items -----------------------------------------------------------------------

    def calendar_query(self, path: str, start: datetime, end: datetime) -> list[Resource]:
        """The events of ``path`` with an instance in ``[start, end)`` (UTC datetimes)."""
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
            "<d:prop><d:getetag/><c:calendar-data/></d:prop><c:filter>"
            '<c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT">'
            f'<c:time-range start="{_utc(start)}" end="{_utc(end)}"/>'
            "</c:comp-filter></c:comp-filter></c:filter></c:calendar-query>"
        ).encode()
        reply = self._send("REPORT", path, body, {"Depth": "1", **_XML_HEADERS}, expect=(207,))
        return _resources_of(reply.body, "c:calendar-data")

    def address_cards(self, path: str, text: str = "") -> list[Resource]:
        """The vCards of an address book; with ``text``, those whose name or address has it.

        RFC 6352 §10.5: ``anyof`` prop-filters with a case-insensitive ``contains``.
        """
        needle = escape(text)
        conditions = "".join(
            f'<card:prop-filter name="{name}"><card:text-match collation="i;unicode-casemap"'
            f' match-type="contains">{needle}</card:text-match></card:prop-filter>'
            for name in ("FN", "EMAIL")
        )
        filter_ = f'<card:filter test="anyof">{conditions}</card:filter>' if text else ""
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<card:addressbook-query xmlns:d="DAV:" xmlns:card="urn:ietf:params:xml:ns:carddav">'
            f"<d:prop><d:getetag/><card:address-data/></d:prop>{filter_}</card:addressbook-query>"
        ).encode()
        reply = self._send("REPORT", path, body, {"Depth": "1", **_XML_HEADERS}, expect=(207,))
        return _resources_of(reply.body, "card:address-data")

    def get(self, path: str) -> Resource | None:
        """One resource, or ``None`` when it does not exist."""
        reply = self._send("GET", path, expect=(200, 404))
        if reply.status == 404:
            return None
        return Resource(path, reply.headers.get("etag", ""), reply.body.decode("utf-8"))

    def export(self, path: str) -> bytes:
        """A whole collection as one file (Radicale serves .ics or .vcf on GET)."""
        return self._send("GET", path, expect=(200,)).body

    def put(self, path: str, text: str, content_type: str, *, etag: str | None) -> str:
        """Write a resource; ``etag=None`` creates it (and fails if it exists).

        Returns:
            The new ETag.

        Raises:
            ChangedElsewhereError: it changed (or appeared) since it was read.
        """
        headers = {"Content-Type": content_type}
        if etag is None:
            headers["If-None-Match"] = "*"
        else:
            headers["If-Match"] = etag
        reply = self._send("PUT", path, text.encode("utf-8"), headers, expect=(200, 201, 204))
        return reply.headers.get("etag", "")

    def delete(self, path: str, *, etag: str) -> None:
        """Delete a resource read with ``etag``."""
        self._send("DELETE", path, headers={"If-Match": etag}, expect=(200, 204))


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def _path_of(href: str) -> str:
    path = urllib.parse.unquote(href)
    return path[len(DAV_PREFIX) :] if path.startswith(DAV_PREFIX + "/") else path


def _ok_props(response: ET.Element) -> ET.Element:
    """The properties a response found (those of its ``200`` propstat)."""
    merged = ET.Element("prop")
    for propstat in response.findall("d:propstat", _NS):
        status = propstat.findtext("d:status", "", _NS)
        prop = propstat.find("d:prop", _NS)
        if " 200 " in status and prop is not None:
            merged.extend(list(prop))
    return merged


def _collections_of(body: bytes) -> list[Collection]:
    found = []
    for response in ET.fromstring(body).findall("d:response", _NS):  # noqa: S314 - our own server's reply
        path = _path_of(response.findtext("d:href", "", _NS))
        props = _ok_props(response)
        types = props.find("d:resourcetype", _NS)
        if types is None:
            continue
        if types.find("c:calendar", _NS) is not None:
            kind = "calendar"
        elif types.find("card:addressbook", _NS) is not None:
            kind = "addressbook"
        else:
            continue
        privileges = props.find("d:current-user-privilege-set", _NS)
        names = {
            child.tag.rsplit("}", 1)[-1]
            for privilege in (privileges if privileges is not None else [])
            for child in privilege
        }
        segment = path.strip("/").rsplit("/", 1)[-1]
        found.append(
            Collection(
                path=path,
                segment=segment,
                display_name=props.findtext("d:displayname", "", _NS) or segment,
                color=(props.findtext("i:calendar-color", "", _NS) or "")[:7],
                kind=kind,
                is_writable=bool(names & _WRITE_PRIVILEGES),
                ctag=props.findtext("cs:getctag", "", _NS) or "",
            )
        )
    return found


def _resources_of(body: bytes, data_tag: str) -> list[Resource]:
    found = []
    for response in ET.fromstring(body).findall("d:response", _NS):  # noqa: S314 - our own server's reply
        props = _ok_props(response)
        text = props.findtext(data_tag, None, _NS)
        if text is None:
            continue
        found.append(
            Resource(
                _path_of(response.findtext("d:href", "", _NS)),
                props.findtext("d:getetag", "", _NS) or "",
                text,
            )
        )
    return found
