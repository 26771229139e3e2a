"""Two-factor authentication: turning it on in Chromium, signing in with a code, and
what mail and DAV clients are then allowed (app passwords only)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

import caldav
import pyotp
import pytest
from caldav.lib import error as caldav_error
from imapclient.exceptions import LoginError
from playwright.sync_api import Page, expect

from groupware.core.auth import Outcome
from tests.mail.imap_support import connect, imap_accepts
from tests.support.servers import RunningServer, add_user, make_config, running_server

pytestmark = pytest.mark.browser

PASSWORD = "Vague-Orange-Clavier-57"  # noqa: S105 - a test password


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = make_config(
        tmp_path_factory.mktemp("second-factor"),
        auth={"second_factor_roles": ("Chef d'établissement",)},
    )
    with running_server(config, only=frozenset({"http", "imap"})) as server:
        yield server


def sign_in(page: Page, live: RunningServer, login: str) -> None:
    page.goto(live.http_url + "/login")
    page.get_by_label("Identifiant", exact=True).fill(login)
    page.get_by_label("Mot de passe", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Se connecter", exact=True).click()


def next_code(secret: str) -> str:
    """The code of the next 30-second step: accepted (clocks drift), and unused."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def enable(page: Page) -> tuple[str, list[str]]:
    """Turn two-factor authentication on from the security page; (secret, codes)."""
    page.get_by_role("button", name="Configurer la double authentification").click()
    expect(page.locator("#qr")).to_be_visible()
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    page.get_by_label("Code affiché par l’application").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="L’activer").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Codes de secours")
    codes = page.locator("#recovery-codes li").all_inner_texts()
    return secret, codes


def test_turn_it_on_then_sign_in_with_a_code_and_devices_need_app_passwords(
    open_page: Callable[..., Page], live: RunningServer
) -> None:
    person = add_user(live.core, "Inès", "Double", password=PASSWORD)
    page = open_page("fr-FR")
    sign_in(page, live, person.login)
    page.get_by_role("link", name="Double authentification").click()
    qr = page.request.get(live.http_url + "/account/security/qr.svg")
    assert qr.status == 404  # nothing pending yet

    secret, codes = enable(page)

    assert len(codes) == 10
    assert all(re.fullmatch(r"[a-z2-9]{5}-[a-z2-9]{5}", code) for code in codes)
    assert not imap_accepts(live, person.login, PASSWORD)
    client = connect(live)
    with pytest.raises(LoginError, match="AUTHORIZATIONFAILED.*app password"):
        client.login(person.login, PASSWORD)
    client.shutdown()
    refused = live.core.authenticator.authenticate(
        person.login, PASSWORD, protocol="dav", client="127.0.0.1"
    )
    assert refused.outcome is Outcome.APP_PASSWORD_REQUIRED
    with (
        caldav.DAVClient(
            url=live.dav_url, username=person.login, password=PASSWORD, timeout=5
        ) as client,
        pytest.raises(caldav_error.DAVError),
    ):
        client.principal()
    _device, app_secret = live.core.app_passwords.create(person, "Phone", "all", actor="t")
    assert imap_accepts(live, person.login, app_secret)

    # Sign out, then in again: the password, then a code.
    page.goto(live.http_url + "/")
    page.get_by_role("button", name="Se déconnecter").click()
    sign_in(page, live, person.login)
    expect(page).to_have_url(live.http_url + "/login/code")
    page.goto(live.http_url + "/")  # not signed in until the code
    expect(page).to_have_url(re.compile(r"/login"))
    page.goto(live.http_url + "/login/code")
    page.get_by_label("Code", exact=True).fill("000000")
    page.get_by_role("button", name="Continuer").click()
    expect(page.get_by_role("alert")).to_have_text("Code incorrect.")
    page.get_by_label("Code", exact=True).fill(next_code(secret))
    page.get_by_role("button", name="Continuer").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Bienvenue")


def test_a_code_works_once_and_a_recovery_code_once(live: RunningServer) -> None:
    person = add_user(live.core, "Jade", "Secours", password=PASSWORD)
    factor = live.core.second_factor
    uri = factor.begin(person)
    secret = pyotp.parse_uri(uri).secret
    code = pyotp.TOTP(secret).now()
    recovery = factor.confirm(person, code, actor="t")
    auth = live.core.authenticator

    assert auth.check_second_factor(person, code, client="1.2.3.4") is Outcome.BAD_CREDENTIALS
    assert auth.check_second_factor(person, recovery[0], client="1.2.3.4") is Outcome.OK
    assert auth.check_second_factor(person, recovery[0], client="1.2.3.4") is not Outcome.OK
    assert factor.recovery_codes_left(person) == 9
    events = [r.event for r in live.core.audit.recent(limit=10, subject=person.login)]
    assert "second_factor.enabled" in events
    assert "second_factor.recovery_code_used" in events


def test_wrong_codes_are_throttled(live: RunningServer) -> None:
    person = add_user(live.core, "Karl", "Essais", password=PASSWORD)
    factor = live.core.second_factor
    secret = pyotp.parse_uri(factor.begin(person)).secret
    factor.confirm(person, pyotp.TOTP(secret).now(), actor="t")
    auth = live.core.authenticator
    limit = live.config.auth.max_failures_count

    outcomes = [auth.check_second_factor(person, "123456", client="9.9.9.9") for _ in range(limit)]

    assert outcomes[-1] is Outcome.BAD_CREDENTIALS
    assert auth.check_second_factor(person, "123456", client="9.9.9.9") is Outcome.THROTTLED


def test_a_required_role_must_turn_it_on_before_anything_else(
    open_page: Callable[..., Page], live: RunningServer
) -> None:
    head = add_user(
        live.core, "Louise", "Directrice", password=PASSWORD, role="Chef d'établissement"
    )
    page = open_page("fr-FR")

    sign_in(page, live, head.login)

    expect(page).to_have_url(live.http_url + "/account/security")
    expect(page.locator(".notice")).to_contain_text("exige la double authentification")
    page.goto(live.http_url + "/sharing")
    expect(page).to_have_url(live.http_url + "/account/security")
    enable(page)
    page.goto(live.http_url + "/sharing")
    expect(page).to_have_url(live.http_url + "/sharing")
