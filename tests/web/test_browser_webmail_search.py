"""Webmail search in a real headless Chromium, over the real HTTP, SMTP and IMAP services.

The person types in the folder's quick search, sees the server's results in the
list layout and opens one; then fills the advanced form with a date range in
their own date format and "with attachments", and gets exactly that message.
Fields are found by their ids: their labels' French comes with the merge.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.mail.imap_support import deliver, new_user
from tests.support.servers import RunningServer, make_config, running_server
from tests.web.test_browser_webmail import sign_in
from tests.web.test_webmail_http import inbox_uids
from tests.web.test_webmail_search_http import message, with_attachment

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = make_config(tmp_path_factory.mktemp("webmail-search-browser"))
    with running_server(config, only=frozenset({"http", "smtp", "imap"})) as server:
        yield server


def result_subjects(page: Page) -> list[str]:
    return page.locator("#messages td.subject a").all_inner_texts()


def test_quick_search_then_advanced_search_by_dates_and_attachment(
    open_page: Callable[..., Page], live: RunningServer
) -> None:
    person = new_user(live)
    deliver(
        live,
        person.email,
        message(
            "Jeanne Lefèvre <jeanne@ecole.example>",
            "Kermesse de juin",
            "La kermesse aura lieu samedi.",
            "Mon, 5 Jan 2026 09:00:00 +0100",
        ),
    )
    deliver(
        live,
        person.email,
        with_attachment("Compte rendu de février", "Fri, 20 Feb 2026 09:00:00 +0100"),
    )
    deliver(
        live,
        person.email,
        with_attachment("Compte rendu d'avril", "Mon, 6 Apr 2026 09:00:00 +0200"),
    )
    deliver(
        live,
        person.email,
        message(
            "Paul <paul@mairie.example>",
            "Menu",
            "Le menu de février.",
            "Tue, 10 Feb 2026 09:00:00 +0100",
        ),
    )
    inbox_uids(live, person, 4)

    page = sign_in(open_page, live, person)
    page.goto(live.http_url + "/mail/INBOX")
    box = page.locator("#mail-search")
    box.fill("kermesse")
    box.press("Enter")
    expect(page.locator("#search-summary")).to_be_visible()
    assert result_subjects(page) == ["Kermesse de juin"]
    assert "q=kermesse" in page.url  # the search is in the URL: bookmarkable
    page.locator("#messages td.subject a", has_text="Kermesse de juin").click()
    expect(page.locator("#message-subject")).to_have_text("Kermesse de juin")

    page.goto(live.http_url + "/mail/INBOX")
    page.locator("#advanced-search").click()
    expect(page.locator("#search-form")).to_be_visible()
    # A French person writes dates as 01/02/2026; the hint shows the format.
    expect(page.locator("#search-since")).to_have_attribute("placeholder", "31/03/2026")
    page.locator("#search-folder").select_option("")
    page.locator("#search-since").fill("01/02/2026")
    page.locator("#search-before").fill("01/03/2026")
    page.locator("#search-attachment").check()
    page.locator("#search-submit").click()
    expect(page.locator("#search-summary")).to_be_visible()
    assert result_subjects(page) == ["Compte rendu de février"]
    expect(page.locator("#messages .mark-attachment")).to_have_count(1)
    # The form shows what was asked, from the URL.
    expect(page.locator("#search-since")).to_have_value("01/02/2026")
    expect(page.locator("#search-attachment")).to_be_checked()

    page.locator("#search-before").fill("30/02/2026")
    page.locator("#search-submit").click()
    expect(page.locator("#search-errors")).to_contain_text("30/02/2026")
    expect(page.locator("#messages")).to_have_count(0)
