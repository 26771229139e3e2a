"""The agenda on a phone screen and from the keyboard alone, in a real headless Chromium.

At 360×740 no page of the agenda is wider than the screen (the week grid scrolls
inside its own box, the hour column stays in view), and an event opens and is
edited there. From the keyboard alone an event is created: focus moves through
the form in order and the directory picker is reached and used without a mouse.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import caldav
import pytest
from playwright.sync_api import Page, expect

from tests.support.servers import RunningServer
from tests.web.portal_client import Imported, import_person
from tests.web.test_browser_sharing import PASSWORD, signed_in, with_password

pytestmark = pytest.mark.browser

PARIS = ZoneInfo("Europe/Paris")
PHONE = {"width": 360, "height": 740}
MAX_TABS = 40


@pytest.fixture
def owner(server: RunningServer) -> Imported:
    return with_password(server, import_person(server.core.directory))


@pytest.fixture
def calendar(server: RunningServer, owner: Imported) -> Iterator[caldav.Calendar]:
    with caldav.DAVClient(
        url=server.dav_url, username=owner.login, password=PASSWORD, timeout=5
    ) as client:
        (found,) = [
            c
            for c in client.principal().calendars()
            if str(c.url).endswith(f"/{owner.login}/calendar/")
        ]
        yield found


def overflows(page: Page) -> bool:
    """Whether the page is wider than the screen (a horizontal scroll of the whole page)."""
    return bool(page.evaluate("document.documentElement.scrollWidth > window.innerWidth"))


def test_phone_screen_week_month_and_form_fit_and_an_event_is_edited(
    open_page: Callable[..., Page],
    server: RunningServer,
    owner: Imported,
    calendar: caldav.Calendar,
) -> None:
    calendar.save_event(
        dtstart=datetime(2026, 6, 4, 10, 0, tzinfo=PARIS),
        dtend=datetime(2026, 6, 4, 11, 0, tzinfo=PARIS),
        summary="Réunion parents-professeurs du troisième trimestre",
        location="Salle polyvalente du bâtiment B",
        uid="phone@example.org",
    )
    page = signed_in(open_page, server, owner, viewport=PHONE, is_mobile=True, has_touch=True)
    assert not overflows(page)

    page.goto(server.http_url + "/agenda/week/2026-06-01")
    expect(page.locator("#period-title")).to_be_visible()
    assert not overflows(page)
    # The week scrolls inside its own box; the hours stay at its left edge.
    grid = page.locator(".grid-scroll")
    grid.evaluate("box => { box.scrollLeft = box.scrollWidth; }")
    hours = page.locator(".hours").bounding_box()
    box = grid.bounding_box()
    assert hours is not None
    assert box is not None
    assert abs(hours["x"] - box["x"]) < 2
    day = page.locator('.grid-day[id="day-2026-06-04"]').bounding_box()
    assert day is not None
    assert day["width"] >= 80

    page.goto(server.http_url + "/agenda/month/2026-06-01")
    expect(page.locator("#month-grid")).to_be_visible()
    assert not overflows(page)
    chip = page.locator('td[data-day="2026-06-04"] a.ev')
    expect(chip).to_be_visible()

    page.goto(server.http_url + "/agenda/list/2026-06-01")
    assert not overflows(page)

    page.goto(server.http_url + "/agenda/week/2026-06-01")
    page.locator('.day-col[data-day="2026-06-04"] a.ev').click()
    expect(page.locator("#event-title")).to_contain_text("Réunion parents")
    assert not overflows(page)
    page.get_by_role("link", name="Modifier", exact=True).click()
    expect(page.get_by_label("Titre")).to_be_visible()
    assert not overflows(page)
    # One column: the start date sits above the start time, not beside it.
    start_date = page.get_by_label("Date de début").bounding_box()
    start_time = page.get_by_label("Heure de début").bounding_box()
    assert start_date is not None
    assert start_time is not None
    assert start_time["y"] > start_date["y"] + start_date["height"] - 1
    page.get_by_label("Titre").fill("Réunion parents (déplacée)")
    page.get_by_label("Heure de début").fill("16:00")
    page.get_by_label("Heure de fin").fill("17:00")
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.get_by_role("status")).to_have_text("Évènement enregistré.")
    assert not overflows(page)
    (resource,) = calendar.events()
    assert "Réunion parents (déplacée)" in resource.data
    assert "DTSTART;TZID=Europe/Paris:20260604T160000" in resource.data

    page.goto(server.http_url + "/agenda/new?day=2026-06-05")
    assert not overflows(page)
    page.goto(server.http_url + "/contacts")
    assert not overflows(page)


def tab_to(page: Page, selector: str) -> None:
    """Press Tab until ``selector`` has the focus (as a keyboard user would)."""
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
    pytest.fail(f"{selector} is not reached with Tab")


def focused_id(page: Page) -> str:
    return str(page.evaluate("document.activeElement.id"))


def test_an_event_is_created_with_the_keyboard_only(
    open_page: Callable[..., Page],
    server: RunningServer,
    owner: Imported,
    calendar: caldav.Calendar,
) -> None:
    import_person(server.core.directory, "Paul", "Rousseau")
    page = signed_in(open_page, server, owner)
    page.goto(server.http_url + "/agenda")
    # Today is marked for assistive technology, not only by a colour.
    expect(page.locator('#timegrid [aria-current="date"]')).to_have_count(1)
    page.goto(server.http_url + "/agenda/week/2026-06-08")

    tab_to(page, "#new-event")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"  # the focus is visible
    page.keyboard.press("Enter")
    expect(page.get_by_label("Titre")).to_be_focused()

    # Every control of the form has a label.
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll(
              "#event-form input, #event-form select, #event-form textarea, #event-form button")]
           .filter(e => e.type !== "hidden" && !e.hidden)
           .filter(e => !(e.labels && e.labels.length) && !e.getAttribute("aria-label")
                        && !(e.tagName === "BUTTON" && e.textContent.trim()))
           .map(e => e.name || e.id)"""
    )
    assert unlabelled == []

    page.keyboard.type("Réunion d’équipe")
    page.keyboard.press("Tab")
    assert focused_id(page) == "location"
    page.keyboard.type("Salle 4")
    tab_to(page, "#reminders-0-amount")
    page.keyboard.type("10")
    tab_to(page, "#add-reminder")
    page.keyboard.press("Enter")
    assert focused_id(page) == "reminders-1-amount"
    page.keyboard.type("1")
    page.keyboard.press("Tab")
    assert focused_id(page) == "reminders-1-unit"
    page.keyboard.press("ArrowDown")  # minutes → hours

    # The directory picker: a name and Enter adds the person, without sending the form.
    tab_to(page, "#people-q")
    page.keyboard.type("Rousseau")
    page.keyboard.press("Enter")
    expect(page.locator("#people-said")).to_contain_text("paul.rousseau@example.org")
    expect(page.locator("#attendees")).to_have_value("paul.rousseau@example.org")
    assert focused_id(page) == "people-q"
    assert "/agenda/new" in page.url

    tab_to(page, "#save-event")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Évènement créé.")
    chip = page.locator('.day-col[data-day="2026-06-08"] a.ev', has_text="Réunion d’équipe")
    expect(chip).to_have_count(1)
    (resource,) = calendar.events()
    assert "SUMMARY:Réunion d’équipe" in resource.data
    assert "mailto:paul.rousseau@example.org" in resource.data
    assert "TRIGGER:-PT10M" in resource.data
    assert "TRIGGER:-PT1H" in resource.data

    # An event is opened from the grid with the keyboard too.
    tab_to(page, '.day-col[data-day="2026-06-08"] a.ev')
    page.keyboard.press("Enter")
    expect(page.locator("#event-title")).to_have_text("Réunion d’équipe")
