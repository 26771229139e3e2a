"""One user cannot read or change another's calendars and address books, by any method.

Bob (authenticated) and an anonymous client try every WebDAV/CalDAV method on
Alice's collections and items; each attempt is refused, and Alice's data (and
Bob's) read back as their owners afterwards is exactly what it was.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.dav.accounts import Account, import_accounts
from tests.dav.webdav import (
    DAV,
    DavHttp,
    addressbook_query_body,
    calendar_query_body,
    contact_vcf,
    event_ics,
    mkcalendar_body,
    propfind_body,
    proppatch_displayname_body,
    sync_collection_body,
    xml_headers,
)
from tests.support.servers import RunningServer

ALICE_EVENT_UID = "alice-secret-event"
ALICE_SUMMARY = "Entretien confidentiel"
ALICE_CARD_UID = "alice-secret-card"
BOB_EVENT_UID = "bob-own-event"
#: Methods Radicale does not serve on any DAV path: 405 for the owner too.
UNSERVED_METHODS = frozenset({"POST", "COPY"})


@dataclass(frozen=True)
class Attempt:
    """A request template: ``{a}``/``{b}`` are the logins, ``{base}`` the server URL."""

    method: str
    path: str
    body: str = ""
    headers: tuple[tuple[str, str], ...] = ()

    def render(self, alice: Account, bob: Account, base: str) -> tuple[str, str, dict[str, str]]:
        def fill(text: str) -> str:
            return text.format(a=alice.login, b=bob.login, base=base)

        return fill(self.path), fill(self.body), {k: fill(v) for k, v in self.headers}


CAL = "/dav/{a}/calendar/"
ITEM = CAL + ALICE_EVENT_UID + ".ics"
CARD = "/dav/{a}/contacts/" + ALICE_CARD_UID + ".vcf"
ICS = (("Content-Type", "text/calendar; charset=utf-8"),)
XML = tuple(xml_headers().items())
NEW_EVENT = event_ics("intruder-event", "Written by Bob")
ATTEMPTS = {
    "GET item": Attempt("GET", ITEM),
    "GET contact": Attempt("GET", CARD),
    "GET collection": Attempt("GET", CAL),
    "HEAD item": Attempt("HEAD", ITEM),
    "PUT new item": Attempt("PUT", CAL + "intruder.ics", NEW_EVENT, ICS),
    "PUT over item": Attempt("PUT", ITEM, event_ics(ALICE_EVENT_UID, "Overwritten"), ICS),
    "PUT over contact": Attempt(
        "PUT", CARD, contact_vcf(ALICE_CARD_UID, "Over Written"), (("Content-Type", "text/vcard"),)
    ),
    "PUT whole collection": Attempt("PUT", CAL, NEW_EVENT, ICS),
    "DELETE item": Attempt("DELETE", ITEM),
    "DELETE contact": Attempt("DELETE", CARD),
    "DELETE collection": Attempt("DELETE", CAL),
    "DELETE home": Attempt("DELETE", "/dav/{a}/"),
    "PROPFIND depth 0": Attempt(
        "PROPFIND", CAL, propfind_body(["d:displayname"]), (*XML, ("Depth", "0"))
    ),
    "PROPFIND depth 1": Attempt(
        "PROPFIND", CAL, propfind_body(["d:getetag"]), (*XML, ("Depth", "1"))
    ),
    "PROPFIND home depth 1": Attempt(
        "PROPFIND", "/dav/{a}/", propfind_body(["d:displayname"]), (*XML, ("Depth", "1"))
    ),
    "PROPFIND item": Attempt(
        "PROPFIND", ITEM, propfind_body(["d:getetag"]), (*XML, ("Depth", "0"))
    ),
    "PROPPATCH collection": Attempt("PROPPATCH", CAL, proppatch_displayname_body("Pwned"), XML),
    "MKCOL under home": Attempt("MKCOL", "/dav/{a}/intruder/"),
    "MKCALENDAR under home": Attempt(
        "MKCALENDAR", "/dav/{a}/intruder-calendar/", mkcalendar_body("Intruder"), XML
    ),
    "MOVE item out": Attempt(
        "MOVE", ITEM, headers=(("Destination", "{base}/dav/{b}/calendar/stolen.ics"),)
    ),
    "MOVE own item in": Attempt(
        "MOVE",
        "/dav/{b}/calendar/" + BOB_EVENT_UID + ".ics",
        headers=(("Destination", "{base}" + CAL + "planted.ics"),),
    ),
    "COPY item out": Attempt(
        "COPY", ITEM, headers=(("Destination", "{base}/dav/{b}/calendar/copied.ics"),)
    ),
    "REPORT calendar-query": Attempt("REPORT", CAL, calendar_query_body(), (*XML, ("Depth", "1"))),
    "REPORT sync-collection": Attempt("REPORT", CAL, sync_collection_body(), XML),
    "REPORT addressbook-query": Attempt(
        "REPORT", "/dav/{a}/contacts/", addressbook_query_body("Secret"), (*XML, ("Depth", "1"))
    ),
    "PROPFIND contacts depth 1": Attempt(
        "PROPFIND", "/dav/{a}/contacts/", propfind_body(["d:getetag"]), (*XML, ("Depth", "1"))
    ),
    "PROPPATCH home": Attempt("PROPPATCH", "/dav/{a}/", proppatch_displayname_body("Pwned"), XML),
    "POST collection": Attempt("POST", CAL, NEW_EVENT, ICS),
}


@pytest.fixture(scope="module")
def people(dav_server: RunningServer) -> tuple[Account, Account]:
    alice, bob = import_accounts(dav_server.core, ("Alice", "Durand"), ("Bob", "Martin"))
    # Colleagues of one school see each other's free/busy time by default (see
    # test_sharing_matrix): here, Alice shares nothing at all.
    dav_server.core.sharing.set_freebusy_scope(alice.login, "nobody", actor="test")
    return alice, bob


@pytest.fixture(scope="module")
def alice_dav(dav_server: RunningServer, people: tuple[Account, Account]) -> DavHttp:
    return DavHttp(dav_server.http_url, people[0].credentials)


@pytest.fixture(scope="module")
def bob_dav(dav_server: RunningServer, people: tuple[Account, Account]) -> DavHttp:
    return DavHttp(dav_server.http_url, people[1].credentials)


def snapshot(dav: DavHttp, login: str) -> dict[str, object]:
    """Everything an owner sees: collections with names, items with ETags and bodies."""
    home = f"/dav/{login}/"
    listing = dav.propfind(home, ["d:displayname"], depth="1").multistatus()
    state: dict[str, object] = {}
    for href, props in listing.items():
        name = props.get(f"{{{DAV}}}displayname")
        state[href] = None if name is None else name.text
    for collection in (f"{home}calendar/", f"{home}contacts/"):
        for href, etag in dav.etags(collection).items():
            state[href] = (etag, dav.request("GET", href).text)
    return state


@pytest.fixture(scope="module")
def baseline(
    people: tuple[Account, Account], alice_dav: DavHttp, bob_dav: DavHttp
) -> dict[str, dict[str, object]]:
    alice, bob = people
    seeds = [
        (
            alice_dav,
            f"/dav/{alice.login}/calendar/{ALICE_EVENT_UID}.ics",
            event_ics(ALICE_EVENT_UID, ALICE_SUMMARY),
            "text/calendar",
        ),
        (
            alice_dav,
            f"/dav/{alice.login}/contacts/{ALICE_CARD_UID}.vcf",
            contact_vcf(ALICE_CARD_UID, "Secret Contact"),
            "text/vcard",
        ),
        (
            bob_dav,
            f"/dav/{bob.login}/calendar/{BOB_EVENT_UID}.ics",
            event_ics(BOB_EVENT_UID, "Bob's"),
            "text/calendar",
        ),
    ]
    for dav, path, text, content_type in seeds:
        assert dav.put(path, text, content_type).status == 201
    state = {alice.login: snapshot(alice_dav, alice.login), bob.login: snapshot(bob_dav, bob.login)}
    # The snapshot must see what the attempts aim at, or "unchanged" proves nothing.
    assert f"/dav/{alice.login}/calendar/{ALICE_EVENT_UID}.ics" in state[alice.login]
    assert f"/dav/{alice.login}/contacts/{ALICE_CARD_UID}.vcf" in state[alice.login]
    assert state[alice.login][f"/dav/{alice.login}/calendar/"] == "Agenda personnel"
    assert f"/dav/{bob.login}/calendar/{BOB_EVENT_UID}.ics" in state[bob.login]
    return state


def assert_nothing_changed(
    baseline: dict[str, dict[str, object]],
    people: tuple[Account, Account],
    alice_dav: DavHttp,
    bob_dav: DavHttp,
) -> None:
    alice, bob = people
    assert snapshot(alice_dav, alice.login) == baseline[alice.login]
    assert snapshot(bob_dav, bob.login) == baseline[bob.login]


@pytest.mark.parametrize("name", list(ATTEMPTS))
def test_other_user_is_refused_and_changes_nothing(
    name: str,
    dav_server: RunningServer,
    people: tuple[Account, Account],
    alice_dav: DavHttp,
    bob_dav: DavHttp,
    baseline: dict[str, dict[str, object]],
) -> None:
    alice, bob = people
    path, body, headers = ATTEMPTS[name].render(alice, bob, dav_server.http_url)

    reply = bob_dav.request(ATTEMPTS[name].method, path, body or None, headers)

    if ATTEMPTS[name].method in UNSERVED_METHODS:
        # Not an answer about Alice's data: the owner is refused the same way.
        assert reply.status == 405, reply.text
        assert alice_dav.request(ATTEMPTS[name].method, path, body or None, headers).status == 405
    else:
        assert reply.status in (403, 404), reply.text
    assert ALICE_SUMMARY not in reply.text
    assert ALICE_EVENT_UID not in reply.text
    assert_nothing_changed(baseline, people, alice_dav, bob_dav)


@pytest.mark.parametrize("name", list(ATTEMPTS))
def test_anonymous_is_asked_to_authenticate_and_changes_nothing(
    name: str,
    dav_server: RunningServer,
    anonymous: DavHttp,
    people: tuple[Account, Account],
    alice_dav: DavHttp,
    bob_dav: DavHttp,
    baseline: dict[str, dict[str, object]],
) -> None:
    alice, bob = people
    path, body, headers = ATTEMPTS[name].render(alice, bob, dav_server.http_url)

    reply = anonymous.request(ATTEMPTS[name].method, path, body or None, headers)

    assert reply.status == 401, reply.text
    assert reply.headers["WWW-Authenticate"].startswith("Basic ")
    assert ALICE_SUMMARY not in reply.text
    assert_nothing_changed(baseline, people, alice_dav, bob_dav)


def test_root_listing_does_not_reveal_other_principals(
    people: tuple[Account, Account], bob_dav: DavHttp, baseline: dict[str, dict[str, object]]
) -> None:
    alice, bob = people

    listing = bob_dav.propfind("/dav/", ["d:displayname", "d:resourcetype"], depth="1")

    assert listing.status == 207
    # His home, and the principal of his department, whose agenda he reads.
    assert set(listing.multistatus()) <= {
        "/dav/",
        f"/dav/{bob.login}/",
        "/dav/@lycee-joffre.lettres/",
    }
    assert alice.login not in listing.text


@pytest.mark.parametrize("collection", ["calendar", "contacts"])
def test_multiget_on_own_collection_does_not_return_foreign_items(
    collection: str,
    people: tuple[Account, Account],
    bob_dav: DavHttp,
    baseline: dict[str, dict[str, object]],
) -> None:
    alice, bob = people
    if collection == "calendar":
        report, data, foreign = "c:calendar-multiget", "c:calendar-data", f"{ALICE_EVENT_UID}.ics"
    else:
        report, data, foreign = (
            "cr:addressbook-multiget",
            "cr:address-data",
            f"{ALICE_CARD_UID}.vcf",
        )
    body = (
        f'<?xml version="1.0" encoding="utf-8"?><{report} xmlns:d="DAV:" '
        'xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:cr="urn:ietf:params:xml:ns:carddav">'
        f"<d:prop><d:getetag/><{data}/></d:prop>"
        f"<d:href>/dav/{alice.login}/{collection}/{foreign}</d:href>"
        f"<d:href>/dav/{bob.login}/{collection}/../../{alice.login}/{collection}/{foreign}</d:href>"
        f"</{report}>"
    )

    reply = bob_dav.request(
        "REPORT", f"/dav/{bob.login}/{collection}/", body, xml_headers(Depth="1")
    )

    assert reply.status in (207, 403, 404), reply.text
    # The hrefs are echoed back with 404; no content, no ETag may come with them.
    assert ALICE_SUMMARY not in reply.text
    assert "Secret Contact" not in reply.text
    if reply.status == 207:
        for props in reply.multistatus().values():
            assert props == {}
