"""The webmail, unchanged, against Debian's Dovecot configured with a master user.

The portal signs people in against our directory, then reads their mail from a
Dovecot it only knows by ``webmail.imap_server``: implicit TLS verified against
``webmail.ca_file``, SASL PLAIN as ``webmail.master_login`` (a ``master = yes``
passdb there) with the person as authorization identity, the master password
from ``webmail.master_password_file``. Nothing of ours runs behind IMAP, so any
reliance on our own server's behaviour shows up here. Sending still goes through
our submission listener; the Sent copy lands in Dovecot.
"""

from __future__ import annotations

import email
import re
import ssl
from collections.abc import Iterator
from email.policy import default
from pathlib import Path

import pytest
from imapclient import IMAPClient

from groupware.core.directory import Person
from tests.mail.imap_support import PASSWORD, new_user, simple_message
from tests.support import dovecot
from tests.support.servers import RunningServer, add_user, make_config, running_server
from tests.web.portal_client import PortalClient
from tests.web.test_webmail_http import ATTACHMENT, rich_message, subjects

pytestmark = pytest.mark.skipif(
    not dovecot.is_available(), reason="Debian's dovecot-imapd is not installed"
)

MASTER_LOGIN = "portail-webmail"
MASTER_PASSWORD = "maitre-du-portail-2026"  # noqa: S105 - a throwaway test server's
#: The people Dovecot knows: the same logins as our directory will give them.
LOGINS = ("camille.dovecot", "bruno.dovecot")


@pytest.fixture(scope="module")
def peer() -> Iterator[dovecot.RunningDovecot]:
    users = dict.fromkeys(LOGINS, PASSWORD)
    with dovecot.running_dovecot(users, masters={MASTER_LOGIN: MASTER_PASSWORD}) as running:
        yield running


def _portal_config(tmp: Path, peer: dovecot.RunningDovecot, password: str) -> RunningServer:
    secret = tmp / "master-password"
    secret.write_text(password + "\n")
    assert peer.ca_file is not None
    config = make_config(tmp)
    # One bundle: Dovecot's CA for IMAP, our own certificate for our submission listener.
    bundle = tmp / "webmail-ca.pem"
    bundle.write_bytes(peer.ca_file.read_bytes() + config.path(config.tls.cert_file).read_bytes())
    return make_config(  # type: ignore[return-value]
        tmp,
        webmail={
            "imap_server": peer.address,
            "ca_file": str(bundle),
            "master_login": MASTER_LOGIN,
            "master_password_file": str(secret),
        },
    )


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory, peer: dovecot.RunningDovecot
) -> Iterator[RunningServer]:
    config = _portal_config(tmp_path_factory.mktemp("webmail-dovecot"), peer, MASTER_PASSWORD)
    with running_server(config, only=frozenset({"http", "smtp"})) as server:  # type: ignore[arg-type]
        yield server


def as_person(peer: dovecot.RunningDovecot, login: str) -> IMAPClient:
    """A direct IMAP client of the person at Dovecot (their own password)."""
    context = ssl.create_default_context(cafile=str(peer.ca_file))
    client = IMAPClient(peer.host, peer.port, ssl=True, ssl_context=context, timeout=30)
    client.login(login, PASSWORD)
    return client


def person_named(live: RunningServer, login: str) -> Person:
    """Our directory's person for a Dovecot login (created on first use)."""
    found = live.core.directory.find(login)
    if found is None:
        first, last = (part.capitalize() for part in login.split("."))
        found = add_user(live.core, first, last, password=PASSWORD)
    assert found.login == login
    return found


def fill(peer: dovecot.RunningDovecot, login: str, messages: list[bytes]) -> list[int]:
    """Put ``messages`` in the person's Dovecot INBOX; the INBOX's UIDs after."""
    with as_person(peer, login) as client:
        for raw in messages:
            client.append("INBOX", raw)
        client.select_folder("INBOX", readonly=True)
        return [int(uid) for uid in client.search("ALL")]


@pytest.fixture(scope="module")
def camille(live: RunningServer, peer: dovecot.RunningDovecot) -> Person:
    person = person_named(live, LOGINS[0])
    messages = [simple_message(s, f"Texte {s}\r\n") for s in ("Absence", "Bulletin", "Cantine")]
    fill(peer, person.login, [*messages, rich_message("Compte rendu")])
    return person


@pytest.fixture
def portal(live: RunningServer, camille: Person) -> PortalClient:
    client = PortalClient(live.http_url)
    assert client.sign_in(camille.login, PASSWORD).status == 302
    return client


def test_the_folder_tree_and_list_come_from_dovecot(portal: PortalClient) -> None:
    page = portal.get("/mail/INBOX")
    assert page.status == 200, page.body
    specials = re.findall(r'data-special="(\w+)"', page.body)
    assert specials == ["inbox", "drafts", "sent", "archive", "junk", "trash"]
    assert sorted(subjects(page.body)) == ["Absence", "Bulletin", "Cantine", "Compte rendu"]
    by_subject = portal.get("/mail/INBOX?sort=subject&order=asc")
    assert subjects(by_subject.body) == ["Absence", "Bulletin", "Cantine", "Compte rendu"]


def uid_of(peer: dovecot.RunningDovecot, login: str, folder: str, subject: str) -> int:
    with as_person(peer, login) as client:
        client.select_folder(folder, readonly=True)
        (uid,) = client.search(["SUBJECT", subject])
    return int(uid)


def test_reading_an_html_mail_and_its_attachment_from_dovecot(
    portal: PortalClient, peer: dovecot.RunningDovecot, camille: Person
) -> None:
    uid = uid_of(peer, camille.login, "INBOX", "Compte rendu")
    page = portal.get(f"/mail/INBOX/{uid}")
    assert page.status == 200
    assert "compte rendu été.pdf" in page.body
    frame = portal.get(f"/mail/INBOX/{uid}/body")
    assert "<b>compte rendu</b>" in frame.body
    assert "<script" not in frame.body
    assert "onclick" not in frame.body
    assert 'src="data:image/png;base64,' in frame.body  # the cid: image, inline
    section = re.search(rf"/mail/INBOX/{uid}/part/([0-9.]+)", page.body)
    assert section is not None
    status, _headers, data = portal.download(f"/mail/INBOX/{uid}/part/{section.group(1)}")
    assert (status, data) == (200, ATTACHMENT)
    with as_person(peer, camille.login) as client:
        client.select_folder("INBOX", readonly=True)
        assert b"\\Seen" in client.get_flags([uid])[uid]


def act(portal: PortalClient, action: str, uids: list[int], **extra: str) -> int:
    token = portal.get("/mail/INBOX").csrf_token()
    form = [("csrf_token", token), ("action", action), *(("uid", str(u)) for u in uids)]
    form += list(extra.items())
    return portal.request("POST", "/mail/INBOX/actions", form).status  # type: ignore[arg-type]


def test_flag_move_and_delete_change_the_dovecot_mailbox(
    portal: PortalClient, peer: dovecot.RunningDovecot, camille: Person
) -> None:
    absence = uid_of(peer, camille.login, "INBOX", "Absence")
    bulletin = uid_of(peer, camille.login, "INBOX", "Bulletin")
    cantine = uid_of(peer, camille.login, "INBOX", "Cantine")
    assert act(portal, "flag", [absence]) == 302
    assert act(portal, "unread", [absence]) == 302
    assert act(portal, "move", [bulletin], target="Archive") == 302
    assert act(portal, "delete", [cantine]) == 302
    with as_person(peer, camille.login) as client:
        client.select_folder("INBOX", readonly=True)
        assert b"\\Flagged" in client.get_flags([absence])[absence]
        assert client.search(["SUBJECT", "Bulletin"]) == []
        assert client.search(["SUBJECT", "Cantine"]) == []
        client.select_folder("Archive", readonly=True)
        assert len(client.search(["SUBJECT", "Bulletin"])) == 1
        client.select_folder("Trash", readonly=True)
        (in_trash,) = client.search(["SUBJECT", "Cantine"])
    # In the Trash, delete is for good.
    token = portal.get("/mail/Trash").csrf_token()
    form = [("csrf_token", token), ("action", "delete"), ("uid", str(in_trash))]
    assert portal.request("POST", "/mail/Trash/actions", form).status == 302  # type: ignore[arg-type]
    with as_person(peer, camille.login) as client:
        assert client.select_folder("Trash", readonly=True)[b"EXISTS"] == 0


def test_compose_sends_through_our_submission_and_files_sent_at_dovecot(
    live: RunningServer, portal: PortalClient, peer: dovecot.RunningDovecot, camille: Person
) -> None:
    colleague = new_user(live)
    fields = {"to": colleague.email, "subject": "Sortie au musée", "body": "Le car part à 8 h.\n"}
    reply = portal.submit("/mail/compose", fields)
    assert reply.status == 302
    with as_person(peer, camille.login) as client:
        client.select_folder("Sent", readonly=True)
        (uid,) = client.search("ALL")
        fetched = client.fetch([uid], ["BODY.PEEK[]", "FLAGS"])[uid]
    sent = email.message_from_bytes(fetched[b"BODY[]"], policy=default)
    assert sent["Subject"] == "Sortie au musée"
    assert camille.email in str(sent["From"])
    assert b"\\Seen" in fetched[b"FLAGS"]


def test_a_wrong_master_password_is_a_clear_503_not_a_traceback(
    tmp_path: Path, peer: dovecot.RunningDovecot
) -> None:
    config = _portal_config(tmp_path, peer, "pas-le-bon-mot-de-passe")
    with running_server(config, only=frozenset({"http"})) as server:  # type: ignore[arg-type]
        person = person_named(server, LOGINS[1])
        client = PortalClient(server.http_url)
        assert client.sign_in(person.login, PASSWORD).status == 302
        page = client.get("/mail/INBOX")
    assert page.status == 503
    assert "Traceback" not in page.body
    assert "auth" in peer.log_text().lower()
