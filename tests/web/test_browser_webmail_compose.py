"""Writing mail in a real headless Chromium: formatted text, uploads, drafts, forwarding.

The page's script is what is tested: the formatting buttons, each upload with its
progress bar, "Save draft" answered in place, address suggestions chosen with the
keyboard. What was sent or kept is read back over IMAP.
"""

from __future__ import annotations

import email
import re
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from groupware.core.directory import Person
from tests.mail.imap_support import deliver, logged_in, new_user
from tests.support.servers import RunningServer, make_config, running_server
from tests.web.test_browser_webmail import sign_in
from tests.web.test_webmail_http import ATTACHMENT, inbox_uids, rich_message

pytestmark = pytest.mark.browser

#: Big enough for the browser to report upload progress, well under the limit.
UPLOAD_BYTES = 1024 * 1024
#: Sending a message of a megabyte (DKIM, delivery, Sent copy) on a busy test machine.
SEND_TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = make_config(tmp_path_factory.mktemp("webmail-compose-browser"))
    with running_server(config, only=frozenset({"http", "smtp", "imap"})) as server:
        yield server


def received(live: RunningServer, person: Person) -> EmailMessage:
    (uid,) = inbox_uids(live, person, 1)
    with logged_in(live, person) as client:
        client.select_folder("INBOX", readonly=True)
        raw = client.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"]
    parsed = email.message_from_bytes(raw, policy=default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def special_count(live: RunningServer, person: Person, flag: bytes) -> int:
    with logged_in(live, person) as client:
        name = next(n for f, _d, n in client.list_folders() if flag in f)
        return int(client.select_folder(name, readonly=True)[b"EXISTS"])


def test_compose_html_with_two_uploads_save_resume_and_send(
    open_page: Callable[..., Page], live: RunningServer, tmp_path: Path
) -> None:
    person, colleague = new_user(live), new_user(live)
    first, second = tmp_path / "programme.pdf", tmp_path / "photo classe.jpg"
    first.write_bytes(b"%PDF" + bytes(range(256)) * (UPLOAD_BYTES // 256))
    second.write_bytes(b"\xff\xd8" + b"x" * 1000)
    page = sign_in(open_page, live, person)
    page.goto(f"{live.http_url}/mail/compose")

    to = page.locator("#to")
    expect(to).to_have_attribute("role", "combobox")
    to.press_sequentially(colleague.last_name)
    options = page.locator("#to-suggestions [role=option]")
    expect(options.first).to_contain_text(colleague.email)
    expect(to).to_have_attribute("aria-expanded", "true")
    to.press("ArrowDown")
    expect(options.first).to_have_attribute("aria-selected", "true")
    to.press("Enter")
    expect(to).to_have_value(re.compile(re.escape(f"<{colleague.email}>, ")))
    expect(page.locator("#to-suggestions")).to_be_hidden()
    to.press_sequentially(person.last_name)
    expect(options.first).to_contain_text(person.email)
    to.press("Escape")
    expect(page.locator("#to-suggestions")).to_be_hidden()
    to.fill(f"{colleague.display_name} <{colleague.email}>")

    page.locator("#subject").fill("Sortie au musée")
    editor = page.locator("#editor")
    editor.click()
    editor.press_sequentially("Bonjour, ")
    page.locator('[data-command="bold"]').click()
    editor.press_sequentially("rendez-vous à 8 h")
    expect(editor.locator("b")).to_have_text("rendez-vous à 8 h")

    page.locator("#files").set_input_files([str(first), str(second)])
    items = page.locator("#attachment-list li")
    expect(items).to_have_count(2)
    expect(items.locator("progress")).to_have_count(2)
    expect(items.locator("progress.done")).to_have_count(2)
    for item in items.all():
        expect(item.locator("progress")).to_have_attribute("value", "100")
    expect(items.locator('input[name="attachment"]:checked')).to_have_count(2)

    page.locator("#save-draft").click()
    expect(page.locator("#draft-status")).to_contain_text(re.compile(r"\d"))
    expect(page.locator("#draft_uid")).not_to_have_value("")
    assert special_count(live, person, b"\\Drafts") == 1
    page.locator("#save-draft").click()  # saved again: still one copy
    expect(page.locator("#draft-status")).to_contain_text(re.compile(r"\d"))
    assert special_count(live, person, b"\\Drafts") == 1

    page.goto(f"{live.http_url}/mail/INBOX")
    page.locator("#folders a", has_text="Brouillons").click()
    page.get_by_role("link", name="Sortie au musée").click()
    page.locator("#resume-draft").click()
    expect(page.locator("#subject")).to_have_value("Sortie au musée")
    expect(page.locator("#to")).to_have_value(re.compile(re.escape(colleague.email)))
    expect(page.locator("#editor b")).to_have_text("rendez-vous à 8 h")
    expect(page.locator("#attachment-list li")).to_have_count(2)
    page.locator("#send").click(timeout=SEND_TIMEOUT_MS)
    expect(page.locator("p.flash-success")).to_be_visible()

    assert special_count(live, person, b"\\Drafts") == 0
    page.locator("#folders a", has_text="Envoyés").click()
    expect(page.get_by_role("link", name="Sortie au musée")).to_be_visible()
    message = received(live, colleague)
    assert "<b>rendez-vous à 8 h</b>" in message.get_body(preferencelist=("html",)).get_content()
    names = sorted(a.get_filename() for a in message.iter_attachments())
    assert names == ["photo classe.jpg", "programme.pdf"]
    pdf = next(a for a in message.iter_attachments() if a.get_filename() == "programme.pdf")
    assert pdf.get_content() == first.read_bytes()


def test_forward_with_its_attachment_and_remove_an_upload(
    open_page: Callable[..., Page], live: RunningServer, tmp_path: Path
) -> None:
    person, colleague = new_user(live), new_user(live)
    deliver(live, person.email, rich_message("Compte rendu"))
    (uid,) = inbox_uids(live, person, 1)
    extra = tmp_path / "inutile.txt"
    extra.write_text("à enlever")
    page = sign_in(open_page, live, person)
    page.clock.install()  # to fast-forward to the autosave
    page.goto(f"{live.http_url}/mail/INBOX/{uid}")
    page.get_by_role("link", name="Transférer", exact=True).click()
    items = page.locator("#attachment-list li")
    expect(items).to_have_count(1)
    expect(items.first).to_contain_text("compte rendu été.pdf")
    page.locator("#files").set_input_files(str(extra))
    expect(items).to_have_count(2)
    expect(items.locator("progress.done")).to_have_count(1)
    items.nth(1).locator(".remove-attachment").click()
    expect(items).to_have_count(1)

    page.locator("#to").fill(colleague.email)
    page.locator("#editor").click()
    page.locator("#editor").press("Control+Home")
    page.locator("#editor").press_sequentially("Pour information.")
    expect(page.locator("#draft-status")).to_be_empty()
    page.clock.fast_forward("00:31")
    expect(page.locator("#draft-status")).to_contain_text(re.compile(r"\d"))
    assert special_count(live, person, b"\\Drafts") == 1
    page.locator("#to-plain").click()
    expect(page.locator("#editor")).to_be_hidden()
    expect(page.locator("#body")).to_have_value(re.compile("^Pour information."))
    page.locator("#send").click(timeout=SEND_TIMEOUT_MS)
    expect(page.locator("p.flash-success")).to_be_visible()
    assert special_count(live, person, b"\\Drafts") == 0  # the autosaved draft went
    message = received(live, colleague)
    (attachment,) = message.iter_attachments()
    assert attachment.get_filename() == "compte rendu été.pdf"
    assert attachment.get_content() == ATTACHMENT
    assert "Pour information." in message.get_body(preferencelist=("plain",)).get_content()
    assert message.get_body(preferencelist=("html",)) is None  # sent as plain text
