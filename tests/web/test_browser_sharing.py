"""The sharing pages in a real headless Chromium: find a colleague, share, change, revoke.

The server refuses what the pages do not offer: another person's collection page
is a 404, and a form forged to point at it changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from groupware.core.sharing import CollectionRef, Level
from tests.support.servers import RunningServer
from tests.web.portal_client import Imported, import_person

pytestmark = pytest.mark.browser

PASSWORD = "Vague-Orange-Clavier-57"  # noqa: S105 - a test password


@pytest.fixture
def owner(server: RunningServer) -> Imported:
    return with_password(server, import_person(server.core.directory))


@pytest.fixture
def colleague(server: RunningServer) -> Imported:
    return with_password(server, import_person(server.core.directory, "Paul", "Rousseau"))


def with_password(server: RunningServer, imported: Imported) -> Imported:
    server.core.directory.set_password(imported.login, PASSWORD, actor="test", enforce_policy=False)
    return imported


def signed_in(
    open_page: Callable[..., Page], server: RunningServer, who: Imported, **options: Any
) -> Page:
    """Signs ``who`` in, in French; ``options`` go to the browser context (viewport…)."""
    page = open_page("fr-FR", **options)
    page.goto(server.http_url + "/login")
    page.get_by_label("Identifiant", exact=True).fill(who.login)
    page.get_by_label("Mot de passe", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Se connecter", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Bienvenue")
    return page


def test_share_a_calendar_change_the_level_and_revoke(
    open_page: Callable[..., Page],
    server: RunningServer,
    owner: Imported,
    colleague: Imported,
) -> None:
    page = signed_in(open_page, server, owner)
    calendar = CollectionRef(owner.login, "calendar")

    page.get_by_role("link", name="Partage des agendas et carnets d’adresses").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Partage")
    page.get_by_role("link", name="Gérer le partage de Agenda personnel").click()
    expect(page.locator("#grants")).to_contain_text("Vous seul·e, pour l’instant.")

    page.get_by_label("Nom, adresse ou groupe").fill("rousseau")
    page.get_by_role("button", name="Rechercher").click()
    expect(page.get_by_label("Paul Rousseau")).to_be_checked()  # the only match
    page.get_by_label("Accès").select_option(label="Peut consulter")
    page.get_by_role("button", name="Partager", exact=True).click()

    expect(page.get_by_role("status")).to_have_text("Partagé avec Paul Rousseau.")
    row = page.locator("#grants tr.grant")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Paul Rousseau")
    expect(row).to_contain_text("Peut consulter")
    assert [(g.grantee, g.level) for g in server.core.sharing.grants(collection=calendar)] == [
        (colleague.login, Level.READ)
    ]

    page.get_by_label("Nom, adresse ou groupe").fill("paul rousseau")
    page.get_by_role("button", name="Rechercher").click()
    page.get_by_label("Accès").select_option(label="Peut modifier")
    page.get_by_role("button", name="Partager", exact=True).click()
    expect(row).to_contain_text("Peut modifier")

    page.get_by_role("button", name="Retirer l’accès de Paul Rousseau").click()
    expect(page.get_by_role("status")).to_have_text("Paul Rousseau n’a plus accès.")
    expect(page.locator("#grants")).to_contain_text("Vous seul·e, pour l’instant.")
    assert server.core.sharing.grants(collection=calendar) == []


def test_share_with_a_group_found_by_its_name(
    open_page: Callable[..., Page], server: RunningServer, owner: Imported
) -> None:
    page = signed_in(open_page, server, owner)
    page.goto(f"{server.http_url}/sharing/{owner.login}/contacts")

    page.get_by_label("Nom, adresse ou groupe").fill("lettres")
    page.get_by_role("button", name="Rechercher").click()
    page.get_by_label("Lettres — Lycée Joffre").check()
    page.get_by_label("Accès").select_option(label="Peut modifier et partager")
    page.get_by_role("button", name="Partager", exact=True).click()

    expect(page.locator("#grants tr.grant")).to_contain_text("groupe")
    grants = server.core.sharing.grants(collection=CollectionRef(owner.login, "contacts"))
    assert [(g.grantee, g.level) for g in grants] == [("@lycee-joffre.lettres", Level.MANAGE)]


def test_free_busy_choice_is_saved(
    open_page: Callable[..., Page], server: RunningServer, owner: Imported
) -> None:
    page = signed_in(open_page, server, owner)
    page.goto(server.http_url + "/sharing")
    select = page.get_by_label("Qui peut voir quand vous êtes occupé·e")
    expect(select).to_have_value("school")

    select.select_option(label="Personne")
    page.get_by_role("button", name="Enregistrer", exact=True).click()

    expect(page.get_by_role("status")).to_have_text("Enregistré.")
    assert server.core.sharing.freebusy_scope(owner.login) == "nobody"


def test_another_person_can_neither_see_nor_forge_the_sharing_of_a_calendar(
    open_page: Callable[..., Page],
    server: RunningServer,
    owner: Imported,
    colleague: Imported,
) -> None:
    page = signed_in(open_page, server, colleague)
    reply = page.goto(f"{server.http_url}/sharing/{owner.login}/calendar")
    assert reply is not None
    assert reply.status == 404

    # A form of his own page, pointed at hers: the server refuses it.
    page.goto(f"{server.http_url}/sharing/{colleague.login}/calendar")
    page.get_by_label("Nom, adresse ou groupe").fill("lettres")
    page.get_by_role("button", name="Rechercher").click()
    # The search is a page load: its results hold the form.
    expect(page.locator("#grant-form")).to_be_attached()
    page.eval_on_selector(
        "#grant-form",
        "(form, action) => { form.action = action; }",
        f"/sharing/{owner.login}/calendar/grant",
    )
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Partager", exact=True).click()
    assert posted.value.status == 404
    assert server.core.sharing.grants(collection=CollectionRef(owner.login, "calendar")) == []
