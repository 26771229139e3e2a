"""The agenda in a real headless Chromium, read back by a real CalDAV client.

A weekly event made in the browser, one occurrence moved and another deleted: the
week and month views show it, and the ``caldav`` library reads the same series
(RFC 5545 override and EXDATE). A calendar shared read-only shows no editing
control, an event a DAV client wrote shows in the portal, and forged edits are
refused by the server.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import caldav
import icalendar
import pytest
from playwright.sync_api import Page, expect

from groupware.core.sharing import CollectionRef, Level
from tests.support.servers import RunningServer
from tests.web.portal_client import Imported, import_person
from tests.web.test_browser_sharing import PASSWORD, signed_in, with_password

pytestmark = pytest.mark.browser

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
def owner(server: RunningServer) -> Imported:
    return with_password(server, import_person(server.core.directory))


@pytest.fixture
def colleague(server: RunningServer) -> Imported:
    return with_password(server, import_person(server.core.directory, "Paul", "Rousseau"))


@pytest.fixture
def dav_client(server: RunningServer, owner: Imported) -> Iterator[caldav.DAVClient]:
    with caldav.DAVClient(
        url=server.dav_url, username=owner.login, password=PASSWORD, timeout=5
    ) as client:
        yield client


def own_calendar(client: caldav.DAVClient, login: str) -> caldav.Calendar:
    (found,) = [
        c for c in client.principal().calendars() if str(c.url).endswith(f"/{login}/calendar/")
    ]
    return found


def open_occurrence(page: Page, title: str, day: str) -> None:
    page.locator(f'.day-col[data-day="{day}"] a.ev', has_text=title).click()
    expect(page.locator("#event-title")).to_have_text(title)


def test_weekly_event_one_moved_one_deleted_in_views_and_through_caldav(
    open_page: Callable[..., Page],
    server: RunningServer,
    owner: Imported,
    dav_client: caldav.DAVClient,
) -> None:
    page = signed_in(open_page, server, owner)
    page.get_by_role("link", name="Agenda", exact=True).click()
    page.goto(server.http_url + "/agenda/week/2026-03-23")
    expect(page.locator("#period-title")).to_have_text("23 mars – 29 mars 2026")

    page.get_by_role("link", name="Nouvel évènement").click()
    page.get_by_label("Titre").fill("Cours de latin")
    page.get_by_label("Lieu").fill("Salle 12")
    page.get_by_label("Date de début").fill("2026-03-23")
    page.get_by_label("Heure de début").fill("09:00")
    page.get_by_label("Date de fin").fill("2026-03-23")
    page.get_by_label("Heure de fin").fill("10:30")
    page.get_by_label("Se répète", exact=True).select_option("WEEKLY")
    page.get_by_label("Lundi").check()
    page.get_by_label("Jeudi").check()
    page.get_by_label("Se termine").select_option("count")
    page.get_by_label("Nombre de fois").fill("6")
    page.get_by_label("Rappel 1", exact=True).fill("15")
    page.get_by_role("button", name="Ajouter un rappel").click()
    expect(page.get_by_label("Rappel 2", exact=True)).to_be_focused()
    page.get_by_label("Rappel 2", exact=True).fill("1")
    page.get_by_label("Unité du rappel 2").select_option("days")
    page.get_by_role("button", name="Ajouter un rappel").click()
    page.get_by_label("Rappel 3", exact=True).fill("5")
    page.get_by_role("button", name="Retirer Rappel 1").click()  # the 15 minutes go
    expect(page.get_by_label("Rappel 2", exact=True)).to_have_value("5")
    page.get_by_label("Rappel 1", exact=True).fill("2")
    page.get_by_label("Unité du rappel 1").select_option("hours")
    page.get_by_role("button", name="Enregistrer").click()

    expect(page.get_by_role("status")).to_have_text("Évènement créé.")
    week = page.locator("#timegrid")
    expect(week.locator("a.ev", has_text="Cours de latin")).to_have_count(2)
    expect(page.locator('.day-col[data-day="2026-03-23"] li.rs-37.re-43')).to_have_count(1)

    # Move Thursday's occurrence to Friday afternoon (this occurrence only).
    open_occurrence(page, "Cours de latin", "2026-03-26")
    expect(page.locator("#event-reminders li")).to_have_text(["5 min avant", "2 h avant"])
    page.get_by_role("link", name="Modifier cette occurrence").click()
    page.get_by_label("Date de début").fill("2026-03-27")
    page.get_by_label("Heure de début").fill("14:00")
    page.get_by_label("Date de fin").fill("2026-03-27")
    page.get_by_label("Heure de fin").fill("15:30")
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.get_by_role("status")).to_have_text("Évènement enregistré.")
    expect(page.locator('.day-col[data-day="2026-03-26"] a.ev')).to_have_count(0)
    expect(page.locator('.day-col[data-day="2026-03-27"] li.rs-57.re-63')).to_have_count(1)

    # Next week: delete Monday's occurrence only.
    page.get_by_role("link", name="Suivant").click()
    expect(page).to_have_url(re.compile(r"/agenda/week/2026-03-30$"))
    open_occurrence(page, "Cours de latin", "2026-03-30")
    page.get_by_role("button", name="Supprimer cette occurrence").click()
    expect(page.get_by_role("status")).to_have_text("Évènement supprimé.")
    expect(page.locator('.day-col[data-day="2026-03-30"] a.ev')).to_have_count(0)
    expect(page.locator('.day-col[data-day="2026-04-02"] a.ev')).to_have_count(1)

    page.get_by_role("link", name="Mois").click()
    expect(page.locator("#period-title")).to_have_text("Mars 2026")
    month_days = page.locator("td.month-cell:has(a.ev)")
    expect(month_days).to_have_count(3)  # 23, 27 (moved), 2 April (the grid ends on 5 April)
    expect(page.locator('td[data-day="2026-03-26"] a.ev')).to_have_count(0)
    expect(page.locator('td[data-day="2026-03-27"] a.ev')).to_contain_text("14:00")
    page.get_by_role("link", name="Suivant").click()
    expect(page.locator('td[data-day="2026-04-06"] a.ev')).to_have_count(1)
    # COUNT counts the moved and deleted ones too (RFC 5545 §3.8.5.3): the 6th is 9 April.
    expect(page.locator('td[data-day="2026-04-09"] a.ev')).to_have_count(1)
    expect(page.locator('td[data-day="2026-04-13"] a.ev')).to_have_count(0)

    # What a phone syncs: one resource, the series with its exception and its EXDATE.
    calendar = own_calendar(dav_client, owner.login)
    (resource,) = calendar.events()
    parsed = icalendar.Calendar.from_ical(resource.data)
    events = parsed.walk("VEVENT")
    master = next(e for e in events if e.get("recurrence-id") is None)
    (override,) = [e for e in events if e.get("recurrence-id") is not None]
    assert str(master.get("location")) == "Salle 12"
    assert sorted(a.get("trigger").dt for a in master.walk("VALARM")) == [
        timedelta(hours=-2),
        timedelta(minutes=-5),
    ]
    assert {str(a.get("action")) for a in master.walk("VALARM")} == {"DISPLAY"}
    assert master.get("rrule")["BYDAY"] == ["MO", "TH"]
    assert override.get("recurrence-id").dt == datetime(2026, 3, 26, 9, 0, tzinfo=PARIS)
    assert override.get("dtstart").dt == datetime(2026, 3, 27, 14, 0, tzinfo=PARIS)
    exdate = master.get("exdate")
    assert [d.dt for d in exdate.dts] == [datetime(2026, 3, 30, 9, 0, tzinfo=PARIS)]
    expanded = calendar.search(
        start=datetime(2026, 3, 1, tzinfo=PARIS),
        end=datetime(2026, 5, 1, tzinfo=PARIS),
        event=True,
        expand=True,
    )
    starts = sorted(
        e.icalendar_component.get("dtstart").dt.astimezone(PARIS).date() for e in expanded
    )
    assert starts == [
        date(2026, 3, 23),
        date(2026, 3, 27),
        date(2026, 4, 2),
        date(2026, 4, 6),
        date(2026, 4, 9),
    ]


def test_read_only_share_shows_no_edit_controls_and_refuses_forged_edits(
    open_page: Callable[..., Page],
    server: RunningServer,
    owner: Imported,
    colleague: Imported,
    dav_client: caldav.DAVClient,
) -> None:
    server.core.sharing.grant(
        CollectionRef(owner.login, "calendar"), colleague.login, Level.READ, actor="test"
    )
    # Written by a DAV client (a phone), read in the colleague's browser.
    own_calendar(dav_client, owner.login).save_event(
        dtstart=datetime(2026, 6, 2, 10, 0, tzinfo=PARIS),
        dtend=datetime(2026, 6, 2, 11, 0, tzinfo=PARIS),
        summary="Conseil de classe",
        uid="conseil@example.org",
    )
    page = signed_in(open_page, server, colleague)
    page.goto(server.http_url + "/agenda/week/2026-06-02")
    shared = page.locator(".calendar-list li", has_text="Agenda personnel (Émilie Durand)")
    expect(shared).to_contain_text("lecture seule")
    open_occurrence(page, "Conseil de classe", "2026-06-02")
    expect(page.locator("#read-only-note")).to_be_visible()
    expect(page.locator("#event-actions")).to_have_count(0)
    expect(page.get_by_role("button", name="Supprimer")).to_have_count(0)

    token = page.locator('input[name="csrf_token"]').first.get_attribute("value")
    assert token
    segment = f"{owner.login}~calendar"
    deleted = page.request.post(
        f"{server.http_url}/agenda/event/{segment}/conseil@example.org.ics/delete",
        form={"csrf_token": token, "scope": "all"},
        max_redirects=0,
    )
    assert deleted.status == 403
    edited = page.request.post(
        f"{server.http_url}/agenda/event/{segment}/conseil@example.org.ics/edit",
        form={
            "csrf_token": token,
            "title": "Annulé",
            "start_date": "2026-06-02",
            "start_time": "10:00",
            "end_date": "2026-06-02",
            "end_time": "11:00",
        },
        max_redirects=0,
    )
    assert edited.status == 403
    created = page.request.post(
        f"{server.http_url}/agenda/new",
        form={
            "csrf_token": token,
            "calendar": segment,
            "title": "Intrus",
            "start_date": "2026-06-03",
            "start_time": "10:00",
            "end_date": "2026-06-03",
            "end_time": "11:00",
        },
        max_redirects=0,
    )
    assert created.status == 200  # refused by the form: not one of the calendars offered
    (left,) = own_calendar(dav_client, owner.login).events()
    assert "Conseil de classe" in left.data
    assert "Intrus" not in left.data
    assert len(own_calendar(dav_client, owner.login).events()) == 1


def test_an_edit_after_a_dav_client_changed_the_event_is_refused_and_loses_nothing(
    open_page: Callable[..., Page],
    server: RunningServer,
    owner: Imported,
    dav_client: caldav.DAVClient,
) -> None:
    calendar = own_calendar(dav_client, owner.login)
    calendar.save_event(
        dtstart=datetime(2026, 6, 9, 14, 0, tzinfo=PARIS),
        dtend=datetime(2026, 6, 9, 15, 0, tzinfo=PARIS),
        summary="Conseil pédagogique",
        uid="conflict@example.org",
    )
    page = signed_in(open_page, server, owner)
    page.goto(server.http_url + "/agenda/week/2026-06-09")
    open_occurrence(page, "Conseil pédagogique", "2026-06-09")
    page.get_by_role("link", name="Modifier", exact=True).click()
    etag = page.locator('input[name="etag"]').get_attribute("value")
    assert etag

    # Meanwhile a phone moves it to another room (a new ETag on the server).
    (on_phone,) = calendar.events()
    on_phone.icalendar_component["location"] = "Salle du conseil"
    on_phone.save()
    (changed,) = calendar.events()
    assert changed.get_property(caldav.elements.dav.GetEtag()) != etag

    page.get_by_label("Titre").fill("Conseil pédagogique (reporté)")
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.get_by_role("alert")).to_contain_text("modifié ailleurs")
    expect(page.get_by_role("alert")).to_contain_text("rien n’a été enregistré")
    expect(page.get_by_label("Titre")).to_have_value("Conseil pédagogique (reporté)")
    (kept,) = calendar.events()
    assert "Salle du conseil" in kept.data
    assert "(reporté)" not in kept.data

    # Opened again, the form shows the phone's change and saves over it.
    page.goto(server.http_url + "/agenda/week/2026-06-09")
    open_occurrence(page, "Conseil pédagogique", "2026-06-09")
    expect(page.locator("#event-place")).to_have_text("Salle du conseil")
    page.get_by_role("link", name="Modifier", exact=True).click()
    page.get_by_label("Titre").fill("Conseil pédagogique (reporté)")
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.get_by_role("status")).to_have_text("Évènement enregistré.")
    (saved,) = calendar.events()
    assert "Salle du conseil" in saved.data
    assert "(reporté)" in saved.data


def test_an_event_moves_to_another_writable_calendar_and_a_failed_move_is_undone(
    open_page: Callable[..., Page],
    server: RunningServer,
    owner: Imported,
    colleague: Imported,
    dav_client: caldav.DAVClient,
) -> None:
    server.core.sharing.grant(
        CollectionRef(colleague.login, "calendar"), owner.login, Level.WRITE, actor="test"
    )
    mine = own_calendar(dav_client, owner.login)
    mine.save_event(
        dtstart=datetime(2026, 6, 16, 9, 0, tzinfo=PARIS),
        dtend=datetime(2026, 6, 16, 10, 0, tzinfo=PARIS),
        summary="Sortie scolaire",
        uid="move@example.org",
    )
    with caldav.DAVClient(
        url=server.dav_url, username=colleague.login, password=PASSWORD, timeout=5
    ) as theirs_client:
        theirs = own_calendar(theirs_client, colleague.login)
        page = signed_in(open_page, server, owner)
        page.goto(server.http_url + "/agenda/week/2026-06-16")
        open_occurrence(page, "Sortie scolaire", "2026-06-16")
        page.get_by_role("link", name="Modifier", exact=True).click()
        target = "Agenda personnel (Paul Rousseau)"
        expect(page.get_by_label("Agenda")).to_have_value("calendar")

        # A phone changes it meanwhile: the delete after the copy fails, the copy goes.
        (on_phone,) = mine.events()
        on_phone.icalendar_component["location"] = "Musée"
        on_phone.save()
        page.get_by_label("Agenda").select_option(label=target)
        page.get_by_role("button", name="Enregistrer").click()
        expect(page.get_by_role("alert")).to_contain_text("modifié ailleurs")
        assert theirs.events() == []
        (kept,) = mine.events()
        assert "Musée" in kept.data

        # Opened again, it moves: in the colleague's calendar, no longer in mine.
        page.goto(server.http_url + "/agenda/week/2026-06-16")
        open_occurrence(page, "Sortie scolaire", "2026-06-16")
        page.get_by_role("link", name="Modifier", exact=True).click()
        page.get_by_label("Agenda").select_option(label=target)
        page.get_by_role("button", name="Enregistrer").click()
        expect(page.get_by_role("status")).to_have_text("Évènement enregistré.")
        chip = page.locator('.day-col[data-day="2026-06-16"] a.ev', has_text="Sortie scolaire")
        expect(chip).to_have_count(1)
        expect(chip).to_contain_text(target)
        assert mine.events() == []
        (moved,) = theirs.events()
        assert "UID:move@example.org" in moved.data
        assert "Musée" in moved.data
