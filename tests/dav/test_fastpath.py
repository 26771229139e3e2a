"""The Depth-1 PROPFIND fast path answers as Radicale does (``dav.fastpath``).

Each request is served twice by one real ``DavService``, with the fast path and
with Radicale alone, and the two multistatus documents are compared as sets of
``(href, status, property, value)``.
"""

from __future__ import annotations

import uuid

import pytest

from groupware.core.directory import Person
from groupware.core.services import Core
from groupware.core.sharing import CollectionRef, Level
from groupware.dav.service import DavService
from tests.dav.fastpath_support import answer_facts, both_ways
from tests.support.servers import add_user

CLIENT_PROPS = {
    "davx5": "<d:getetag/><d:getcontenttype/><d:resourcetype/><d:displayname/>"
    "<d:current-user-privilege-set/><cs:getctag/><d:sync-token/>",
    "ios": "<d:getetag/><d:getlastmodified/><d:resourcetype/><d:getcontentlength/>"
    "<x:calendar-color xmlns:x='http://apple.com/ns/ical/'/><d:owner/>"
    "<d:current-user-principal/><d:supported-report-set/><d:principal-collection-set/>",
    "unknown": "<d:getetag/><z:nothing xmlns:z='urn:example:z'/>",
}


def _body(props: str) -> bytes:
    return (
        "<?xml version='1.0'?><d:propfind xmlns:d='DAV:' "
        "xmlns:cs='http://calendarserver.org/ns/'>"
        f"{props}</d:propfind>"
    ).encode()


BODIES = {
    **{name: _body(f"<d:prop>{props}</d:prop>") for name, props in CLIENT_PROPS.items()},
    "allprop": _body("<d:allprop/>"),
    "propname": _body("<d:propname/>"),
    "empty": b"",
}


def _event(uid: str) -> bytes:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260105T100000Z\r\n"
        "DTEND:20260105T110000Z\r\nSUMMARY:Réunion & co\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


def _card(uid: str) -> bytes:
    return (
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:Jean Dupont\r\n"
        "N:Dupont;Jean;;;\r\nEND:VCARD\r\n"
    ).encode()


@pytest.fixture
def dav(core: Core) -> DavService:
    return DavService(core)


@pytest.fixture
def people(core: Core, dav: DavService) -> dict[str, Person]:
    owner = add_user(core, "Alice", "Martin", password="x" * 12)
    reader = add_user(core, "Bob", "Durand", password="x" * 12)
    for person in (owner, reader):
        dav.collections.ensure_defaults(person)
    core.sharing.grant(
        CollectionRef(owner.login, "calendar"), reader.login, Level.READ, actor="test"
    )
    for number in range(3):
        uid = f"{uuid.uuid4()}-{number}"
        put = dav.request_as(owner, "PUT", f"/{owner.login}/calendar/{uid}.ics", _event(uid))
        assert put.status == 201
        put = dav.request_as(owner, "PUT", f"/{owner.login}/contacts/{uid}.vcf", _card(uid))
        assert put.status == 201
    # A name that must be quoted in hrefs (and escaped, were it not quoted).
    odd = "réunion & co+1"
    put = dav.request_as(owner, "PUT", f"/{owner.login}/calendar/{odd}.ics", _event(odd))
    assert put.status == 201
    return {"owner": owner, "reader": reader}


def _paths(core: Core, people: dict[str, Person]) -> dict[str, tuple[Person, str]]:
    owner, reader = people["owner"], people["reader"]
    department = next(
        group.name for group in core.directory.groups_of(reader.id) if group.kind == "department"
    )
    return {
        "own calendar": (owner, f"/{owner.login}/calendar/"),
        "own address book": (owner, f"/{owner.login}/contacts/"),
        "read-only mount": (reader, f"/{reader.login}/{owner.login}~calendar/"),
        "department agenda mount": (reader, f"/{reader.login}/@{department}~agenda/"),
        "department agenda": (reader, f"/@{department}/agenda/"),
        "empty calendar": (reader, f"/{reader.login}/calendar/"),
    }


@pytest.mark.parametrize("body_name", sorted(BODIES))
def test_depth1_propfind_answers_as_radicale_does(
    core: Core, dav: DavService, people: dict[str, Person], body_name: str
) -> None:
    for where, (person, path) in _paths(core, people).items():
        fast, slow = both_ways(dav, person, "PROPFIND", path, BODIES[body_name])
        assert (fast.status, where) == (slow.status, where)
        assert fast.status == 207, where
        assert answer_facts(fast) == answer_facts(slow), where
        assert fast.headers["content-length"] == str(len(fast.body))


def test_items_are_listed_with_their_index_etags(
    dav: DavService, people: dict[str, Person]
) -> None:
    owner = people["owner"]
    fast, _slow = both_ways(dav, owner, "PROPFIND", f"/{owner.login}/calendar/", BODIES["davx5"])
    etags = {
        fact for fact in answer_facts(fast) if fact[2] == "{DAV:}getetag" and ".ics" in fact[0]
    }
    assert len(etags) == 4


def test_a_gzip_answer_is_the_same_document(dav: DavService, people: dict[str, Person]) -> None:
    owner = people["owner"]
    fast, slow = both_ways(
        dav,
        owner,
        "PROPFIND",
        f"/{owner.login}/calendar/",
        BODIES["ios"],
        **{"Accept-Encoding": "gzip"},
    )
    assert fast.headers["content-encoding"] == "gzip"
    assert answer_facts(fast) == answer_facts(slow)


@pytest.mark.parametrize(
    "path_of",
    [
        lambda owner, _reader: f"/{owner.login}/calendar",  # no trailing slash
        lambda _owner, reader: f"/{reader.login}/~directory/",  # a directory book
        lambda owner, reader: f"/{reader.login}/{owner.login}~contacts/",  # not shared
        lambda owner, _reader: f"/{owner.login}/missing/",
        lambda owner, _reader: f"/{owner.login}/",  # a home
    ],
)
def test_requests_it_does_not_handle_get_radicales_answer(
    dav: DavService, people: dict[str, Person], path_of: object
) -> None:
    owner, reader = people["owner"], people["reader"]
    path = path_of(owner, reader)  # type: ignore[operator]
    fast, slow = both_ways(dav, reader if "~" in path else owner, "PROPFIND", path, BODIES["davx5"])
    assert fast.status == slow.status
    if slow.status == 207:
        assert answer_facts(fast) == answer_facts(slow)


def test_a_stranger_is_refused_as_radicale_refuses(
    dav: DavService, people: dict[str, Person]
) -> None:
    owner, reader = people["owner"], people["reader"]
    fast, slow = both_ways(dav, reader, "PROPFIND", f"/{owner.login}/contacts/", BODIES["davx5"])
    assert fast.status == slow.status == 403
