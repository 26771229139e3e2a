"""The portal over real HTTP: CSRF, headers, cookies, redirects, throttling, sessions.

Most tests talk to ``groupware serve`` on 127.0.0.1 (port 0) with urllib; a few
view-level checks use Flask's test client on the same application.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from groupware.app import build_http_app
from groupware.core.services import Core
from tests.support.servers import RunningServer, add_user, make_config, running_server
from tests.web.portal_client import PortalClient, Reply, import_person

GOOD_PASSWORD = "Vague-Orange-Clavier-57"  # noqa: S105 - a test password


@pytest.fixture
def client(server: RunningServer) -> PortalClient:
    """A French-speaking browser, as far as the portal can tell."""
    return PortalClient(server.http_url)


@pytest.fixture
def ready(server: RunningServer) -> str:
    """The login of an account whose password is already set (no forced change)."""
    return add_user(server.core, "Paul", "Martin", password=GOOD_PASSWORD).login


def assert_redirects_to(reply: Reply, path: str) -> None:
    assert reply.status in (301, 302, 303), (reply.status, reply.body[:200])
    assert reply.location == path


# --- CSRF and security headers ---------------------------------------------------------


def test_login_post_without_csrf_token_is_refused_400(
    server: RunningServer, client: PortalClient
) -> None:
    imported = import_person(server.core.directory)
    client.get("/login")  # a session exists, only the token is missing
    reply = client.post("/login", {"identifier": imported.login, "password": imported.numen})
    assert reply.status == 400
    assert "Le formulaire a expiré" in reply.body
    assert not client.is_signed_in()
    assert_redirects_to(client.get("/"), "/login?next=%2F")


def test_logout_without_csrf_token_keeps_the_session(
    server: RunningServer, client: PortalClient, ready: str
) -> None:
    assert_redirects_to(client.sign_in(ready, GOOD_PASSWORD), "/")
    assert client.post("/logout", {}).status == 400
    assert client.is_signed_in()


def _security_pages(client: PortalClient, login: str) -> Iterator[tuple[str, Reply]]:
    yield "login page", client.get("/login")
    yield "redirect to sign-in", client.get("/")
    yield "stylesheet", client.get("/static/portal.css")
    yield "script", client.get("/static/portal.js")
    yield "not found", client.get("/no-such-page")
    yield "CSRF refusal", client.post("/login", {"identifier": "x", "password": "y"})
    yield "failed sign-in", client.sign_in(login, "wrong password")
    yield "well-known", client.get("/.well-known/caldav")
    yield "sign-in", client.sign_in(login, GOOD_PASSWORD)
    yield "home page", client.get("/")
    yield "password page", client.get("/password")
    yield "GET logout", client.get("/logout")


def test_security_headers_on_every_page(client: PortalClient, ready: str) -> None:
    seen = []
    for name, reply in _security_pages(client, ready):
        headers = reply.headers
        csp = headers.get("Content-Security-Policy", "")
        assert "default-src 'none'" in csp, name
        assert "frame-ancestors 'none'" in csp, name
        assert "'unsafe-inline'" not in csp, name
        assert "'unsafe-eval'" not in csp, name
        assert headers.get("X-Frame-Options") == "DENY", name
        assert headers.get("X-Content-Type-Options") == "nosniff", name
        # same-origin, not no-referrer: over HTTPS the CSRF check needs the Referer.
        assert headers.get("Referrer-Policy") == "same-origin", name
        seen.append((name, reply.status))
    assert [status for _name, status in seen] == [
        200, 302, 200, 200, 404, 400, 401, 301, 302, 200, 200, 405,
    ]  # fmt: skip


def test_html_pages_are_not_cached(client: PortalClient, ready: str) -> None:
    client.sign_in(ready, GOOD_PASSWORD)
    assert client.get("/").headers.get("Cache-Control") == "no-store"


# --- session cookie ----------------------------------------------------------------------


def _session_cookie(reply: Reply) -> list[str]:
    cookies = [c for c in reply.set_cookies() if c.startswith("groupware_session=")]
    assert cookies, reply.set_cookies()
    return [part.strip().lower() for part in cookies[-1].split(";")]


def test_session_cookie_is_httponly_and_samesite_lax_over_http(
    client: PortalClient, ready: str
) -> None:
    reply = client.sign_in(ready, GOOD_PASSWORD)
    assert_redirects_to(reply, "/")
    attributes = _session_cookie(reply)
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "secure" not in attributes  # plain HTTP: a Secure cookie would never come back
    assert "Strict-Transport-Security" not in reply.headers


def test_session_cookie_is_secure_over_https(server: RunningServer, ready: str) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the data folder's self-signed certificate
    client = PortalClient(server.https_url, ssl_context=context)
    reply = client.sign_in(ready, GOOD_PASSWORD)
    assert_redirects_to(reply, "/")
    attributes = _session_cookie(reply)
    assert {"secure", "httponly", "samesite=lax"} <= set(attributes)
    assert reply.headers.get("Strict-Transport-Security", "").startswith("max-age=")
    assert client.is_signed_in()


# --- redirects after sign-in -----------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "https://evil.example",
        "/\\evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        "https:/evil.example",
        "evil.example",
    ],
)
def test_next_open_redirect_attempts_land_on_home(
    client: PortalClient, ready: str, target: str
) -> None:
    assert_redirects_to(client.sign_in(ready, GOOD_PASSWORD, next_path=target), "/")


def test_next_path_on_this_site_is_followed(client: PortalClient, ready: str) -> None:
    assert_redirects_to(client.sign_in(ready, GOOD_PASSWORD, next_path="/password"), "/password")


def test_sign_in_goes_back_to_the_page_that_asked_for_it(client: PortalClient, ready: str) -> None:
    assert_redirects_to(client.get("/password"), "/login?next=%2Fpassword")
    page = client.get("/login?next=%2Fpassword")
    assert 'name="next" type="hidden" value="/password"' in page.body
    assert_redirects_to(client.sign_in(ready, GOOD_PASSWORD, next_path="/password"), "/password")


def test_language_switch_refuses_foreign_next(client: PortalClient) -> None:
    reply = client.submit("/language", {"lang-language": "en", "lang-next": "//evil.example"})
    assert_redirects_to(reply, "/")


# --- throttling --------------------------------------------------------------------------


def test_fourth_attempt_after_three_failures_is_refused_429(tmp_path: Path) -> None:
    config = make_config(tmp_path, auth={"max_failures_count": 3, "delay_after_failures_count": 1})
    with running_server(config) as server:
        login = add_user(server.core, "Paul", "Martin", password=GOOD_PASSWORD).login
        client = PortalClient(server.http_url)
        for _attempt in range(3):
            reply = client.sign_in(login, "not the password")
            assert reply.status == 401
            assert "Identifiant ou mot de passe incorrect." in reply.body
        reply = client.sign_in(login, GOOD_PASSWORD)
        assert reply.status == 429
        assert "Trop de tentatives infructueuses." in reply.body
        assert not client.is_signed_in()


def test_password_change_form_is_throttled_too(tmp_path: Path) -> None:
    config = make_config(tmp_path, auth={"max_failures_count": 3, "delay_after_failures_count": 1})
    with running_server(config) as server:
        person = add_user(server.core, "Paul", "Martin", password=GOOD_PASSWORD)
        login = person.login
        client = PortalClient(server.http_url)
        assert_redirects_to(client.sign_in(login, GOOD_PASSWORD), "/")
        for _attempt in range(3):
            reply = client.change_password("not the password", "Autre-Phrase-Longue-42")
            assert reply.status == 400
            assert "Le mot de passe actuel est incorrect." in reply.body
        reply = client.change_password(GOOD_PASSWORD, "Autre-Phrase-Longue-42")
        assert reply.status == 429
        assert "Trop de tentatives infructueuses." in reply.body
        assert server.core.directory.get(login).credential_version == person.credential_version


# --- sign-out ----------------------------------------------------------------------------


def test_get_logout_is_not_allowed(client: PortalClient, ready: str) -> None:
    client.sign_in(ready, GOOD_PASSWORD)
    reply = client.get("/logout")
    assert reply.status == 405
    assert "POST" in reply.headers.get("Allow", "")
    assert "Cette page ne peut pas être utilisée de cette façon." in reply.body
    assert client.is_signed_in()


def test_sign_out_ends_the_session(client: PortalClient, ready: str) -> None:
    client.sign_in(ready, GOOD_PASSWORD)
    assert_redirects_to(client.sign_out(), "/login")
    assert "Déconnexion réussie." in client.get("/login").body
    assert not client.is_signed_in()


# --- forced password change and sessions -------------------------------------------------


def test_must_change_user_cannot_reach_home_until_changed(
    server: RunningServer, client: PortalClient
) -> None:
    imported = import_person(server.core.directory)
    assert_redirects_to(client.sign_in(imported.login, imported.numen), "/password")
    assert_redirects_to(client.get("/"), "/password")
    assert client.get("/no-such-page").status == 404  # errors stay errors
    reply = client.change_password(imported.numen, "court")
    assert reply.status == 400
    assert "Le mot de passe doit comporter au moins 12 caractères." in reply.body
    assert_redirects_to(client.get("/"), "/password")
    assert_redirects_to(client.change_password(imported.numen, GOOD_PASSWORD), "/")
    home = client.get("/")
    assert home.status == 200
    assert "Votre mot de passe a été modifié." in home.body
    assert not server.core.directory.get(imported.login).must_change_password


def test_password_change_ends_the_other_sessions(server: RunningServer, ready: str) -> None:
    here, elsewhere = PortalClient(server.http_url), PortalClient(server.http_url)
    here.sign_in(ready, GOOD_PASSWORD)
    elsewhere.sign_in(ready, GOOD_PASSWORD)
    assert here.is_signed_in()
    assert elsewhere.is_signed_in()
    stolen = PortalClient(server.http_url)
    for cookie in here.cookies:
        stolen.cookies.set_cookie(cookie)  # the cookie as it was before the change

    assert_redirects_to(here.change_password(GOOD_PASSWORD, "Autre-Phrase-Longue-42"), "/")
    assert here.is_signed_in()
    assert_redirects_to(elsewhere.get("/"), "/login?next=%2F")
    assert not stolen.is_signed_in()


def test_wrong_current_password_is_refused(client: PortalClient, ready: str) -> None:
    client.sign_in(ready, GOOD_PASSWORD)
    reply = client.change_password("not it", "Autre-Phrase-Longue-42")
    assert reply.status == 400
    assert "Le mot de passe actuel est incorrect." in reply.body


# --- home page, discovery and language ---------------------------------------------------


def test_home_lists_the_collections_with_full_urls(
    server: RunningServer, client: PortalClient, ready: str
) -> None:
    client.sign_in(ready, GOOD_PASSWORD)
    body = client.get("/").body
    assert f"{ready}@example.org" in body
    assert f"{server.http_url}/dav/{ready}/calendar/" in body
    assert f"{server.http_url}/dav/{ready}/contacts/" in body
    assert "Agenda personnel" in body
    assert "Contacts personnels" in body


@pytest.mark.parametrize("path", ["/.well-known/caldav", "/.well-known/carddav"])
def test_well_known_redirects_to_dav(client: PortalClient, path: str) -> None:
    assert_redirects_to(client.get(path), "/dav/")


@pytest.mark.parametrize(
    ("browser", "calendar"),
    [("fr-FR,fr;q=0.9", "Agenda personnel"), ("en-US", "Personal calendar")],
)
def test_first_sign_in_records_the_browser_language(
    server: RunningServer, browser: str, calendar: str
) -> None:
    imported = import_person(server.core.directory)
    client = PortalClient(server.http_url, language=browser)
    client.sign_in(imported.login, imported.numen)
    client.change_password(imported.numen, GOOD_PASSWORD)
    assert server.core.directory.get(imported.login).language == browser[:2]
    assert calendar in client.get("/").body


def test_established_account_keeps_its_language_on_another_browser(
    server: RunningServer, ready: str
) -> None:
    client = PortalClient(server.http_url, language="en-US")
    assert "Sign in" in client.get("/login").body  # before sign-in: the browser's language
    client.sign_in(ready, GOOD_PASSWORD)
    body = client.get("/").body
    assert '<html lang="fr">' in body  # after: the account's
    assert server.core.directory.get(ready).language == "fr"


def test_language_switch_when_signed_in_is_stored_on_the_account(
    server: RunningServer, client: PortalClient, ready: str
) -> None:
    client.sign_in(ready, GOOD_PASSWORD)
    reply = client.submit("/language", {"lang-language": "en", "lang-next": "/"}, page="/")
    assert_redirects_to(reply, "/")
    assert server.core.directory.get(ready).language == "en"
    assert '<html lang="en">' in client.get("/").body
    other = PortalClient(server.http_url, language="fr")
    other.sign_in(ready, GOOD_PASSWORD)
    assert "Your calendars" in other.get("/").body


def test_language_switch_rejects_unknown_languages(
    server: RunningServer, client: PortalClient
) -> None:
    reply = client.submit("/language", {"lang-language": "de", "lang-next": "/login"})
    assert_redirects_to(reply, "/login")
    assert '<html lang="fr">' in client.get("/login").body


# --- view level (Flask test client) ------------------------------------------------------


def test_error_pages_follow_the_language(core: Core) -> None:
    app = build_http_app(core)
    with app.test_client() as flask_client:
        french = flask_client.get("/nowhere", headers={"Accept-Language": "fr"})
        english = flask_client.get("/nowhere", headers={"Accept-Language": "en"})
        assert french.status_code == english.status_code == 404
        assert "Cette page n’existe pas." in french.text
        assert "This page does not exist." in english.text
        french.close()
        english.close()


def test_language_menu_after_a_failed_post_returns_to_the_same_page(core: Core) -> None:
    app = build_http_app(core)
    app.config["WTF_CSRF_ENABLED"] = False
    with app.test_client() as flask_client:
        reply = flask_client.post("/login", data={"identifier": "nobody", "password": "x"})
        assert reply.status_code == 401
        assert 'name="lang-next" type="hidden" value="/login"' in reply.text
        reply.close()


def test_every_page_says_the_it_department_never_asks_for_a_password(
    client: PortalClient, ready: str
) -> None:
    warning = "Le service informatique ne vous demande jamais votre mot de passe par courriel."
    login_page = client.get("/login")
    assert warning in login_page.body
    assert 'id="official-address"' in login_page.body
    client.sign_in(ready, GOOD_PASSWORD)
    for path in ("/", "/password", "/no-such-page"):
        assert warning in client.get(path).body, path


def test_password_change_may_keep_the_other_sessions_when_asked(
    server: RunningServer, ready: str
) -> None:
    here, elsewhere = PortalClient(server.http_url), PortalClient(server.http_url)
    here.sign_in(ready, GOOD_PASSWORD)
    elsewhere.sign_in(ready, GOOD_PASSWORD)
    new = "Autre-Phrase-Longue-42"
    reply = here.submit(
        "/password", {"current": GOOD_PASSWORD, "new": new, "confirm": new, "keep_others": "y"}
    )
    assert_redirects_to(reply, "/")
    assert here.is_signed_in()
    assert elsewhere.is_signed_in()
    events = [r.event for r in server.core.audit.recent(subject=ready, event_prefix="auth.")]
    assert "auth.sessions_revoked" not in events


def test_session_actions_need_the_csrf_token_and_ones_own_session(
    server: RunningServer, client: PortalClient, ready: str
) -> None:
    client.sign_in(ready, GOOD_PASSWORD)
    other = PortalClient(server.http_url)
    other.sign_in(ready, GOOD_PASSWORD)
    stranger = add_user(server.core, "Zoé", "Autre", password=GOOD_PASSWORD)
    theirs = PortalClient(server.http_url)
    theirs.sign_in(stranger.login, GOOD_PASSWORD)
    [their_session] = server.core.web_sessions.list(stranger)

    assert client.post("/account/sessions/revoke-others", {}).status == 400
    assert other.is_signed_in()
    forged = client.submit(
        f"/account/sessions/{their_session.id}/revoke", {}, page="/account/sessions"
    )
    assert forged.status == 404
    assert theirs.is_signed_in()
    reply = client.submit("/account/sessions/revoke-others", {}, page="/account/sessions")
    assert_redirects_to(reply, "/account/sessions")
    assert not other.is_signed_in()
    assert client.is_signed_in()
    assert theirs.is_signed_in()
