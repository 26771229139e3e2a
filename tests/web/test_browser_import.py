"""Import and export in a real headless Chromium: 1,000 events with progress and report, and vCards.

Each event becomes its own resource through the DAV front; one already in the
calendar is skipped and said so; the export is the whole calendar as one file.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import icalendar
import pytest
from playwright.sync_api import Page, expect

from tests.support.servers import RunningServer
from tests.web.portal_client import Imported, import_person
from tests.web.test_browser_sharing import signed_in, with_password

pytestmark = pytest.mark.browser

EVENTS_COUNT = 1000
#: Generous for two loaded shared cores: about 25 s here (130 s before imports carried
#: their VTIMEZONE, see import_data._zone).
IMPORT_SECONDS = 120


def events_file(path: Path) -> Path:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//tests//import//EN"]
    for n in range(EVENTS_COUNT):
        day = 1 + n % 28
        lines += [
            "BEGIN:VEVENT",
            f"UID:import-{n}@tests.example.org",
            "DTSTAMP:20260101T000000Z",
            f"DTSTART;TZID=Europe/Paris:202605{day:02d}T{8 + n % 10:02d}0000",
            f"DTEND;TZID=Europe/Paris:202605{day:02d}T{9 + n % 10:02d}0000",
            f"SUMMARY:Imported {n}",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    return path


@pytest.fixture
def owner(server: RunningServer) -> Imported:
    return with_password(server, import_person(server.core.directory))


@pytest.mark.timeout(IMPORT_SECONDS + 60)
def test_import_a_thousand_events_with_progress_and_report_then_export(
    open_page: Callable[..., Page], server: RunningServer, owner: Imported, tmp_path: Path
) -> None:
    page = signed_in(open_page, server, owner)
    page.goto(server.http_url + "/agenda/collections")
    page.get_by_label("Dans").select_option("calendar")
    page.get_by_label("Fichier").set_input_files(events_file(tmp_path / "conseils.ics"))
    started = time.monotonic()
    page.get_by_role("button", name="Importer").click()

    expect(page.locator("progress#import-progress")).to_be_visible()
    expect(page.locator("#import-report")).to_have_text(
        "Import terminé", timeout=IMPORT_SECONDS * 1000
    )
    elapsed = time.monotonic() - started
    print(f"import of {EVENTS_COUNT} events: {elapsed:.1f} s")  # noqa: T201 - the measure
    expect(page.locator("#imported-count")).to_have_text(str(EVENTS_COUNT))
    expect(page.locator("#skipped-count")).to_have_text("0")

    page.goto(server.http_url + "/agenda/week/2026-05-04")
    expect(page.locator('.day-col[data-day="2026-05-04"] a.ev')).to_have_count(36)

    # An item already there is skipped, not overwritten, and the report says why.
    again = tmp_path / "again.ics"
    again.write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//\r\n"
        "BEGIN:VEVENT\r\nUID:import-0@tests.example.org\r\nDTSTAMP:20260101T000000Z\r\n"
        "DTSTART:20260601T080000Z\r\nSUMMARY:Overwrite?\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:new@tests.example.org\r\nDTSTAMP:20260101T000000Z\r\n"
        "DTSTART:20260601T080000Z\r\nSUMMARY:New\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        encoding="utf-8",
    )
    page.goto(server.http_url + "/agenda/collections")
    page.get_by_label("Fichier").set_input_files(again)
    page.get_by_role("button", name="Importer").click()
    expect(page.locator("#import-report")).to_have_text("Import terminé")
    expect(page.locator("#imported-count")).to_have_text("1")
    expect(page.locator("#skipped tr", has_text="import-0@tests.example.org")).to_contain_text(
        "déjà présent"
    )

    with page.expect_download() as download:
        page.goto(server.http_url + "/agenda/collections")
        page.get_by_role("link", name="Télécharger Agenda personnel").click()
    exported = Path(download.value.path()).read_bytes()
    events = icalendar.Calendar.from_ical(exported).walk("VEVENT")
    assert len(events) == EVENTS_COUNT + 1
    assert {str(e.get("uid")) for e in events} == {
        f"import-{n}@tests.example.org" for n in range(EVENTS_COUNT)
    } | {"new@tests.example.org"}
    assert "Overwrite?" not in exported.decode()


CARDS = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:card-3@tests.example.org\r\nFN:Lucie Bernard\r\n"
    "N:Bernard;Lucie;;;\r\nEMAIL;TYPE=INTERNET:lucie.bernard@mairie.example\r\nEND:VCARD\r\n"
    "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:urn:uuid:card-4\r\nFN:Marc Petit\r\nN:Petit;Marc;;;\r\n"
    "TEL;VALUE=uri;TYPE=cell:tel:+33-6-00-00-00-01\r\nEND:VCARD\r\n"
)


def test_import_a_vcf_into_the_address_book_then_export_it(
    open_page: Callable[..., Page], server: RunningServer, owner: Imported, tmp_path: Path
) -> None:
    cards = tmp_path / "carnet.vcf"
    cards.write_text(CARDS, encoding="utf-8")
    page = signed_in(open_page, server, owner)
    page.goto(server.http_url + "/agenda/collections")
    page.get_by_label("Dans").select_option("contacts")
    page.get_by_label("Fichier").set_input_files(cards)
    page.get_by_role("button", name="Importer").click()
    expect(page.locator("#import-report")).to_have_text("Import terminé")
    expect(page.locator("#imported-count")).to_have_text("2")

    page.goto(server.http_url + "/contacts")
    rows = page.locator("#contacts tr.contact")
    expect(rows).to_have_count(2)
    expect(page.locator("#contacts")).to_contain_text("lucie.bernard@mairie.example")
    expect(page.locator("#contacts")).to_contain_text("+33-6-00-00-00-01")

    with page.expect_download() as download:
        page.goto(server.http_url + "/agenda/collections")
        page.locator('#exports a[href*="/collections/contacts/export"]').click()
    exported = Path(download.value.path()).read_text(encoding="utf-8")
    assert exported.count("BEGIN:VCARD") == 2
    assert "card-3@tests.example.org" in exported
    assert "urn:uuid:card-4" in exported
