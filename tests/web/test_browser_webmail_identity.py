"""Choosing the identity on the compose page in a real headless Chromium.

What is tested is the page's script (``static/mail-identity.js``): changing the
"From" select swaps the signature the page put in, in the HTML editor and in
plain text, and leaves alone a signature the person changed. What was sent is
read back over IMAP, as the recipient sees it.
"""

from __future__ import annotations

import email
import re
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.policy import default

import pytest
from playwright.sync_api import Page, expect

from tests.mail.imap_support import deliver, logged_in, new_user, simple_message
from tests.support.servers import RunningServer, make_config, running_server
from tests.web.test_browser_webmail import sign_in
from tests.web.test_webmail_http import inbox_uids

pytestmark = pytest.mark.browser

OWN_SIGNATURE = "Inès Martin\nCPE"
ALIAS_SIGNATURE = "Vie scolaire\nLycée Joffre"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = make_config(tmp_path_factory.mktemp("webmail-identity-browser"))
    with running_server(config, only=frozenset({"http", "smtp", "imap"})) as server:
        yield server


def test_changing_the_identity_swaps_the_signature_and_sends_as_it(
    open_page: Callable[..., Page], live: RunningServer
) -> None:
    person, colleague = new_user(live), new_user(live)
    directory, prefs = live.core.directory, live.core.mail_preferences
    alias = directory.add_alias(person.login, f"{person.login}.vs@{directory.domain}", actor="t")
    prefs.set_identity(person, person.email, display_name="", signature=OWN_SIGNATURE)
    prefs.set_identity(person, alias, display_name="Vie scolaire", signature=ALIAS_SIGNATURE)
    page = sign_in(open_page, live, person)
    page.goto(f"{live.http_url}/mail/compose")

    select = page.get_by_label("De", exact=True)
    expect(select).to_have_value(person.email)
    signature = page.locator("#editor div.signature")
    expect(signature).to_have_count(1)
    expect(signature).to_contain_text("Inès Martin")
    page.locator("#editor").focus()
    page.keyboard.press("Control+Home")
    page.keyboard.type("Bonjour à tous,")
    select.select_option(alias)
    expect(signature).to_have_count(1)
    expect(signature).to_contain_text("Lycée Joffre")
    expect(page.locator("#editor")).not_to_contain_text("Inès Martin")
    expect(page.locator("#editor")).to_contain_text("Bonjour à tous,")

    page.locator("#to").fill(colleague.email)
    page.locator("#subject").fill("Conseil de discipline")
    page.locator("#send").click()
    expect(page.locator("p.flash-success")).to_be_visible()
    (uid,) = inbox_uids(live, colleague, 1)
    with logged_in(live, colleague) as client:
        client.select_folder("INBOX", readonly=True)
        raw = client.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"]
    message = email.message_from_bytes(raw, policy=default)
    assert isinstance(message, EmailMessage)
    assert message["From"].addresses[0].addr_spec == alias
    assert message["From"].addresses[0].display_name == "Vie scolaire"
    sent_html = message.get_body(preferencelist=("html",)).get_content()
    assert '<div class="signature">-- <br>Vie scolaire<br>Lycée Joffre</div>' in sent_html
    text = message.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")
    assert "Bonjour à tous," in text
    assert "\n-- \nVie scolaire\nLycée Joffre" in text
    assert "Inès Martin" not in text + sent_html

    # Plain text: a reply's signature above the quote is swapped, unless changed by hand.
    deliver(live, person.email, simple_message("Retard"))
    (original,) = inbox_uids(live, person, 1)
    page.goto(f"{live.http_url}/mail/compose?folder=INBOX&uid={original}&mode=reply")
    body = page.locator("#body")
    expect(body).to_be_visible()
    expect(body).to_have_value(re.compile(r"^\n\n-- \nInès Martin\nCPE\n\n.*\n> Bonjour,", re.S))
    select.select_option(alias)
    swapped = re.compile(r"^\n\n-- \nVie scolaire\nLycée Joffre\n\n.*> Bonjour", re.S)
    expect(body).to_have_value(swapped)
    expect(body).not_to_have_value(re.compile("Inès Martin"))
    body.fill(body.input_value().replace("Lycée Joffre", "Lycée Joffre (bureau 12)"))
    select.select_option(person.email)
    expect(body).to_have_value(re.compile(re.escape("Lycée Joffre (bureau 12)")))
    expect(body).not_to_have_value(re.compile("Inès Martin"))
