"""Folder management, emptying Trash and the conversation view, over real HTTP and IMAP.

What the pages change is read back with a separate IMAP client: folders, their
subscriptions, where the messages went, and what was deleted for good.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest

from groupware.core.directory import Person
from tests.mail.imap_support import PASSWORD, deliver, logged_in, new_user, simple_message
from tests.support.servers import RunningServer, make_config, running_server
from tests.web.portal_client import PortalClient, Reply
from tests.web.test_webmail_http import inbox_uids

PER_PAGE = 2


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = make_config(
        tmp_path_factory.mktemp("webmail-folders"),
        webmail={"messages_per_page_count": PER_PAGE},
    )
    with running_server(config, only=frozenset({"http", "smtp", "imap"})) as server:
        yield server


@pytest.fixture
def person(live: RunningServer) -> Person:
    """An English-speaking person: special folders named Trash, Sent, Junk..."""
    return new_user(live, language="en")


@pytest.fixture
def portal(live: RunningServer, person: Person) -> PortalClient:
    client = PortalClient(live.http_url, language="en")
    assert client.sign_in(person.login, PASSWORD).status == 302
    return client


def change(portal: PortalClient, **fields: str) -> Reply:
    token = portal.get("/mail/folders").csrf_token()
    return portal.post("/mail/folders", {"csrf_token": token, **fields})


def folders_of(live: RunningServer, person: Person) -> tuple[set[str], set[str]]:
    """``(all folder names, subscribed names)`` as IMAP sees them."""
    with logged_in(live, person) as client:
        names = {str(name) for _f, _d, name in client.list_folders()}
        subscribed = {str(name) for _f, _d, name in client.list_sub_folders()}
    return names, subscribed


def flash_error(reply: Reply) -> str:
    found = re.search(r'class="flash flash-error"[^>]*>([^<]*)', reply.body)
    assert found, "no error message on the page"
    return html.unescape(found.group(1))


def test_the_tree_links_to_the_folder_page(portal: PortalClient) -> None:
    page = portal.get("/mail/INBOX")
    assert 'href="/mail/folders" id="manage-folders"' in page.body
    manage = portal.get("/mail/folders")
    assert manage.status == 200
    # Special folders and INBOX offer no rename, move or delete.
    assert "Special folder: kept as it is" in manage.body
    assert 'data-folder="INBOX"' in manage.body


def test_create_rename_move_and_delete_a_folder(
    live: RunningServer, person: Person, portal: PortalClient
) -> None:
    assert change(portal, operation="create", name=" Projets ", parent="").status == 302
    assert change(portal, operation="create", name="2026", parent="Projets").status == 302
    assert change(portal, operation="create", name="Sorties", parent="").status == 302
    names, subscribed = folders_of(live, person)
    assert {"Projets", "Projets/2026", "Sorties"} <= names
    assert {"Projets", "Projets/2026", "Sorties"} <= subscribed

    # Rename takes the subfolder along; subscriptions follow the new names.
    assert change(portal, operation="rename", folder="Projets", name="Projets 2025").status == 302
    names, subscribed = folders_of(live, person)
    assert {"Projets 2025", "Projets 2025/2026"} <= names
    assert not {"Projets", "Projets/2026"} & names
    assert {"Projets 2025", "Projets 2025/2026"} <= subscribed
    assert not {"Projets", "Projets/2026"} & subscribed

    # Move under another parent, then back to the top.
    reply = change(portal, operation="move", folder="Projets 2025", parent="Sorties")
    assert reply.status == 302
    assert "Sorties/Projets 2025/2026" in folders_of(live, person)[0]
    assert change(portal, operation="move", folder="Sorties/Projets 2025", parent="").status == 302
    names, subscribed = folders_of(live, person)
    assert "Projets 2025/2026" in names
    assert "Sorties/Projets 2025" not in subscribed

    # Delete asks first, naming the subfolders and the messages that go with it.
    deliver(live, person.email, simple_message("Sortie au musée"))
    uid = inbox_uids(live, person, 1)[0]
    with logged_in(live, person) as client:
        client.select_folder("INBOX")
        client.move([uid], "Projets 2025/2026")
    confirm = portal.get("/mail/folders?delete=Projets%202025")
    assert confirm.status == 200
    assert 'id="confirm-delete"' in confirm.body
    assert "deleted for good" in confirm.body
    assert re.search(r'id="doomed-subfolders"><li>Projets 2025/2026 ', confirm.body)
    assert "(1 in all)" in confirm.body
    assert change(portal, operation="delete", folder="Projets 2025").status == 302
    names, subscribed = folders_of(live, person)
    assert not {n for n in names if n.startswith("Projets")}
    assert not {n for n in subscribed if n.startswith("Projets")}
    assert "Sorties" in names


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"name": "", "parent": ""}, "Give the folder a name."),
        ({"name": "   ", "parent": ""}, "Give the folder a name."),
        ({"name": "a/b", "parent": ""}, "cannot contain “/”"),
        ({"name": "tout*", "parent": ""}, "cannot contain % *."),
        ({"name": "ligne\tdeux", "parent": ""}, "control characters"),
        ({"name": "x" * 101, "parent": ""}, "at most 100 characters"),
        ({"name": "Trash", "parent": ""}, "exists there already"),
        ({"name": "inbox", "parent": ""}, "reserved for the inbox"),
    ],
)
def test_bad_folder_names_are_refused_with_a_reason(
    live: RunningServer, person: Person, portal: PortalClient, fields: dict[str, str], problem: str
) -> None:
    before = folders_of(live, person)[0]
    reply = change(portal, operation="create", **fields)
    assert reply.status == 400
    assert problem in flash_error(reply)
    assert folders_of(live, person)[0] == before


def test_a_duplicate_under_the_same_parent_and_a_rename_onto_a_sibling_are_refused(
    live: RunningServer, person: Person, portal: PortalClient
) -> None:
    with logged_in(live, person) as client:
        client.create_folder("Classes")
        client.create_folder("Classes/6e")
        client.create_folder("Classes/5e")
    reply = change(portal, operation="create", name="6e", parent="Classes")
    assert reply.status == 400
    assert "exists there already" in flash_error(reply)
    # The same leaf elsewhere is fine.
    assert change(portal, operation="create", name="6e", parent="").status == 302
    reply = change(portal, operation="rename", folder="Classes/5e", name="6e")
    assert reply.status == 400
    assert "Classes/5e" in folders_of(live, person)[0]
    reply = change(portal, operation="move", folder="Classes", parent="Classes/6e")
    assert reply.status == 400
    assert "into itself" in flash_error(reply)


@pytest.mark.parametrize("operation", ["rename", "move", "delete"])
@pytest.mark.parametrize("folder", ["INBOX", "Trash", "Sent"])
def test_special_folders_and_the_inbox_cannot_be_changed(
    live: RunningServer, person: Person, portal: PortalClient, operation: str, folder: str
) -> None:
    before = folders_of(live, person)[0]
    reply = change(portal, operation=operation, folder=folder, name="Autre", parent="")
    assert reply.status == 400
    assert "special folders cannot be" in flash_error(reply)
    assert folders_of(live, person)[0] == before
    confirm = portal.get(f"/mail/folders?delete={folder}")
    assert confirm.status == 400
    assert 'id="confirm-delete"' not in confirm.body


def test_folder_changes_without_the_csrf_token_are_refused(
    live: RunningServer, person: Person, portal: PortalClient
) -> None:
    with logged_in(live, person) as client:
        client.create_folder("Gardé")
    before = folders_of(live, person)[0]
    for fields in (
        {"operation": "create", "name": "Nouveau", "parent": ""},
        {"operation": "rename", "folder": "Gardé", "name": "Autre"},
        {"operation": "move", "folder": "Gardé", "parent": "Trash"},
        {"operation": "delete", "folder": "Gardé"},
    ):
        assert portal.post("/mail/folders", fields).status == 400
        bad = {**fields, "csrf_token": "not-the-token"}
        assert portal.post("/mail/folders", bad).status == 400
    assert portal.post("/mail/Trash/empty", {}).status == 400
    assert folders_of(live, person)[0] == before


def test_unknown_operations_and_folders(portal: PortalClient) -> None:
    assert change(portal, operation="explode", folder="INBOX").status == 400
    assert change(portal, operation="rename", folder="Nulle part", name="x").status == 404
    assert change(portal, operation="create", name="x", parent="Nulle part").status == 404
    assert portal.get("/mail/folders?delete=Nulle%20part").status == 404


def test_empty_trash_asks_then_deletes_everything_there_for_good(
    live: RunningServer, person: Person, portal: PortalClient
) -> None:
    for subject in ("Un", "Deux", "Trois"):
        deliver(live, person.email, simple_message(subject))
    uids = inbox_uids(live, person, 3)
    with logged_in(live, person) as client:
        client.select_folder("INBOX")
        client.move(uids[:2], "Trash")
    page = portal.get("/mail/Trash")
    assert 'id="empty-folder"' in page.body
    assert 'id="confirm-empty"' not in page.body
    assert 'id="empty-folder"' not in portal.get("/mail/INBOX").body
    confirm = portal.get("/mail/Trash?empty=1")
    assert "Its 2 messages will be deleted for good" in confirm.body
    token = confirm.csrf_token()
    assert portal.post("/mail/INBOX/empty", {"csrf_token": token}).status == 400
    reply = portal.post("/mail/Trash/empty", {"csrf_token": token})
    assert reply.status == 302
    assert reply.location == "/mail/Trash"
    with logged_in(live, person) as client:
        assert client.select_folder("Trash")[b"EXISTS"] == 0
        assert client.select_folder("INBOX")[b"EXISTS"] == 1
    events = [r.event for r in live.core.audit.recent(limit=10, subject=person.login)]
    assert "mail.folder.empty" in events


def _thread_message(subject: str, message_id: str, references: str = "") -> bytes:
    head = f"From: alice@example.org\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n"
    if references:
        head += f"References: <{references}>\r\nIn-Reply-To: <{references}>\r\n"
    return (head + "Content-Type: text/plain\r\n\r\nTexte\r\n").encode()


def test_the_conversation_view_groups_pages_by_thread_and_keeps_the_toggle(
    live: RunningServer, person: Person, portal: PortalClient
) -> None:
    with logged_in(live, person) as client:
        client.append("INBOX", _thread_message("Cantine", "a@x"))
        client.append("INBOX", _thread_message("Bus", "b@x"))
        client.append("INBOX", _thread_message("Re: Cantine", "c@x", "a@x"))
        client.append("INBOX", _thread_message("Conseil", "d@x"))
        client.append("INBOX", _thread_message("Re: Cantine", "e@x", "c@x"))
    flat = portal.get("/mail/INBOX")
    assert 'href="/mail/INBOX?threads=1" id="threads-toggle"' in flat.body
    first = portal.get("/mail/INBOX?threads=1")
    assert first.status == 200
    # Newest conversation first: Cantine (newest reply), then Conseil; Bus is page 2.
    rows = re.findall(r'<tr class="message thread[^"]*" data-uid="(\d+)"', first.body)
    assert len(rows) == 1
    assert "3 messages" in first.body
    members = re.findall(r'data-member-of="1"', first.body)
    assert len(members) == 3
    assert re.findall(
        r'<td class="subject">(?:<span[^>]*></span>)?<a [^>]*>([^<]*)', first.body
    ) == [
        "Cantine",
        "Re: Cantine",
        "Re: Cantine",
        "Conseil",
    ]
    assert 'href="/mail/INBOX?threads=1&amp;page=2" rel' in first.body or (
        'rel="next" href="/mail/INBOX?threads=1&amp;page=2"' in first.body
    )
    second = portal.get("/mail/INBOX?threads=1&page=2")
    assert ">Bus<" in second.body
    assert 'id="threads-toggle" class="button secondary" aria-pressed="true"' in second.body
    # Ticking a conversation acts on all its messages.
    thread_box = re.search(r'name="thread" value="([\d,]+)"', first.body)
    assert thread_box is not None
    token = first.csrf_token()
    form = {"csrf_token": token, "action": "flag", "thread": thread_box.group(1)}
    assert portal.post("/mail/INBOX/actions", form).status == 302
    with logged_in(live, person) as client:
        client.select_folder("INBOX", readonly=True)
        flagged = client.search(["FLAGGED"])
    assert sorted(flagged) == sorted(int(u) for u in thread_box.group(1).split(","))
