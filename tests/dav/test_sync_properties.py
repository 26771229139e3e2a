"""Property: a client replaying sync-collection deltas always has the server's state.

Hypothesis draws sequences of PUT (new or changed), DELETE and MOVE (between two
calendars and within one) on a real running server, with sync-collection REPORTs
interleaved; two clients, one per calendar, keep ``{href: etag}`` from the deltas
alone (RFC 6578: a changed member with its ETag, a removed one as ``404``). After
every sync, and at the end, each client's view must equal a full Depth-1 listing.
Whatever status the server gives an operation (a MOVE onto an existing UID may be
refused), the property is about what the deltas say, not about a model.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.dav.accounts import Account, import_accounts
from tests.dav.webdav import DAV, NS, DavHttp, event_ics, mkcalendar_body, xml_headers
from tests.support.servers import RunningServer

#: Item names drawn from: few, so that operations meet the same items again.
NAMES = ("a", "b", "c", "d")
CALENDARS = (0, 1)
#: Examples per run: about a second each on a loaded machine.
MAX_EXAMPLES = 25

operations = st.one_of(
    st.tuples(st.just("put"), st.sampled_from(CALENDARS), st.sampled_from(NAMES)),
    st.tuples(st.just("delete"), st.sampled_from(CALENDARS), st.sampled_from(NAMES)),
    st.tuples(
        st.just("move"),
        st.sampled_from(CALENDARS),
        st.sampled_from(NAMES),
        st.sampled_from(CALENDARS),
        st.sampled_from(NAMES),
    ),
    st.tuples(st.just("sync"), st.sampled_from(CALENDARS)),
)


@dataclass
class SyncClient:
    """What a phone keeps of one calendar: ``{href: etag}`` and its sync token."""

    path: str
    token: str = ""
    items: dict[str, str] = field(default_factory=dict)

    def sync(self, dav: DavHttp) -> None:
        """Apply one sync-collection delta."""
        body = (
            f'<d:sync-collection xmlns:d="{DAV}"><d:sync-token>{self.token}</d:sync-token>'
            "<d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>"
        )
        reply = dav.request("REPORT", self.path, body, xml_headers())
        assert reply.status == 207, (reply.status, reply.text)
        root = reply.xml()
        for response in root.findall("d:response", NS):
            href = response.findtext("d:href", "", NS)
            if "404" in response.findtext("d:status", "", NS):
                self.items.pop(href, None)
                continue
            etag = response.findtext("d:propstat/d:prop/d:getetag", None, NS)
            assert etag, (href, reply.text)
            self.items[href] = etag
        self.token = root.findtext("d:sync-token", "", NS)
        assert self.token


@pytest.fixture(scope="module")
def account(dav_server: RunningServer) -> Account:
    (person,) = import_accounts(dav_server.core, ("Odile", "Synchro"))
    return person


def _listing(dav: DavHttp, path: str) -> dict[str, str]:
    """``{quoted href: etag}`` from a full Depth-1 PROPFIND."""
    reply = dav.propfind(path, ["d:getetag"], depth="1")
    assert reply.status == 207, (reply.status, reply.text)
    listed = {}
    for response in reply.xml().findall("d:response", NS):
        href = response.findtext("d:href", "", NS)
        etag = response.findtext("d:propstat/d:prop/d:getetag", None, NS)
        if href != path and etag:
            listed[href] = etag
    return listed


def _apply(
    dav: DavHttp, paths: list[str], operation: tuple[object, ...], version: int, run: str
) -> None:
    kind = operation[0]
    calendar, name = operation[1], operation[2] if len(operation) > 2 else ""
    if kind == "put":
        path = f"{paths[calendar]}{name}.ics"  # type: ignore[index]
        text = event_ics(f"{run}-{name}", f"version {version}")
        assert dav.put(path, text, "text/calendar").status in (201, 204, 409, 403)
    elif kind == "delete":
        path = f"{paths[calendar]}{name}.ics"  # type: ignore[index]
        assert dav.request("DELETE", path).status in (200, 204, 404)
    elif kind == "move":
        _kind, source, name, target, target_name = operation
        destination = f"{dav.base_url}{paths[target]}{target_name}.ics"  # type: ignore[index]
        reply = dav.request(
            "MOVE",
            f"{paths[source]}{name}.ics",  # type: ignore[index]
            headers={"Destination": destination, "Overwrite": "T"},
        )
        assert reply.status in (201, 204, 403, 404, 409, 412), (reply.status, reply.text)


@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
@given(steps=st.lists(operations, min_size=1, max_size=20))
def test_sync_deltas_replayed_give_the_servers_state(
    dav_server: RunningServer, account: Account, steps: list[tuple[object, ...]]
) -> None:
    dav = DavHttp(dav_server.http_url, account.credentials)
    run = uuid.uuid4().hex[:12]
    paths = []
    for index in CALENDARS:
        path = f"/dav/{account.login}/sync-{run}-{index}/"
        made = dav.request("MKCALENDAR", path, mkcalendar_body(f"sync {index}"), xml_headers())
        assert made.status == 201, (made.status, made.text)
        paths.append(path)
    clients = [SyncClient(path) for path in paths]
    for client in clients:
        client.sync(dav)
    for version, operation in enumerate(steps):
        if operation[0] == "sync":
            client = clients[operation[1]]  # type: ignore[index]
            client.sync(dav)
            assert client.items == _listing(dav, client.path)
        else:
            _apply(dav, paths, operation, version, run)
    for client in clients:
        client.sync(dav)
        assert client.items == _listing(dav, client.path)
        assert dav.request("DELETE", client.path).status in (200, 204)
