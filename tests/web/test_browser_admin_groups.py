"""Group administration in Chromium: create a group, add a member and a manager, remove them.

What the pages change is checked where it matters, over DAV with the ``caldav``
library: a member finds the department agenda in their home, a manager may write
to it, and once removed they see it no more, at the next request.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import caldav
import pytest
from caldav.lib import error as caldav_error
from playwright.sync_api import Page, expect

from groupware.core.directory import Person
from tests.support.servers import RunningServer, add_user, make_config, running_server
from tests.web.test_browser_admin import PASSWORD, signed_in

pytestmark = pytest.mark.browser

GROUP = "lycee-joffre.histoire-geographie"
DISPLAY = "Histoire-Géographie — Lycée Joffre"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = make_config(tmp_path_factory.mktemp("admin-groups"))
    with running_server(config, only=frozenset({"http"})) as server:
        yield server


@pytest.fixture(scope="module")
def admin(live: RunningServer) -> Person:
    person = add_user(live.core, "Armelle", "Admin", password=PASSWORD)
    return live.core.directory.set_admin(person.login, True, actor="test")


def dav(live: RunningServer, person: Person) -> caldav.DAVClient:
    return caldav.DAVClient(url=live.dav_url, username=person.login, password=PASSWORD, timeout=5)


def calendar_names(live: RunningServer, person: Person) -> dict[str, str]:
    """``{url path: display name}`` of the calendars the person's client finds."""
    with dav(live, person) as client:
        return {
            str(calendar.url.path): calendar.get_display_name()
            for calendar in client.principal().calendars()
        }


def may_add_event(live: RunningServer, person: Person) -> bool:
    with dav(live, person) as client:
        try:
            client.calendar(url=f"{live.dav_url}/@{GROUP}/agenda/").add_event(
                uid=f"admin-groups-{uuid.uuid4()}",
                summary="Conseil de département",
                dtstart=datetime(2031, 3, 4, 9, tzinfo=UTC),
                dtend=datetime(2031, 3, 4, 10, tzinfo=UTC),
            )
        except caldav_error.DAVError:
            return False
    return True


def add_person(page: Page, person: Person, role: str) -> None:
    page.get_by_label("Nom, identifiant ou adresse").fill(person.last_name)
    page.get_by_role("button", name="Rechercher").click()
    page.get_by_role("button", name=f"Ajouter {person.display_name} comme {role}").click()


def test_create_a_department_add_a_member_and_a_manager_and_dav_follows(
    open_page: Callable[..., Page], live: RunningServer, admin: Person
) -> None:
    member = add_user(live.core, "Hugo", "Historien", password=PASSWORD, discipline="")
    manager = add_user(live.core, "Sabine", "Secretaire", password=PASSWORD, discipline="")
    agenda = f"/dav/{member.login}/@{GROUP}~agenda/"
    assert agenda not in calendar_names(live, member)
    page = signed_in(open_page, live, admin)
    page.get_by_role("link", name="Administration").click()
    page.get_by_role("link", name="Groupes").click()

    page.get_by_label("Nom", exact=True).fill("Histoire-Géographie")
    page.get_by_label("Type").select_option(label="Département")
    page.get_by_label("Établissement").fill("Lycée Joffre")
    page.get_by_role("button", name="Créer le groupe").click()

    expect(page.get_by_role("heading", level=1)).to_have_text(DISPLAY)
    expect(page.locator("#group-name")).to_have_text(GROUP)
    add_person(page, member, "membre")
    expect(page.get_by_role("status")).to_have_text(f"{member.display_name} est désormais membre.")
    add_person(page, manager, "gestionnaire")
    expect(page.locator("#managers .manager")).to_contain_text(manager.display_name)
    expect(page.locator("#members .member")).to_have_count(2)  # a manager is a member too

    assert calendar_names(live, member)[agenda] == f"Agenda — {DISPLAY}"
    assert not may_add_event(live, member)  # members read
    assert may_add_event(live, manager)  # managers keep it

    page.get_by_role("button", name=f"Retirer {member.display_name}").click()
    expect(page.get_by_role("status")).to_have_text(f"{member.display_name} n’est plus membre.")
    assert agenda not in calendar_names(live, member)
    page.get_by_role("button", name=f"{manager.display_name} : ne plus être gestionnaire").click()
    expect(page.locator("#managers")).to_have_text("Aucun gestionnaire.")
    assert not may_add_event(live, manager)  # still a member: reads only

    records = live.core.audit.recent(limit=20, subject=GROUP, event_prefix="group.")
    assert [(r.event, r.actor, r.detail) for r in reversed(records)] == [
        ("group.created", admin.login, "kind=department"),
        ("group.member_added", admin.login, member.login),
        ("group.member_added", admin.login, manager.login),
        ("group.manager_added", admin.login, manager.login),
        ("group.member_removed", admin.login, member.login),
        ("group.manager_removed", admin.login, manager.login),
    ]


def test_groups_are_listed_searched_and_the_forms_need_their_token(
    open_page: Callable[..., Page], live: RunningServer, admin: Person
) -> None:
    add_user(live.core, "Lise", "Lettres", password=PASSWORD)  # makes the Lettres groups
    page = signed_in(open_page, live, admin)
    page.goto(live.http_url + "/admin/groups")
    page.get_by_label("Nom du groupe").fill("lettres")
    page.get_by_role("button", name="Rechercher").click()
    expect(page.locator("#groups .group")).to_have_count(1)
    expect(page.locator("#groups .group")).to_contain_text("Lettres — Lycée Joffre")

    page.get_by_label("Nom", exact=True).fill("Lettres")
    page.get_by_label("Type").select_option(label="Département")
    page.get_by_role("button", name="Créer le groupe").click()
    expect(page.get_by_text("Un département fait partie d’un établissement")).to_be_visible()

    reply = page.request.post(
        live.http_url + "/admin/groups/lycee-joffre.lettres/member", form={"login": admin.login}
    )
    assert reply.status == 400  # no CSRF token


def test_the_group_pages_do_not_exist_for_others(
    open_page: Callable[..., Page], live: RunningServer
) -> None:
    someone = add_user(live.core, "Noé", "Personne", password=PASSWORD)
    page = signed_in(open_page, live, someone)
    assert page.goto(live.http_url + "/admin/groups").status == 404  # type: ignore[union-attr]
