"""Webmail settings and labels in a real headless Chromium, over real HTTP, SMTP and IMAP.

The person creates a label with a colour, applies it to a message from the list
and sees its chip (and another IMAP client sees the keyword), changes the number
of messages per page, opens a message in the reading pane beside the list, and
switches the portal to English from the settings page.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Page, expect

from groupware.core.directory import Person
from tests.mail.imap_support import deliver, logged_in, new_user, simple_message
from tests.support.servers import RunningServer, make_config, running_server
from tests.web.test_browser_webmail import sign_in
from tests.web.test_webmail_http import inbox_uids, rich_message

pytestmark = pytest.mark.browser

DEFAULT_PER_PAGE = 3  # the configured page, smaller than any choice
MESSAGES_COUNT = 4


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = make_config(
        tmp_path_factory.mktemp("webmail-settings-browser"),
        webmail={"messages_per_page_count": DEFAULT_PER_PAGE},
    )
    with running_server(config, only=frozenset({"http", "smtp", "imap"})) as server:
        yield server


def open_settings(page: Page) -> None:
    page.locator("#mail-settings-link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Réglages de la messagerie")


def mailbox(open_page: Callable[..., Page], live: RunningServer) -> tuple[Page, Person, list[int]]:
    """A new person with MESSAGES_COUNT messages, signed in, on their inbox."""
    person = new_user(live)
    deliver(live, person.email, simple_message("Conseil de classe", "Rendez-vous à 17 h.\r\n"))
    deliver(live, person.email, rich_message("Compte rendu"))
    for number in range(MESSAGES_COUNT - 2):
        deliver(live, person.email, simple_message(f"Lot {number:02}"))
    uids = inbox_uids(live, person, MESSAGES_COUNT)
    page = sign_in(open_page, live, person)
    page.get_by_role("link", name="Messagerie", exact=True).click()
    expect(page.locator("#messages tr.message")).to_have_count(DEFAULT_PER_PAGE)
    expect(page.locator("#page-of")).to_have_text("Page 1 sur 2")
    return page, person, uids


def test_a_label_made_with_a_colour_is_applied_and_shown_as_a_chip(
    open_page: Callable[..., Page], live: RunningServer
) -> None:
    page, person, uids = mailbox(open_page, live)
    open_settings(page)

    # A label with a colour.
    new_label = page.locator("#new-label")
    new_label.get_by_label("Nom", exact=True).fill("Réunion")
    new_label.get_by_text("Rouge", exact=True).click()
    new_label.get_by_role("button", name="Créer l’étiquette").click()
    expect(page.locator(".flash-success")).to_contain_text("Étiquette « Réunion » créée.")
    expect(page.locator("#label-list .label-chip")).to_have_text(["Réunion"])

    # Applied to a message from the list: its chip shows, in red.
    page.locator("#back-to-mail").click()
    page.get_by_role("link", name="Taille").click()  # the longest message, on this page
    row = page.locator("#messages tr.message", has_text="Conseil de classe")
    row.locator('input[name="uid"]').check()
    page.locator("#label-pick").select_option(label="Réunion")
    page.locator("#apply-label").click()
    expect(page.locator(".flash-success")).to_contain_text("appliquée : 1")
    chip = page.locator("#messages tr.message", has_text="Conseil de classe").locator(".label-chip")
    expect(chip).to_have_text("Réunion")
    expect(chip).to_have_class(re.compile(r"\blabel-red\b"))
    assert chip.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(185, 28, 28)"
    with logged_in(live, person) as client:
        client.select_folder("INBOX", readonly=True)
        assert client.search(["KEYWORD", "reunion"]) == [uids[0]]


def test_page_size_reading_pane_and_language_are_changed_in_the_browser(
    open_page: Callable[..., Page], live: RunningServer
) -> None:
    page, person, _uids = mailbox(open_page, live)
    # 25 messages per page, and messages open beside the list.
    open_settings(page)
    page.get_by_label("Messages par page").select_option("25")
    page.get_by_label("Message à côté de la liste").check()
    page.get_by_role("button", name="Enregistrer l’affichage").click()
    expect(page.locator(".flash-success")).to_contain_text("Réglages d’affichage enregistrés.")
    page.locator("#back-to-mail").click()
    expect(page.locator("#messages tr.message")).to_have_count(MESSAGES_COUNT)
    expect(page.locator("#page-of")).to_have_count(0)
    page.get_by_role("link", name="Conseil de classe").click()
    pane = page.locator("#reading-pane")
    expect(pane.locator("#message-subject")).to_have_text("Conseil de classe")
    expect(pane.locator("#message-text")).to_contain_text("Rendez-vous à 17 h.")
    assert page.url.endswith("/mail/INBOX")  # still the list's page
    # An HTML message: its sanitized body in its sandboxed frame, inside the pane.
    page.get_by_role("link", name="Compte rendu").click()
    expect(pane.locator("#message-subject")).to_have_text("Compte rendu")
    expect(page.frame_locator("#reading-pane #message-body").locator("b")).to_have_text(
        "compte rendu"
    )
    box = page.locator(".mail-list").bounding_box()
    beside = pane.bounding_box()
    assert box is not None
    assert beside is not None
    assert beside["x"] >= box["x"] + box["width"]

    # The language, from the settings page.
    open_settings(page)
    page.locator("#language-language").select_option("en")
    page.get_by_role("button", name="Enregistrer la langue").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Mail settings")
    expect(page.locator(".flash-success")).to_have_text("Language saved.")
    assert live.core.directory.get(person.login).language == "en"
