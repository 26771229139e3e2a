"""Writing as an identity over real HTTP: aliases, groups, signatures, replies, drafts.

One server runs HTTP, SMTP and IMAP. The person gets an alias and a hand-made
group from the directory, as an administrator would give them; what the portal
sends or keeps is read back over IMAP, as the recipient or the sender sees it.
"""

from __future__ import annotations

import email
import html
import json
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default

import pytest

from groupware.core.directory import Person
from tests.mail.imap_support import PASSWORD, deliver, logged_in, new_user
from tests.support.servers import RunningServer, make_config, running_server
from tests.web.portal_client import PortalClient
from tests.web.test_webmail_compose_http import drafts_name, post
from tests.web.test_webmail_http import inbox_uids

COMPOSE = "/mail/compose"
NOT_YOURS = "Vous ne pouvez pas envoyer avec cette adresse."
#: Long enough for a message the submission accepted to have been delivered.


@dataclass(frozen=True)
class Writer:
    """A person with an alias and a custom group they may send as."""

    person: Person
    alias: str
    group: str  # the group's name
    group_address: str


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = make_config(tmp_path_factory.mktemp("webmail-identity"))
    with running_server(config, only=frozenset({"http", "smtp", "imap"})) as server:
        yield server


@pytest.fixture
def writer(live: RunningServer) -> Writer:
    person, directory = new_user(live), live.core.directory
    alias = directory.add_alias(person.login, f"{person.login}.vie@{directory.domain}", actor="t")
    group = f"theatre-{person.id}"
    directory.add_group(group, "Club théâtre", actor="t")
    directory.add_member(group, person.login, actor="t")
    return Writer(person, alias, group, f"{group}@{directory.domain}")


@pytest.fixture
def portal(live: RunningServer, writer: Writer) -> PortalClient:
    client = PortalClient(live.http_url)
    assert client.sign_in(writer.person.login, PASSWORD).status == 302
    return client


def options(page: str) -> list[str]:
    return re.findall(r'<option value="([^"]+)" data-signature', page)


def selected(page: str) -> str:
    found = re.findall(r'<option value="([^"]+)" data-signature[^>]*\sselected>', page)
    assert len(found) == 1, found
    return found[0]


def body_of(page: str) -> str:
    found = re.search(r'<textarea[^>]*name="body"[^>]*>(.*?)</textarea>', page, re.S)
    assert found is not None
    # The newline after <textarea> is markup (WTForms adds it; HTML parsers drop it).
    return html.unescape(found.group(1)).replace("\r\n", "\n").removeprefix("\n")


def html_body_of(page: str) -> str:
    found = re.search(r'name="html_body" type="hidden" value="([^"]*)"', page)
    assert found is not None
    return html.unescape(found.group(1))


def letter(subject: str, *, to: str, cc: str = "", delivered_to: str = "") -> bytes:
    """A plain-text message from outside, addressed as given."""
    message = EmailMessage()
    message["From"] = "Alice <alice@outside.example>"
    message["To"] = to
    if cc:
        message["Cc"] = cc
    if delivered_to:
        message["Delivered-To"] = delivered_to
    message["Subject"] = subject
    message["Message-ID"] = f"<{subject.replace(' ', '.')}@outside.example>"
    message.set_content("Bonjour,\nla répétition est jeudi.\n")
    return message.as_bytes()


def received(live: RunningServer, person: Person) -> EmailMessage:
    (uid,) = inbox_uids(live, person, 1)
    with logged_in(live, person) as client:
        client.select_folder("INBOX", readonly=True)
        raw = client.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"]
    parsed = email.message_from_bytes(raw, policy=default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def sent_froms(live: RunningServer, person: Person) -> list[str]:
    with logged_in(live, person) as client:
        name = next(n for f, _d, n in client.list_folders() if b"\\Sent" in f)
        client.select_folder(name, readonly=True)
        fetched = client.fetch(client.search("ALL"), ["BODY.PEEK[HEADER]"])
    return [
        str(email.message_from_bytes(d[b"BODY[HEADER]"], policy=default)["From"])
        for d in fetched.values()
    ]


def send(portal: PortalClient, identity: str, to: str, subject: str) -> tuple[int, str]:
    fields = [
        ("csrf_token", portal.get(COMPOSE).csrf_token()),
        ("identity", identity),
        ("to", to),
        ("subject", subject),
        ("body", "Bonjour,\nrendez-vous jeudi.\n"),
    ]
    return post(portal, COMPOSE, fields)


def test_the_page_offers_every_identity_and_sends_as_the_chosen_one(
    live: RunningServer, writer: Writer, portal: PortalClient
) -> None:
    person, prefs = writer.person, live.core.mail_preferences
    prefs.set_identity(person, writer.alias, display_name="Vie scolaire", signature="")
    prefs.set_identity(person, writer.group_address, display_name="Club théâtre", signature="")
    page = portal.get(COMPOSE)
    assert options(page.body) == [writer.person.email, writer.alias, writer.group_address]
    assert selected(page.body) == writer.person.email
    assert "Club théâtre &lt;" in page.body  # name and address in the option

    colleague = new_user(live)
    assert send(portal, writer.alias, colleague.email, "Absences")[0] == 302
    message = received(live, colleague)
    assert message["From"].addresses[0].addr_spec == writer.alias
    assert message["From"].addresses[0].display_name == "Vie scolaire"
    assert message["Return-Path"] == f"<{person.email}>"  # the envelope stays the person's

    other = new_user(live)
    assert send(portal, writer.group_address, other.email, "Répétition")[0] == 302
    message = received(live, other)
    assert message["From"].addresses[0].addr_spec == writer.group_address
    assert message["From"].addresses[0].display_name == "Club théâtre"
    # Encoded by the email package (RFC 2047), not sent as raw 8-bit in the header.
    raw_from = message.as_bytes().split(b"\nFrom: ", 1)[1].split(b"\n", 1)[0]
    assert b"=?utf-8?" in raw_from.lower()
    froms = sent_froms(live, writer.person)
    assert sorted(froms) == sorted(
        [f"Vie scolaire <{writer.alias}>", f"Club théâtre <{writer.group_address}>"]
    )


def test_an_address_the_person_may_not_send_as_is_refused_and_nothing_leaves(
    live: RunningServer, writer: Writer, portal: PortalClient
) -> None:
    colleague = new_user(live)
    school_group = f"profs-{writer.person.id}"
    live.core.directory.add_group(school_group, "Professeurs", actor="t", kind="school")
    live.core.directory.add_member(school_group, writer.person.login, actor="t")
    live.core.directory.remove_member(writer.group, writer.person.login, actor="t")
    refused = [
        colleague.email,  # someone else's address
        "directeur@example.org",
        f"{school_group}@{live.core.directory.domain}",  # a list, not an identity
        writer.group_address,  # a group they left
    ]
    for address in refused:
        status, body = send(portal, address, colleague.email, "Usurpation")
        assert status == 200, address
        assert NOT_YOURS in body
        assert 'aria-invalid="true" aria-describedby="identity-help"' in body
    trail = live.core.audit.recent(event_prefix="mail.send_as_refused", actor=writer.person.login)
    assert [(r.detail, r.outcome) for r in trail] == [(a, "refused") for a in refused[::-1]]
    assert send(portal, writer.alias, colleague.email, "Légitime")[0] == 302
    # Waits for the legitimate one; a refused one, had it left, would have its copy in
    # Sent, filled before each send is answered (checked below), and would most likely
    # be in the inbox by now too (spooled first).
    assert received(live, colleague)["Subject"] == "Légitime"
    assert len(sent_froms(live, writer.person)) == 1


def test_a_reply_starts_as_the_identity_the_original_was_sent_to(
    live: RunningServer, writer: Writer, portal: PortalClient
) -> None:
    person = writer.person
    deliver(live, person.email, letter("Au groupe", to=writer.group_address))
    deliver(live, person.email, letter("En copie", to="x@outside.example", cc=writer.alias))
    deliver(
        live,
        person.email,
        letter("Par liste", to="liste@outside.example", delivered_to=writer.alias),
    )
    deliver(live, person.email, letter("Personnel", to=person.email))
    uids = inbox_uids(live, person, 4)
    expected = [writer.group_address, writer.alias, writer.alias, person.email]
    for uid, address in zip(uids, expected, strict=True):
        page = portal.get(f"{COMPOSE}?folder=INBOX&uid={uid}&mode=reply")
        assert selected(page.body) == address, uid
    page = portal.get(f"{COMPOSE}?folder=INBOX&uid={uids[0]}&mode=all")
    assert selected(page.body) == writer.group_address
    cc = re.search(r'name="cc" type="text" value="([^"]*)"', page.body)
    assert cc is None or writer.group_address not in cc.group(1)  # not answering oneself
    forward = portal.get(f"{COMPOSE}?folder=INBOX&uid={uids[0]}&mode=forward")
    assert selected(forward.body) == person.email  # a forward starts as the default


def test_the_signature_is_put_once_above_the_quote_and_not_again_on_resume(
    live: RunningServer, writer: Writer, portal: PortalClient
) -> None:
    person, prefs = writer.person, live.core.mail_preferences
    prefs.set_identity(person, person.email, display_name="", signature="Inès <CPE>\nLycée")
    prefs.set_identity(person, writer.alias, display_name="Vie scolaire", signature="La vie sco")
    own_block, alias_block = "-- \nInès <CPE>\nLycée", "-- \nLa vie sco"

    page = portal.get(COMPOSE)
    assert body_of(page.body) == f"\n\n{own_block}\n"
    assert html_body_of(page.body) == (
        '<p><br></p><div class="signature">-- <br>Inès &lt;CPE&gt;<br>Lycée</div>'
    )
    assert f'data-signature-text="{html.escape(alias_block)}"' in page.body

    deliver(live, person.email, letter("Sortie", to=writer.alias))
    (uid,) = inbox_uids(live, person, 1)
    reply = portal.get(f"{COMPOSE}?folder=INBOX&uid={uid}&mode=reply")
    text = body_of(reply.body)
    assert text.count("-- \n") == 1
    assert text.startswith(f"\n\n{alias_block}\n\n")  # the identity it was sent to
    assert text.index(alias_block) < text.index("> Bonjour,")

    fields = [
        ("csrf_token", reply.csrf_token()),
        ("identity", writer.alias),
        ("to", "alice@outside.example"),
        ("subject", "Re: Sortie"),
        ("body", "Entendu.\n" + text),
        ("origin_folder", "INBOX"),
        ("origin_uid", str(uid)),
        ("mode", "reply"),
    ]
    status, answer = post(portal, "/mail/compose/autosave", fields)
    assert status == 200
    draft_uid = json.loads(answer)["draft_uid"]
    folder = urllib.parse.quote(drafts_name(live, person))
    resumed = portal.get(f"{COMPOSE}?folder={folder}&draft={draft_uid}")
    assert selected(resumed.body) == writer.alias  # the identity it was saved as
    resumed_text = body_of(resumed.body)
    assert resumed_text.count("-- \n") == 1
    assert resumed_text.startswith("Entendu.\n")
    assert own_block not in resumed_text
