"""The compose page over real HTTP: drafts, HTML, attachments, forwarding, completion.

One server runs HTTP (with the DAV front), SMTP and IMAP in one process. What the
portal stores or sends is read back with a separate IMAP client, as the recipient
or the sender would see it.
"""

from __future__ import annotations

import base64
import email
import json
import os
import re
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest

from groupware.core.directory import Person
from groupware.web.mail_staging import STALE_SECONDS, Staging
from tests.mail.imap_support import PASSWORD, deliver, logged_in, new_user
from tests.support.servers import RunningServer, make_config, running_server
from tests.web.portal_client import PortalClient
from tests.web.test_webmail_http import ATTACHMENT, inbox_uids, rich_message

LIMIT_BYTES = 64 * 1024


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = make_config(
        tmp_path_factory.mktemp("webmail-compose"),
        webmail={"max_attachment_bytes": LIMIT_BYTES},
    )
    with running_server(config, only=frozenset({"http", "smtp", "imap"})) as server:
        yield server


@pytest.fixture
def person(live: RunningServer) -> Person:
    return new_user(live)


@pytest.fixture
def portal(live: RunningServer, person: Person) -> PortalClient:
    client = PortalClient(live.http_url)
    assert client.sign_in(person.login, PASSWORD).status == 302
    return client


def multipart(
    portal: PortalClient,
    path: str,
    fields: Sequence[tuple[str, str]],
    files: Sequence[tuple[str, str, bytes]],
    headers: Mapping[str, str] | None = None,
) -> tuple[int, str]:
    """POST a multipart/form-data body with the portal client's cookies."""
    boundary = secrets.token_hex(12)
    chunks: list[bytes] = []
    for name, value in fields:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        chunks.append(f"{head}{value}\r\n".encode())
    for name, filename, data in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        )
        chunks.append(head.encode() + data + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    request = urllib.request.Request(  # noqa: S310 - the test's own server
        portal.base_url + path,
        data=b"".join(chunks),
        method="POST",
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Referer": portal.base_url + "/mail/compose",
            **(headers or {}),
        },
    )
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(portal.cookies))
    try:
        response = opener.open(request, timeout=5)
    except urllib.error.HTTPError as error:
        response = error
    with response:
        return response.status, response.read().decode()


def token(portal: PortalClient) -> str:
    return portal.get("/mail/compose").csrf_token()


def post(portal: PortalClient, path: str, form: Sequence[tuple[str, str]]) -> tuple[int, str]:
    reply = portal.request(
        "POST",
        path,
        form,  # type: ignore[arg-type]
        {"Referer": portal.base_url + "/mail/compose"},
    )
    return reply.status, reply.body


def drafts_name(live: RunningServer, person: Person) -> str:
    with logged_in(live, person) as client:
        return str(next(n for f, _d, n in client.list_folders() if b"\\Drafts" in f))


def drafts(live: RunningServer, person: Person) -> dict[int, tuple[bytes, list[bytes]]]:
    """The Drafts folder: UID → (raw message, flags)."""
    name = drafts_name(live, person)
    with logged_in(live, person) as client:
        client.select_folder(name, readonly=True)
        fetched = client.fetch(client.search("ALL"), ["BODY.PEEK[]", "FLAGS"])
    return {uid: (d[b"BODY[]"], list(d[b"FLAGS"])) for uid, d in fetched.items()}


def upload(portal: PortalClient, csrf: str, name: str, data: bytes, *ids: str) -> tuple[int, dict]:
    status, body = multipart(
        portal,
        "/mail/compose/attachments",
        [("attachment", i) for i in ids],
        [("file", name, data)],
        {"X-CSRFToken": csrf},
    )
    return status, json.loads(body)


def received(live: RunningServer, person: Person) -> EmailMessage:
    (uid,) = inbox_uids(live, person, 1)
    with logged_in(live, person) as client:
        client.select_folder("INBOX", readonly=True)
        raw = client.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"]
    parsed = email.message_from_bytes(raw, policy=default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_a_draft_is_saved_replaced_resumed_and_removed_once_sent(
    live: RunningServer, person: Person, portal: PortalClient
) -> None:
    csrf = token(portal)
    colleague = new_user(live)
    status, staged = upload(portal, csrf, "plan.pdf", ATTACHMENT)
    assert status == 200
    form = [
        ("csrf_token", csrf),
        ("to", f"Collègue <{colleague.email}>"),
        ("bcc", "pas encore une adresse"),
        ("subject", "Sortie"),
        ("format", "html"),
        ("html_body", "<p>Premier <b>jet</b></p>"),
        ("attachment", staged["id"]),
    ]
    status, body = post(portal, "/mail/compose/autosave", form)
    assert status == 200
    first = json.loads(body)["draft_uid"]
    stored = drafts(live, person)
    assert list(stored) == [first]
    raw, flags = stored[first]
    assert b"\\Draft" in flags
    assert b"\\Seen" in flags
    assert b"pas encore une adresse" in raw  # kept as typed, even if not an address yet

    form = [(k, v) for k, v in form if k != "html_body"]
    form += [("html_body", "<p>Second <b>jet</b></p>"), ("draft_uid", str(first))]
    status, body = post(portal, "/mail/compose/autosave", form)
    second = json.loads(body)["draft_uid"]
    assert second != first
    stored = drafts(live, person)
    assert list(stored) == [second]  # one copy: the first version is gone
    assert b"Second" in stored[second][0]

    folder = urllib.parse.quote(drafts_name(live, person))
    page = portal.get(f"/mail/compose?folder={folder}&draft={second}")
    assert page.status == 200
    assert 'value="Sortie"' in page.body
    assert colleague.email in page.body
    assert "pas encore une adresse" in page.body
    assert "Second &lt;b&gt;jet&lt;/b&gt;" in page.body  # the HTML, in its hidden field
    assert "plan.pdf" in page.body
    resumed_ids = re.findall(r'name="attachment" value="([^"]+)"', page.body)
    assert len(resumed_ids) == 1
    assert f'name="draft_uid" type="hidden" value="{second}"' in page.body

    sent_form = [
        ("csrf_token", csrf),
        ("to", colleague.email),
        ("subject", "Sortie"),
        ("format", "html"),
        ("html_body", "<p>Version <b>finale</b></p>"),
        ("attachment", resumed_ids[0]),
        ("draft_uid", str(second)),
        ("action", "send"),
    ]
    status, _body = post(portal, "/mail/compose", sent_form)
    assert status == 302
    assert drafts(live, person) == {}
    message = received(live, colleague)
    (attachment,) = message.iter_attachments()
    assert attachment.get_filename() == "plan.pdf"
    assert attachment.get_content() == ATTACHMENT


def test_the_save_draft_button_works_without_script(
    live: RunningServer, person: Person, portal: PortalClient
) -> None:
    csrf = token(portal)
    fields = [("csrf_token", csrf), ("to", ""), ("subject", "Idée"), ("body", "À finir.")]
    status, body = multipart(
        portal, "/mail/compose", [*fields, ("action", "draft")], [("files", "note.txt", b"note")]
    )
    assert status == 200
    assert "note.txt" in body
    (uid,) = drafts(live, person)
    assert f'name="draft_uid" type="hidden" value="{uid}"' in body
    raw = drafts(live, person)[uid][0]
    assert b"note.txt" in raw
    assert "À finir." in email.message_from_bytes(raw, policy=default).get_body().get_content()

    status, _body = post(
        portal, "/mail/compose", [*fields, ("draft_uid", str(uid)), ("action", "discard")]
    )
    assert status == 302
    assert drafts(live, person) == {}


def test_html_is_sanitized_before_it_reaches_the_recipient(
    live: RunningServer, person: Person, portal: PortalClient
) -> None:
    colleague = new_user(live)
    hostile = (
        '<p onclick="steal()" style="background:url(https://evil.example/x)">Bonjour '
        '<b>à tous</b></p><script>alert("xss")</script><img src="https://evil.example/t.gif">'
        '<a href="javascript:alert(1)">lien</a><ul><li>un</li><li>deux</li></ul>'
    )
    form = [
        ("csrf_token", token(portal)),
        ("to", colleague.email),
        ("subject", "Réunion"),
        ("format", "html"),
        ("html_body", hostile),
    ]
    assert post(portal, "/mail/compose", form)[0] == 302
    message = received(live, colleague)
    assert message.get_content_type() == "multipart/alternative"
    html = message.get_body(preferencelist=("html",)).get_content()
    text = message.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")
    assert "<b>à tous</b>" in html
    for part in message.walk():  # in no part, decoded from its transfer encoding
        if part.get_content_maintype() == "text":
            assert "alert" not in part.get_content()
    for forbidden in ("script", "alert", "onclick", "evil.example", "javascript", "style"):
        assert forbidden not in html.lower()
    assert "Bonjour à tous" in text
    assert "- un\n- deux" in text


def test_a_reply_to_html_quotes_it_cleaned_in_a_blockquote(
    live: RunningServer, person: Person, portal: PortalClient
) -> None:
    deliver(live, person.email, rich_message("Compte rendu"))
    (uid,) = inbox_uids(live, person, 1)
    page = portal.get(f"/mail/compose?folder=INBOX&uid={uid}&mode=reply")
    field = re.search(r'name="html_body" type="hidden" value="([^"]*)"', page.body)
    assert field is not None
    quoted = field.group(1)
    assert "&lt;blockquote type=&#34;cite&#34;&gt;" in quoted
    assert "compte rendu" in quoted
    assert "script" not in quoted
    assert "onclick" not in quoted


def test_uploads_beyond_the_limit_are_refused_with_a_message(
    live: RunningServer, person: Person, portal: PortalClient
) -> None:
    csrf = token(portal)
    status, first = upload(portal, csrf, "a.bin", b"a" * (LIMIT_BYTES - 1000))
    assert status == 200
    status, refused = upload(portal, csrf, "b.bin", b"b" * 2000, first["id"])
    assert status == 413
    assert "66 k" in refused["error"]  # the limit, as people read sizes
    status, alone = upload(portal, csrf, "../../etc/b.bin", b"b" * 2000)
    assert status == 200  # without the first one, it fits
    assert alone["name"] == "b.bin"
    status, body = post(
        portal, f"/mail/compose/attachments/{first['id']}/remove", [("csrf_token", csrf)]
    )
    assert status == 200
    # Uploaded as if for two messages, then named together: refused at send.
    colleague = new_user(live)
    _status, other = upload(portal, csrf, "c.bin", b"c" * (LIMIT_BYTES - 1000))
    form = [("csrf_token", csrf), ("to", colleague.email), ("subject", "x"), ("body", "y")]
    form += [("attachment", alone["id"]), ("attachment", other["id"])]
    status, body = post(portal, "/mail/compose", form)
    assert status == 200
    assert 'class="error"' in body
    status, body = post(portal, "/mail/compose/autosave", form)
    assert status == 413
    assert drafts(live, person) == {}
    with logged_in(live, person) as client:
        sent = next(n for f, _d, n in client.list_folders() if b"\\Sent" in f)
        assert client.select_folder(sent, readonly=True)[b"EXISTS"] == 0

    staging = live.config.data_dir / "webmail-staging"
    names = [p.name for p in staging.rglob("*") if p.is_file()]
    assert first["id"] not in names
    assert alone["id"] in names
    assert not any("b.bin" in n for n in names)  # on disk by id only


def test_forward_keeps_attachments_and_forward_as_attachment_holds_the_original(
    live: RunningServer, person: Person, portal: PortalClient
) -> None:
    original = rich_message("Compte rendu")
    deliver(live, person.email, original)
    (uid,) = inbox_uids(live, person, 1)
    with logged_in(live, person) as client:
        client.select_folder("INBOX", readonly=True)
        stored = client.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"]

    page = portal.get(f"/mail/compose?folder=INBOX&uid={uid}&mode=forward")
    assert "compte rendu été.pdf" in page.body
    assert len(re.findall(r'name="attachment" value="[^"]+" checked', page.body)) == 1

    page = portal.get(f"/mail/compose?folder=INBOX&uid={uid}&mode=attach")
    assert 'value="Fwd: Compte rendu"' in page.body
    (attached,) = re.findall(r'name="attachment" value="([^"]+)"', page.body)
    colleague = new_user(live)
    form = [
        ("csrf_token", page.csrf_token()),
        ("to", colleague.email),
        ("subject", "Fwd: Compte rendu"),
        ("body", "Pour information."),
        ("attachment", attached),
    ]
    assert post(portal, "/mail/compose", form)[0] == 302
    message = received(live, colleague)
    (part,) = message.iter_attachments()
    assert part.get_content_type() == "message/rfc822"
    raw = message.as_bytes()
    start = raw.index(b"\n\n", raw.index(b"Content-Type: message/rfc822")) + 2
    assert raw[start:].replace(b"\r\n", b"\n").startswith(stored.replace(b"\r\n", b"\n"))


def test_every_compose_post_without_the_csrf_token_is_refused(
    live: RunningServer, person: Person, portal: PortalClient
) -> None:
    csrf = token(portal)
    _status, staged = upload(portal, csrf, "a.txt", b"a")
    colleague = new_user(live)
    form = [("to", colleague.email), ("subject", "x"), ("body", "y")]
    for path in ("/mail/compose", "/mail/compose/autosave"):
        assert post(portal, path, form)[0] == 400
    assert post(portal, f"/mail/compose/attachments/{staged['id']}/remove", [])[0] == 400
    status, _body = multipart(portal, "/mail/compose/attachments", [], [("file", "a", b"a")])
    assert status == 400
    assert drafts(live, person) == {}
    staging = live.config.data_dir / "webmail-staging"
    assert staged["id"] in [p.name for p in staging.rglob("*")]


VCARD = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:ines-1\r\nFN:Inès Zylberstein\r\n"
    "N:Zylberstein;Inès;;;\r\nEMAIL:ines.z@parents.example\r\nEND:VCARD\r\n"
)


def test_address_completion_finds_a_personal_contact_and_a_directory_person(
    live: RunningServer, person: Person, portal: PortalClient
) -> None:
    colleague = new_user(live)
    credential = base64.b64encode(f"{person.login}:{PASSWORD}".encode()).decode()
    request = urllib.request.Request(  # noqa: S310 - the test's own server
        f"{live.dav_url}{person.login}/contacts/ines.vcf",
        data=VCARD.encode(),
        method="PUT",
        headers={"Authorization": f"Basic {credential}", "Content-Type": "text/vcard"},
    )
    with urllib.request.urlopen(request, timeout=5) as reply:  # noqa: S310
        assert reply.status in (201, 204)

    found = json.loads(portal.get("/mail/compose/addresses?q=zylber").body)
    assert found == ["Inès Zylberstein <ines.z@parents.example>"]
    family = colleague.display_name.split()[-1]
    found = json.loads(portal.get(f"/mail/compose/addresses?q={family}").body)
    assert f"{colleague.display_name} <{colleague.email}>" in found
    assert json.loads(portal.get("/mail/compose/addresses?q=z").body) == []
    anonymous = PortalClient(live.http_url)
    assert anonymous.get("/mail/compose/addresses?q=zylber").status == 302


def test_staged_files_go_when_the_person_signs_out(
    live: RunningServer, person: Person, portal: PortalClient
) -> None:
    _status, staged = upload(portal, token(portal), "a.txt", b"a")
    staging = live.config.data_dir / "webmail-staging"
    assert staged["id"] in [p.name for p in staging.rglob("*")]
    assert portal.sign_out().status == 302
    assert staged["id"] not in [p.name for p in staging.rglob("*")]


def test_staged_files_older_than_a_day_are_swept(tmp_path: Path) -> None:
    area = Staging(tmp_path / "staging", limit_bytes=1000)
    old = area.add(7, "ancien.txt", "text/plain", b"old")
    two_days_ago = time.time() - 2 * STALE_SECONDS
    for path in (tmp_path / "staging" / "7").iterdir():
        os.utime(path, (two_days_ago, two_days_ago))
    fresh = area.add(8, "récent.txt", "text/plain; charset=utf-8", b"new")
    assert area.get(7, old.id) is None
    assert list((tmp_path / "staging" / "7").iterdir()) == []
    os.utime(tmp_path / "staging" / "7", (two_days_ago, two_days_ago))
    area.sweep()
    assert not (tmp_path / "staging" / "7").exists()  # empty for a day: gone too
    assert area.get(8, fresh.id) == fresh
    assert fresh.media_type == "text/plain"
    assert area.read(8, fresh.id) == b"new"


def test_a_resumed_reply_draft_still_marks_the_original_answered(
    live: RunningServer, person: Person, portal: PortalClient
) -> None:
    colleague = new_user(live)  # the answer goes to a colleague: no mail leaves the test
    deliver(live, person.email, rich_message("Compte rendu"))
    (uid,) = inbox_uids(live, person, 1)
    page = portal.get(f"/mail/compose?folder=INBOX&uid={uid}&mode=reply")
    form = [
        ("csrf_token", page.csrf_token()),
        ("to", colleague.email),
        ("subject", "Re: Compte rendu"),
        ("body", "Merci."),
        ("origin_folder", "INBOX"),
        ("origin_uid", str(uid)),
        ("mode", "reply"),
    ]
    status, body = post(portal, "/mail/compose/autosave", form)
    draft_uid = json.loads(body)["draft_uid"]
    folder = urllib.parse.quote(drafts_name(live, person))
    page = portal.get(f"/mail/compose?folder={folder}&draft={draft_uid}")
    assert f'name="origin_uid" type="hidden" value="{uid}"' in page.body
    assert 'name="mode" type="hidden" value="reply"' in page.body
    sent = [
        ("csrf_token", page.csrf_token()),
        ("to", colleague.email),
        ("subject", "Re: Compte rendu"),
        ("body", "Merci."),
        ("origin_folder", "INBOX"),
        ("origin_uid", str(uid)),
        ("mode", "reply"),
        ("draft_uid", str(draft_uid)),
    ]
    assert post(portal, "/mail/compose", sent)[0] == 302
    with logged_in(live, person) as client:
        client.select_folder("INBOX", readonly=True)
        assert b"\\Answered" in client.get_flags([uid])[uid]
        sent_name = next(n for f, _d, n in client.list_folders() if b"\\Sent" in f)
        client.select_folder(sent_name, readonly=True)
        (copy,) = client.fetch(client.search("ALL"), ["BODY.PEEK[]"]).values()
    assert b"X-Groupware" not in copy[b"BODY[]"]  # the draft's own header never leaves
    assert drafts(live, person) == {}
