"""Authentication at the DAV edge: ``core.auth`` outcomes become precise HTTP answers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.dav.accounts import Account, import_accounts
from tests.dav.webdav import DAV, DavHttp, href_text
from tests.support.servers import RunningServer, make_config, running_server

LOCKOUT_SECONDS = 120


@pytest.fixture(scope="module")
def accounts(dav_server: RunningServer) -> dict[str, Account]:
    ready, wrong, disabled = import_accounts(
        dav_server.core, ("Lucie", "Marchand"), ("Théo", "Lambert"), ("Emma", "Girard")
    )
    (fresh,) = import_accounts(dav_server.core, ("Jules", "Fontaine"), password_prefix=None)
    dav_server.core.directory.set_active(disabled.login, False, actor="test")
    return {"ready": ready, "wrong": wrong, "disabled": disabled, "fresh": fresh}


@pytest.fixture(scope="module")
def throttled_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = make_config(
        tmp_path_factory.mktemp("dav-throttled"),
        auth={
            "max_failures_count": 3,
            "delay_after_failures_count": 1,
            "lockout_seconds": LOCKOUT_SECONDS,
        },
    )
    with running_server(config) as live:
        yield live


def principal_of(dav: DavHttp) -> str:
    reply = dav.propfind("/dav/", ["d:current-user-principal"])
    return href_text(reply.multistatus()["/dav/"][f"{{{DAV}}}current-user-principal"])


def test_right_password_gets_the_principal(
    anonymous: DavHttp, accounts: dict[str, Account]
) -> None:
    account = accounts["ready"]

    assert principal_of(anonymous.as_user(account.credentials)) == f"/dav/{account.login}/"


def test_wrong_password_gets_401_with_a_basic_challenge(
    anonymous: DavHttp, accounts: dict[str, Account]
) -> None:
    account = accounts["wrong"]

    reply = anonymous.as_user((account.login, "not-the-password")).propfind(
        "/dav/", ["d:displayname"]
    )

    assert reply.status == 401
    assert reply.headers["WWW-Authenticate"].startswith("Basic ")
    assert "realm=" in reply.headers["WWW-Authenticate"]


def test_unknown_login_gets_the_same_401_as_a_wrong_password(
    anonymous: DavHttp, accounts: dict[str, Account]
) -> None:
    unknown = anonymous.as_user(("nobody.here", "whatever")).propfind("/dav/", ["d:displayname"])
    wrong = anonymous.as_user((accounts["wrong"].login, "nope")).propfind(
        "/dav/", ["d:displayname"]
    )

    assert unknown.status == wrong.status == 401
    assert unknown.body == wrong.body


def test_non_basic_authorization_gets_401_with_a_basic_challenge(anonymous: DavHttp) -> None:
    reply = anonymous.request("PROPFIND", "/dav/", headers={"Authorization": "Bearer abc.def"})

    assert reply.status == 401
    assert reply.headers["WWW-Authenticate"].startswith("Basic ")


def test_freshly_imported_account_is_sent_to_the_portal_with_403(
    anonymous: DavHttp, accounts: dict[str, Account]
) -> None:
    fresh = accounts["fresh"]  # its NUMEN is its first-login secret

    reply = anonymous.as_user((fresh.login, fresh.numen)).propfind("/dav/", ["d:displayname"])

    assert reply.status == 403
    assert reply.headers["Content-Type"].startswith("text/plain")
    assert "web portal" in reply.text
    assert "password" in reply.text


def test_account_told_to_change_password_is_sent_to_the_portal_with_403(
    dav_server: RunningServer, anonymous: DavHttp
) -> None:
    (account,) = import_accounts(dav_server.core, ("Paul", "Renaud"))
    dav = anonymous.as_user(account.credentials)
    assert dav.propfind("/dav/", ["d:displayname"]).status == 207
    dav_server.core.directory.set_password(
        account.login, account.password, actor="test", must_change=True, enforce_policy=False
    )

    reply = dav.propfind("/dav/", ["d:displayname"])

    assert reply.status == 403
    assert "web portal" in reply.text


def test_disabled_account_gets_403(anonymous: DavHttp, accounts: dict[str, Account]) -> None:
    account = accounts["disabled"]

    reply = anonymous.as_user(account.credentials).propfind("/dav/", ["d:displayname"])

    assert reply.status == 403
    assert "disabled" in reply.text


def test_account_disabled_after_use_is_refused_at_once(
    dav_server: RunningServer, anonymous: DavHttp
) -> None:
    (account,) = import_accounts(dav_server.core, ("Marie", "Leroy"))
    dav = anonymous.as_user(account.credentials)
    assert dav.request("GET", f"/dav/{account.login}/calendar/").status == 200

    dav_server.core.directory.set_active(account.login, False, actor="test")

    assert dav.request("GET", f"/dav/{account.login}/calendar/").status == 403


@pytest.mark.parametrize(
    "spelling",
    [
        "{login}",
        "{LOGIN}",
        "{Login}",
        "{email}",
        "{EMAIL}",
        "  {login}  ",
    ],
)
def test_login_works_as_local_part_or_full_address_in_any_case(
    spelling: str, anonymous: DavHttp, accounts: dict[str, Account]
) -> None:
    account = accounts["ready"]
    identifier = spelling.format(
        login=account.login,
        LOGIN=account.login.upper(),
        Login=account.login.title(),
        email=account.email,
        EMAIL=account.email.upper(),
    )

    assert principal_of(anonymous.as_user((identifier, account.password))) == (
        f"/dav/{account.login}/"
    )


def test_failures_beyond_the_limit_lock_out_even_the_right_password_with_429(
    throttled_server: RunningServer,
) -> None:
    victim, bystander = import_accounts(throttled_server.core, ("Inès", "Perrin"), ("Noé", "Morel"))
    dav = DavHttp(throttled_server.http_url)
    for _ in range(3):
        failed = dav.as_user((victim.login, "guess")).propfind("/dav/", ["d:displayname"])
        assert failed.status == 401

    locked = dav.as_user(victim.credentials).propfind("/dav/", ["d:displayname"])

    assert locked.status == 429
    assert locked.headers["Retry-After"] == str(LOCKOUT_SECONDS)
    assert principal_of(dav.as_user(bystander.credentials)) == f"/dav/{bystander.login}/"


def test_failures_below_the_limit_do_not_lock_out(throttled_server: RunningServer) -> None:
    (account,) = import_accounts(throttled_server.core, ("Léon", "Mercier"))
    dav = DavHttp(throttled_server.http_url)
    for _ in range(2):
        assert (
            dav.as_user((account.login, "guess")).propfind("/dav/", ["d:displayname"]).status == 401
        )

    assert principal_of(dav.as_user(account.credentials)) == f"/dav/{account.login}/"
    # A success clears the count: two more failures still leave the account usable.
    for _ in range(2):
        assert (
            dav.as_user((account.login, "guess")).propfind("/dav/", ["d:displayname"]).status == 401
        )
    assert principal_of(dav.as_user(account.credentials)) == f"/dav/{account.login}/"


def test_lockout_holds_whichever_spelling_of_the_login_is_used(
    throttled_server: RunningServer,
) -> None:
    (victim,) = import_accounts(throttled_server.core, ("Zoé", "Barbier"))
    dav = DavHttp(throttled_server.http_url)
    for _ in range(3):
        assert (
            dav.as_user((victim.login, "guess")).propfind("/dav/", ["d:displayname"]).status == 401
        )

    by_address = dav.as_user((victim.email, victim.password)).propfind("/dav/", ["d:displayname"])

    assert by_address.status == 429
