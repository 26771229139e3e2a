"""Agenda pages over real HTTP: one's own view of a shared calendar, and the grid's lanes.

A colleague renames, recolours and hides a calendar shared with him: his DAV
client sees the same, the owner's calendar is unchanged.
"""

from __future__ import annotations

import base64
import re
import urllib.request
from datetime import date, datetime
from zoneinfo import ZoneInfo

from groupware.core.sharing import CollectionRef, Level
from groupware.web import agenda_layout as layout
from groupware.web.agenda_data import Occurrence
from groupware.web.dav_client import Collection, Resource
from tests.support.servers import RunningServer, add_user
from tests.web.portal_client import PortalClient

PASSWORD = "Vague-Orange-Clavier-57"  # noqa: S105 - a test password
PARIS = ZoneInfo("Europe/Paris")
LIST_BODY = (
    b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:i="http://apple.com/ns/ical/">'
    b"<d:prop><d:displayname/><i:calendar-color/></d:prop></d:propfind>"
)


def propfind(server: RunningServer, login: str, path: str) -> str:
    token = base64.b64encode(f"{login}:{PASSWORD}".encode()).decode()
    request = urllib.request.Request(  # noqa: S310 - the test's own server
        server.dav_url + path.lstrip("/"),
        data=LIST_BODY,
        method="PROPFIND",
        headers={"Authorization": f"Basic {token}", "Depth": "1"},
    )
    with urllib.request.urlopen(request, timeout=5) as reply:  # noqa: S310
        return reply.read().decode()


def test_own_name_colour_and_hiding_of_a_shared_calendar(server: RunningServer) -> None:
    owner = add_user(server.core, "Émilie", "Durand", password=PASSWORD)
    colleague = add_user(server.core, "Paul", "Rousseau", password=PASSWORD)
    propfind(server, owner.login, f"/{owner.login}/")  # her first sync makes her calendar
    server.core.sharing.grant(
        CollectionRef(owner.login, "calendar"), colleague.login, Level.READ, actor="test"
    )
    portal = PortalClient(server.http_url)
    portal.sign_in(colleague.login, PASSWORD)
    page = portal.get("/agenda/collections")
    assert page.status == 200
    segment = f"{owner.login}~calendar"
    reply = portal.post(
        f"/agenda/collections/{segment}/appearance",
        {"csrf_token": page.csrf_token(), "display_name": "Agenda d’Émilie", "color": "#c0392b"},
    )
    assert reply.status == 302
    mine = propfind(server, colleague.login, f"/{colleague.login}/")
    assert "<displayname>Agenda d’Émilie</displayname>" in mine
    assert "#c0392b" in mine
    theirs = propfind(server, owner.login, f"/{owner.login}/")
    assert "Agenda d’Émilie" not in theirs
    assert "#c0392b" not in theirs

    shown = f'name="shown" value="{segment}"'
    assert shown in portal.get("/agenda/week/2026-06-01").body
    reply = portal.post(f"/agenda/collections/{segment}/hide", {"csrf_token": page.csrf_token()})
    assert reply.status == 302
    assert segment not in propfind(server, colleague.login, f"/{colleague.login}/")
    week = portal.get("/agenda/week/2026-06-01")
    assert shown not in week.body
    page = portal.get("/agenda/collections")
    assert re.search(r'name="collection" value="emilie.durand/calendar"', page.body)
    reply = portal.post(
        "/agenda/collections/show",
        {"csrf_token": page.csrf_token(), "collection": f"{owner.login}/calendar"},
    )
    assert reply.status == 302
    assert segment in propfind(server, colleague.login, f"/{colleague.login}/")

    # His own calendar's page offers no hiding, and the directory cannot be renamed.
    forged = portal.post(
        f"/agenda/collections/{colleague.login}~nothing/hide", {"csrf_token": page.csrf_token()}
    )
    assert forged.status == 404


CALENDAR = Collection("/e/calendar/", "calendar", "Agenda", "#2a6ebb", "calendar", True, "")


def at(day: int, hour: int, minute: int) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=PARIS)


def occurrence(title: str, start: datetime, end: datetime) -> Occurrence:
    return Occurrence(
        title, CALENDAR, Resource("/e/calendar/x.ics", "", ""), title, "",
        start, end, False, False, "",
    )  # fmt: skip


def test_overlapping_events_share_the_day_in_lanes_and_night_events_span_two_days() -> None:
    day = date(2026, 3, 30)
    found = [
        occurrence("A", at(30, 9, 0), at(30, 10, 0)),
        occurrence("B", at(30, 9, 30), at(30, 11, 0)),
        occurrence("C", at(30, 10, 0), at(30, 10, 30)),
        occurrence("D", at(30, 14, 0), at(30, 15, 0)),
        occurrence("N", at(30, 23, 0), at(31, 1, 0)),
    ]
    (monday, tuesday) = layout.columns([day, date(2026, 3, 31)], found)
    placed = {p.occurrence.title: p for p in monday.timed}
    assert (placed["A"].first_row, placed["A"].last_row) == (37, 41)
    assert (placed["A"].lane, placed["B"].lane, placed["C"].lane) == (1, 2, 1)
    assert {placed[t].lanes for t in "ABC"} == {2}
    assert (placed["D"].lane, placed["D"].lanes) == (1, 1)
    assert (placed["N"].first_row, placed["N"].last_row, placed["N"].ends_after) == (93, 97, True)
    (night,) = tuesday.timed
    assert (night.first_row, night.last_row, night.starts_before) == (1, 5, True)


def test_periods_and_their_neighbours() -> None:
    week = layout.period("week", date(2026, 3, 29))
    assert (week.start, week.end) == (date(2026, 3, 23), date(2026, 3, 30))
    month = layout.period("month", date(2026, 1, 31))
    assert month.start == date(2025, 12, 29)
    assert len(month.days) == 42
    assert (month.previous, month.following) == (date(2025, 12, 1), date(2026, 2, 1))
    assert layout.colours([("a", "#2a6ebb"), ("b", "#2a6ebb"), ("c", "")]) == {
        "a": "#2a6ebb",
        "b": "#c0392b",
        "c": "#1e8449",
    }
