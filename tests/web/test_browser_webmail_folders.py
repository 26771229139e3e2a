"""Folders, conversations, keyboard shortcuts and the phone layout in a real headless Chromium.

Over the real HTTP, SMTP and IMAP services: a folder is created, a message moved
into it and the folder renamed; the list is grouped by conversation and a thread
unfolds; the list and the message page are driven from the keyboard (and the keys
do nothing while typing in a field); Trash is emptied; at 360×740 the folder tree
is a menu, rows are two-line cards and no page is wider than the screen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Page, expect

from groupware.core.directory import Person
from tests.mail.imap_support import deliver, logged_in, new_user
from tests.support.servers import RunningServer, make_config, running_server
from tests.web.test_browser_webmail import sign_in
from tests.web.test_webmail_http import inbox_uids

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 740}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = make_config(tmp_path_factory.mktemp("webmail-folders-browser"))
    with running_server(config, only=frozenset({"http", "smtp", "imap"})) as server:
        yield server


def message(subject: str, message_id: str, references: str = "", hour: int = 9) -> bytes:
    head = (
        "From: Alice Martin <alice@example.org>\r\n"
        f"Subject: {subject}\r\n"
        f"Date: Mon, 7 Feb 2022 {hour:02d}:30:00 +0100\r\n"
        f"Message-ID: <{message_id}>\r\n"
    )
    if references:
        head += f"References: <{references}>\r\nIn-Reply-To: <{references}>\r\n"
    return (head + "Content-Type: text/plain; charset=utf-8\r\n\r\nBonjour.\r\n").encode()


@pytest.fixture
def person(live: RunningServer) -> Person:
    found = new_user(live)
    deliver(live, found.email, message("Cantine", "a@school.example", hour=9))
    deliver(live, found.email, message("Bus du jeudi", "b@school.example", hour=10))
    deliver(live, found.email, message("Re: Cantine", "c@school.example", "a@school.example", 11))
    inbox_uids(live, found, 3)
    return found


def overflows(page: Page) -> bool:
    """Whether the page is wider than the screen (a horizontal scroll of the whole page)."""
    return bool(page.evaluate("document.documentElement.scrollWidth > window.innerWidth"))


def row(page: Page, subject: str) -> object:
    return page.locator("#messages tr.message", has_text=subject)


def test_create_move_into_and_rename_a_folder_then_read_by_conversation(
    open_page: Callable[..., Page], live: RunningServer, person: Person
) -> None:
    page = sign_in(open_page, live, person)
    page.goto(live.http_url + "/mail/INBOX")
    page.locator("#manage-folders").click()
    page.locator("#new-folder-name").fill("Projets")
    page.locator("#create-folder button[type=submit]").click()
    expect(page.locator("p.flash-success")).to_be_visible()
    expect(page.locator('#folders a:has-text("Projets")')).to_have_count(1)

    page.locator("#folders a", has_text="Boîte de réception").click()
    row(page, "Bus du jeudi").locator('input[type="checkbox"]').check()
    page.locator("#target").select_option(label="Projets")
    page.locator('button[name="action"][value="move"]').click()
    expect(row(page, "Bus du jeudi")).to_have_count(0)

    page.locator("#manage-folders").click()
    folder = page.locator('tr[data-folder="Projets"]')
    folder.locator('.rename-form input[name="name"]').fill("Projets 2026")
    folder.locator(".rename-form button").click()
    expect(page.locator('tr[data-folder="Projets 2026"]')).to_have_count(1)
    with logged_in(live, person) as client:
        assert client.select_folder("Projets 2026")[b"EXISTS"] == 1

    page.locator("#folders a", has_text="Boîte de réception").click()
    page.locator("#threads-toggle").click()
    assert "threads=1" in page.url
    thread = page.locator("#messages tr.thread")
    expect(thread).to_have_count(1)
    expect(thread.locator(".thread-count")).to_have_attribute("data-count", "2")
    members = page.locator('#messages tr[data-member-of="1"]')
    expect(members).to_have_count(2)
    expect(members.first).to_be_hidden()
    thread.locator("[data-thread-toggle]").click()
    expect(members.first).to_be_visible()
    expect(members.nth(1)).to_contain_text("Re: Cantine")
    thread.locator("[data-thread-toggle]").click()
    expect(members.first).to_be_hidden()


def test_keyboard_shortcuts_on_the_list_and_the_message(
    open_page: Callable[..., Page], live: RunningServer, person: Person
) -> None:
    page = sign_in(open_page, live, person)
    page.goto(live.http_url + "/mail/INBOX")
    rows = page.locator("#messages tr.message")
    expect(rows).to_have_count(3)
    page.keyboard.press("j")
    expect(rows.nth(0)).to_have_attribute("aria-current", "true")
    page.keyboard.press("j")
    page.keyboard.press("ArrowDown")
    expect(rows.nth(2)).to_have_attribute("aria-current", "true")
    page.keyboard.press("k")
    expect(rows.nth(1)).to_have_attribute("aria-current", "true")
    page.keyboard.press("x")
    expect(rows.nth(1).locator('input[type="checkbox"]')).to_be_checked()
    page.keyboard.press("x")
    expect(rows.nth(1).locator('input[type="checkbox"]')).not_to_be_checked()
    # A clicked checkbox keeps the focus; it takes no text, so the keys still work.
    rows.nth(2).locator('input[type="checkbox"]').click()
    page.keyboard.press("k")
    expect(rows.nth(0)).to_have_attribute("aria-current", "true")
    rows.nth(2).locator('input[type="checkbox"]').click()
    page.keyboard.press("j")

    page.keyboard.press("?")
    expect(page.locator("#mail-keys-help")).to_be_visible()
    expect(page.locator("#mail-keys-help kbd").first).to_have_text("j")
    page.keyboard.press("Escape")
    expect(page.locator("#mail-keys-help")).to_be_hidden()

    subject = rows.nth(1).locator("td.subject a").inner_text()
    page.keyboard.press("Enter")
    expect(page.locator("#message-subject")).to_have_text(subject)
    page.keyboard.press("r")
    page.wait_for_url("**/mail/compose?*mode=reply*")
    page.go_back()
    page.keyboard.press("u")
    page.wait_for_url("**/mail/INBOX")
    page.keyboard.press("c")
    page.wait_for_url("**/mail/compose")
    page.go_back()

    # "#" deletes the current message (to Trash).
    page.keyboard.press("j")
    first = rows.nth(0).locator("td.subject a").inner_text()
    page.keyboard.press("#")
    expect(page.locator("p.flash-success")).to_be_visible()
    expect(rows).to_have_count(2)
    with logged_in(live, person) as client:
        assert client.select_folder("Corbeille")[b"EXISTS"] == 1

    # While typing, the letters are text, not shortcuts.
    page.goto(live.http_url + "/mail/folders")
    page.locator("#new-folder-name").click()
    page.keyboard.type("cjk?#u")
    expect(page.locator("#new-folder-name")).to_have_value("cjk?#u")
    expect(page.locator("#mail-keys-help")).to_be_hidden()
    assert page.url.endswith("/mail/folders")

    # Empty Trash: asked first, then everything there is gone for good.
    page.locator("#folders a", has_text="Corbeille").click()
    expect(row(page, first)).to_have_count(1)
    page.locator("#empty-folder").click()
    expect(page.locator("#confirm-empty")).to_be_visible()
    page.locator("#confirm-empty-button").click()
    expect(page.locator("#messages tr.message")).to_have_count(0)
    with logged_in(live, person) as client:
        assert client.select_folder("Corbeille")[b"EXISTS"] == 0


def test_phone_screen_folder_menu_cards_and_no_overflow(
    open_page: Callable[..., Page], live: RunningServer, person: Person
) -> None:
    with logged_in(live, person) as client:
        client.create_folder("Un dossier au nom vraiment très long pour un petit écran")
    page = sign_in(open_page, live, person)
    phone = page.context.browser.new_context(  # type: ignore[union-attr]
        locale="fr-FR", viewport=PHONE, is_mobile=True, has_touch=True
    )
    try:
        phone.add_cookies(page.context.cookies())
        small = phone.new_page()
        small.goto(live.http_url + "/mail/INBOX")
        assert not overflows(small)
        expect(small.locator(".mail-tree")).to_be_hidden()
        expect(small.locator("#folder-select")).to_be_visible()
        card = small.locator("#messages tr.message").first
        sender = card.locator("td.from").bounding_box()
        subject = card.locator("td.subject").bounding_box()
        assert sender is not None
        assert subject is not None
        assert subject["y"] >= sender["y"] + sender["height"] - 1  # a second line
        assert card.bounding_box()["width"] <= PHONE["width"]  # type: ignore[index]

        for path in ("/mail/INBOX?threads=1", "/mail/folders", "/mail/folders?delete=Un%20dossier"):
            small.goto(live.http_url + path)
            assert not overflows(small), path

        small.goto(live.http_url + "/mail/INBOX")
        small.locator("#folder-select").select_option(label="Corbeille")
        small.wait_for_url("**/mail/Corbeille")
        expect(small.locator("#folder-title")).to_contain_text("Corbeille")
    finally:
        phone.close()
