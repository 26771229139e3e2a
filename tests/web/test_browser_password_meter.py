"""The password strength meter in Chromium: it reacts while typing, says what is missing,
and the server still refuses what its policy refuses (the meter only helps)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.support.servers import RunningServer, make_config, running_server
from tests.web.portal_client import import_person

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = make_config(tmp_path_factory.mktemp("meter"))
    with running_server(config, only=frozenset({"http"})) as server:
        yield server


def test_the_meter_follows_the_policy_while_typing_and_the_server_decides(
    open_page: Callable[..., Page], live: RunningServer
) -> None:
    imported = import_person(live.core.directory, "Séverine", "Lambert")
    page = open_page("fr-FR")
    page.goto(live.http_url + "/login")
    page.get_by_label("Identifiant", exact=True).fill(imported.login)
    page.get_by_label("Mot de passe", exact=True).fill(imported.numen)
    page.get_by_role("button", name="Se connecter", exact=True).click()
    expect(page).to_have_url(live.http_url + "/password")
    new = page.get_by_label("Nouveau mot de passe", exact=True)
    meter = page.locator(".password-meter")
    verdict = page.locator(".meter-verdict")
    expect(meter).to_be_hidden()

    new.press_sequentially("court")
    expect(meter).to_be_visible()
    expect(page.get_by_role("meter", name="Solidité du nouveau mot de passe")).to_have_attribute(
        "value", "0"
    )
    expect(verdict).to_contain_text("Trop faible")
    expect(verdict).to_contain_text("Au moins")
    expect(verdict).to_have_attribute("aria-live", "polite")

    new.fill("")
    new.press_sequentially("Severine-Lambert-Ete")  # long enough, but her names
    expect(verdict).to_contain_text("Trop faible")
    expect(verdict).to_contain_text("Ni votre prénom ni votre nom")
    expect(page.locator('[data-rule="length"]')).to_have_class("rule-ok")
    expect(page.locator('[data-rule="names"]')).to_have_class("rule-broken")

    new.fill("")
    new.press_sequentially("Né le 17/05/1980 !")  # her birth date
    expect(page.locator('[data-rule="dates"]')).to_have_class("rule-broken")

    new.fill("")
    new.press_sequentially("Marée-Basse-Crayon-84!")
    expect(verdict).to_have_text("Excellent.")
    expect(page.locator("meter")).to_have_attribute("value", "4")

    # What the meter refuses, the server refuses too: it is the authority.
    new.fill("Severine-Lambert-Ete")
    page.get_by_label("Confirmation du nouveau mot de passe").fill("Severine-Lambert-Ete")
    page.get_by_label("Mot de passe actuel").fill(imported.numen)
    page.get_by_role("button", name="Enregistrer le nouveau mot de passe").click()
    expect(page.get_by_text("Le mot de passe ne doit contenir ni votre prénom")).to_be_visible()
    assert live.core.directory.get(imported.login).must_change_password
