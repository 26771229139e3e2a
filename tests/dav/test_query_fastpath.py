"""The calendar-query / addressbook-query fast path answers as Radicale does (``dav.query``).

As in ``test_fastpath``: each REPORT is served twice by one real ``DavService``, with
the fast path and with Radicale alone, and the answers are compared as sets of
``(href, status, property, value)``. The calendar holds what makes time ranges hard:
weekly and endless rules, a moved occurrence, all-day and zero-length events, an
event across the month's end, a to-do.
"""

from __future__ import annotations

import pytest

from groupware.core.directory import Person
from groupware.core.services import Core
from groupware.core.sharing import CollectionRef, Level
from groupware.dav.service import DavService
from tests.dav.fastpath_support import answer_facts, both_ways
from tests.dav.test_fastpath import dav
from tests.dav.test_multiget_fastpath import CALDAV, CARDDAV
from tests.support.servers import add_user

__all__ = ["dav"]  # fixture shared with test_fastpath

HEAD = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
TAIL = "END:VCALENDAR\r\n"
COMPONENTS = {
    "plain": "BEGIN:VEVENT\r\nUID:plain\r\nDTSTAMP:20260101T000000Z\r\n"
    "DTSTART:20270310T100000Z\r\nDTEND:20270310T110000Z\r\nSUMMARY:Conseil\r\nEND:VEVENT\r\n",
    "weekly": "BEGIN:VEVENT\r\nUID:weekly\r\nDTSTAMP:20260101T000000Z\r\n"
    "DTSTART:20270101T080000Z\r\nDTEND:20270101T090000Z\r\nRRULE:FREQ=WEEKLY;COUNT=20\r\n"
    "SUMMARY:Cours\r\nEND:VEVENT\r\n",
    "endless": "BEGIN:VEVENT\r\nUID:endless\r\nDTSTAMP:20260101T000000Z\r\n"
    "DTSTART:20260105T080000Z\r\nDTEND:20260105T090000Z\r\nRRULE:FREQ=MONTHLY\r\n"
    "SUMMARY:Réunion & co\r\nEND:VEVENT\r\n",
    "yearly": "BEGIN:VEVENT\r\nUID:yearly\r\nDTSTAMP:20260101T000000Z\r\n"
    "DTSTART:20260105T080000Z\r\nDTEND:20260105T090000Z\r\nRRULE:FREQ=YEARLY\r\n"
    "END:VEVENT\r\n",
    "moved": "BEGIN:VEVENT\r\nUID:moved\r\nDTSTAMP:20260101T000000Z\r\n"
    "DTSTART:20270201T140000Z\r\nDTEND:20270201T150000Z\r\nRRULE:FREQ=WEEKLY;COUNT=4\r\n"
    "END:VEVENT\r\nBEGIN:VEVENT\r\nUID:moved\r\nDTSTAMP:20260101T000000Z\r\n"
    "RECURRENCE-ID:20270222T140000Z\r\nDTSTART:20270305T140000Z\r\nDTEND:20270305T150000Z\r\n"
    "END:VEVENT\r\n",
    "all-day": "BEGIN:VEVENT\r\nUID:all-day\r\nDTSTAMP:20260101T000000Z\r\n"
    "DTSTART;VALUE=DATE:20270331\r\nDTEND;VALUE=DATE:20270401\r\nEND:VEVENT\r\n",
    "zero": "BEGIN:VEVENT\r\nUID:zero\r\nDTSTAMP:20260101T000000Z\r\n"
    "DTSTART:20270301T000000Z\r\nEND:VEVENT\r\n",
    "across": "BEGIN:VEVENT\r\nUID:across\r\nDTSTAMP:20260101T000000Z\r\n"
    "DTSTART:20270228T200000Z\r\nDTEND:20270301T020000Z\r\nEND:VEVENT\r\n",
    "todo": "BEGIN:VTODO\r\nUID:todo\r\nDTSTAMP:20260101T000000Z\r\n"
    "DUE:20270315T120000Z\r\nSUMMARY:Bulletins\r\nEND:VTODO\r\n",
}
CARDS = {
    "zyguel": "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:zyguel\r\nFN:Inès Zyguel\r\n"
    "N:Zyguel;Inès;;;\r\nEMAIL:ines.zyguel@example.org\r\nEND:VCARD\r\n",
    "martin": "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:martin\r\nFN:Paul Martin\r\n"
    "N:Martin;Paul;;;\r\nTEL:06 12 34 56 78\r\nEND:VCARD\r\n",
}


def _time_range(component: str, start: str, end: str) -> str:
    return (
        f"<c:filter><c:comp-filter name='VCALENDAR'><c:comp-filter name='{component}'>"
        f"<c:time-range start='{start}' end='{end}'/></c:comp-filter></c:comp-filter></c:filter>"
    )


CALENDAR_FILTERS = {
    "month": _time_range("VEVENT", "20270301T000000Z", "20270401T000000Z"),
    "beyond the horizon": _time_range("VEVENT", "20350101T000000Z", "20350301T000000Z"),
    "open end": "<c:filter><c:comp-filter name='VCALENDAR'><c:comp-filter name='VEVENT'>"
    "<c:time-range start='20270320T000000Z'/></c:comp-filter></c:comp-filter></c:filter>",
    "to-dos": _time_range("VTODO", "20270301T000000Z", "20270401T000000Z"),
    "events": "<c:filter><c:comp-filter name='VCALENDAR'><c:comp-filter name='VEVENT'/>"
    "</c:comp-filter></c:filter>",
    "summary": "<c:filter><c:comp-filter name='VCALENDAR'><c:comp-filter name='VEVENT'>"
    "<c:prop-filter name='SUMMARY'><c:text-match>réunion</c:text-match></c:prop-filter>"
    "</c:comp-filter></c:comp-filter></c:filter>",
    "no filter": "",
}
CARD_FILTERS = {
    "name contains": "<r:filter><r:prop-filter name='FN'><r:text-match "
    "collation='i;unicode-casemap' match-type='contains'>zyg</r:text-match></r:prop-filter>"
    "</r:filter>",
    "phone": "<r:filter><r:prop-filter name='TEL'><r:text-match match-type='contains'>34 56"
    "</r:text-match></r:prop-filter></r:filter>",
    "not indexed": "<r:filter><r:prop-filter name='UID'><r:text-match>mart</r:text-match>"
    "</r:prop-filter></r:filter>",
}
PROPS = "<d:prop><d:getetag/><c:calendar-data/><r:address-data/><d:getcontenttype/>"
PROPS += "<d:displayname/></d:prop>"


def _query(kind: str, filters: str, props: str = PROPS) -> bytes:
    namespace = CALDAV if kind == "calendar-query" else CARDDAV
    return (
        f"<?xml version='1.0'?><x:{kind} xmlns:x='{namespace}' xmlns:d='DAV:' "
        f"xmlns:c='{CALDAV}' xmlns:r='{CARDDAV}'>{props}{filters}</x:{kind}>"
    ).encode()


@pytest.fixture
def people(core: Core, dav: DavService) -> dict[str, Person]:
    owner = add_user(core, "Alice", "Martin", password="x" * 12)
    reader = add_user(core, "Bob", "Durand", password="x" * 12)
    for person in (owner, reader):
        dav.collections.ensure_defaults(person)
    core.sharing.grant(
        CollectionRef(owner.login, "calendar"), reader.login, Level.READ, actor="test"
    )
    for name, component in COMPONENTS.items():
        text = (HEAD + component + TAIL).encode()
        put = dav.request_as(owner, "PUT", f"/{owner.login}/calendar/{name}.ics", text)
        assert put.status == 201, name
    for name, card in CARDS.items():
        put = dav.request_as(owner, "PUT", f"/{owner.login}/contacts/{name}.vcf", card.encode())
        assert put.status == 201, name
    return {"owner": owner, "reader": reader}


@pytest.mark.parametrize("filter_name", sorted(CALENDAR_FILTERS))
def test_calendar_query_answers_as_radicale_does(
    dav: DavService, people: dict[str, Person], filter_name: str
) -> None:
    owner, reader = people["owner"], people["reader"]
    body = _query("calendar-query", CALENDAR_FILTERS[filter_name])
    for person, path in (
        (owner, f"/{owner.login}/calendar/"),
        (reader, f"/{reader.login}/{owner.login}~calendar/"),
        (reader, f"/{reader.login}/calendar/"),  # empty
    ):
        fast, slow = both_ways(dav, person, "REPORT", path, body, **{"Accept-Encoding": "gzip"})
        assert (fast.status, path) == (slow.status, path)
        assert fast.status == 207
        assert answer_facts(fast) == answer_facts(slow), path
        assert fast.headers.get("content-encoding") == slow.headers.get("content-encoding")


def test_the_month_is_what_a_calendar_shows(dav: DavService, people: dict[str, Person]) -> None:
    owner = people["owner"]
    body = _query("calendar-query", CALENDAR_FILTERS["month"], "<d:prop><d:getetag/></d:prop>")
    fast, _slow = both_ways(dav, owner, "REPORT", f"/{owner.login}/calendar/", body)
    hrefs = {fact[0].rsplit("/", 1)[-1] for fact in answer_facts(fast) if " 200 " in fact[1]}
    assert hrefs == {
        "plain.ics",
        "weekly.ics",
        "endless.ics",
        "moved.ics",
        "all-day.ics",
        "zero.ics",
        "across.ics",
    }


@pytest.mark.parametrize("filter_name", sorted(CARD_FILTERS))
def test_addressbook_query_answers_as_radicale_does(
    dav: DavService, people: dict[str, Person], filter_name: str
) -> None:
    owner = people["owner"]
    body = _query("addressbook-query", CARD_FILTERS[filter_name])
    fast, slow = both_ways(dav, owner, "REPORT", f"/{owner.login}/contacts/", body)
    assert fast.status == slow.status == 207
    assert answer_facts(fast) == answer_facts(slow)
    assert any(" 200 " in fact[1] for fact in answer_facts(fast))


@pytest.mark.parametrize(
    "body",
    [
        _query(
            "calendar-query",
            CALENDAR_FILTERS["month"],
            "<d:prop><c:calendar-data><c:expand start='20270301T000000Z' "
            "end='20270401T000000Z'/></c:calendar-data></d:prop>",
        ),
        _query("calendar-query", CARD_FILTERS["phone"]),  # the other kind of filter
        _query(  # two components in one filter: Radicale says 400
            "calendar-query",
            "<c:filter><c:comp-filter name='VCALENDAR'/><c:comp-filter name='VCALENDAR'/>"
            "</c:filter>",
        ),
        _query("addressbook-query", CARD_FILTERS["phone"]),  # on a calendar: 403 or 400
    ],
    ids=["expand", "card filter", "malformed", "wrong collection"],
)
def test_requests_it_does_not_handle_get_radicales_answer(
    dav: DavService, people: dict[str, Person], body: bytes
) -> None:
    owner = people["owner"]
    fast, slow = both_ways(dav, owner, "REPORT", f"/{owner.login}/calendar/", body)
    assert fast.status == slow.status
    if slow.status == 207:
        assert answer_facts(fast) == answer_facts(slow)


def test_a_stranger_is_refused_as_radicale_refuses(
    dav: DavService, people: dict[str, Person]
) -> None:
    owner, reader = people["owner"], people["reader"]
    body = _query("addressbook-query", CARD_FILTERS["phone"])
    fast, slow = both_ways(dav, reader, "REPORT", f"/{owner.login}/contacts/", body)
    assert fast.status == slow.status == 403
