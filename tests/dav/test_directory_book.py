"""The directory address book: every active person, listable, searchable, in sync.

Phones sync it like any address book: a full listing, then sync-collection deltas
that report a newcomer and a departure (404) after a re-import.
"""

from __future__ import annotations

import re
import uuid

import pytest
import vobject

from groupware.core.hr_import import HrImport
from tests.dav.accounts import CSV_HEADER, Account, import_accounts
from tests.dav.webdav import DAV, NS, DavHttp, addressbook_query_body, xml_headers
from tests.support.servers import RunningServer

BOOK = "/dav/~directory/all/"


@pytest.fixture(scope="module")
def people(dav_server: RunningServer) -> list[Account]:
    joffre = import_accounts(dav_server.core, ("Hélène", "Dupré"), ("Marc", "Olivier"))
    garrigues = import_accounts(
        dav_server.core,
        ("Zoé", "Fabre"),
        school="Collège Les Garrigues",
        discipline="Mathématiques",
    )
    return joffre + garrigues


def sync_body(token: str = "") -> str:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><d:sync-collection xmlns:d="{DAV}">'
        f"<d:sync-token>{token}</d:sync-token><d:sync-level>1</d:sync-level>"
        "<d:prop><d:getetag/></d:prop></d:sync-collection>"
    )


def sync(dav: DavHttp, path: str, token: str = "") -> tuple[str, dict[str, int]]:
    """The new token and ``{href: status}`` of the members reported."""
    reply = dav.request("REPORT", path, sync_body(token), xml_headers(Depth="1"))
    assert reply.status == 207, reply.text
    root = reply.xml()
    statuses = {}
    for response in root.findall("d:response", NS):
        href = response.findtext("d:href", "", NS)
        status = response.findtext("d:status", "", NS) or response.findtext(
            "d:propstat/d:status", "", NS
        )
        statuses[href] = int(status.split()[1])
    return root.findtext("d:sync-token", "", NS), statuses


def cards(reply_text: str) -> list[vobject.base.Component]:
    found = re.findall(r"BEGIN:VCARD.*?END:VCARD", reply_text.replace("&#13;", ""), re.S)
    return [vobject.readOne(text) for text in found]


def test_every_account_lists_the_whole_directory(
    dav_server: RunningServer, people: list[Account]
) -> None:
    dav = DavHttp(dav_server.http_url, people[2].credentials)

    hrefs = set(dav.etags(BOOK))

    for account in people:
        assert f"{BOOK}{account.login}.vcf" in hrefs
    mounted = set(dav.etags(f"/dav/{people[2].login}/~directory/"))
    assert {href.rsplit("/", 1)[-1] for href in mounted} == {h.rsplit("/", 1)[-1] for h in hrefs}


def test_a_card_carries_name_address_school_role_and_department(
    dav_server: RunningServer, people: list[Account]
) -> None:
    dav = DavHttp(dav_server.http_url, people[0].credentials)

    reply = dav.request("GET", f"{BOOK}{people[0].login}.vcf")

    assert reply.status == 200, reply.text
    card = vobject.readOne(reply.text)
    assert card.fn.value == "Hélène Dupré"
    assert card.n.value.family == "Dupré"
    assert card.email.value == people[0].email
    assert card.org.value == ["Lycée Joffre", "Lettres"]
    assert card.title.value == "Enseignant"


def test_addressbook_query_finds_a_person_by_name(
    dav_server: RunningServer, people: list[Account]
) -> None:
    dav = DavHttp(dav_server.http_url, people[1].credentials)

    reply = dav.request("REPORT", BOOK, addressbook_query_body("hélène"), xml_headers(Depth="1"))

    assert reply.status == 207, reply.text
    assert [card.fn.value for card in cards(reply.text)] == ["Hélène Dupré"]


def test_each_school_has_its_book_mounted_for_its_people(
    dav_server: RunningServer, people: list[Account]
) -> None:
    zoe = DavHttp(dav_server.http_url, people[2].credentials)
    listing = zoe.propfind(f"/dav/{people[2].login}/", ["d:displayname"], depth="1").multistatus()
    school_book = f"/dav/{people[2].login}/~directory~college-les-garrigues/"
    assert listing[school_book][f"{{{DAV}}}displayname"].text == (
        "Annuaire — Collège Les Garrigues"
    )

    logins = {href.rsplit("/", 1)[-1][: -len(".vcf")] for href in zoe.etags(school_book)}

    assert people[2].login in logins
    assert people[0].login not in logins


def test_the_directory_is_read_only(dav_server: RunningServer, people: list[Account]) -> None:
    dav = DavHttp(dav_server.http_url, people[0].credentials)
    uid = f"gal-{uuid.uuid4()}"
    card = f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:Intrus\r\nN:Intrus;;;;\r\nEND:VCARD\r\n"

    assert dav.put(f"{BOOK}{uid}.vcf", card, "text/vcard").status == 403
    assert dav.request("DELETE", f"{BOOK}{people[1].login}.vcf").status == 403
    assert dav.request("DELETE", BOOK).status == 403
    supported = dav.propfind(BOOK, ["d:current-user-privilege-set"]).multistatus()[BOOK]
    names = {
        child.tag.split("}")[1]
        for child in supported[f"{{{DAV}}}current-user-privilege-set"].findall("d:privilege/*", NS)
    }
    assert "write-content" not in names


def test_sync_collection_reports_a_newcomer_and_a_departure(
    dav_server: RunningServer, people: list[Account]
) -> None:
    dav = DavHttp(dav_server.http_url, people[0].credentials)
    zoe = DavHttp(dav_server.http_url, people[2].credentials)
    joffre, garrigues = "/dav/~directory/lycee-joffre/", "/dav/~directory/college-les-garrigues/"
    token, first = sync(dav, BOOK)
    assert f"{BOOK}{people[1].login}.vcf" in first
    assert sync(dav, BOOK, token)[1] == {}
    joffre_token, garrigues_token = sync(dav, joffre)[0], sync(zoe, garrigues)[0]

    (newcomer,) = import_accounts(dav_server.core, ("Nina", "Garcia"))
    dav_server.core.directory.set_active(people[1].login, False, actor="test")
    try:
        new_token, changes = sync(dav, BOOK, token)
        school_changes = sync(dav, joffre, joffre_token)[1]
        other_school_changes = sync(zoe, garrigues, garrigues_token)[1]
    finally:
        dav_server.core.directory.set_active(people[1].login, True, actor="test")

    assert changes == {f"{BOOK}{newcomer.login}.vcf": 200, f"{BOOK}{people[1].login}.vcf": 404}
    assert new_token != token
    assert school_changes == {
        f"{joffre}{newcomer.login}.vcf": 200,
        f"{joffre}{people[1].login}.vcf": 404,
    }
    assert other_school_changes == {}


def test_a_move_to_another_school_leaves_one_book_for_the_other(
    dav_server: RunningServer, people: list[Account]
) -> None:
    dav = DavHttp(dav_server.http_url, people[0].credentials)
    joffre, garrigues = "/dav/~directory/lycee-joffre/", "/dav/~directory/college-les-garrigues/"
    (mover,) = import_accounts(dav_server.core, ("Léa", "Marchand"))
    joffre_token, garrigues_token = sync(dav, joffre)[0], sync(dav, garrigues)[0]
    person = dav_server.core.directory.get(mover.login)
    line = (
        f"{mover.numen};{person.last_name};{person.first_name};17/05/1980;Enseignant;"
        "Collège Les Garrigues;Lettres"
    )
    report = HrImport(dav_server.core.directory).run(
        (CSV_HEADER + "\n" + line + "\n").encode(), actor="test"
    )
    assert report.updated == [mover.login]

    assert sync(dav, joffre, joffre_token)[1] == {f"{joffre}{mover.login}.vcf": 404}
    assert sync(dav, garrigues, garrigues_token)[1] == {f"{garrigues}{mover.login}.vcf": 200}


def test_an_unknown_sync_token_is_refused_as_the_rfc_says(
    dav_server: RunningServer, people: list[Account]
) -> None:
    dav = DavHttp(dav_server.http_url, people[0].credentials)

    reply = dav.request("REPORT", BOOK, sync_body("urn:groupware:directory-sync:999999"))

    assert reply.status == 403
    assert reply.xml().find("d:valid-sync-token", NS) is not None


def test_ctag_changes_only_with_the_directory(
    dav_server: RunningServer, people: list[Account]
) -> None:
    dav = DavHttp(dav_server.http_url, people[0].credentials)

    def ctag() -> str:
        props = dav.propfind(BOOK, ["d:getetag", "d:sync-token"]).multistatus()[BOOK]
        return props[f"{{{DAV}}}getetag"].text or ""

    before = ctag()
    assert ctag() == before
    import_accounts(dav_server.core, ("Paul", "Roux"))
    assert ctag() != before
