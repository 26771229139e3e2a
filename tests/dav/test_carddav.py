"""CardDAV over raw HTTP: caldav 3.6 has no CardDAV API, so PUT/GET/DELETE/REPORT by hand.

RFC 6352: the default address book, vCard CRUD with ETags, addressbook-query.
"""

from __future__ import annotations

import uuid

import pytest

from tests.dav.accounts import Account, import_accounts
from tests.dav.webdav import CARDDAV, DAV, DavHttp, addressbook_query_body, contact_vcf, xml_headers
from tests.support.servers import RunningServer

VCARD = "text/vcard"


@pytest.fixture(scope="module")
def claire(dav_server: RunningServer) -> Account:
    return import_accounts(dav_server.core, ("Claire", "Moreau"))[0]


@pytest.fixture(scope="module")
def dav(dav_server: RunningServer, claire: Account) -> DavHttp:
    return DavHttp(dav_server.http_url, claire.credentials)


@pytest.fixture(scope="module")
def book(claire: Account) -> str:
    return f"/dav/{claire.login}/contacts/"


def new_card(book: str) -> tuple[str, str]:
    uid = str(uuid.uuid4())
    return uid, f"{book}{uid}.vcf"


def test_default_address_book_is_an_addressbook_named_contacts_personnels(
    dav: DavHttp, book: str
) -> None:
    reply = dav.propfind(book, ["d:resourcetype", "d:displayname"])

    props = reply.multistatus()[book]
    assert props[f"{{{DAV}}}displayname"].text == "Contacts personnels"
    assert props[f"{{{DAV}}}resourcetype"].find(f"{{{CARDDAV}}}addressbook") is not None


def test_contact_put_then_get_returns_the_vcard_and_its_etag(dav: DavHttp, book: str) -> None:
    uid, path = new_card(book)

    created = dav.put(
        path, contact_vcf(uid, "Paul Petit", "paul.petit@example.net"), VCARD, If_None_Match="*"
    )

    assert created.status == 201, created.text
    fetched = dav.request("GET", path)
    assert fetched.status == 200
    assert fetched.headers["Content-Type"].startswith("text/vcard")
    assert f"UID:{uid}" in fetched.text
    assert "FN:Paul Petit" in fetched.text
    assert "paul.petit@example.net" in fetched.text
    assert fetched.headers["ETag"] == created.headers["ETag"] == dav.etags(book)[path]


def test_contact_update_changes_content_and_etag(dav: DavHttp, book: str) -> None:
    uid, path = new_card(book)
    first = dav.put(path, contact_vcf(uid, "Léa Bernard"), VCARD)
    assert first.status == 201

    updated = dav.put(
        path, contact_vcf(uid, "Léa Bernard-Roux"), VCARD, If_Match=first.headers["ETag"]
    )

    assert updated.status in (200, 204), updated.text
    assert updated.headers["ETag"] != first.headers["ETag"]
    assert dav.etags(book)[path] == updated.headers["ETag"]
    fetched = dav.request("GET", path)
    assert "FN:Léa Bernard-Roux" in fetched.text


def test_contact_update_with_stale_etag_is_refused_and_keeps_the_stored_card(
    dav: DavHttp, book: str
) -> None:
    uid, path = new_card(book)
    first = dav.put(path, contact_vcf(uid, "Hugo Lefèvre"), VCARD)
    second = dav.put(
        path, contact_vcf(uid, "Hugo Lefèvre (2)"), VCARD, If_Match=first.headers["ETag"]
    )
    assert second.status in (200, 204)

    stale = dav.put(
        path, contact_vcf(uid, "Hugo Overwritten"), VCARD, If_Match=first.headers["ETag"]
    )

    assert stale.status == 412
    fetched = dav.request("GET", path)
    assert "FN:Hugo Lefèvre (2)" in fetched.text
    assert fetched.headers["ETag"] == second.headers["ETag"]


def test_addressbook_query_finds_contacts_by_name_only(dav: DavHttp, book: str) -> None:
    wanted_uid, wanted = new_card(book)
    other_uid, other = new_card(book)
    assert dav.put(wanted, contact_vcf(wanted_uid, "Inès Zahiri"), VCARD).status == 201
    assert dav.put(other, contact_vcf(other_uid, "Marc Durand"), VCARD).status == 201

    reply = dav.request("REPORT", book, addressbook_query_body("zahiri"), xml_headers(Depth="1"))

    found = reply.multistatus()
    assert list(found) == [wanted]
    assert f"UID:{wanted_uid}" in (found[wanted][f"{{{CARDDAV}}}address-data"].text or "")


def test_deleted_contact_is_gone(dav: DavHttp, book: str) -> None:
    uid, path = new_card(book)
    created = dav.put(path, contact_vcf(uid, "Nora Caron"), VCARD)
    assert created.status == 201

    deleted = dav.request("DELETE", path, headers={"If-Match": created.headers["ETag"]})

    assert deleted.status in (200, 204)
    assert dav.request("GET", path).status == 404
    assert path not in dav.etags(book)
    report = dav.request("REPORT", book, addressbook_query_body("Caron"), xml_headers(Depth="1"))
    assert report.multistatus() == {}
