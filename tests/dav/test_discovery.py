"""Service discovery (RFC 6764, RFC 5397, RFC 4791 §6.2.1, RFC 6352 §7.1.1) and defaults."""

from __future__ import annotations

from urllib.parse import urljoin

import pytest

from tests.dav.accounts import Account, import_accounts
from tests.dav.webdav import CALDAV, CARDDAV, DAV, DavHttp, href_text, propfind_body, xml_headers
from tests.support.servers import RunningServer


@pytest.fixture(scope="module")
def account(dav_server: RunningServer) -> Account:
    return import_accounts(dav_server.core, ("Camille", "Rousseau"))[0]


@pytest.fixture(scope="module")
def dav(dav_server: RunningServer, account: Account) -> DavHttp:
    return DavHttp(dav_server.http_url, account.credentials)


@pytest.mark.parametrize("service", ["caldav", "carddav"])
@pytest.mark.parametrize("method", ["GET", "PROPFIND"])
@pytest.mark.parametrize("authenticated", [False, True], ids=["anonymous", "authenticated"])
def test_well_known_redirects_permanently_to_the_dav_root(
    service: str,
    method: str,
    authenticated: bool,
    dav_server: RunningServer,
    anonymous: DavHttp,
    dav: DavHttp,
) -> None:
    client = dav if authenticated else anonymous
    body = propfind_body(["d:current-user-principal"]) if method == "PROPFIND" else None

    reply = client.request(method, f"/.well-known/{service}", body, xml_headers(Depth="0"))

    assert reply.status == 301
    location = urljoin(dav_server.http_url + f"/.well-known/{service}", reply.headers["Location"])
    assert location == dav_server.dav_url


def test_current_user_principal_on_the_dav_root_is_the_users_home(
    dav: DavHttp, account: Account
) -> None:
    reply = dav.propfind("/dav/", ["d:current-user-principal"])

    principal = reply.multistatus()["/dav/"][f"{{{DAV}}}current-user-principal"]
    assert href_text(principal) == f"/dav/{account.login}/"


def test_principal_points_calendar_and_addressbook_homes_at_itself(
    dav: DavHttp, account: Account
) -> None:
    home = f"/dav/{account.login}/"

    props = dav.propfind(
        home, ["c:calendar-home-set", "cr:addressbook-home-set", "d:principal-URL"]
    ).multistatus()[home]

    assert href_text(props[f"{{{CALDAV}}}calendar-home-set"]) == home
    assert href_text(props[f"{{{CARDDAV}}}addressbook-home-set"]) == home
    assert href_text(props[f"{{{DAV}}}principal-URL"]) == home


def test_home_lists_the_defaults_then_the_department_agenda_and_directory_books(
    dav: DavHttp, account: Account
) -> None:
    home = f"/dav/{account.login}/"

    listing = dav.propfind(
        home, ["d:resourcetype", "d:displayname", "c:supported-calendar-component-set"], depth="1"
    ).multistatus()

    assert set(listing) == {
        home,
        f"{home}calendar/",
        f"{home}contacts/",
        f"{home}@lycee-joffre.lettres~agenda/",
        f"{home}~directory/",
        f"{home}~directory~lycee-joffre/",
    }
    agenda = listing[f"{home}@lycee-joffre.lettres~agenda/"]
    assert agenda[f"{{{DAV}}}displayname"].text == "Agenda — Lettres — Lycée Joffre"
    assert listing[f"{home}~directory/"][f"{{{DAV}}}displayname"].text == "Annuaire — Académie"
    calendar, contacts = listing[f"{home}calendar/"], listing[f"{home}contacts/"]
    assert calendar[f"{{{DAV}}}resourcetype"].find(f"{{{CALDAV}}}calendar") is not None
    assert calendar[f"{{{DAV}}}displayname"].text == "Agenda personnel"
    components = {
        comp.get("name") for comp in calendar[f"{{{CALDAV}}}supported-calendar-component-set"]
    }
    assert {"VEVENT", "VTODO"} <= components
    assert contacts[f"{{{DAV}}}resourcetype"].find(f"{{{CARDDAV}}}addressbook") is not None
    assert contacts[f"{{{DAV}}}displayname"].text == "Contacts personnels"


def test_english_account_gets_english_collection_names_on_first_use(
    dav_server: RunningServer, anonymous: DavHttp
) -> None:
    (account,) = import_accounts(dav_server.core, ("Oscar", "Wilde"))
    dav_server.core.directory.set_language(account.login, "en")
    home = f"/dav/{account.login}/"

    listing = (
        anonymous.as_user(account.credentials)
        .propfind(home, ["d:displayname"], depth="1")
        .multistatus()
    )

    names = {
        href: props[f"{{{DAV}}}displayname"].text
        for href, props in listing.items()
        if href != home and "~" not in href
    }
    assert names == {
        f"{home}calendar/": "Personal calendar",
        f"{home}contacts/": "Personal contacts",
    }


def test_default_collections_exist_before_the_first_request_lists_them(
    dav_server: RunningServer, anonymous: DavHttp
) -> None:
    # A client's very first request may go straight to the calendar (URL pasted
    # from the portal), without any discovery before it.
    (account,) = import_accounts(dav_server.core, ("Rose", "Lemaire"))
    dav = anonymous.as_user(account.credentials)

    reply = dav.propfind(f"/dav/{account.login}/calendar/", ["d:displayname"])

    assert reply.multistatus()[f"/dav/{account.login}/calendar/"][f"{{{DAV}}}displayname"].text == (
        "Agenda personnel"
    )


def test_client_sent_script_name_does_not_change_the_hrefs(dav: DavHttp, account: Account) -> None:
    home = f"/dav/{account.login}/"

    reply = dav.request(
        "PROPFIND",
        home,
        propfind_body(["c:calendar-home-set"]),
        xml_headers(Depth="0", **{"X-Script-Name": "/elsewhere"}),
    )

    assert "/elsewhere" not in reply.text
    assert href_text(reply.multistatus()[home][f"{{{CALDAV}}}calendar-home-set"]) == home


def test_options_answers_without_credentials_and_advertises_caldav_and_carddav(
    anonymous: DavHttp, account: Account
) -> None:
    reply = anonymous.request("OPTIONS", f"/dav/{account.login}/calendar/")

    assert reply.status == 200
    dav_classes = {part.strip() for part in reply.headers["DAV"].split(",")}
    assert {"1", "calendar-access", "addressbook"} <= dav_classes
    assert "PROPFIND" in reply.headers["Allow"]
