"""Web sessions in Chromium: the list of signed-in browsers, signing others out, rotation,
the idle timeout.

Each browser context is one browser: two contexts signed in as the same person are
two sessions, each with its own cookie.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pyotp
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from groupware.core.directory import Person
from tests.support.servers import RunningServer, add_user, make_config, running_server

pytestmark = pytest.mark.browser

PASSWORD = "Vague-Orange-Clavier-57"  # noqa: S105 - a test password
FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
COOKIE = "groupware_session"
IDLE_SECONDS = 2


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = make_config(tmp_path_factory.mktemp("sessions"))
    with running_server(config, only=frozenset({"http"})) as server:
        yield server


@pytest.fixture
def person(live: RunningServer, request: pytest.FixtureRequest) -> Person:
    # One person per test: sessions of one test do not show in another's list.
    suffix = "".join(ch for ch in request.node.name if ch.isalpha())[-12:]
    return add_user(live.core, "Séverine", f"Session{suffix}", password=PASSWORD)


def sign_in(page: Page, base_url: str, person: Person) -> None:
    page.goto(base_url + "/login")
    page.get_by_label("Identifiant", exact=True).fill(person.login)
    page.get_by_label("Mot de passe", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Se connecter", exact=True).click()


def cookie_of(context: BrowserContext) -> str:
    return next(c["value"] for c in context.cookies() if c["name"] == COOKIE)


def test_two_browsers_are_listed_and_one_signs_the_other_out(
    open_page: Callable[..., Page], live: RunningServer, person: Person
) -> None:
    laptop = open_page("fr-FR", user_agent=FIREFOX_WINDOWS)
    sign_in(laptop, live.http_url, person)
    expect(laptop.get_by_role("heading", level=1)).to_contain_text("Bienvenue")
    here = open_page("fr-FR")
    sign_in(here, live.http_url, person)

    here.get_by_role("link", name="Navigateurs connectés").click()

    rows = here.locator("#sessions tbody tr")
    expect(rows).to_have_count(2)
    expect(here.locator("tr.current .device")).to_have_text("Chrome sous Linux")
    expect(here.locator("tr.current #this-session")).to_have_text("Ce navigateur")
    expect(here.locator("tr:not(.current) .device")).to_have_text("Firefox sous Windows")
    expect(here.locator("tr:not(.current) td").nth(1)).to_have_text("127.0.0.1")
    expect(here.locator("tr.current").get_by_role("button")).to_have_count(0)

    here.get_by_role("button", name="Déconnecter tous les autres navigateurs").click()

    expect(here.get_by_role("status")).to_have_text("Toutes les autres sessions sont déconnectées.")
    expect(rows).to_have_count(1)
    laptop.goto(live.http_url + "/sharing")
    expect(laptop).to_have_url(live.http_url + "/login?next=%2Fsharing")
    expect(laptop.get_by_role("alert")).to_have_text(
        "Votre session a pris fin. Connectez-vous de nouveau."
    )
    records = live.core.audit.recent(subject=person.login, event_prefix="auth.")
    assert [(r.event, r.actor) for r in records] == [("auth.sessions_revoked", person.login)]


def test_one_session_can_be_signed_out_by_its_own_button(
    open_page: Callable[..., Page], live: RunningServer, person: Person
) -> None:
    laptop = open_page("fr-FR", user_agent=FIREFOX_WINDOWS)
    sign_in(laptop, live.http_url, person)
    here = open_page("fr-FR")
    sign_in(here, live.http_url, person)
    here.goto(live.http_url + "/account/sessions")

    here.get_by_role("button", name="Déconnecter Firefox sous Windows").click()

    expect(here.get_by_role("status")).to_have_text("Cette session est déconnectée.")
    laptop.goto(live.http_url + "/")
    expect(laptop).to_have_url(live.http_url + "/login?next=%2F")
    events = [r.event for r in live.core.audit.recent(subject=person.login, event_prefix="auth.")]
    assert events == ["auth.session_revoked"]


def test_the_session_cookie_changes_at_sign_in_and_the_old_one_opens_nothing(
    open_page: Callable[..., Page], live: RunningServer, person: Person
) -> None:
    page = open_page("fr-FR")
    page.goto(live.http_url + "/login")
    before = cookie_of(page.context)
    sign_in(page, live.http_url, person)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Bienvenue")
    signed_in = cookie_of(page.context)
    assert signed_in != before

    # Two-factor authentication turned on: the session's power changed, a new id.
    factor = live.core.second_factor
    page.goto(live.http_url + "/account/security")
    page.get_by_role("button", name="Configurer la double authentification").click()
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    page.get_by_label("Code affiché par l’application").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="L’activer").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Codes de secours")
    assert factor.is_enabled(person)
    after_enabling = cookie_of(page.context)
    assert after_enabling != signed_in
    copy = open_page("fr-FR")
    copy.context.add_cookies([{"name": COOKIE, "value": signed_in, "url": live.http_url}])
    copy.goto(live.http_url + "/")
    expect(copy).to_have_url(live.http_url + "/login?next=%2F")

    # Sign in again: the password step and the code step each give a new cookie.
    page.get_by_role("button", name="Se déconnecter").click()
    sign_in(page, live.http_url, person)
    expect(page.get_by_role("heading", level=1)).to_have_text("Double authentification")
    pending = cookie_of(page.context)
    page.get_by_label("Code", exact=True).fill(pyotp.TOTP(secret).at(time.time() + 30))
    page.get_by_role("button", name="Continuer").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Bienvenue")
    assert cookie_of(page.context) not in (pending, after_enabling)
    assert len(live.core.web_sessions.list(person)) == 1


def test_an_idle_session_ends_with_a_message(
    open_page: Callable[..., Page], tmp_path_factory: pytest.TempPathFactory
) -> None:
    config = make_config(
        tmp_path_factory.mktemp("idle"), http={"session_idle_seconds": IDLE_SECONDS}
    )
    with running_server(config, only=frozenset({"http"})) as server:
        person = add_user(server.core, "Ivan", "Inactif", password=PASSWORD)
        page = open_page("fr-FR")
        sign_in(page, server.http_url, person)
        expect(page.get_by_role("heading", level=1)).to_contain_text("Bienvenue")
        time.sleep(IDLE_SECONDS + 1)  # the time that must pass, not a synchronisation

        page.goto(server.http_url + "/")

        expect(page).to_have_url(server.http_url + "/login?next=%2F")
        expect(page.get_by_role("alert")).to_have_text(
            "Vous avez été déconnecté après un moment sans activité."
        )
        assert server.core.web_sessions.list(person) == []
