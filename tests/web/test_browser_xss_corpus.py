"""The XSS corpus (``tests/web/xss_corpus.py``) opened one by one in a real Chromium.

Every hostile mail is delivered over SMTP (one session for the whole corpus), then
read in the webmail by one page of one browser. What counts is what the browser
did, not what our HTML looks like:

- no script ran: ``window.__xss`` is unset in the portal page and in the message
  frame, no dialog opened, no console line says ``__xss``;
- nothing left the loopback: a request interceptor on the whole context records
  (and aborts) any request to another host, and there must be none (remote images
  are blocked until asked for, so not even those);
- the frame's document holds no element or attribute that could run script or
  load anything (script, frames, objects, SVG, MathML, forms, base, meta, link,
  event handlers, javascript:/vbscript:/data: URLs, url() in styles), and the
  portal page holds no inline script, no handler attribute and no frame but the
  sandboxed message frame. Those are checked on the DOM the browser built, after
  its own parsing, which is where mutation XSS would show.
"""

from __future__ import annotations

import email
import email.policy
import re
import smtplib
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import ConsoleMessage, Dialog, Page, Route
from playwright.sync_api import Error as PlaywrightError

from tests.mail.imap_support import TIMEOUT_SECONDS, logged_in, new_user
from tests.support.servers import RunningServer, make_config, running_server
from tests.support.waiting import wait_for
from tests.web.test_browser_webmail import sign_in
from tests.web.xss_corpus import HostileMail, corpus

pytestmark = pytest.mark.browser

#: Every URL but those of the test server (http://127.0.0.1:<port>/...).
NOT_LOOPBACK = re.compile(r"^(?!https?://(?:127\.0\.0\.1|localhost)(?::\d+)?/)")
FRAME_SANDBOX = "allow-popups allow-popups-to-escape-sandbox"

#: Run in the message frame: everything in its document that could run or fetch.
FRAME_CHECK = r"""() => {
  const found = [];
  const capable = "script, iframe, frame, frameset, object, embed, applet, svg, math, "
    + "form, input, button, textarea, select, isindex, keygen, base, meta, link, style, "
    + "template, noscript, video, audio, source, track, picture, portal, animate, set, "
    + "use, image, xmp, plaintext, marquee";
  for (const el of document.body.querySelectorAll(capable)) {
    found.push("element " + el.outerHTML.slice(0, 80));
  }
  const head = [...document.head.children].map(e => e.tagName.toLowerCase()).join(",");
  if (head !== "meta,meta,style") found.push("head " + head);
  for (const el of document.querySelectorAll("*")) {
    if (el.shadowRoot) found.push("shadow root on " + el.tagName);
    for (const attr of el.attributes) {
      const name = attr.name.toLowerCase();
      const value = attr.value.replace(/[\s\u0000-\u0020]/g, "").toLowerCase();
      if (name.startsWith("on") || ["srcdoc", "formaction", "action", "xlink:href",
          "srcset", "ping", "background", "poster", "dynsrc", "lowsrc"].includes(name)) {
        found.push("attribute " + name + " on " + el.tagName);
      }
      if (/^(javascript|vbscript|livescript|data:text|data:application|data:image\/svg)/
          .test(value) || value.includes("script:")) {
        found.push("url " + name + "=" + value.slice(0, 60));
      }
      if (name === "style" && /(expression|url\(|behavior|binding|@import|image-set)/
          .test(value)) {
        found.push("style " + value.slice(0, 60));
      }
      const plain = /^(https?:|mailto:|data:image\/(png|gif|jpeg|webp);)/;
      if (["href", "src"].includes(name) && !plain.test(value)) {
        found.push("url " + name + "=" + value.slice(0, 60));
      }
    }
  }
  return {found, xss: window.__xss ?? null};
}"""

#: Run in the portal page: it must be our markup and nothing of the message's.
PAGE_CHECK = r"""() => ({
  xss: window.__xss ?? null,
  inlineScripts: [...document.scripts].filter(
    s => !s.src || !new URL(s.src).pathname.startsWith("/static/")).length,
  handlers: [...document.querySelectorAll("*")].flatMap(
    el => [...el.attributes].filter(a => a.name.toLowerCase().startsWith("on"))
      .map(a => el.tagName + "." + a.name)),
  frames: [...document.querySelectorAll("iframe, frame, object, embed")].map(
    f => f.tagName + "|" + f.id + "|" + f.getAttribute("sandbox")),
  jsUrls: [...document.querySelectorAll("[href], [src], [action]")].filter(
    e => /^\s*(javascript|vbscript|data):/i.test(
      e.getAttribute("href") || e.getAttribute("src") || e.getAttribute("action"))).length,
})"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = make_config(tmp_path_factory.mktemp("webmail-xss"))
    with running_server(config, only=frozenset({"http", "smtp", "imap"})) as server:
        yield server


def deliver_all(live: RunningServer, recipient: str, mails: list[HostileMail]) -> None:
    """The whole corpus in one SMTP session."""
    host, port = live.addresses["smtp"]
    with smtplib.SMTP(host, port, timeout=TIMEOUT_SECONDS) as smtp:
        for mail in mails:
            assert smtp.sendmail("rectorat@evil.example", [recipient], mail.raw) == {}, mail.name


def uids_by_name(live: RunningServer, person: object, count: int) -> dict[str, int]:
    """Each corpus mail's UID, read from its X-Corpus header over IMAP."""
    with logged_in(live, person) as client:  # type: ignore[arg-type]

        def all_there() -> dict[str, int]:
            client.select_folder("INBOX", readonly=True)
            uids = client.search("ALL")
            if len(uids) < count:
                return {}
            fetched = client.fetch(uids, ["BODY.PEEK[HEADER]"])
            return {
                str(
                    email.message_from_bytes(data[b"BODY[HEADER]"], policy=email.policy.compat32)[
                        "X-Corpus"
                    ]
                ): int(uid)
                for uid, data in fetched.items()
            }

        return wait_for(all_there)


def test_no_mail_of_the_xss_corpus_runs_script_or_reaches_the_network(
    open_page: Callable[..., Page], live: RunningServer
) -> None:
    mails = corpus()
    assert len(mails) >= 40
    person = new_user(live)
    deliver_all(live, person.email, mails)
    uids = uids_by_name(live, person, len(mails))
    assert set(uids) == {m.name for m in mails}

    page = sign_in(open_page, live, person)
    remote: list[str] = []
    dialogs: list[str] = []
    console: list[str] = []

    def guard(route: Route) -> None:
        remote.append(route.request.url)
        route.abort()

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    def on_console(message: ConsoleMessage) -> None:
        if "__xss" in message.text:
            console.append(message.text)

    # Matched in the browser's driver: loopback requests never wait for Python.
    page.context.route(NOT_LOOPBACK, guard)
    # The guard does catch what leaves the loopback (else the last check proves nothing).
    probe = page.context.new_page()
    with pytest.raises(PlaywrightError):
        probe.goto("http://probe.evil.example/")
    probe.close()
    # And the frame check does see what it looks for, on a page that has it.
    sample = page.context.new_page()
    sample.set_content(
        '<p onclick="x()">a</p><a href="javascript:x()">b</a><svg></svg>'
        '<div style="width: expression(x())">c</div>'
    )
    seen = " ".join(sample.evaluate(FRAME_CHECK)["found"])
    for kind in ("element <svg", "attribute onclick", "url href=javascript", "style width"):
        assert kind in seen, kind
    sample.close()
    assert remote == ["http://probe.evil.example/"]
    remote.clear()
    page.on("dialog", on_dialog)
    page.on("console", on_console)
    page.on("popup", lambda popup: remote.append("popup " + popup.url))

    problems: dict[str, object] = {}
    for mail in mails:
        uid = uids[mail.name]
        page.goto(f"{live.http_url}/mail/INBOX/{uid}")  # waits for the frame's load too
        on_page = page.evaluate(PAGE_CHECK)
        expected_frames = [f"IFRAME|message-body|{FRAME_SANDBOX}"] if mail.has_html else []
        if on_page != {
            "xss": None,
            "inlineScripts": 0,
            "handlers": [],
            "frames": expected_frames,
            "jsUrls": 0,
        }:
            problems[mail.name + " (page)"] = on_page
        if mail.has_html:
            frame = page.frame(url=re.compile(rf"/mail/INBOX/{uid}/body$"))
            assert frame is not None, mail.name
            in_frame = frame.evaluate(FRAME_CHECK)
            if in_frame != {"found": [], "xss": None}:
                problems[mail.name] = in_frame
    page.wait_for_timeout(300)  # a late timer or refresh would show now (none should)
    assert problems == {}
    assert dialogs == []
    assert console == []
    assert remote == []
    assert page.evaluate("window.__xss ?? null") is None
