"""Webmail search over real HTTP, answered by our real IMAP server's SEARCH and SORT.

Mail is delivered over SMTP (or appended over IMAP to other folders); flags and a
keyword are set with a separate IMAP client; the portal's quick search and
advanced search must find exactly the messages each criterion names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.policy import SMTP
from urllib.parse import urlencode

import pytest
from imapclient import FLAGGED, SEEN

from groupware.core.directory import Person
from groupware.core.mail_preferences import PALETTE
from tests.mail.imap_support import PASSWORD, deliver, logged_in, new_user
from tests.support.servers import RunningServer, make_config, running_server
from tests.web.portal_client import PortalClient
from tests.web.test_webmail_http import ATTACHMENT, inbox_uids

PER_PAGE = 2
ARCHIVE = "Archives 2025"
KEYWORD = "$urgent"


def message(sender: str, subject: str, body: str, date: str, to: str = "") -> bytes:
    """A text message (UTF-8 headers and body, as modern senders write)."""
    found = EmailMessage()
    found["From"] = sender
    found["To"] = to or "someone@example.org"
    found["Subject"] = subject
    found["Date"] = date
    found.set_content(body)
    return found.as_bytes(policy=SMTP)


def with_attachment(subject: str, date: str) -> bytes:
    """A multipart/mixed message with a PDF attached."""
    found = EmailMessage()
    found["From"] = "Alice Martin <alice@outside.example>"
    found["To"] = "someone@example.org"
    found["Subject"] = subject
    found["Date"] = date
    found.set_content("Bonjour,\nle document est joint.\n")
    found.add_attachment(ATTACHMENT, maintype="application", subtype="pdf", filename="cr.pdf")
    return found.as_bytes(policy=SMTP)


INBOX_MESSAGES = (
    message(
        "Jeanne Lefèvre <jeanne@ecole.example>",
        "Conseil de classe",
        "Le conseil aura lieu mardi.",
        "Sat, 10 Jan 2026 09:00:00 +0100",
    ),
    message(
        "Paul Martin <paul@mairie.example>",
        "Cantine",
        "Le menu de l'élève change lundi.",
        "Sun, 15 Feb 2026 09:00:00 +0100",
        to="Direction <direction@example.org>",
    ),
    with_attachment("Compte rendu", "Fri, 20 Feb 2026 09:00:00 +0100"),
    message(
        "Zoé Petit <zoe@parents.example>",
        "Sortie au musée",
        "Prévoir un pique-nique.",
        "Sun, 1 Mar 2026 09:00:00 +0100",
    ),
)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = make_config(
        tmp_path_factory.mktemp("webmail-search"),
        webmail={"messages_per_page_count": PER_PAGE},
    )
    with running_server(config, only=frozenset({"http", "smtp", "imap"})) as server:
        yield server


@pytest.fixture(scope="module")
def person(live: RunningServer) -> Person:
    """Four INBOX messages, one in an archive folder, one in Trash; two read, one flagged."""
    found = new_user(live)
    for raw in INBOX_MESSAGES:
        deliver(live, found.email, raw)
    inbox_uids(live, found, len(INBOX_MESSAGES))
    with logged_in(live, found) as client:
        client.select_folder("INBOX")
        # By subject: separate deliveries may get their UIDs in another order.
        by_subject = {
            str(make_header(decode_header(data[b"ENVELOPE"].subject.decode()))): uid
            for uid, data in client.fetch(client.search("ALL"), ["ENVELOPE"]).items()
        }
        client.add_flags([by_subject["Conseil de classe"], by_subject["Cantine"]], [SEEN])
        client.add_flags([by_subject["Sortie au musée"]], [FLAGGED, KEYWORD])
        client.create_folder(ARCHIVE)
        old = message(
            "Jeanne Lefèvre <jeanne@ecole.example>",
            "Ancien conseil",
            "Le conseil de juin.",
            "Wed, 10 Jun 2025 09:00:00 +0200",
        )
        client.append(ARCHIVE, old)
        trash = next(name for flags, _d, name in client.list_folders() if b"\\Trash" in flags)
        gone = message(
            "Jeanne Lefèvre <jeanne@ecole.example>",
            "Conseil supprimé",
            "Plus besoin.",
            "Mon, 12 Jan 2026 09:00:00 +0100",
        )
        client.append(trash, gone)
    return found


@pytest.fixture(scope="module")
def portal(live: RunningServer, person: Person) -> PortalClient:
    client = PortalClient(live.http_url)
    assert client.sign_in(person.login, PASSWORD).status == 302
    return client


def found_subjects(portal: PortalClient, expected_status: int = 200, **args: str) -> list[str]:
    """The subjects the search page lists for ``args`` (its query string)."""
    reply = portal.get("/mail/search?" + urlencode(args))
    assert reply.status == expected_status, reply.body[:500]
    return re.findall(r'<td class="subject"><a [^>]*>([^<]*)</a>', reply.body)


def all_found(portal: PortalClient, **args: str) -> set[str]:
    """Every subject found, over all the result pages."""
    found: set[str] = set()
    for page in range(1, 10):
        subjects = found_subjects(portal, page=str(page), **args)
        if not subjects or subjects[0] in found:
            break
        found.update(subjects)
    return found


def test_the_folder_page_has_the_quick_search_box(portal: PortalClient) -> None:
    page = portal.get("/mail/INBOX").body
    assert 'id="mail-search"' in page
    assert 'name="folder" value="INBOX"' in page


def test_quick_search_finds_by_sender_subject_and_body_word(portal: PortalClient) -> None:
    assert all_found(portal, folder="INBOX", q="lefèvre") == {"Conseil de classe"}
    assert all_found(portal, folder="INBOX", q="jeanne@ecole") == {"Conseil de classe"}
    assert all_found(portal, folder="INBOX", q="cantine") == {"Cantine"}
    assert all_found(portal, folder="INBOX", q="pique") == {"Sortie au musée"}
    assert all_found(portal, folder="INBOX", q="introuvable") == set()


def test_quick_search_finds_non_ascii_words_with_or_without_accents(
    portal: PortalClient,
) -> None:
    assert all_found(portal, folder="INBOX", q="élève") == {"Cantine"}
    assert all_found(portal, folder="INBOX", q="eleve") == {"Cantine"}
    assert all_found(portal, folder="INBOX", q="musée") == {"Sortie au musée"}


def test_imap_specials_in_the_search_text_are_sent_safely(portal: PortalClient) -> None:
    # Sent bare, "(" or "*" would be IMAP syntax; as literals they are just text.
    assert all_found(portal, folder="INBOX", q='conseil) "x') == set()
    assert all_found(portal, folder="INBOX", q="(conseil") == {"Conseil de classe"}
    assert all_found(portal, folder="INBOX", q="* ALL") == set()


def test_results_are_sorted_and_paged_by_the_server(portal: PortalClient) -> None:
    newest = found_subjects(portal, folder="INBOX", q="e", sort="date", order="desc")
    assert newest == ["Sortie au musée", "Compte rendu"]
    second = found_subjects(portal, folder="INBOX", q="e", sort="date", order="desc", page="2")
    assert second == ["Cantine", "Conseil de classe"]
    by_subject = found_subjects(portal, folder="INBOX", q="e", sort="subject", order="asc")
    assert by_subject == ["Cantine", "Compte rendu"]
    reply = portal.get("/mail/search?" + urlencode({"folder": "INBOX", "q": "e"}))
    assert "page=2" in reply.body  # the pager keeps the search in its links
    assert "q=e" in reply.body


def test_advanced_search_by_each_text_field(portal: PortalClient) -> None:
    assert all_found(portal, folder="INBOX", **{"from": "paul"}) == {"Cantine"}
    assert all_found(portal, folder="INBOX", to="direction") == {"Cantine"}
    assert all_found(portal, folder="INBOX", subject="conseil") == {"Conseil de classe"}
    assert all_found(portal, folder="INBOX", body="mardi") == {"Conseil de classe"}
    # Criteria combine: sender and a word of the body.
    assert all_found(portal, folder="INBOX", body="lundi", **{"from": "jeanne"}) == set()


def test_advanced_search_by_dates_in_the_persons_format(portal: PortalClient) -> None:
    found = all_found(portal, folder="INBOX", since="01/02/2026", before="21/02/2026")
    assert found == {"Cantine", "Compte rendu"}
    assert all_found(portal, folder="INBOX", since="2026-02-21") == {"Sortie au musée"}
    assert all_found(portal, folder="INBOX", before="15/01/2026") == {"Conseil de classe"}


def test_advanced_search_by_attachment_flags_and_label(portal: PortalClient) -> None:
    assert all_found(portal, folder="INBOX", attachment="1") == {"Compte rendu"}
    assert all_found(portal, folder="INBOX", unread="1") == {"Compte rendu", "Sortie au musée"}
    assert all_found(portal, folder="INBOX", flagged="1") == {"Sortie au musée"}
    assert all_found(portal, folder="INBOX", label=KEYWORD) == {"Sortie au musée"}
    page = portal.get("/mail/search?" + urlencode({"folder": "INBOX", "label": KEYWORD}))
    assert f'data-keyword="{KEYWORD}"' in page.body  # the labels found are shown
    assert all_found(portal, folder="INBOX", unread="1", attachment="1") == {"Compte rendu"}


def test_all_folders_search_skips_trash_unless_asked(portal: PortalClient) -> None:
    found = all_found(portal, folder="", subject="conseil")
    assert found == {"Conseil de classe", "Ancien conseil"}
    reply = portal.get("/mail/search?" + urlencode({"subject": "conseil"}))
    assert 'id="search-bound"' in reply.body  # the per-folder bound is said
    shown = re.findall(r'<span class="search-folder muted">([^<]*)</span>', reply.body)
    assert ARCHIVE in shown  # the folder of each match is shown
    with_trash = all_found(portal, folder="", subject="conseil", all_specials="1")
    assert with_trash == {"Conseil de classe", "Ancien conseil", "Conseil supprimé"}


def test_all_folders_results_are_merged_newest_first(portal: PortalClient) -> None:
    first = found_subjects(portal, subject="conseil", all_specials="1")
    assert first == ["Conseil supprimé", "Conseil de classe"]
    assert found_subjects(portal, subject="conseil", all_specials="1", page="2") == [
        "Ancien conseil"
    ]


def test_a_result_opens_the_message_in_its_folder(portal: PortalClient) -> None:
    reply = portal.get("/mail/search?" + urlencode({"subject": "ancien"}))
    link = re.search(r'<td class="subject"><a href="([^"]+)"', reply.body)
    assert link is not None
    assert link.group(1).startswith("/mail/Archives%202025/")
    opened = portal.get(link.group(1))
    assert opened.status == 200
    assert "Ancien conseil" in opened.body


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        ({"since": "31/02/2026"}, "31/02/2026"),
        ({"before": "demain"}, "demain"),
        ({"since": "01/03/2026", "before": "01/02/2026"}, ""),
        ({"q": "x" * 201}, "200"),
        ({"label": "deux mots"}, "64"),
    ],
)
def test_bad_input_is_refused_with_a_readable_message(
    portal: PortalClient, args: dict[str, str], shown: str
) -> None:
    reply = portal.get("/mail/search?" + urlencode({"folder": "INBOX", **args}))
    assert reply.status == 400
    errors = re.search(r'id="search-errors">(.*?)</div>', reply.body, re.S)
    assert errors is not None
    assert shown in errors.group(1)
    assert 'id="messages"' not in reply.body  # nothing was searched
    for value in args.values():
        assert f'value="{value}"' in reply.body  # what was typed is kept


def test_a_control_character_is_refused_not_sent(portal: PortalClient) -> None:
    reply = portal.get("/mail/search?" + urlencode({"folder": "INBOX", "q": "a\r\nb DELETE"}))
    assert reply.status == 400
    assert 'id="search-errors"' in reply.body


def test_an_empty_search_shows_the_form_and_unknown_folders_are_404(
    portal: PortalClient, live: RunningServer
) -> None:
    reply = portal.get("/mail/search")
    assert reply.status == 200
    assert 'id="search-form"' in reply.body
    assert 'id="messages"' not in reply.body
    assert portal.get("/mail/search?folder=Nowhere&q=x").status == 404
    signed_out = PortalClient(live.http_url).get("/mail/search?q=x")
    assert signed_out.status == 302


def test_the_label_field_offers_the_persons_labels_by_name(
    live: RunningServer, person: Person, portal: PortalClient
) -> None:
    preferences = live.core.mail_preferences
    sortie = preferences.create_label(person, "Sorties scolaires", next(iter(PALETTE)))
    uids = inbox_uids(live, person, len(INBOX_MESSAGES))
    with logged_in(live, person) as client:
        client.select_folder("INBOX")
        client.add_flags(uids[3:], [sortie.keyword])
    try:
        form = portal.get("/mail/search")
        assert f'<option value="{sortie.keyword}">Sorties scolaires</option>' in form.body
        assert all_found(portal, folder="INBOX", label=sortie.keyword) == {"Sortie au musée"}
        page = portal.get("/mail/search?" + urlencode({"folder": "INBOX", "label": sortie.keyword}))
        assert f'<option value="{sortie.keyword}" selected>Sorties scolaires</option>' in page.body
        # The result row shows the label by its name, as the folder list does.
        assert re.search(
            rf'data-keyword="{re.escape(sortie.keyword)}">Sorties scolaires<', page.body
        )
    finally:
        with logged_in(live, person) as client:
            client.select_folder("INBOX")
            client.remove_flags(uids[3:], [sortie.keyword])
        preferences.delete_label(person, sortie.keyword)
