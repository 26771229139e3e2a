"""The webmail in a real headless Chromium, over the real HTTP, SMTP and IMAP services.

Mail is delivered over SMTP; the person signs in, sees the folder tree with unread
counts, reads, flags, moves and deletes, and downloads an attachment whose bytes
must equal the original. A hostile HTML mail is opened and inspected from inside
its frame: nothing of its script, handlers, javascript: link, form or remote image
is active, and no request leaves the loopback until images are asked for.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Frame, Page, Route, expect

from groupware.core.directory import Person
from tests.mail.imap_support import PASSWORD, deliver, logged_in, new_user, simple_message
from tests.support.servers import RunningServer, make_config, running_server
from tests.web.test_webmail_http import ATTACHMENT, inbox_uids, rich_message

pytestmark = pytest.mark.browser

HOSTILE_HTML = """\
<html><head><style>body { background: url(https://styles.evil.example/bg.png) }</style>
<meta http-equiv="refresh" content="0;url=https://refresh.evil.example/">
<link rel="stylesheet" href="https://link.evil.example/x.css"></head>
<body>
<p id="greeting">Bonjour, voici votre bulletin.</p>
<script>window.__xss = "script";</script>
<img src="x" onerror="window.__xss = 'onerror'">
<img src="https://tracker.evil.example/pixel.gif" id="beacon">
<a href="javascript:window.__xss='link'" id="js-link">Cliquez ici</a>
<a href="https://www.education.gouv.fr/" id="good-link">Le site du ministère</a>
<form action="https://phish.evil.example/" method="post"><input name="password">
<button>Valider</button></form>
<svg onload="window.__xss='svg'"><circle r="5"/></svg>
<iframe src="https://frame.evil.example/"></iframe>
<div style="background-image: url(https://css.evil.example/a.png); color: red">rouge</div>
<p onclick="window.__xss='click'" id="clickable">Texte</p>
</body></html>
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = make_config(tmp_path_factory.mktemp("webmail-browser"))
    with running_server(config, only=frozenset({"http", "smtp", "imap"})) as server:
        yield server


def html_message(subject: str, html: str) -> bytes:
    return (
        "From: Faux Rectorat <rectorat@evil.example>\r\n"
        "To: someone@example.org\r\n"
        f"Subject: {subject}\r\n"
        "Date: Mon, 7 Feb 2022 09:30:00 +0100\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n" + html.replace("\n", "\r\n")
    ).encode()


def sign_in(open_page: Callable[..., Page], live: RunningServer, person: Person) -> Page:
    page = open_page("fr-FR", accept_downloads=True)
    page.goto(live.http_url + "/login")
    page.get_by_label("Identifiant", exact=True).fill(person.login)
    page.get_by_label("Mot de passe", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Se connecter", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Bienvenue")
    return page


def folder_link(page: Page, name: str) -> object:
    return page.locator("#folders a", has_text=name)


def test_read_flag_move_delete_and_download_in_the_browser(
    open_page: Callable[..., Page], live: RunningServer
) -> None:
    person = new_user(live)
    deliver(live, person.email, simple_message("Conseil de classe", "Rendez-vous à 17 h.\r\n"))
    deliver(live, person.email, rich_message("Compte rendu"))
    inbox_uids(live, person, 2)
    with logged_in(live, person) as client:
        client.create_folder("Projets")

    page = sign_in(open_page, live, person)
    page.get_by_role("link", name="Messagerie", exact=True).click()
    inbox = page.locator("#folders a", has_text="Boîte de réception")
    expect(inbox).to_have_attribute("aria-current", "page")
    expect(inbox.locator(".unseen")).to_contain_text("2")
    folder_names = page.locator("#folders .folder-name").all_inner_texts()
    assert folder_names[:6] == [
        "Boîte de réception",
        "Brouillons",
        "Envoyés",
        "Archives",
        "Indésirables",
        "Corbeille",
    ]
    assert "Projets" in folder_names

    page.get_by_role("link", name="Conseil de classe").click()
    expect(page.locator("#message-subject")).to_have_text("Conseil de classe")
    expect(page.locator("#message-text")).to_contain_text("Rendez-vous à 17 h.")
    expect(inbox.locator(".unseen")).to_contain_text("1")

    page.locator("#back-to-folder").click()
    page.get_by_role("link", name="Compte rendu").click()
    frame = page.frame_locator("#message-body")
    expect(frame.locator("b")).to_have_text("compte rendu")
    with page.expect_download() as info:
        page.locator("#attachments a").click()
    download = info.value
    assert download.suggested_filename == "compte rendu été.pdf"
    with open(download.path(), "rb") as saved:
        assert saved.read() == ATTACHMENT

    page.locator("#back-to-folder").click()
    expect(inbox.locator(".unseen")).to_have_count(0)
    page.get_by_label("Sélectionner «\u00a0Conseil de classe\u00a0»").check()
    page.get_by_role("button", name="Suivre", exact=True).click()
    row = page.locator("#messages tr.message", has_text="Conseil de classe")
    expect(row.locator(".mark-flagged")).to_have_count(1)

    page.get_by_label("Sélectionner «\u00a0Conseil de classe\u00a0»").check()
    page.get_by_label("Déplacer vers le dossier").select_option(label="Projets")
    page.get_by_role("button", name="Déplacer", exact=True).click()
    expect(page.locator("p.flash-success")).to_contain_text("Déplacés")
    expect(row).to_have_count(0)

    page.get_by_label("Sélectionner «\u00a0Compte rendu\u00a0»").check()
    page.get_by_role("button", name="Supprimer", exact=True).click()
    expect(page.locator("#messages tr.message")).to_have_count(0)
    page.locator("#folders a", has_text="Corbeille").click()
    expect(page.locator("#messages tr.message", has_text="Compte rendu")).to_have_count(1)
    page.get_by_label("Sélectionner «\u00a0Compte rendu\u00a0»").check()
    page.get_by_role("button", name="Supprimer définitivement", exact=True).click()
    expect(page.locator("#messages tr.message")).to_have_count(0)
    with logged_in(live, person) as client:
        assert client.select_folder("Projets")[b"EXISTS"] == 1
        flags = client.get_flags(client.search("ALL"))
        assert all(b"\\Flagged" in f for f in flags.values())


def body_frame(page: Page) -> Frame:
    """The message's frame, once its document has loaded."""
    expect(page.frame_locator("#message-body").locator("body")).not_to_be_empty()
    frame = page.frame(url=re.compile(r"/body(\?|$)"))
    assert frame is not None
    return frame


def test_hostile_html_mail_runs_nothing_and_fetches_nothing_remote(
    open_page: Callable[..., Page], live: RunningServer
) -> None:
    person = new_user(live)
    deliver(live, person.email, html_message("Bulletin", HOSTILE_HTML))
    (uid,) = inbox_uids(live, person, 1)
    page = sign_in(open_page, live, person)
    remote: list[str] = []

    def guard(route: Route) -> None:
        if urlsplit(route.request.url).hostname not in ("127.0.0.1", "localhost"):
            remote.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page.context.route("**/*", guard)
    page.goto(f"{live.http_url}/mail/INBOX/{uid}")
    frame = body_frame(page)
    # The sanitizer drops ids too: find things by their text.
    expect(frame.locator("p").first).to_contain_text("Bonjour")
    frame.get_by_text("Texte", exact=True).click()
    frame.get_by_text("Cliquez ici").click()
    page.wait_for_timeout(200)  # let any handler that survived fire (none should)

    assert page.evaluate("window.__xss") is None
    assert frame.evaluate("window.__xss") is None
    found = frame.evaluate(
        """() => ({
            scripts: document.querySelectorAll("script").length,
            forms: document.querySelectorAll("form, input, button").length,
            frames: document.querySelectorAll("iframe, svg, link, meta[http-equiv]").length,
            handlers: [...document.querySelectorAll("*")].filter(
                e => [...e.attributes].some(a => a.name.startsWith("on"))).length,
            styles: document.querySelectorAll("style").length,
            jsLinks: [...document.querySelectorAll("a")].filter(
                a => (a.getAttribute("href") || "").trim().toLowerCase().startsWith("javascript")
            ).length,
            remoteImages: [...document.images].filter(i => i.src.startsWith("http")).length,
            good: document.querySelector("a[href^='https://www.education']").rel + "|"
                + document.querySelector("a[href^='https://www.education']").target,
            red: getComputedStyle(document.querySelector("div")).color,
            background: getComputedStyle(document.querySelector("div")).backgroundImage,
        })"""
    )
    assert found == {
        "scripts": 0,
        "forms": 0,
        "frames": 0,
        "handlers": 0,
        "styles": 1,  # ours, the frame's base style; the message's was dropped
        "jsLinks": 0,
        "remoteImages": 0,
        "good": "noopener noreferrer|_blank",
        "red": "rgb(255, 0, 0)",
        "background": "none",
    }
    assert remote == []
    sandbox = page.locator("#message-body").get_attribute("sandbox") or ""
    assert "allow-scripts" not in sandbox
    assert "allow-same-origin" not in sandbox

    # The block was real: asked for, the remote image is requested (and aborted here).
    with page.expect_request(lambda request: "tracker.evil.example" in request.url):
        page.locator("#show-images").click()
    body_frame(page)
    assert not any(re.search(r"(styles|css|link|refresh|frame|phish)\.evil", u) for u in remote)


def test_reply_in_the_browser_reaches_the_sender_and_is_found_in_sent(
    open_page: Callable[..., Page], live: RunningServer
) -> None:
    person, colleague = new_user(live), new_user(live)
    message = simple_message("Sortie scolaire", "Qui accompagne jeudi ?\r\n")
    message = message.replace(b"alice@outside.example", colleague.email.encode())
    deliver(live, person.email, message)
    (uid,) = inbox_uids(live, person, 1)
    page = sign_in(open_page, live, person)
    page.goto(f"{live.http_url}/mail/INBOX/{uid}")
    page.get_by_role("link", name="Répondre", exact=True).click()
    expect(page.get_by_label("À", exact=True)).to_have_value(re.compile(colleague.email))
    expect(page.get_by_label("Objet")).to_have_value("Re: Sortie scolaire")
    expect(page.get_by_label("Message", exact=True)).to_have_value(
        re.compile("> Qui accompagne jeudi ?")
    )
    page.get_by_label("Message", exact=True).press("Control+Home")
    page.get_by_label("Message", exact=True).press_sequentially("Moi, volontiers.")
    page.get_by_role("button", name="Envoyer", exact=True).click()
    expect(page.locator("p.flash-success")).to_have_text("Message envoyé.")

    page.locator("#folders a", has_text="Envoyés").click()
    page.get_by_role("link", name="Re: Sortie scolaire").click()
    expect(page.locator("#message-text")).to_contain_text("Moi, volontiers.")
    expect(page.locator("#message-to")).to_contain_text(colleague.email)
    (received,) = inbox_uids(live, colleague, 1)
    with logged_in(live, colleague) as client:
        client.select_folder("INBOX", readonly=True)
        raw = client.fetch([received], ["BODY.PEEK[]"])[received][b"BODY[]"]
    assert b"Moi, volontiers." in raw
    with logged_in(live, person) as client:
        client.select_folder("INBOX", readonly=True)
        assert b"\\Answered" in client.get_flags([uid])[uid]
