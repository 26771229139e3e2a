"""The sync-collection fast path answers as Radicale does (``dav.sync``).

As in ``test_fastpath``: each REPORT is served twice by one real ``DavService``,
with the fast path and with Radicale alone, and the answers are compared as sets of
``(href, status, property, value)`` facts, the sync token included. Radicale's
application is watched, so that the REPORTs the fast path must answer are shown to
be answered without it.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import pytest

from groupware.core.directory import Person
from groupware.core.services import Core
from groupware.dav.service import DavAnswer, DavService
from tests.dav.fastpath_support import answer_facts
from tests.dav.test_fastpath import _card, _event, _paths, dav, people

__all__ = ["dav", "people"]  # fixtures shared with test_fastpath

CALDAV = "urn:ietf:params:xml:ns:caldav"
CARDDAV = "urn:ietf:params:xml:ns:carddav"
PROPS = {
    "etag": "<d:getetag/>",
    "etag and data": "<d:getetag/><c:calendar-data/><r:address-data/>",
    "content type and an unknown one": "<d:getcontenttype/><z:nothing xmlns:z='urn:example:z'/>",
    "none": "",
}


def _sync(token: str | None, props: str, extra: str = "") -> bytes:
    token_element = "" if token is None else f"<d:sync-token>{token}</d:sync-token>"
    prop = f"<d:prop>{props}</d:prop>" if props else ""
    return (
        f"<?xml version='1.0'?><d:sync-collection xmlns:d='DAV:' xmlns:c='{CALDAV}' "
        f"xmlns:r='{CARDDAV}'>{token_element}<d:sync-level>1</d:sync-level>{prop}{extra}"
        "</d:sync-collection>"
    ).encode()


def _token(answer: DavAnswer) -> str:
    root = ET.fromstring(answer.body)  # noqa: S314 - our own answer
    return root.findtext("{DAV:}sync-token", "")


def _facts(answer: DavAnswer) -> set[tuple[str, str, str, str]]:
    return answer_facts(answer) | {("", "", "sync-token", _token(answer))}


def _both(
    dav: DavService, person: Person, path: str, body: bytes
) -> tuple[DavAnswer, DavAnswer, list[str]]:
    """(fast answer, Radicale's answer, the methods Radicale answered for the fast one)."""
    seen: list[str] = []
    inner = dav._radicale

    def watched(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        seen.append(environ.get("REQUEST_METHOD", ""))
        return inner(environ, start_response)

    headers = {"Content-Type": "application/xml"}
    dav._radicale = watched
    try:
        fast = dav.request_as(person, "REPORT", path, body, headers)
    finally:
        dav._radicale = inner
    dav.use_fast_paths = False
    try:
        slow = dav.request_as(person, "REPORT", path, body, headers)
    finally:
        dav.use_fast_paths = True
    return fast, slow, seen


def _change_things(dav: DavService, owner: Person) -> None:
    """A new event and card, one of each changed, one of each deleted."""
    for collection, suffix, make in (("calendar", "ics", _event), ("contacts", "vcf", _card)):
        path = f"/{owner.login}/{collection}/"
        listing = dav.request_as(owner, "PROPFIND", path, b"", {"Depth": "1"})
        hrefs = sorted(
            element.text.rsplit("/", 1)[-1]
            for element in ET.fromstring(listing.body).iter("{DAV:}href")  # noqa: S314
            if element.text and element.text.endswith(suffix)
        )
        uid = f"new-{uuid.uuid4().hex[:6]}"
        assert dav.request_as(owner, "PUT", f"{path}{uid}.{suffix}", make(uid)).status == 201
        changed = dav.request_as(owner, "GET", f"{path}{hrefs[0]}").body
        changed = changed.replace(b"Dupont", b"Durand").replace(b"co\r\n", b"compagnie\r\n")
        assert dav.request_as(owner, "PUT", f"{path}{hrefs[0]}", changed).status in (201, 204)
        assert dav.request_as(owner, "DELETE", f"{path}{hrefs[1]}").status == 200


@pytest.mark.parametrize("props_name", sorted(PROPS))
def test_sync_from_a_token_answers_as_radicale_does(
    core: Core, dav: DavService, people: dict[str, Person], props_name: str
) -> None:
    paths = _paths(core, people)
    tokens = {}
    for where, (person, path) in paths.items():
        tokens[where] = _token(dav.request_as(person, "REPORT", path, _sync(None, "")))
    _change_things(dav, people["owner"])

    for where, (person, path) in paths.items():
        fast, slow, radicale_calls = _both(
            dav, person, path, _sync(tokens[where], PROPS[props_name])
        )
        assert (fast.status, where) == (slow.status, where)
        assert fast.status == 207, where
        assert _facts(fast) == _facts(slow), where
        assert radicale_calls == [], where
    own_calendar = paths["own calendar"]
    changes = _both(dav, *own_calendar, _sync(tokens["own calendar"], "<d:getetag/>"))[0]
    statuses = sorted(fact[1] for fact in answer_facts(changes) if fact[2] != "{DAV:}getetag")
    assert statuses == ["HTTP/1.1 404 Not Found"]  # the deleted event
    assert len({fact[0] for fact in answer_facts(changes)}) == 3  # new, changed, deleted


@pytest.mark.parametrize("token", [None, "", "  "])
def test_a_first_sync_lists_everything_as_radicale_does(
    core: Core, dav: DavService, people: dict[str, Person], token: str | None
) -> None:
    for where, (person, path) in _paths(core, people).items():
        fast, slow, radicale_calls = _both(dav, person, path, _sync(token, PROPS["etag"]))
        assert (fast.status, where) == (slow.status, where)
        assert _facts(fast) == _facts(slow), where
        assert radicale_calls == [], where


def test_the_current_token_gives_no_changes(dav: DavService, people: dict[str, Person]) -> None:
    owner = people["owner"]
    path = f"/{owner.login}/calendar/"
    token = _token(dav.request_as(owner, "REPORT", path, _sync(None, "")))
    fast, slow, _calls = _both(dav, owner, path, _sync(token, PROPS["etag"]))

    assert _facts(fast) == _facts(slow) == {("", "", "sync-token", token)}


@pytest.mark.parametrize(
    "token",
    [
        "urn:groupware:dav-sync:0000000000000000:1",  # another collection's key
        "http://example.org/not-ours",
        "urn:groupware:dav-sync:{key}:999999",  # a revision still to come
    ],
)
def test_a_token_not_of_this_collection_is_radicale_refusal(
    dav: DavService, people: dict[str, Person], token: str
) -> None:
    owner = people["owner"]
    path = f"/{owner.login}/calendar/"
    current = _token(dav.request_as(owner, "REPORT", path, _sync(None, "")))
    key = current.split(":")[-2]
    fast, slow, radicale_calls = _both(
        dav, owner, path, _sync(token.format(key=key), "<d:getetag/>")
    )

    assert fast.status == slow.status == 403
    assert fast.body == slow.body
    assert b"valid-sync-token" in fast.body
    assert radicale_calls == ["REPORT"]


def test_a_stranger_is_refused_as_radicale_refuses(
    core: Core, dav: DavService, people: dict[str, Person]
) -> None:
    from tests.support.servers import add_user

    stranger = add_user(core, "Zoé", "Nathan", password="x" * 12)
    dav.collections.ensure_defaults(stranger)
    path = f"/{people['owner'].login}/calendar/"
    fast, slow, _calls = _both(dav, stranger, path, _sync(None, "<d:getetag/>"))

    assert fast.status == slow.status
    assert fast.status in (403, 404)
