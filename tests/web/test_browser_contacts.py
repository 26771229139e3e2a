"""Contacts in a real headless Chromium: create, search, edit, delete, and the directory.

A contact made in the browser is a vCard 3.0 a CardDAV client reads; a vCard 4.0
written by a client is shown and edited without losing what the form does not show.
"""

from __future__ import annotations

import base64
import urllib.request
from collections.abc import Callable

import pytest
import vobject
from playwright.sync_api import Page, expect

from tests.support.servers import RunningServer
from tests.web.portal_client import Imported, import_person
from tests.web.test_browser_sharing import PASSWORD, signed_in, with_password

pytestmark = pytest.mark.browser

VCARD_4 = (
    "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:urn:uuid:4f1c\r\nFN:Jeanne Moreau\r\n"
    "N:Moreau;Jeanne;;;\r\nEMAIL;TYPE=work:jeanne.moreau@mairie.example\r\n"
    "TEL;VALUE=uri;TYPE=cell:tel:+33-6-12-34-56-78\r\nX-PHONE-APP:kept\r\nEND:VCARD\r\n"
)


def dav(server: RunningServer, who: Imported, method: str, path: str, body: bytes = b"") -> bytes:
    token = base64.b64encode(f"{who.login}:{PASSWORD}".encode()).decode()
    request = urllib.request.Request(  # noqa: S310 - the test's own server
        server.dav_url + path.lstrip("/"),
        data=body or None,
        method=method,
        headers={"Authorization": f"Basic {token}", "Content-Type": "text/vcard"},
    )
    with urllib.request.urlopen(request, timeout=5) as reply:  # noqa: S310
        return reply.read()


@pytest.fixture
def owner(server: RunningServer) -> Imported:
    return with_password(server, import_person(server.core.directory))


def test_create_search_edit_delete_contacts_and_search_the_directory(
    open_page: Callable[..., Page], server: RunningServer, owner: Imported
) -> None:
    import_person(server.core.directory, "Paul", "Rousseau")
    page = signed_in(open_page, server, owner)
    # Written by a phone in vCard 4.0, before the page is opened.
    page.goto(server.http_url + "/")
    dav(server, owner, "PUT", f"/{owner.login}/contacts/jeanne.vcf", VCARD_4.encode())

    page.get_by_role("link", name="Contacts", exact=True).click()
    rows = page.locator("#contacts tr.contact")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Jeanne Moreau")
    expect(rows.first).to_contain_text("+33-6-12-34-56-78")

    page.get_by_role("link", name="Nouveau contact").click()
    page.get_by_label("Prénom").fill("Marie")
    page.get_by_label("Nom", exact=True).fill("Curie")
    page.get_by_label("Adresses électroniques (une par ligne)").fill("marie.curie@example.org")
    page.get_by_label("Numéros de téléphone (un par ligne)").fill("01 23 45 67 89")
    page.get_by_label("Organisation").fill("Institut du radium")
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.get_by_role("status")).to_have_text("Contact enregistré.")
    expect(rows).to_have_count(2)
    mail = page.get_by_role("link", name="Écrire à Marie Curie (marie.curie@example.org)")
    expect(mail).to_have_attribute("href", "/mail/compose?to=marie.curie@example.org")

    page.get_by_label("Chercher dans vos contacts").fill("radium")
    page.get_by_role("button", name="Rechercher").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Marie Curie")

    # The card a client syncs: vCard 3.0 with the fields given.
    whole = dav(server, owner, "GET", f"/{owner.login}/contacts/").decode()
    (card,) = [c for c in vobject.readComponents(whole) if c.fn.value == "Marie Curie"]
    assert card.version.value == "3.0"
    assert card.fn.value == "Marie Curie"
    assert card.n.value.family == "Curie"
    assert card.email.value == "marie.curie@example.org"
    assert card.org.value == ["Institut du radium"]

    # Edit the vCard 4.0 one: its version and the phone app's property stay.
    page.goto(server.http_url + "/contacts")
    page.get_by_role("link", name="Modifier Jeanne Moreau").click()
    page.get_by_label("Fonction").fill("Adjointe au maire")
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.get_by_role("status")).to_have_text("Contact enregistré.")
    edited = dav(server, owner, "GET", f"/{owner.login}/contacts/jeanne.vcf").decode()
    assert "VERSION:4.0" in edited
    assert "X-PHONE-APP:kept" in edited
    assert "TITLE:Adjointe au maire" in edited
    assert "TYPE=cell" in edited

    page.get_by_role("button", name="Supprimer Jeanne Moreau").click()
    expect(page.get_by_role("status")).to_have_text("Contact supprimé.")
    expect(rows).to_have_count(1)

    page.get_by_role("link", name="Annuaire", exact=True).click()
    page.get_by_label("Nom ou adresse d’un·e collègue").fill("rousseau")
    page.get_by_role("button", name="Rechercher").click()
    found = page.locator("#directory tr.person")
    expect(found).to_have_count(1)
    expect(found.first).to_contain_text("Paul Rousseau")
    expect(found.first.get_by_role("link")).to_have_attribute(
        "href", "/mail/compose?to=paul.rousseau@example.org"
    )
