"""Webmail settings and labels over real HTTP, with the mail read back over real IMAP.

One server runs HTTP, SMTP and IMAP; mail is delivered over SMTP, the settings
forms are posted as a browser does (CSRF token from the page), and the labels the
portal applies are read back as IMAP keywords by a separate imapclient connection.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest

from groupware.core.directory import Person
from groupware.core.mail_preferences import MAX_SIGNATURE_CHARS, ReadingPane
from tests.mail.imap_support import PASSWORD, deliver, logged_in, new_user, simple_message
from tests.support.servers import RunningServer, make_config, running_server
from tests.web.portal_client import PortalClient, Reply
from tests.web.test_webmail_http import inbox_uids, subjects

DEFAULT_PER_PAGE = 3
SETTINGS = "/mail/settings"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = make_config(
        tmp_path_factory.mktemp("webmail-settings"),
        webmail={"messages_per_page_count": DEFAULT_PER_PAGE},
    )
    with running_server(config, only=frozenset({"http", "smtp", "imap"})) as server:
        yield server


@pytest.fixture
def person(live: RunningServer) -> Person:
    found = new_user(live)
    for subject in ("Conseil de classe", "Bulletin", "Absence", "Zoo"):
        deliver(live, found.email, simple_message(subject))
    inbox_uids(live, found, 4)
    return found


@pytest.fixture
def portal(live: RunningServer, person: Person) -> PortalClient:
    client = PortalClient(live.http_url)
    assert client.sign_in(person.login, PASSWORD).status == 302
    return client


def post(portal: PortalClient, path: str, fields: dict[str, str]) -> Reply:
    return portal.submit(path, fields, page=SETTINGS)


def errors(reply: Reply) -> list[str]:
    return [
        html.unescape(e) for e in re.findall(r'class="error" role="alert">([^<]*)<', reply.body)
    ]


def chips(page: str) -> dict[int, list[tuple[str, str]]]:
    """The (keyword, name) of the chips of each row of the list, by UID."""
    rows = re.findall(r'data-uid="(\d+)">(.*?)</tr>', page, re.S)
    pattern = r'class="label-chip label-\w+" data-keyword="([^"]+)">([^<]*)<'
    return {int(uid): re.findall(pattern, row) for uid, row in rows}


def test_the_settings_page_lists_one_identity_per_address_and_is_linked(
    live: RunningServer, person: Person, portal: PortalClient
) -> None:
    directory = live.core.directory
    alias = directory.add_alias(person.login, f"{person.login}.alias@{directory.domain}", actor="t")
    group = f"club-{person.id}"
    directory.add_group(group, "Club", actor="t")
    directory.add_member(group, person.login, actor="t")
    assert 'id="mail-settings-link"' in portal.get("/mail/INBOX").body
    page = portal.get(SETTINGS)
    assert page.status == 200
    addresses = re.findall(r'class="identity" data-address="([^"]+)"', page.body)
    assert addresses == [person.email, alias, f"{group}@{directory.domain}"]

    directory.remove_member(group, person.login, actor="t")
    page = portal.get(SETTINGS)
    assert re.findall(r'class="identity" data-address="([^"]+)"', page.body) == [
        person.email,
        alias,
    ]


def test_every_settings_form_refuses_a_post_without_the_csrf_token(
    live: RunningServer, person: Person, portal: PortalClient
) -> None:
    prefs = live.core.mail_preferences
    label = prefs.create_label(person, "Gardé", "red")
    attempts = {
        "/mail/settings/display": {
            "display-messages_per_page": "100",
            "display-reading_pane": "right",
        },
        "/mail/settings/identities/0": {
            "identity-0-address": person.email,
            "identity-0-display_name": "Pirate",
            "identity-0-signature": "pwned",
        },
        "/mail/settings/default-identity": {"default-address": person.email},
        "/mail/settings/language": {"language-language": "en"},
        "/mail/settings/labels/new": {"new-label-name": "Intrus", "new-label-colour": "red"},
        "/mail/settings/labels/0": {
            "label-0-keyword": label.keyword,
            "label-0-name": "Renommé",
            "label-0-colour": "blue",
        },
        "/mail/settings/labels/0/delete": {"delete-0-keyword": label.keyword},
        "/mail/INBOX/labels": {"label": label.keyword, "label_action": "add", "uid": "1"},
    }
    for path, fields in attempts.items():
        assert portal.post(path, fields).status == 400, path
    assert prefs.display(person).messages_per_page == DEFAULT_PER_PAGE
    assert prefs.default_identity(person).display_name == person.display_name
    assert prefs.labels(person) == [label]
    assert live.core.directory.get(person.login).language == "fr"
    with logged_in(live, person) as client:
        client.select_folder("INBOX", readonly=True)
        assert client.search(["KEYWORD", label.keyword]) == []


def test_refused_values_are_shown_beside_their_field(
    live: RunningServer, person: Person, portal: PortalClient
) -> None:
    refused = post(
        portal,
        "/mail/settings/display",
        {"display-messages_per_page": "30", "display-reading_pane": "right"},
    )
    assert refused.status == 400
    assert errors(refused) == ["Choisissez l’une des options proposées."]
    long_signature = post(
        portal,
        "/mail/settings/identities/0",
        {
            "identity-0-address": person.email,
            "identity-0-display_name": "Marie",
            "identity-0-signature": "x" * (MAX_SIGNATURE_CHARS + 1),
        },
    )
    assert long_signature.status == 400
    assert errors(long_signature) == [f"{MAX_SIGNATURE_CHARS} caractères au plus."]
    not_theirs = post(
        portal,
        "/mail/settings/identities/0",
        {
            "identity-0-address": "directeur@example.org",
            "identity-0-display_name": "Le directeur",
            "identity-0-signature": "",
        },
    )
    assert not_theirs.status == 400
    assert errors(not_theirs) == ["Vous ne pouvez pas envoyer avec cette adresse."]
    empty = post(
        portal, "/mail/settings/labels/new", {"new-label-name": " ", "new-label-colour": "red"}
    )
    assert empty.status == 400
    assert errors(empty) == ["Ce champ est obligatoire."]
    bad_colour = post(
        portal,
        "/mail/settings/labels/new",
        {"new-label-name": "Réunion", "new-label-colour": "#f00"},
    )
    assert bad_colour.status == 400
    assert live.core.mail_preferences.labels(person) == []
    assert live.core.mail_preferences.display(person).messages_per_page == DEFAULT_PER_PAGE


def test_page_size_reading_pane_identity_and_language_are_saved(
    live: RunningServer, person: Person, portal: PortalClient
) -> None:
    for number in range(24):
        deliver(live, person.email, simple_message(f"Lot {number:02}"))
    inbox_uids(live, person, 28)
    assert len(subjects(portal.get("/mail/INBOX").body)) == DEFAULT_PER_PAGE
    saved = post(
        portal,
        "/mail/settings/display",
        {"display-messages_per_page": "25", "display-reading_pane": "bottom"},
    )
    assert (saved.status, saved.location) == (302, SETTINGS)
    listing = portal.get("/mail/INBOX")
    assert len(subjects(listing.body)) == 25
    assert "Page 1 sur 2" in listing.body
    assert 'class="mail-layout pane-bottom"' in listing.body
    # The pane frames message bodies, as the reading page does.
    assert "frame-src 'self'" in listing.headers["Content-Security-Policy"]

    assert (
        post(
            portal,
            "/mail/settings/identities/0",
            {
                "identity-0-address": person.email,
                "identity-0-display_name": "Mme Dupont",
                "identity-0-signature": "-- \r\nProfesseure de lettres",
            },
        ).status
        == 302
    )
    identity = live.core.mail_preferences.default_identity(person)
    assert (identity.display_name, identity.signature) == (
        "Mme Dupont",
        "-- \nProfesseure de lettres",
    )

    english = post(portal, "/mail/settings/language", {"language-language": "en"})
    assert english.status == 302
    assert live.core.directory.get(person.login).language == "en"
    assert "Mail settings" in portal.get(SETTINGS).body


def test_labels_applied_in_the_list_are_imap_keywords_shown_as_chips(
    live: RunningServer, person: Person, portal: PortalClient
) -> None:
    uids = inbox_uids(live, person, 4)
    live.core.mail_preferences.set_display(
        person, messages_per_page=25, reading_pane=ReadingPane.LIST
    )
    assert (
        post(
            portal,
            "/mail/settings/labels/new",
            {"new-label-name": "Réunion", "new-label-colour": "red"},
        ).status
        == 302
    )
    assert (
        post(
            portal,
            "/mail/settings/labels/new",
            {"new-label-name": "会議", "new-label-colour": "teal"},
        ).status
        == 302
    )
    token = portal.get("/mail/INBOX").csrf_token()
    form = [("csrf_token", token), ("label", "reunion"), ("label_action", "add")]
    form += [("uid", str(uid)) for uid in uids[:2]]
    assert portal.request("POST", "/mail/INBOX/labels", form).status == 302  # type: ignore[arg-type]

    with logged_in(live, person) as client:
        client.select_folder("INBOX")
        flags = client.get_flags(uids)
        assert [b"reunion" in flags[uid] for uid in uids] == [True, True, False, False]
        # Another client sets a standard keyword: shown with its default name.
        client.add_flags(uids[3:], [b"$label2"])
        # Thunderbird's $label1 and the registered $Important say the same: one chip.
        client.add_flags(uids[2:3], [b"$Important", b"$label1", b"NonJunk"])
    listing = portal.get("/mail/INBOX")
    assert chips(listing.body) == {
        uids[0]: [("reunion", "Réunion")],
        uids[1]: [("reunion", "Réunion")],
        uids[2]: [("$Important", "Important")],
        uids[3]: [("$label2", "Travail")],
    }

    # Renaming keeps the keyword (messages keep their label).
    assert (
        post(
            portal,
            "/mail/settings/labels/0",
            {"label-0-keyword": "reunion", "label-0-name": "Réunions", "label-0-colour": "purple"},
        ).status
        == 302
    )
    listing = portal.get("/mail/INBOX")
    assert 'class="label-chip label-purple" data-keyword="reunion">Réunions<' in listing.body

    form = [
        ("csrf_token", token),
        ("label", "reunion"),
        ("label_action", "remove"),
        ("uid", str(uids[0])),
    ]
    assert portal.request("POST", "/mail/INBOX/labels", form).status == 302  # type: ignore[arg-type]
    with logged_in(live, person) as client:
        client.create_folder("Projets")
        client.select_folder("INBOX")
        assert client.search(["KEYWORD", "reunion"]) == [uids[1]]
        client.move([uids[1]], "Projets")

    # A label that is not the person's is refused.
    form = [("csrf_token", token), ("label", "$label2"), ("label_action", "add"), ("uid", "1")]
    assert portal.request("POST", "/mail/INBOX/labels", form).status == 400  # type: ignore[arg-type]

    # Deleting with the box ticked takes the keyword off messages in every folder.
    reunion = next(
        i
        for i, lb in enumerate(live.core.mail_preferences.labels(person))
        if lb.keyword == "reunion"
    )
    deleted = post(
        portal,
        f"/mail/settings/labels/{reunion}/delete",
        {f"delete-{reunion}-keyword": "reunion", f"delete-{reunion}-from_messages": "y"},
    )
    assert deleted.status == 302
    with logged_in(live, person) as client:
        client.select_folder("Projets", readonly=True)
        assert client.search(["KEYWORD", "reunion"]) == []
    assert [lb.keyword for lb in live.core.mail_preferences.labels(person)] == ["label"]
