"""The portal in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

First sign-in with the NUMEN, the forced password change, the home page's DAV
addresses, sign-out, in French and in English; the language menu; the keyboard;
a phone-sized screen. No sleeps: Playwright's ``expect`` waits for each state.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from playwright.sync_api import Page, expect

from tests.support.servers import RunningServer
from tests.web.portal_client import Imported, import_person

pytestmark = pytest.mark.browser

GOOD_PASSWORD = "Vague-Orange-Clavier-57"  # noqa: S105 - a test password


@dataclass(frozen=True)
class Texts:
    """What the journey reads on the screen, in one language."""

    locale: str
    sign_in_title: str
    identifier: str
    password: str
    sign_in: str
    change_title: str
    current: str
    new: str
    confirm: str
    save: str
    too_short: str
    contains_name: str
    changed: str
    welcome: str
    calendar: str
    contacts: str
    sign_out: str
    signed_out: str
    wrong: str


FRENCH = Texts(
    locale="fr-FR",
    sign_in_title="Connexion à votre compte professionnel",
    identifier="Identifiant",
    password="Mot de passe",
    sign_in="Se connecter",
    change_title="Changer votre mot de passe",
    current="Mot de passe actuel",
    new="Nouveau mot de passe",
    confirm="Confirmation du nouveau mot de passe",
    save="Enregistrer le nouveau mot de passe",
    too_short="Le mot de passe doit comporter au moins 12 caractères.",
    contains_name="Le mot de passe ne doit contenir ni votre prénom ni votre nom.",
    changed="Votre mot de passe a été modifié.",
    welcome="Bienvenue, Émilie",
    calendar="Agenda personnel",
    contacts="Contacts personnels",
    sign_out="Se déconnecter",
    signed_out="Déconnexion réussie.",
    wrong="Identifiant ou mot de passe incorrect.",
)
ENGLISH = Texts(
    locale="en-US",
    sign_in_title="Sign in to your professional account",
    identifier="Identifier",
    password="Password",
    sign_in="Sign in",
    change_title="Change your password",
    current="Current password",
    new="New password",
    confirm="New password, again",
    save="Save the new password",
    too_short="The password must have at least 12 characters.",
    contains_name="The password must not contain your first or last name.",
    changed="Your password has been changed.",
    welcome="Welcome, Émilie",
    calendar="Personal calendar",
    contacts="Personal contacts",
    sign_out="Sign out",
    signed_out="You are signed out.",
    wrong="Wrong identifier or password.",
)


@pytest.fixture
def french(open_page: Callable[..., Page]) -> Page:
    return open_page(FRENCH.locale)


@pytest.fixture
def imported(server: RunningServer) -> Imported:
    return import_person(server.core.directory)


def sign_in(page: Page, texts: Texts, identifier: str, secret: str) -> None:
    page.get_by_label(texts.identifier, exact=True).fill(identifier)
    page.get_by_label(texts.password, exact=True).fill(secret)
    page.get_by_role("button", name=texts.sign_in, exact=True).click()


def change_password(page: Page, texts: Texts, current: str, new: str) -> None:
    page.get_by_label(texts.current, exact=True).fill(current)
    page.get_by_label(texts.new, exact=True).fill(new)
    page.get_by_label(texts.confirm, exact=True).fill(new)
    page.get_by_role("button", name=texts.save).click()


def expect_collections(page: Page, server: RunningServer, login: str, texts: Texts) -> None:
    calendar = page.locator("tr.calendar")
    expect(calendar).to_contain_text(texts.calendar)
    expect(calendar.locator("code")).to_have_text(f"{server.http_url}/dav/{login}/calendar/")
    contacts = page.locator("tr.addressbook")
    expect(contacts).to_contain_text(texts.contacts)
    expect(contacts.locator("code")).to_have_text(f"{server.http_url}/dav/{login}/contacts/")


@pytest.mark.parametrize("texts", [FRENCH, ENGLISH], ids=["fr", "en"])
def test_first_sign_in_journey(
    open_page: Callable[..., Page], server: RunningServer, imported: Imported, texts: Texts
) -> None:
    page = open_page(texts.locale)
    base = server.http_url

    page.goto(base + "/")
    expect(page).to_have_url(re.compile(r"/login\?next=%2F$"))
    expect(page.locator("html")).to_have_attribute("lang", texts.locale[:2])
    expect(page.get_by_role("heading", level=1)).to_have_text(texts.sign_in_title)

    sign_in(page, texts, imported.login, imported.numen)
    expect(page).to_have_url(base + "/password")
    expect(page.get_by_role("heading", level=1)).to_have_text(texts.change_title)
    page.goto(base + "/")  # no way around the change
    expect(page).to_have_url(base + "/password")

    change_password(page, texts, imported.numen, "Court-1")
    expect(page.locator("#new-help .error")).to_have_text(texts.too_short)
    expect(page.get_by_label(texts.new, exact=True)).to_be_focused()
    change_password(page, texts, imported.numen, "Durand-Soleil-2024")
    expect(page.locator("#new-help .error")).to_have_text(texts.contains_name)
    expect(page.get_by_label(texts.new, exact=True)).to_have_attribute("aria-invalid", "true")

    change_password(page, texts, imported.numen, GOOD_PASSWORD)
    expect(page).to_have_url(base + "/")
    expect(page.get_by_role("status")).to_have_text(texts.changed)
    expect(page.get_by_role("heading", level=1)).to_have_text(texts.welcome)
    expect(page.locator("#email")).to_have_text(f"{imported.login}@example.org")
    expect_collections(page, server, imported.login, texts)
    # The portal's language at first sign-in became the account's language (DAV names).
    assert server.core.directory.get(imported.login).language == texts.locale[:2]

    page.get_by_role("button", name=texts.sign_out).click()
    expect(page).to_have_url(base + "/login")
    expect(page.get_by_role("status")).to_have_text(texts.signed_out)

    sign_in(page, texts, imported.login, GOOD_PASSWORD)
    expect(page).to_have_url(base + "/")
    expect(page.get_by_role("heading", level=1)).to_have_text(texts.welcome)
    page.get_by_role("button", name=texts.sign_out).click()
    expect(page).to_have_url(base + "/login")

    sign_in(page, texts, imported.login, imported.numen)  # the NUMEN is spent
    expect(page.get_by_role("alert")).to_have_text(texts.wrong)
    expect(page).to_have_url(base + "/login")


def test_language_menu_switches_to_english_and_it_stays_after_sign_in(
    french: Page, server: RunningServer, imported: Imported
) -> None:
    french.goto(server.http_url + "/login")
    expect(french.get_by_role("heading", level=1)).to_have_text(FRENCH.sign_in_title)
    french.get_by_label("Langue").select_option("en")  # submits itself (mouse or touch)
    expect(french.get_by_role("heading", level=1)).to_have_text(ENGLISH.sign_in_title)
    expect(french.locator("html")).to_have_attribute("lang", "en")

    sign_in(french, ENGLISH, imported.login, imported.numen)
    expect(french.get_by_role("heading", level=1)).to_have_text(ENGLISH.change_title)
    change_password(french, ENGLISH, imported.numen, GOOD_PASSWORD)
    expect(french.get_by_role("heading", level=1)).to_have_text(ENGLISH.welcome)
    expect_collections(french, server, imported.login, ENGLISH)
    expect(french.get_by_label("Language")).to_have_value("en")


def test_language_menu_from_the_keyboard_waits_for_the_button(
    french: Page, server: RunningServer
) -> None:
    posted: list[str] = []
    french.on("request", lambda r: posted.append(r.url) if r.method == "POST" else None)
    french.goto(server.http_url + "/login")
    menu = french.get_by_label("Langue")
    menu.focus()
    french.keyboard.press("ArrowDown")  # the value changes under the arrow key...
    expect(menu).to_have_value("en")
    french.keyboard.press("Tab")  # ...but nothing is sent until the button is pressed
    button = french.get_by_role("button", name="Changer de langue")
    expect(button).to_be_focused()
    assert button.bounding_box()["width"] > 10  # type: ignore[index]  # visible when focused
    assert posted == []
    expect(french.get_by_role("heading", level=1)).to_have_text(FRENCH.sign_in_title)
    french.keyboard.press("Enter")
    expect(french.get_by_role("heading", level=1)).to_have_text(ENGLISH.sign_in_title)
    assert posted == [server.http_url + "/language"]


def test_sign_in_form_works_from_the_keyboard(
    french: Page, server: RunningServer, imported: Imported
) -> None:
    french.goto(server.http_url + "/login")
    identifier = french.get_by_label("Identifiant", exact=True)
    expect(identifier).to_be_focused()  # autofocus: typing can start at once
    outline = identifier.evaluate("e => getComputedStyle(e).outlineStyle")
    assert outline != "none"  # a visible focus ring
    french.keyboard.type(imported.login)
    french.keyboard.press("Tab")
    expect(french.get_by_label("Mot de passe", exact=True)).to_be_focused()
    french.keyboard.type(imported.numen)
    french.keyboard.press("Enter")
    expect(french).to_have_url(server.http_url + "/password")
    expect(french.get_by_label("Mot de passe actuel")).to_be_focused()


def test_skip_link_is_the_first_stop_and_shows_up(french: Page, server: RunningServer) -> None:
    french.goto(server.http_url + "/no-such-page")  # no autofocus on this page
    french.keyboard.press("Tab")
    skip = french.get_by_role("link", name="Aller au contenu")
    expect(skip).to_be_focused()
    assert skip.bounding_box()["x"] >= 0  # type: ignore[index]  # on screen, not off-left


def test_pages_fit_a_phone_screen(
    open_page: Callable[..., Page], server: RunningServer, imported: Imported
) -> None:
    page = open_page(FRENCH.locale, viewport={"width": 360, "height": 740}, is_mobile=True)
    page.goto(server.http_url + "/login")
    overflow = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    assert page.evaluate(overflow) <= 0
    sign_in(page, FRENCH, imported.login, imported.numen)
    expect(page).to_have_url(server.http_url + "/password")
    assert page.evaluate(overflow) <= 0
    change_password(page, FRENCH, imported.numen, GOOD_PASSWORD)
    expect_collections(page, server, imported.login, FRENCH)
    assert page.evaluate(overflow) <= 0
