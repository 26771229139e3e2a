"""Free/busy: colleagues the owner allows see when they are busy, never what they do."""

from __future__ import annotations

import uuid

import pytest

from groupware.core.sharing import CollectionRef, Level
from tests.dav.accounts import Account, import_accounts
from tests.dav.webdav import DavHttp, calendar_query_body, event_ics, mkcalendar_body, xml_headers
from tests.support.servers import RunningServer

SECRET = "Rendez-vous confidentiel"


def freebusy_body(start: str = "20310301T000000Z", end: str = "20310401T000000Z") -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<c:free-busy-query xmlns:c="urn:ietf:params:xml:ns:caldav">'
        f'<c:time-range start="{start}" end="{end}"/></c:free-busy-query>'
    )


@pytest.fixture(scope="module")
def people(dav_server: RunningServer) -> dict[str, Account]:
    owner, colleague = import_accounts(dav_server.core, ("Iris", "Lambert"), ("Jules", "Noël"))
    (stranger,) = import_accounts(
        dav_server.core, ("Karim", "Haddad"), school="École Jean Moulin", discipline=""
    )
    owner_dav = DavHttp(dav_server.http_url, owner.credentials)
    calendar = f"/dav/{owner.login}/calendar/"
    for start, summary in (("20310310T090000Z", SECRET), ("20310311T140000Z", "Cours")):
        uid = f"fb-{uuid.uuid4()}"
        assert (
            owner_dav.put(
                f"{calendar}{uid}.ics", event_ics(uid, summary, start), "text/calendar"
            ).status
            == 201
        )
    # A second calendar of hers, busy on another day; and a transparent event (free).
    second = f"/dav/{owner.login}/clubs/"
    assert (
        owner_dav.request("MKCALENDAR", second, mkcalendar_body("Clubs"), xml_headers()).status
        == 201
    )
    uid = f"fb-{uuid.uuid4()}"
    assert (
        owner_dav.put(
            f"{second}{uid}.ics", event_ics(uid, "Club échecs", "20310312T160000Z"), "text/calendar"
        ).status
        == 201
    )
    uid = f"fb-{uuid.uuid4()}"
    transparent = event_ics(uid, "Rappel", "20310313T080000Z").replace(
        "SUMMARY:Rappel", "SUMMARY:Rappel\r\nTRANSP:TRANSPARENT"
    )
    assert owner_dav.put(f"{second}{uid}.ics", transparent, "text/calendar").status == 201
    return {"owner": owner, "colleague": colleague, "stranger": stranger}


def report(server: RunningServer, account: Account, path: str, body: str) -> tuple[int, str]:
    reply = DavHttp(server.http_url, account.credentials).request(
        "REPORT", path, body, xml_headers(Depth="1")
    )
    return reply.status, reply.text


def busy_lines(text: str) -> list[str]:
    return sorted(line for line in text.splitlines() if line.startswith("FREEBUSY"))


def test_a_colleague_of_the_school_sees_busy_times_and_nothing_else(
    dav_server: RunningServer, people: dict[str, Account]
) -> None:
    calendar = f"/dav/{people['owner'].login}/calendar/"

    status, text = report(dav_server, people["colleague"], calendar, freebusy_body())

    assert status == 200, text
    assert "BEGIN:VFREEBUSY" in text
    assert busy_lines(text) == [
        "FREEBUSY;FBTYPE=BUSY:20310310T090000Z/20310310T100000Z",
        "FREEBUSY;FBTYPE=BUSY:20310311T140000Z/20310311T150000Z",
    ]
    assert SECRET not in text
    assert "UID" not in text
    status, text = report(dav_server, people["colleague"], calendar, calendar_query_body())
    assert status == 403
    assert SECRET not in text


def test_someone_of_another_school_sees_nothing(
    dav_server: RunningServer, people: dict[str, Account]
) -> None:
    calendar = f"/dav/{people['owner'].login}/calendar/"

    status, text = report(dav_server, people["stranger"], calendar, freebusy_body())

    assert status == 403
    assert "FREEBUSY" not in text


def test_the_owner_chooses_who_sees_it(
    dav_server: RunningServer, people: dict[str, Account]
) -> None:
    owner = people["owner"].login
    calendar = f"/dav/{owner}/calendar/"
    sharing = dav_server.core.sharing
    try:
        sharing.set_freebusy_scope(owner, "nobody", actor="test")
        assert report(dav_server, people["colleague"], calendar, freebusy_body())[0] == 403
        sharing.set_freebusy_scope(owner, "everyone", actor="test")
        assert report(dav_server, people["stranger"], calendar, freebusy_body())[0] == 200
    finally:
        sharing.set_freebusy_scope(owner, "school", actor="test")


def test_a_read_share_includes_free_busy(
    dav_server: RunningServer, people: dict[str, Account]
) -> None:
    owner = people["owner"].login
    ref = CollectionRef(owner, "calendar")
    dav_server.core.sharing.grant(ref, people["stranger"].login, Level.READ, actor="test")
    try:
        status, text = report(
            dav_server, people["stranger"], f"/dav/{owner}/calendar/", freebusy_body()
        )
        assert status == 200
        assert len(busy_lines(text)) == 2
    finally:
        dav_server.core.sharing.revoke(ref, people["stranger"].login, actor="test")


def test_free_busy_url_merges_every_calendar_of_the_person(
    dav_server: RunningServer, people: dict[str, Account]
) -> None:
    owner = people["owner"]
    colleague = DavHttp(dav_server.http_url, people["colleague"].credentials)
    url = f"/dav/~freebusy/{owner.email}.ifb?start=20310301&end=20310401"

    reply = colleague.request("GET", url)

    assert reply.status == 200, reply.text
    assert reply.headers["Content-Type"].startswith("text/calendar")
    assert busy_lines(reply.text) == [
        "FREEBUSY;FBTYPE=BUSY:20310310T090000Z/20310310T100000Z",
        "FREEBUSY;FBTYPE=BUSY:20310311T140000Z/20310311T150000Z",
        "FREEBUSY;FBTYPE=BUSY:20310312T160000Z/20310312T170000Z",
    ]
    assert SECRET not in reply.text
    assert "Club" not in reply.text


def test_free_busy_url_refuses_without_saying_whether_the_person_exists(
    dav_server: RunningServer, people: dict[str, Account]
) -> None:
    stranger = DavHttp(dav_server.http_url, people["stranger"].credentials)
    hidden = stranger.request("GET", f"/dav/~freebusy/{people['owner'].email}.ifb")
    missing = stranger.request("GET", "/dav/~freebusy/personne@example.org.ifb")

    assert (hidden.status, hidden.text) == (missing.status, missing.text)
    assert hidden.status == 404
    assert stranger.request("GET", "/dav/~freebusy/x.ifb?start=2031&end=x").status == 400
    assert DavHttp(dav_server.http_url).request("GET", "/dav/~freebusy/x.ifb").status == 401
