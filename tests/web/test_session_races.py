"""The session cookie when requests of one browser overlap, over real HTTP.

The session lives in a signed cookie. A browser keeps the last ``Set-Cookie`` it
gets, so an answer that re-sends the session as its request found it, arriving after
another request changed it, puts the old session back: a background request (the
compose page's address suggestions) still on its way when "Send" was pressed lost the
"Sent" message. What these tests hold: only a request that changes the session
re-sends it; the idle timeout still ends a session, and activity alone still keeps it.

An overlap is replayed deterministically: the late request carries the cookie the
browser held before the change (what it sent), and its answer's ``Set-Cookie``, if
any, is applied after the change's, as the browser would when that answer came last.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.cookiejar import Cookie
from typing import Any

import pytest
from flask import Flask
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from groupware.core.directory import Person
from groupware.web.session_cookie import COOKIE_GRACE_SECONDS, REISSUE_AFTER_SECONDS, SessionCookie
from tests.support.servers import RunningServer, add_user, make_config, running_server
from tests.web.portal_client import PortalClient, Reply

PASSWORD = "Vague-Orange-Clavier-57"  # noqa: S105 - a test password
COOKIE = "groupware_session"
FLASH = "Toutes les autres sessions sont déconnectées."
# What Chromium sends with the compose page's fetch() and with a page load.
FETCH = {"Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}
PAGE_LOAD = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
SUGGESTIONS = "/mail/compose/addresses?q=ma"
IDLE_SECONDS = 2
# Well under the idle timeout, so each request finds the session still active.
ACTIVITY_GAP_SECONDS = 0.6
ACTIVITY_COUNT = 6

#: Read-only requests a browser may have in flight while a form is sent.
READ_ONLY = {
    "address suggestions": (SUGGESTIONS, FETCH),
    "page load": ("/account/sessions", PAGE_LOAD),
    "page load of an older browser": ("/", {}),
}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = make_config(tmp_path_factory.mktemp("session-races"))
    with running_server(config, only=frozenset({"http"})) as server:
        yield server


@pytest.fixture
def person(live: RunningServer, request: pytest.FixtureRequest) -> Person:
    # One person per test: the sessions page of one test lists none of another's.
    suffix = "".join(ch for ch in request.node.name if ch.isalpha())[-16:]
    return add_user(live.core, "Corinne", f"Course{suffix}", password=PASSWORD)


@pytest.fixture
def browser(live: RunningServer, person: Person) -> PortalClient:
    """A signed-in browser that has loaded a first page (its CSRF token is made)."""
    client = PortalClient(live.http_url)
    assert client.sign_in(person.login, PASSWORD).status == 302
    assert client.get("/").status == 200
    return client


def session_cookie(client: PortalClient) -> Cookie:
    return next(cookie for cookie in client.cookies if cookie.name == COOKIE)


def session_set_cookies(reply: Reply) -> list[str]:
    return [header for header in reply.set_cookies() if header.startswith(f"{COOKIE}=")]


def send_with(client: PortalClient, cookie: Cookie, path: str, headers: Mapping[str, str]) -> Reply:
    """GET ``path`` from ``client``'s address, carrying ``cookie`` (what it held then)."""
    sender = PortalClient(client.base_url)
    sender.cookies.set_cookie(copy.copy(cookie))
    return sender.request("GET", path, headers=headers)


def apply_set_cookie(client: PortalClient, reply: Reply) -> None:
    """What the browser does when ``reply`` arrives: keep the session cookie it sets."""
    for header in session_set_cookies(reply):
        session_cookie(client).value = header.split(";", 1)[0].partition("=")[2]


def press_sign_out_others(client: PortalClient) -> Reply:
    """The sessions page's button: a POST that flashes a message and redirects."""
    reply = client.submit("/account/sessions/revoke-others", {}, page="/account/sessions")
    assert reply.status == 302
    return reply


def signer_at(moment: float) -> type[TimestampSigner]:
    class _Then(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(moment)

    return _Then


def serializer(live: RunningServer, signed_at: float | None = None) -> URLSafeTimedSerializer:
    """The portal's cookie serializer (its secret); ``signed_at`` backdates what it signs."""
    app = Flask(__name__)
    app.secret_key = live.core.config.read_secret()
    found = SessionCookie().get_signing_serializer(app)
    assert found is not None
    if signed_at is not None:
        found.signer = signer_at(signed_at)
    return found


def lifetime(live: RunningServer) -> int:
    """How long a session cookie lasts: the idle timeout and the grace after it."""
    return live.config.http.session_idle_seconds + COOKIE_GRACE_SECONDS


def read_cookie(live: RunningServer, value: str) -> tuple[dict[str, Any], datetime]:
    data, signed_at = serializer(live).loads(value, return_timestamp=True)
    return data, signed_at


@pytest.mark.parametrize("read_only", READ_ONLY.values(), ids=READ_ONLY.keys())
@pytest.mark.parametrize("late", [True, False], ids=["answers-last", "answers-first"])
def test_a_read_only_request_overlapping_a_flash_keeps_the_flash(
    browser: PortalClient, read_only: tuple[str, dict[str, str]], late: bool
) -> None:
    path, headers = read_only
    before = copy.copy(session_cookie(browser))  # sent with the read-only request
    if late:
        press_sign_out_others(browser)
        reply = send_with(browser, before, path, headers)
        apply_set_cookie(browser, reply)
    else:
        reply = send_with(browser, before, path, headers)
        apply_set_cookie(browser, reply)
        press_sign_out_others(browser)
    assert reply.status == 200

    page = browser.get("/account/sessions")

    assert FLASH in page.body
    assert FLASH not in browser.get("/account/sessions").body  # shown once, then gone


def test_requests_that_change_nothing_set_no_session_cookie(browser: PortalClient) -> None:
    replies = {
        "home page": browser.get("/"),
        "sessions page": browser.request("GET", "/account/sessions", headers=PAGE_LOAD),
        "address suggestions": browser.request("GET", SUGGESTIONS, headers=FETCH),
        "stylesheet": browser.get("/static/portal.css"),
        "page not found": browser.get("/no-such-page"),
    }
    assert [reply.status for reply in replies.values()] == [200, 200, 200, 200, 404]
    assert {name: session_set_cookies(reply) for name, reply in replies.items()} == {
        name: [] for name in replies
    }


def test_requests_that_change_the_session_set_the_cookie(browser: PortalClient) -> None:
    flashed = press_sign_out_others(browser)
    shown = browser.get("/account/sessions")  # the flash is read, and leaves the session
    after = browser.get("/account/sessions")

    assert len(session_set_cookies(flashed)) == 1
    assert len(session_set_cookies(shown)) == 1
    assert session_set_cookies(after) == []
    assert FLASH in shown.body


def test_an_old_cookie_is_signed_again_unchanged_by_a_page_load_only(
    live: RunningServer, browser: PortalClient
) -> None:
    data, _signed_at = read_cookie(live, session_cookie(browser).value or "")
    long_ago = time.time() - REISSUE_AFTER_SECONDS - 60
    old = copy.copy(session_cookie(browser))
    old.value = serializer(live, signed_at=long_ago).dumps(data)

    fetched = send_with(browser, old, SUGGESTIONS, FETCH)
    loaded = send_with(browser, old, "/account/sessions", PAGE_LOAD)

    assert (fetched.status, loaded.status) == (200, 200)
    assert session_set_cookies(fetched) == []
    (header,) = session_set_cookies(loaded)
    again, signed_at = read_cookie(live, header.split(";", 1)[0].partition("=")[2])
    assert again == data
    assert abs((datetime.now(UTC) - signed_at).total_seconds()) < 60
    expires = next(p for p in header.split(";") if p.strip().lower().startswith("expires="))
    left = parsedate_to_datetime(expires.partition("=")[2]) - datetime.now(UTC)
    assert abs(left.total_seconds() - lifetime(live)) < 60


def test_a_cookie_past_its_lifetime_opens_no_session(
    live: RunningServer, browser: PortalClient
) -> None:
    data, _signed_at = read_cookie(live, session_cookie(browser).value or "")
    expired = copy.copy(session_cookie(browser))
    expired.value = serializer(live, signed_at=time.time() - lifetime(live) - 60).dumps(data)

    reply = send_with(browser, expired, "/", PAGE_LOAD)

    assert (reply.status, reply.location) == (302, "/login?next=%2F")


def test_activity_that_changes_nothing_keeps_the_session_and_idleness_ends_it(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    config = make_config(
        tmp_path_factory.mktemp("idle-races"), http={"session_idle_seconds": IDLE_SECONDS}
    )
    with running_server(config, only=frozenset({"http"})) as server:
        person = add_user(server.core, "Ivan", "Actif", password=PASSWORD)
        client = PortalClient(server.http_url)
        assert client.sign_in(person.login, PASSWORD).status == 302
        assert client.get("/").status == 200
        quiet = []
        for _ in range(ACTIVITY_COUNT):  # longer in all than the idle timeout
            time.sleep(ACTIVITY_GAP_SECONDS)  # the time that must pass
            reply = client.request("GET", SUGGESTIONS, headers=FETCH)
            quiet.append((reply.status, session_set_cookies(reply)))
        assert quiet == [(200, [])] * ACTIVITY_COUNT
        assert ACTIVITY_GAP_SECONDS * ACTIVITY_COUNT > IDLE_SECONDS
        assert client.get("/").status == 200

        time.sleep(IDLE_SECONDS + 1)  # the time that must pass, not a synchronisation
        reply = client.get("/")

        assert (reply.status, reply.location) == (302, "/login?next=%2F")
        page = client.get("/login?next=%2F")
        assert "Vous avez été déconnecté après un moment sans activité." in page.body
