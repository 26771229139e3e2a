"""The multiget fast path answers as Radicale does (``dav.multiget``).

As in ``test_fastpath``: each REPORT is served twice by one real ``DavService``,
with the fast path and with Radicale alone, and the answers are compared as sets of
``(href, status, property, value)`` (a response without properties counts as one
fact with its status).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from groupware.core.directory import Person
from groupware.core.services import Core
from groupware.dav.service import DavService
from tests.dav.fastpath_support import answer_facts, both_ways
from tests.dav.test_fastpath import BODIES, _paths, dav, people

__all__ = ["dav", "people"]  # fixtures shared with test_fastpath

CALDAV = "urn:ietf:params:xml:ns:caldav"
CARDDAV = "urn:ietf:params:xml:ns:carddav"
PROPS = {
    "etag and data": "<d:getetag/><c:calendar-data/><r:address-data/>",
    "etag only": "<d:getetag/>",
    "content type and others": "<d:getcontenttype/><d:getlastmodified/>"
    "<z:nothing xmlns:z='urn:example:z'/><d:displayname/>",
    "twice": "<d:getetag/><d:getetag/><c:calendar-data content-type='text/calendar'/>",
    "none": "",
}


def _report(kind: str, props: str, hrefs: list[str], extra: str = "") -> bytes:
    prop = f"<d:prop>{props}</d:prop>" if props else ""
    inner = "".join(f"<d:href>{href}</d:href>" for href in hrefs)
    namespace = CALDAV if kind == "calendar-multiget" else CARDDAV
    return (
        f"<?xml version='1.0'?><x:{kind} xmlns:x='{namespace}' xmlns:d='DAV:' "
        f"xmlns:c='{CALDAV}' xmlns:r='{CARDDAV}'>{prop}{extra}{inner}</x:{kind}>"
    ).encode()


def _item_hrefs(dav: DavService, person: Person, path: str) -> list[str]:
    listing = dav.request_as(person, "PROPFIND", path, BODIES["davx5"], {"Depth": "1"})
    root = ET.fromstring(listing.body)  # noqa: S314 - our own answer
    hrefs = [element.text or "" for element in root.iter("{DAV:}href")]
    return sorted({href for href in hrefs if href.endswith((".ics", ".vcf"))})


def _asked_hrefs(items: list[str], path: str, owner: Person) -> list[str]:
    """The items, plus every kind of href Radicale treats its own way."""
    collection = f"/dav{path}"
    return [
        *items,
        *items[:1],  # twice
        f"http://localhost{items[0]}" if items else f"{collection}absent.ics",
        f"{collection}missing.ics",
        f"{collection}with%20space%C3%A9.ics",
        f"{items[0]}?query=1" if items else f"{collection}q.ics?query=1",
        f"{collection}a;parameter.ics",
        f"{collection}sub/deeper.ics",  # not a name in the collection
        f"{collection}../calendar/x.ics",
        f"/dav/{owner.login}/elsewhere/x.ics",  # another collection: its own 404
        "/outside-the-prefix/x.ics",  # skipped
    ]


@pytest.mark.parametrize("props_name", sorted(PROPS))
def test_multiget_answers_as_radicale_does(
    core: Core, dav: DavService, people: dict[str, Person], props_name: str
) -> None:
    for where, (person, path) in _paths(core, people).items():
        kind = "addressbook-multiget" if "address" in where else "calendar-multiget"
        hrefs = _asked_hrefs(_item_hrefs(dav, person, path), path, people["owner"])
        fast, slow = both_ways(dav, person, "REPORT", path, _report(kind, PROPS[props_name], hrefs))
        assert (fast.status, where) == (slow.status, where)
        assert fast.status == 207, where
        assert answer_facts(fast) == answer_facts(slow), where
        assert fast.headers["content-length"] == str(len(fast.body))
        assert fast.headers["content-type"] == slow.headers["content-type"]


def test_items_come_with_their_stored_text(dav: DavService, people: dict[str, Person]) -> None:
    owner = people["owner"]
    path = f"/{owner.login}/calendar/"
    items = _item_hrefs(dav, owner, path)
    fast, _slow = both_ways(
        dav, owner, "REPORT", path, _report("calendar-multiget", PROPS["etag only"], items)
    )
    etags = {fact[0] for fact in answer_facts(fast) if fact[2] == "{DAV:}getetag"}
    assert etags == set(items)
    assert len(items) == 4
    with_data = _report("calendar-multiget", "<c:calendar-data/>", items)
    fast, _slow = both_ways(dav, owner, "REPORT", path, with_data)
    assert fast.body.count(b"SUMMARY:R\xc3\xa9union &amp; co") == 4


def test_a_gzip_answer_is_the_same_document(dav: DavService, people: dict[str, Person]) -> None:
    owner = people["owner"]
    path = f"/{owner.login}/contacts/"
    body = _report("addressbook-multiget", PROPS["etag and data"], _item_hrefs(dav, owner, path))
    fast, slow = both_ways(dav, owner, "REPORT", path, body, **{"Accept-Encoding": "gzip"})
    assert fast.headers["content-encoding"] == "gzip"
    assert answer_facts(fast) == answer_facts(slow)


@pytest.mark.parametrize(
    "case",
    [
        "expand",
        "filter",
        "comp",
        "collection href",
        "wrong report",
        "stranger",
        "no body",
        "item path",
    ],
)
def test_requests_it_does_not_handle_get_radicales_answer(
    dav: DavService, people: dict[str, Person], case: str
) -> None:
    owner, reader = people["owner"], people["reader"]
    path = f"/{owner.login}/calendar/"
    items = _item_hrefs(dav, owner, path)
    person, kind, props, extra = owner, "calendar-multiget", PROPS["etag and data"], ""
    if case == "expand":
        props = "<c:calendar-data><c:expand start='20260101T000000Z' end='20260201T000000Z'/>"
        props += "</c:calendar-data>"
    elif case == "filter":
        extra = "<c:filter><c:comp-filter name='VCALENDAR'><c:comp-filter name='VTODO'/>"
        extra += "</c:comp-filter></c:filter>"
    elif case == "comp":
        props = "<c:calendar-data><c:comp name='VCALENDAR'/></c:calendar-data>"
    elif case == "collection href":
        items = [f"/dav{path}", *items[:1]]
    elif case == "wrong report":
        kind = "addressbook-multiget"
    elif case == "stranger":
        person = reader
        path = f"/{owner.login}/contacts/"
    body = _report(kind, props, items, extra) if case != "no body" else b""
    if case == "item path":
        path = items[0].removeprefix("/dav")
    fast, slow = both_ways(dav, person, "REPORT", path, body)
    assert fast.status == slow.status
    if slow.status == 207:
        assert answer_facts(fast) == answer_facts(slow)
