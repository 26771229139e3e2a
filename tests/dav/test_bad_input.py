"""Malformed or oversized input is refused with a 4xx, and nothing is stored or lost."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.dav.accounts import Account, import_accounts
from tests.dav.webdav import (
    CALDAV,
    DAV,
    DavHttp,
    Reply,
    contact_vcf,
    event_ics,
    mkcalendar_body,
    proppatch_displayname_body,
    xml_headers,
)
from tests.support.servers import RunningServer, make_config, running_server

MAX_RESOURCE_BYTES = 2048

BAD_CALENDARS = {
    "unparsable line": "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nthis is not a content line\r\n",
    "not iCalendar at all": "<html><body>hello</body></html>",
    "unterminated component": (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:x\r\nSUMMARY:half\r\n"
    ),
    "event without UID": (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\n"
        "DTSTART:20300101T100000Z\r\nSUMMARY:no uid\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    ),
    "a vCard in a calendar": contact_vcf("card-in-calendar", "Wrong Place"),
    "empty body": "",
}
BAD_CARDS = {
    "unparsable line": "BEGIN:VCARD\r\nVERSION:3.0\r\nFN Missing colon\r\nEND:VCARD\r\n",
    "unterminated card": "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Half\r\n",
    "an event in an address book": event_ics("event-in-book", "Wrong place"),
    "empty body": "",
}
BAD_XML = {
    "truncated": '<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop>',
    "unbound prefix": "<d:propfind><d:allprop/></d:propfind>",
    "not xml": "propfind everything please",
    "entity expansion": (
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        '<d:propfind xmlns:d="DAV:"><d:prop><d:displayname>&b;</d:displayname></d:prop>'
        "</d:propfind>"
    ),
}


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = make_config(
        tmp_path_factory.mktemp("dav-small"), dav={"max_resource_bytes": MAX_RESOURCE_BYTES}
    )
    with running_server(config) as live:
        yield live


@pytest.fixture(scope="module")
def account(small_server: RunningServer) -> Account:
    return import_accounts(small_server.core, ("Louise", "Dupont"))[0]


@pytest.fixture(scope="module")
def dav(small_server: RunningServer, account: Account) -> DavHttp:
    return DavHttp(small_server.http_url, account.credentials)


@pytest.fixture(scope="module")
def calendar(account: Account) -> str:
    return f"/dav/{account.login}/calendar/"


@pytest.fixture(scope="module")
def book(account: Account) -> str:
    return f"/dav/{account.login}/contacts/"


@pytest.fixture(scope="module")
def existing_event(dav: DavHttp, calendar: str) -> tuple[str, str]:
    """An event every test may try to damage: ``(path, stored text)``."""
    path = f"{calendar}existing.ics"
    assert dav.put(path, event_ics("existing", "Must survive"), "text/calendar").status == 201
    return path, dav.request("GET", path).text


def assert_clean_refusal(reply: Reply) -> None:
    assert 400 <= reply.status < 500, (reply.status, reply.text)
    assert "Traceback" not in reply.text
    assert 'File "' not in reply.text


@pytest.mark.parametrize("name", list(BAD_CALENDARS))
def test_malformed_icalendar_put_is_refused_and_stores_nothing(
    name: str, dav: DavHttp, calendar: str, existing_event: tuple[str, str]
) -> None:
    before = dav.etags(calendar)
    path = f"{calendar}bad-{name.replace(' ', '-')}.ics"

    reply = dav.put(path, BAD_CALENDARS[name], "text/calendar")

    assert_clean_refusal(reply)
    assert dav.request("GET", path).status == 404
    assert dav.etags(calendar) == before


@pytest.mark.parametrize("name", list(BAD_CALENDARS))
def test_malformed_icalendar_put_over_an_event_keeps_the_event(
    name: str, dav: DavHttp, calendar: str, existing_event: tuple[str, str]
) -> None:
    path, text = existing_event
    before = dav.etags(calendar)

    reply = dav.put(path, BAD_CALENDARS[name], "text/calendar")

    assert_clean_refusal(reply)
    assert dav.request("GET", path).text == text
    assert dav.etags(calendar) == before


@pytest.mark.parametrize("name", list(BAD_CARDS))
def test_malformed_vcard_put_is_refused_and_stores_nothing(
    name: str, dav: DavHttp, book: str
) -> None:
    before = dav.etags(book)
    path = f"{book}bad-{name.replace(' ', '-')}.vcf"

    reply = dav.put(path, BAD_CARDS[name], "text/vcard")

    assert_clean_refusal(reply)
    assert dav.request("GET", path).status == 404
    assert dav.etags(book) == before


@pytest.mark.parametrize("name", list(BAD_XML))
@pytest.mark.parametrize("method", ["PROPFIND", "REPORT", "PROPPATCH"])
def test_malformed_xml_body_gets_400(
    name: str, method: str, dav: DavHttp, calendar: str, existing_event: tuple[str, str]
) -> None:
    reply = dav.request(method, calendar, BAD_XML[name], xml_headers(Depth="1"))

    assert reply.status == 400, reply.text
    assert_clean_refusal(reply)


def test_oversized_event_put_gets_413_and_stores_nothing(
    dav: DavHttp, calendar: str, existing_event: tuple[str, str]
) -> None:
    before = dav.etags(calendar)
    body = event_ics("too-big", "x" * (MAX_RESOURCE_BYTES + 100))
    path = f"{calendar}too-big.ics"

    reply = dav.put(path, body, "text/calendar")

    assert reply.status == 413
    assert_clean_refusal(reply)
    assert dav.request("GET", path).status == 404
    assert dav.etags(calendar) == before


def test_oversized_put_over_an_event_gets_413_and_keeps_the_event(
    dav: DavHttp, existing_event: tuple[str, str]
) -> None:
    path, text = existing_event

    reply = dav.put(path, event_ics("existing", "x" * (MAX_RESOURCE_BYTES * 3)), "text/calendar")

    assert reply.status == 413
    assert dav.request("GET", path).text == text


def test_oversized_chunked_put_gets_413_and_stores_nothing(dav: DavHttp, calendar: str) -> None:
    before = dav.etags(calendar)
    path = f"{calendar}too-big-chunked.ics"
    body = event_ics("too-big-chunked", "x" * (MAX_RESOURCE_BYTES * 2)).encode()

    reply = dav.request("PUT", path, body, {"Content-Type": "text/calendar"}, chunked=True)

    assert reply.status == 413
    assert dav.request("GET", path).status == 404
    assert dav.etags(calendar) == before


def test_oversized_xml_body_gets_413(dav: DavHttp, calendar: str) -> None:
    padding = "<!-- " + "p" * (2 * MAX_RESOURCE_BYTES) + " -->"
    body = f'<?xml version="1.0"?>{padding}<d:propfind xmlns:d="DAV:"><d:allprop/></d:propfind>'

    reply = dav.request("PROPFIND", calendar, body, xml_headers(Depth="0"))

    assert reply.status == 413
    assert_clean_refusal(reply)


def test_chunked_put_of_a_valid_event_is_stored_whole(dav: DavHttp, calendar: str) -> None:
    path = f"{calendar}chunked.ics"
    body = event_ics("chunked", "Sent in chunks " + "y" * 1500).encode()

    reply = dav.request("PUT", path, body, {"Content-Type": "text/calendar"}, chunked=True)

    assert reply.status == 201, reply.text
    assert "Sent in chunks " + "y" * 1500 in dav.request("GET", path).text.replace("\r\n ", "")


def test_event_just_under_the_limit_is_accepted(dav: DavHttp, calendar: str) -> None:
    path = f"{calendar}near-limit.ics"
    body = event_ics("near-limit", "z" * (MAX_RESOURCE_BYTES - 400))
    assert len(body.encode()) < MAX_RESOURCE_BYTES

    assert dav.put(path, body, "text/calendar").status == 201


RESOURCETYPE_CHANGES = {
    "set to a plain collection": (
        "<d:set><d:prop><d:resourcetype><d:collection/></d:resourcetype></d:prop></d:set>"
    ),
    "set to an address book": (
        "<d:set><d:prop><d:resourcetype><d:collection/><cr:addressbook/></d:resourcetype>"
        "</d:prop></d:set>"
    ),
    "removed": "<d:remove><d:prop><d:resourcetype/></d:prop></d:remove>",
    "set along with a display name": (
        "<d:set><d:prop><d:displayname>Renamed</d:displayname>"
        "<d:resourcetype><d:collection/></d:resourcetype></d:prop></d:set>"
    ),
}


@pytest.mark.parametrize("name", list(RESOURCETYPE_CHANGES))
def test_proppatch_of_resourcetype_is_refused_and_the_calendar_stays_usable(
    name: str, dav: DavHttp, calendar: str, existing_event: tuple[str, str]
) -> None:
    body = (
        '<?xml version="1.0" encoding="utf-8"?><d:propertyupdate xmlns:d="DAV:" '
        f'xmlns:cr="urn:ietf:params:xml:ns:carddav">{RESOURCETYPE_CHANGES[name]}'
        "</d:propertyupdate>"
    )

    reply = dav.request("PROPPATCH", calendar, body, xml_headers())

    assert reply.status == 403
    assert "cannot-modify-protected-property" in reply.text
    props = dav.propfind(calendar, ["d:resourcetype", "d:displayname"]).multistatus()[calendar]
    assert props[f"{{{DAV}}}resourcetype"].find(f"{{{CALDAV}}}calendar") is not None
    assert props[f"{{{DAV}}}displayname"].text == "Agenda personnel"
    path, text = existing_event
    assert dav.request("GET", path).text == text


def test_proppatch_of_an_ordinary_property_still_works(dav: DavHttp, account: Account) -> None:
    collection = f"/dav/{account.login}/renamed/"
    assert (
        dav.request("MKCALENDAR", collection, mkcalendar_body("Before"), xml_headers()).status
        == 201
    )

    reply = dav.request("PROPPATCH", collection, proppatch_displayname_body("After"), xml_headers())

    assert reply.status == 207
    props = dav.propfind(collection, ["d:displayname"]).multistatus()[collection]
    assert props[f"{{{DAV}}}displayname"].text == "After"


def test_document_type_declaration_in_another_encoding_gets_400(
    dav: DavHttp, calendar: str
) -> None:
    body = BAD_XML["entity expansion"].replace('version="1.0"', 'version="1.0" encoding="utf-16"')

    reply = dav.request("PROPFIND", calendar, body.encode("utf-16"), xml_headers(Depth="0"))

    assert reply.status == 400
    assert_clean_refusal(reply)


@pytest.mark.parametrize("collection", ["calendar", "contacts"])
def test_multiget_with_an_empty_href_gets_400(
    collection: str, dav: DavHttp, account: Account
) -> None:
    report = "c:calendar-multiget" if collection == "calendar" else "cr:addressbook-multiget"
    body = (
        f'<?xml version="1.0" encoding="utf-8"?><{report} xmlns:d="DAV:" '
        'xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:cr="urn:ietf:params:xml:ns:carddav">'
        f"<d:prop><d:getetag/></d:prop><d:href></d:href></{report}>"
    )

    reply = dav.request(
        "REPORT", f"/dav/{account.login}/{collection}/", body, xml_headers(Depth="1")
    )

    assert reply.status == 400
    assert_clean_refusal(reply)
