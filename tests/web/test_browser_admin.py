"""The administration pages in Chromium: find a person, lock, unlock, reset, quota, audit.

A lock and a reset take effect on every protocol at once: IMAP, DAV and the
person's open web session.
"""

from __future__ import annotations

import email.policy
from collections.abc import Callable, Iterator
from email import message_from_bytes

import caldav
import pytest
from caldav.lib import error as caldav_error
from playwright.sync_api import Page, expect

from groupware.core.directory import Person
from groupware.core.events import EventBus
from groupware.mail.store import INBOX, MailStore
from tests.mail.imap_support import imap_accepts
from tests.support.servers import RunningServer, add_user, make_config, running_server
from tests.support.waiting import wait_for

pytestmark = pytest.mark.browser

PASSWORD = "Vague-Orange-Clavier-57"  # noqa: S105 - a test password


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = make_config(tmp_path_factory.mktemp("admin"))
    with running_server(config, only=frozenset({"http", "smtp", "imap"})) as server:
        yield server


@pytest.fixture
def admin(live: RunningServer) -> Person:
    person = add_user(live.core, "Armelle", "Admin", password=PASSWORD)
    return live.core.directory.set_admin(person.login, True, actor="test")


def signed_in(open_page: Callable[..., Page], live: RunningServer, person: Person) -> Page:
    page = open_page("fr-FR")
    page.goto(live.http_url + "/login")
    page.get_by_label("Identifiant", exact=True).fill(person.login)
    page.get_by_label("Mot de passe", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Se connecter", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Bienvenue")
    return page


def inbox_of(store: MailStore, person: Person) -> list[bytes]:
    mailbox = store.find_mailbox(person.id, INBOX)
    if mailbox is None:
        return []
    return [store.files.read(m.blob_path) for m in store.messages(mailbox.id)]


def dav_accepts(live: RunningServer, login: str, secret: str) -> bool:
    with caldav.DAVClient(url=live.dav_url, username=login, password=secret, timeout=5) as c:
        try:
            c.principal()
        except caldav_error.DAVError:
            return False
    return True


def open_account(page: Page, live: RunningServer, person: Person) -> None:
    page.goto(live.http_url + "/")
    page.get_by_role("link", name="Administration").click()
    page.get_by_label("Nom, identifiant ou adresse").fill(person.last_name)
    page.get_by_role("button", name="Rechercher").click()
    page.get_by_role("link", name=person.display_name).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(person.display_name)


def test_a_lock_applies_everywhere_at_once_and_an_unlock_restores(
    open_page: Callable[..., Page], live: RunningServer, admin: Person
) -> None:
    person = add_user(live.core, "Bérénice", "Verrou", password=PASSWORD)
    _device, app_secret = live.core.app_passwords.create(person, "Phone", "all", actor="t")
    theirs = signed_in(open_page, live, person)
    assert imap_accepts(live, person.login, PASSWORD)
    assert dav_accepts(live, person.login, app_secret)
    page = signed_in(open_page, live, admin)

    open_account(page, live, person)
    page.get_by_role("button", name="Verrouiller le compte").click()

    expect(page.get_by_role("status")).to_have_text(
        "Le compte est verrouillé sur tous les services."
    )
    expect(page.locator("#state")).to_have_text("Verrouillé")
    assert not imap_accepts(live, person.login, PASSWORD)
    assert not imap_accepts(live, person.login, app_secret)
    assert not dav_accepts(live, person.login, PASSWORD)
    theirs.goto(live.http_url + "/")
    expect(theirs).to_have_url(live.http_url + "/login?next=%2F")
    expect(theirs.get_by_role("alert")).to_have_text(
        "Votre session a pris fin. Connectez-vous de nouveau."
    )
    assert live.core.web_sessions.list(person) == []

    page.get_by_role("button", name="Déverrouiller le compte").click()
    expect(page.locator("#state")).to_have_text("Actif")
    assert imap_accepts(live, person.login, PASSWORD)
    ended = live.core.audit.recent(limit=20, subject=person.login, event_prefix="auth.")
    assert [(r.event, r.actor, r.detail) for r in ended] == [
        ("auth.sessions_revoked", admin.login, "all count=1 reason=locked")
    ]
    records = live.core.audit.recent(limit=20, subject=person.login, event_prefix="account.")
    assert [(r.event, r.actor) for r in records[:2]] == [
        ("account.enabled", admin.login),
        ("account.disabled", admin.login),
    ]


def test_a_temporary_password_ends_the_old_one_and_must_be_changed(
    open_page: Callable[..., Page], live: RunningServer, admin: Person
) -> None:
    person = add_user(live.core, "Cyril", "Oublieux", password=PASSWORD)
    page = signed_in(open_page, live, admin)
    open_account(page, live, person)

    page.get_by_role("button", name="Délivrer un mot de passe temporaire").click()

    temporary = page.locator("#temporary-password").inner_text()
    assert not imap_accepts(live, person.login, PASSWORD)
    assert not imap_accepts(live, person.login, temporary)  # portal first
    assert live.core.directory.get(person.login).must_change_password
    # The account hears of it by mail, as after a self-service reset.
    store = MailStore(live.core.engine, live.config.data_dir / "mail", EventBus())
    [notice] = wait_for(lambda: inbox_of(store, person))
    text = message_from_bytes(notice, policy=email.policy.default).get_body().get_content()  # type: ignore[union-attr]
    assert "réinitialisé" in text
    assert "par un administrateur" in text
    assert "The IT department never asks for your password by mail." in text
    assert temporary not in text


def test_quota_and_audit_log(
    open_page: Callable[..., Page], live: RunningServer, admin: Person
) -> None:
    person = add_user(live.core, "Delphine", "Quota", password=PASSWORD)
    page = signed_in(open_page, live, admin)
    open_account(page, live, person)

    page.get_by_label("Quota de messagerie").fill("2G")
    page.get_by_role("button", name="Modifier le quota").click()

    expect(page.get_by_role("status")).to_have_text("Le quota est maintenant de 2.0 GiB.")
    assert live.core.directory.get(person.login).quota_bytes == 2 * 1024**3
    page.goto(live.http_url + "/admin/audit?event=account.quota&actor=" + admin.login)
    expect(page.locator("tr.record").first).to_contain_text(person.login)


def test_the_pages_do_not_exist_for_others(
    open_page: Callable[..., Page], live: RunningServer
) -> None:
    person = add_user(live.core, "Élie", "Curieux", password=PASSWORD)
    page = signed_in(open_page, live, person)
    expect(page.get_by_role("link", name="Administration")).to_have_count(0)

    for path in ("/admin", f"/admin/people/{person.login}", "/admin/audit"):
        reply = page.goto(live.http_url + path)
        assert reply is not None
        assert reply.status == 404
