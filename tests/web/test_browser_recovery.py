"""Self-service recovery in Chromium: NUMEN + birth date + CAPTCHA, then a new password.

The CAPTCHA's answer is read through a test-only hook: the answer generator is
wrapped here (``monkeypatch``), in this process, so the check itself is untouched.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import date

import pytest
from playwright.sync_api import Page, expect

from groupware.web import recovery
from tests.mail.imap_support import connect
from tests.support.servers import RunningServer, add_user, make_config, running_server

pytestmark = pytest.mark.browser

NEW_PASSWORD = "Maree-Basse-Crayon-84"  # noqa: S105 - a test password
NO_MATCH = "Ces informations ne correspondent à aucun compte actif."


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = make_config(tmp_path_factory.mktemp("recovery"), auth={"max_failures_count": 4})
    with running_server(config, only=frozenset({"http", "smtp", "imap"})) as server:
        yield server


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every CAPTCHA answer the portal makes, newest last."""
    made: list[str] = []
    original = recovery.new_answer

    def observed() -> str:
        made.append(original())
        return made[-1]

    monkeypatch.setattr(recovery, "new_answer", observed)
    return made


def fill(page: Page, numen: str, birth: str, captcha: str) -> None:
    page.get_by_label("NUMEN").fill(numen)
    page.get_by_label("Date de naissance").fill(birth)
    page.get_by_label("Caractères de l’image").fill(captcha)
    page.get_by_role("button", name="Continuer").click()


def open_recovery(open_page: Callable[..., Page], live: RunningServer) -> Page:
    page = open_page("fr-FR")
    page.goto(live.http_url + "/login")
    page.get_by_role("link", name="J’ai perdu mon mot de passe").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Retrouver l’accès à votre compte")
    return page


def test_recover_learn_the_identifier_set_a_password_and_get_a_notice(
    open_page: Callable[..., Page], live: RunningServer, answers: list[str]
) -> None:
    person = add_user(
        live.core, "Odile", "Oubli", numen="0100000001ABC", birth_date=date(1975, 4, 9)
    )
    page = open_recovery(open_page, live)
    expect(page.locator("#captcha-image")).to_be_visible()
    audio = page.request.get(live.http_url + "/recover/captcha.wav")
    assert audio.headers["content-type"] == "audio/wav"
    assert len(audio.body()) > 10_000

    fill(page, "0100000001abc", "1975-04-09", answers[-1].lower())

    expect(page.locator("#identifier")).to_have_text(person.login)
    page.get_by_label("Nouveau mot de passe", exact=True).press_sequentially(NEW_PASSWORD)
    expect(page.locator(".meter-verdict")).to_have_text("Excellent.")  # the strength meter
    page.get_by_label("Confirmation du nouveau mot de passe").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Enregistrer le nouveau mot de passe").click()
    expect(page.get_by_role("status")).to_contain_text("Votre mot de passe a été modifié")

    client = connect(live)
    client.login(person.login, NEW_PASSWORD)
    try:
        client.select_folder("INBOX")
        found = client.search(["SUBJECT", "password reset"])
        assert len(found) == 1
        body = client.fetch(found, ["BODY[TEXT]"])[found[0]][b"BODY[TEXT]"].decode()
        assert "ne vous demande jamais votre mot de passe" in body
    finally:
        client.logout()
    events = [r.event for r in live.core.audit.recent(limit=10, subject=person.login)]
    assert "password.reset" in events


def test_unknown_numen_and_wrong_birth_date_get_the_same_answer(
    open_page: Callable[..., Page], live: RunningServer, answers: list[str]
) -> None:
    add_user(live.core, "Paul", "Prudent", numen="0100000002ABC", birth_date=date(1980, 1, 2))
    page = open_recovery(open_page, live)

    def attempt(numen: str, birth: str) -> tuple[int, str]:
        with page.expect_response(lambda r: r.request.method == "POST") as reply:
            fill(page, numen, birth, answers[-1])
        text = page.locator("main").inner_text()
        return reply.value.status, re.sub(r"\s+", " ", text)

    unknown = attempt("0999999999ZZZ", "1980-01-02")
    wrong_date = attempt("0100000002ABC", "1980-01-03")

    assert unknown == wrong_date
    assert unknown[0] == 400
    assert NO_MATCH in unknown[1]


def test_a_wrong_captcha_checks_nothing(
    open_page: Callable[..., Page], live: RunningServer, answers: list[str]
) -> None:
    person = add_user(live.core, "Quentin", "Robot", numen="0100000003ABC")
    page = open_recovery(open_page, live)
    before = len(live.core.audit.recent(limit=100))

    fill(page, "0100000003ABC", "1980-05-17", "XXXXX")

    expect(page.locator(".help .error")).to_contain_text("ne correspondent pas à l’image")
    assert len(live.core.audit.recent(limit=100)) == before
    assert live.core.directory.get(person.login).password_hash is None


def test_attempts_are_throttled_per_client(
    open_page: Callable[..., Page], live: RunningServer, answers: list[str]
) -> None:
    page = open_recovery(open_page, live)
    statuses = []
    for _ in range(live.config.auth.max_failures_count + 1):
        with page.expect_response(lambda r: r.request.method == "POST") as reply:
            fill(page, "0888888888AAA", "1990-01-01", answers[-1])
        statuses.append(reply.value.status)

    assert statuses[-1] == 429
    expect(page.get_by_role("alert")).to_contain_text("Trop de tentatives")
