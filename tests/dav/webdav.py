"""A raw WebDAV client over ``http.client`` and the bodies the tests send.

Every response is read in full and closed before it is returned, so no socket
outlives a call (``filterwarnings = error`` turns a leaked one into a failure).
"""

from __future__ import annotations

import base64
import http.client
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from urllib.parse import unquote, urlsplit

DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"
CARDDAV = "urn:ietf:params:xml:ns:carddav"
NS = {"d": DAV, "c": CALDAV, "cr": CARDDAV}
TIMEOUT_SECONDS = 5


@dataclass
class Reply:
    """One HTTP answer, body included."""

    status: int
    headers: Message
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def xml(self) -> ET.Element:
        return ET.fromstring(self.body)

    def multistatus(self) -> dict[str, dict[str, ET.Element]]:
        """``{href: {"{ns}name": prop element}}`` for the 200 propstats of a 207."""
        assert self.status == 207, (self.status, self.text)
        found: dict[str, dict[str, ET.Element]] = {}
        for response in self.xml().findall("d:response", NS):
            href = unquote(response.findtext("d:href", "", NS))
            props = found.setdefault(href, {})
            for propstat in response.findall("d:propstat", NS):
                if " 200 " not in propstat.findtext("d:status", "", NS):
                    continue
                for prop in propstat.findall("d:prop/*", NS):
                    props[prop.tag] = prop
        return found


@dataclass
class DavHttp:
    """Requests to one server, optionally with Basic credentials."""

    base_url: str
    credentials: tuple[str, str] | None = None
    default_headers: Mapping[str, str] = field(default_factory=dict)

    def as_user(self, credentials: tuple[str, str] | None) -> DavHttp:
        return DavHttp(self.base_url, credentials, self.default_headers)

    def request(
        self,
        method: str,
        path: str,
        body: str | bytes | Iterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        chunked: bool = False,
    ) -> Reply:
        parts = urlsplit(self.base_url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT_SECONDS)
        sent = dict(self.default_headers)
        if self.credentials is not None:
            token = base64.b64encode(":".join(self.credentials).encode()).decode()
            sent["Authorization"] = f"Basic {token}"
        sent.update(headers or {})
        if isinstance(body, str):
            body = body.encode()
        try:
            if chunked:
                assert isinstance(body, bytes)
                sent["Transfer-Encoding"] = "chunked"
                chunks = [body[i : i + 1024] for i in range(0, len(body), 1024)]
                connection.request(method, path, iter(chunks), sent, encode_chunked=True)
            else:
                connection.request(method, path, body, sent)
            with connection.getresponse() as response:
                return Reply(response.status, response.headers, response.read())
        finally:
            connection.close()

    # --- the WebDAV requests the tests use ------------------------------------------

    def propfind(self, path: str, props: Iterable[str], depth: str = "0") -> Reply:
        return self.request("PROPFIND", path, propfind_body(props), xml_headers(Depth=depth))

    def etags(self, collection: str) -> dict[str, str]:
        """``{href: etag}`` of the items in a collection (the collection excluded)."""
        reply = self.propfind(collection, ["d:getetag"], depth="1")
        return {
            href: props[f"{{{DAV}}}getetag"].text or ""
            for href, props in reply.multistatus().items()
            if href.rstrip("/") != collection.rstrip("/") and f"{{{DAV}}}getetag" in props
        }

    def put(self, path: str, body: str, content_type: str, **headers: str) -> Reply:
        sent = {"Content-Type": f"{content_type}; charset=utf-8"}
        sent.update({name.replace("_", "-"): value for name, value in headers.items()})
        return self.request("PUT", path, body, sent)


def xml_headers(**extra: str) -> dict[str, str]:
    return {"Content-Type": "application/xml; charset=utf-8", **extra}


def propfind_body(props: Iterable[str]) -> str:
    """A PROPFIND for prefixed names such as ``d:displayname``, ``c:calendar-home-set``."""
    inner = "".join(f"<{name}/>" for name in props)
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<d:propfind xmlns:d="{DAV}" xmlns:c="{CALDAV}" xmlns:cr="{CARDDAV}">'
        f"<d:prop>{inner}</d:prop></d:propfind>"
    )


def href_text(element: ET.Element | None) -> str:
    """The (unquoted) ``d:href`` inside a property such as current-user-principal."""
    assert element is not None
    return unquote(element.findtext("d:href", "", NS))


def calendar_query_body(start: str = "20000101T000000Z", end: str = "20991231T000000Z") -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<c:calendar-query xmlns:d="{DAV}" xmlns:c="{CALDAV}">'
        "<d:prop><d:getetag/><c:calendar-data/></d:prop>"
        '<c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT">'
        f'<c:time-range start="{start}" end="{end}"/>'
        "</c:comp-filter></c:comp-filter></c:filter></c:calendar-query>"
    )


def addressbook_query_body(text: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<cr:addressbook-query xmlns:d="{DAV}" xmlns:cr="{CARDDAV}">'
        "<d:prop><d:getetag/><cr:address-data/></d:prop>"
        '<cr:filter><cr:prop-filter name="FN">'
        f'<cr:text-match collation="i;unicode-casemap" match-type="contains">{text}'
        "</cr:text-match></cr:prop-filter></cr:filter></cr:addressbook-query>"
    )


def sync_collection_body() -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<d:sync-collection xmlns:d="{DAV}"><d:sync-token/><d:sync-level>1</d:sync-level>'
        "<d:prop><d:getetag/></d:prop></d:sync-collection>"
    )


def proppatch_displayname_body(name: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<d:propertyupdate xmlns:d="{DAV}"><d:set><d:prop>'
        f"<d:displayname>{name}</d:displayname></d:prop></d:set></d:propertyupdate>"
    )


def mkcalendar_body(name: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<c:mkcalendar xmlns:d="{DAV}" xmlns:c="{CALDAV}"><d:set><d:prop>'
        f"<d:displayname>{name}</d:displayname></d:prop></d:set></c:mkcalendar>"
    )


def event_ics(uid: str, summary: str, start: str = "20300102T100000Z") -> str:
    """A minimal valid VEVENT one hour long."""
    end = start[:9] + f"{int(start[9:11]) + 1:02d}" + start[11:]
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//groupware tests//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20300101T000000Z\r\n"
        f"DTSTART:{start}\r\nDTEND:{end}\r\nSUMMARY:{summary}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def contact_vcf(uid: str, full_name: str, email: str = "") -> str:
    """A minimal valid vCard 3.0."""
    given, _sep, family = full_name.partition(" ")
    lines = [
        "BEGIN:VCARD",
        "VERSION:3.0",
        f"UID:{uid}",
        f"FN:{full_name}",
        f"N:{family};{given};;;",
    ]
    if email:
        lines.append(f"EMAIL;TYPE=INTERNET:{email}")
    lines.append("END:VCARD")
    return "\r\n".join(lines) + "\r\n"
