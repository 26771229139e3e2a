"""The webmail over real HTTP, reading and changing mail over real IMAP.

One server runs HTTP, SMTP and IMAP in one process, as ``groupware serve`` does:
mail is delivered over SMTP, the portal lists it through its pooled IMAP
connection, and what its actions change is read back with a separate IMAP client.
"""

from __future__ import annotations

import base64
import email
import html
import re
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import SMTP, default

import pytest

from groupware.core.directory import Person
from tests.mail.imap_support import PASSWORD, deliver, logged_in, new_user, simple_message
from tests.support.servers import RunningServer, make_config, running_server
from tests.support.waiting import wait_for
from tests.web.portal_client import PortalClient

PER_PAGE = 3


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = make_config(
        tmp_path_factory.mktemp("webmail-http"),
        webmail={"messages_per_page_count": PER_PAGE},
    )
    with running_server(config, only=frozenset({"http", "smtp", "imap"})) as server:
        yield server


def inbox_uids(live: RunningServer, person: Person, count: int) -> list[int]:
    """Wait until ``count`` messages are in the INBOX; their UIDs."""
    with logged_in(live, person) as client:

        def found() -> list[int]:
            client.select_folder("INBOX", readonly=True)
            uids = client.search("ALL")
            return uids if len(uids) == count else []

        return [int(uid) for uid in wait_for(found)]


@pytest.fixture
def person(live: RunningServer) -> Person:
    found = new_user(live)
    for number, subject in enumerate(("Conseil de classe", "Bulletin", "Absence", "Zoo")):
        body = f"Message {number}\r\n" + ("x" * 70 + "\r\n") * (15 * number)
        deliver(live, found.email, simple_message(subject, body))
    inbox_uids(live, found, 4)
    return found


@pytest.fixture
def portal(live: RunningServer, person: Person) -> PortalClient:
    client = PortalClient(live.http_url)
    assert client.sign_in(person.login, PASSWORD).status == 302
    return client


def subjects(page: str) -> list[str]:
    return re.findall(r'<td class="subject">(?:<a [^>]*>)?([^<]*)', page)


def act(portal: PortalClient, folder: str, action: str, uids: list[int], **extra: str) -> int:
    token = portal.get(f"/mail/{folder}").csrf_token()
    form = [("csrf_token", token), ("action", action), *(("uid", str(u)) for u in uids)]
    form += list(extra.items())
    reply = portal.request("POST", f"/mail/{folder}/actions", form)  # type: ignore[arg-type]
    return reply.status


def test_the_mailbox_opens_on_the_inbox_with_folders_and_counts(portal: PortalClient) -> None:
    assert portal.get("/mail/").location == "/mail/INBOX"
    page = portal.get("/mail/INBOX")
    assert page.status == 200
    folders = re.findall(r'data-special="(\w+)"', page.body)
    assert folders == ["inbox", "drafts", "sent", "archive", "junk", "trash"]
    inbox = re.search(r'data-special="inbox">.*?class="unseen"[^>]*>(\d+)', page.body, re.S)
    assert inbox is not None
    assert inbox.group(1) == "4"
    # Newest first, one page of PER_PAGE.
    assert len(subjects(page.body)) == PER_PAGE
    assert "Page 1 sur 2" in page.body or "Page 1 of 2" in page.body


def test_the_list_sorts_on_the_server_and_pages(portal: PortalClient) -> None:
    first = portal.get("/mail/INBOX?sort=subject&order=asc")
    assert subjects(first.body) == ["Absence", "Bulletin", "Conseil de classe"]
    second = portal.get("/mail/INBOX?sort=subject&order=asc&page=2")
    assert subjects(second.body) == ["Zoo"]
    by_size = portal.get("/mail/INBOX?sort=size&order=desc")
    assert subjects(by_size.body) == ["Zoo", "Absence", "Bulletin"]


def test_mark_flag_move_and_delete_change_the_mailbox(
    live: RunningServer, person: Person, portal: PortalClient
) -> None:
    uids = inbox_uids(live, person, 4)
    with logged_in(live, person) as client:
        client.create_folder("Projets")
    assert act(portal, "INBOX", "read", uids[:2]) == 302
    assert act(portal, "INBOX", "flag", uids[:1]) == 302
    with logged_in(live, person) as client:
        client.select_folder("INBOX", readonly=True)
        flags = client.get_flags(uids)
    assert [b"\\Seen" in flags[u] for u in uids] == [True, True, False, False]
    assert [b"\\Flagged" in flags[u] for u in uids] == [True, False, False, False]

    assert act(portal, "INBOX", "move", uids[2:3], target="Projets") == 302
    assert act(portal, "INBOX", "delete", uids[3:]) == 302
    with logged_in(live, person) as client:
        assert client.select_folder("INBOX")[b"EXISTS"] == 2
        assert client.select_folder("Projets")[b"EXISTS"] == 1
        trash = next(n for f, _d, n in client.list_folders() if b"\\Trash" in f)
        assert client.select_folder(trash)[b"EXISTS"] == 1
    page = portal.get(f"/mail/{trash}")
    assert subjects(page.body) == ["Zoo"]
    trashed = re.findall(r'name="uid" value="(\d+)"', page.body)
    assert act(portal, trash, "delete", [int(u) for u in trashed]) == 302
    with logged_in(live, person) as client:
        assert client.select_folder(trash)[b"EXISTS"] == 0


def test_an_action_without_the_csrf_token_is_refused(
    live: RunningServer, person: Person, portal: PortalClient
) -> None:
    uids = inbox_uids(live, person, 4)
    form = [("action", "delete"), *(("uid", str(u)) for u in uids)]
    reply = portal.request("POST", "/mail/INBOX/actions", form)  # type: ignore[arg-type]
    assert reply.status == 400
    inbox_uids(live, person, 4)  # nothing moved


def test_an_unknown_folder_is_404_and_signed_out_people_are_sent_to_sign_in(
    live: RunningServer, portal: PortalClient
) -> None:
    assert portal.get("/mail/Nulle%20part").status == 404
    anonymous = PortalClient(live.http_url)
    reply = anonymous.get("/mail/INBOX")
    assert reply.status == 302
    assert "/login" in (reply.location or "")


ATTACHMENT = bytes(range(256)) * 40  # every byte value: base64 must round-trip exactly
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def rich_message(subject: str) -> bytes:
    """Text and HTML alternatives, an inline cid: image and a binary attachment."""
    message = EmailMessage()
    message["From"] = "Alice Martin <alice@outside.example>"
    message["To"] = "someone@example.org"
    message["Subject"] = subject
    message.set_content("Bonjour,\nle compte rendu est joint.\n")
    message.add_alternative(
        '<p>Bonjour,</p><p onclick="steal()">le <b>compte rendu</b> est joint.</p>'
        '<img src="cid:logo@ecole" alt="logo"><img src="https://tracker.example/p.gif">'
        "<script>alert(1)</script>",
        subtype="html",
    )
    message.get_payload()[1].add_related(PIXEL, "image", "png", cid="<logo@ecole>")
    message.add_attachment(
        ATTACHMENT, maintype="application", subtype="pdf", filename="compte rendu été.pdf"
    )
    return message.as_bytes(policy=SMTP)


def test_reading_a_message_marks_it_read_and_lists_its_attachment(
    live: RunningServer, portal: PortalClient
) -> None:
    reader = new_user(live)
    deliver(live, reader.email, rich_message("Compte rendu"))
    (uid,) = inbox_uids(live, reader, 1)
    client = PortalClient(live.http_url)
    client.sign_in(reader.login, PASSWORD)
    page = client.get(f"/mail/INBOX/{uid}")
    assert page.status == 200
    assert "Compte rendu" in page.body
    assert "frame-src 'self'" in page.headers["Content-Security-Policy"]
    assert re.search(
        r'<iframe[^>]+sandbox="allow-popups allow-popups-to-escape-sandbox"', page.body
    )
    assert "compte rendu été.pdf" in page.body
    assert 'id="images-blocked"' in page.body
    with logged_in(live, reader) as imap:
        imap.select_folder("INBOX", readonly=True)
        assert b"\\Seen" in imap.get_flags([uid])[uid]

    frame = client.get(f"/mail/INBOX/{uid}/body")
    policy = frame.headers["Content-Security-Policy"]
    assert "sandbox" in policy
    assert "script-src" not in policy
    assert "img-src data:;" in policy
    assert "<script" not in frame.body
    assert "onclick" not in frame.body
    assert "tracker.example" not in frame.body
    assert 'src="data:image/png;base64,' in frame.body
    shown = client.get(f"/mail/INBOX/{uid}/body?images=1")
    assert "https://tracker.example/p.gif" in shown.body
    assert "img-src data: https: http:;" in shown.headers["Content-Security-Policy"]

    section = re.search(rf"/mail/INBOX/{uid}/part/([0-9.]+)", page.body)
    assert section is not None
    status, headers, data = client.download(f"/mail/INBOX/{uid}/part/{section.group(1)}")
    assert (status, data) == (200, ATTACHMENT)
    disposition = headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''compte%20rendu%20%C3%A9t%C3%A9.pdf" in disposition
    assert "sandbox" in headers["Content-Security-Policy"]
    source = client.get(f"/mail/INBOX/{uid}/source")
    assert source.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert "Subject: Compte rendu" in source.body
    assert client.get(f"/mail/INBOX/{uid + 100}").status == 404
    assert client.get(f"/mail/INBOX/{uid}/part/9").status == 404


def folder_messages(live: RunningServer, person: Person, special: bytes) -> list[bytes]:
    """Every message (raw) of a person's special folder, with its flags checked later."""
    with logged_in(live, person) as client:
        name = next(n for f, _d, n in client.list_folders() if special in f)
        client.select_folder(name, readonly=True)
        fetched = client.fetch(client.search("ALL"), ["BODY.PEEK[]", "FLAGS"])
    return [data[b"BODY[]"] for data in fetched.values()] + [
        b"FLAGS:" + b" ".join(data[b"FLAGS"]) for data in fetched.values()
    ]


def test_compose_sends_through_submission_and_files_the_copy_in_sent(
    live: RunningServer, person: Person, portal: PortalClient
) -> None:
    colleague, hidden = new_user(live), new_user(live)
    fields = {
        "to": f"Collègue <{colleague.email}>",
        "cc": "",
        "bcc": hidden.email,
        "subject": "Sortie au musée",
        "body": "Bonjour,\nle car part à 8 h.\n",
    }
    reply = portal.submit("/mail/compose", fields)
    assert reply.status == 302
    assert reply.location == "/mail/INBOX"
    (received,) = [m for uid in inbox_uids(live, colleague, 1) for m in [uid]]
    with logged_in(live, colleague) as client:
        client.select_folder("INBOX", readonly=True)
        raw = client.fetch([received], ["BODY.PEEK[]"])[received][b"BODY[]"]
    parsed = email.message_from_bytes(raw, policy=default)
    assert parsed["Subject"] == "Sortie au musée"
    assert parsed["Bcc"] is None
    assert b"le car part" in raw
    assert hidden.email.encode() not in raw  # Bcc is in no header
    assert person.email.encode() in raw
    inbox_uids(live, hidden, 1)
    sent = folder_messages(live, person, b"\\Sent")
    assert len(sent) == 2
    assert b"le car part" in sent[0]
    assert b"\\Seen" in sent[1]


def test_reply_is_prefilled_and_marks_the_original_answered(
    live: RunningServer, person: Person, portal: PortalClient
) -> None:
    uids = inbox_uids(live, person, 4)
    page = portal.get(f"/mail/compose?folder=INBOX&uid={uids[0]}&mode=reply")
    assert page.status == 200
    assert 'value="Re: Conseil de classe"' in page.body
    assert "alice@outside.example" in page.body
    assert "&gt; Message 0" in page.body
    in_reply_to = re.search(r'name="in_reply_to" type="hidden" value="([^"]+)"', page.body)
    assert in_reply_to is not None
    message_id = html.unescape(in_reply_to.group(1))
    assert message_id == "<Conseil.de.classe@outside.example>"
    forward = portal.get(f"/mail/compose?folder=INBOX&uid={uids[0]}&mode=forward")
    assert 'value="Fwd: Conseil de classe"' in forward.body
    colleague = new_user(live)
    fields = {
        "to": colleague.email,
        "subject": "Re: Conseil de classe",
        "body": "D’accord.\n",
        "in_reply_to": message_id,
        "origin_folder": "INBOX",
        "origin_uid": str(uids[0]),
        "mode": "reply",
    }
    page_path = f"/mail/compose?folder=INBOX&uid={uids[0]}&mode=reply"
    assert portal.submit("/mail/compose", fields, page=page_path).status == 302
    (uid,) = inbox_uids(live, colleague, 1)
    with logged_in(live, colleague) as client:
        client.select_folder("INBOX", readonly=True)
        raw = client.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"]
    assert b"In-Reply-To: <Conseil.de.classe@outside.example>" in raw
    with logged_in(live, person) as client:
        client.select_folder("INBOX", readonly=True)
        assert b"\\Answered" in client.get_flags([uids[0]])[uids[0]]


def test_a_contacts_write_to_link_opens_compose_addressed(
    live: RunningServer, person: Person, portal: PortalClient
) -> None:
    page = portal.get("/mail/compose?to=marie.curie@example.org")
    assert page.status == 200
    assert 'value="marie.curie@example.org"' in page.body


def test_compose_refuses_bad_addresses_and_missing_csrf(
    live: RunningServer, person: Person, portal: PortalClient
) -> None:
    page = portal.submit("/mail/compose", {"to": "pas une adresse", "subject": "x", "body": "y"})
    assert page.status == 200
    assert "pas une adresse" in page.body
    assert 'class="error"' in page.body
    colleague = new_user(live)
    reply = portal.post("/mail/compose", {"to": colleague.email, "subject": "x", "body": "y"})
    assert reply.status == 400
    assert len(folder_messages(live, person, b"\\Sent")) == 0


def test_a_folder_whose_name_ends_in_digits_is_still_a_folder(
    live: RunningServer, person: Person, portal: PortalClient
) -> None:
    with logged_in(live, person) as client:
        client.create_folder("Projets")
        client.create_folder("Projets/2026")
        uids = inbox_uids(live, person, 4)
        client.select_folder("INBOX")
        client.move(uids[:1], "Projets/2026")
    page = portal.get("/mail/Projets/2026")
    assert page.status == 200
    assert subjects(page.body) == ["Conseil de classe"]
    assert portal.get("/mail/Projets/2027").status == 404


def test_the_rows_of_a_page_seen_again_follow_the_language_and_the_flags(
    live: RunningServer, person: Person, portal: PortalClient
) -> None:
    """Rows rendered once are reused only while language and messages are the same."""
    first = portal.get("/mail/INBOX")
    assert "Sélectionner" in first.body
    assert portal.get("/mail/INBOX").body.count('class="message unseen') == PER_PAGE
    reply = portal.submit("/language", {"lang-language": "en", "lang-next": "/mail/INBOX"})
    assert reply.status == 302
    english = portal.get("/mail/INBOX")
    assert "Select “" in english.body
    assert "Sélectionner" not in english.body
    uids = inbox_uids(live, person, 4)
    with logged_in(live, person) as client:  # another client reads them all
        client.select_folder("INBOX")
        client.add_flags(uids, [b"\\Seen"])
    assert portal.get("/mail/INBOX").body.count('class="message unseen') == 0


def _tree_count(page: str, name: str) -> str:
    """The unread count the tree shows beside folder ``name`` ("" for none)."""
    found = re.search(
        rf'href="/mail/{re.escape(name)}"[^>]*>.*?(?:class="unseen"[^>]*>(\d+)|</li>)', page, re.S
    )
    assert found is not None, name
    return found.group(1) or ""


def test_the_tree_shows_a_move_at_once_and_the_open_folder_on_every_page(
    live: RunningServer, person: Person, portal: PortalClient
) -> None:
    # The session keeps its tree a while (web.mail_tree_memo): its own changes drop it,
    # and the folder a page shows is asked on every page.
    uids = inbox_uids(live, person, 4)
    with logged_in(live, person) as client:
        client.create_folder("Classeur")
    portal.get("/mail/INBOX")  # the tree is kept from here (no Classeur yet)
    assert act(portal, "INBOX", "move", uids[:1], target="Classeur") == 302
    page = portal.get("/mail/INBOX").body
    assert _tree_count(page, "Classeur") == "1"
    assert _tree_count(page, "INBOX") == "3"
    deliver(live, person.email, simple_message("Nouveau", "Texte\r\n"))
    inbox_uids(live, person, 4)
    assert _tree_count(portal.get("/mail/INBOX").body, "INBOX") == "4"
