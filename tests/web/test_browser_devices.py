"""Devices in a real headless Chromium: make an app password, set a phone up, revoke it."""

from __future__ import annotations

import plistlib
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Page, expect

from groupware.core.directory import Person
from tests.mail.imap_support import imap_accepts
from tests.support.servers import RunningServer, add_user, make_config, running_server

pytestmark = pytest.mark.browser

PASSWORD = "Vague-Orange-Clavier-57"  # noqa: S105 - a test password


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = make_config(tmp_path_factory.mktemp("devices"))
    with running_server(config, only=frozenset({"http", "imap"})) as server:
        yield server


@pytest.fixture
def person(live: RunningServer) -> Person:
    return add_user(live.core, "Romane", "Appareils", password=PASSWORD)


def test_make_an_app_password_download_the_profile_and_revoke_it(
    open_page: Callable[..., Page], live: RunningServer, person: Person
) -> None:
    page = open_page("fr-FR")
    page.goto(live.http_url + "/login")
    page.get_by_label("Identifiant", exact=True).fill(person.login)
    page.get_by_label("Mot de passe", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Se connecter", exact=True).click()
    page.get_by_role("link", name="Appareils et mots de passe d’application").click()
    expect(page.locator("#devices")).to_contain_text("Aucun mot de passe d’application")

    page.get_by_label("Nom de l’appareil").fill("iPhone de Romane")
    page.get_by_label("Messagerie, agendas et contacts").check()
    page.get_by_role("button", name="Créer un mot de passe d’application").click()

    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Mot de passe d’application pour iPhone de Romane"
    )
    secret = page.locator("#app-password").inner_text()
    assert imap_accepts(live, person.login, secret)
    expect(page.locator("#davx5-link")).to_have_attribute(
        "href", f"caldav://{person.login}@{live.http_url.split('//', 1)[1]}/dav/"
    )
    with page.expect_download() as download:
        page.get_by_role("button", name="Télécharger le profil de configuration").click()
    profile = plistlib.loads(download.value.path().read_bytes())
    kinds = sorted(payload["PayloadType"] for payload in profile["PayloadContent"])
    assert kinds == [
        "com.apple.caldav.account",
        "com.apple.carddav.account",
        "com.apple.mail.managed",
    ]
    mail = next(p for p in profile["PayloadContent"] if p["PayloadType"].endswith("managed"))
    assert (mail["EmailAddress"], mail["IncomingPassword"]) == (person.email, secret)

    page.get_by_role("link", name="Retour à vos appareils").click()
    row = page.locator("#devices tr.device")
    expect(row).to_contain_text("iPhone de Romane")
    expect(row).to_contain_text("IMAP · 127.0.0.1")
    page.get_by_role("button", name="Révoquer iPhone de Romane").click()
    expect(page.get_by_role("status")).to_have_text(
        "« iPhone de Romane » ne peut plus se connecter."
    )
    assert not imap_accepts(live, person.login, secret)


def test_the_profile_is_only_made_for_the_persons_own_app_password(
    open_page: Callable[..., Page], live: RunningServer, person: Person
) -> None:
    page = open_page("fr-FR")
    page.goto(live.http_url + "/login")
    page.get_by_label("Identifiant", exact=True).fill(person.login)
    page.get_by_label("Mot de passe", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Se connecter", exact=True).click()
    page.goto(live.http_url + "/account/devices")
    page.get_by_label("Nom de l’appareil").fill("Tablette")
    page.get_by_role("button", name="Créer un mot de passe d’application").click()
    page.eval_on_selector("input[name=secret]", "(el) => { el.value = 'abcd-efgh-ijkm-npqr'; }")

    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Télécharger le profil de configuration").click()

    assert posted.value.status == 404
