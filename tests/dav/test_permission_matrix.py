"""Who may do what on a shared collection: every actor, collection and method, one case each.

Actors: ``anonymous``; ``other`` (another school, no grant); ``colleague`` (the owner's
school, no grant: free/busy time of calendars only); ``reader``, ``writer``, ``manager``
(grants read, write, manage); ``member`` (of the group that owns the group calendar);
``former`` (removed from that group before the matrix); ``owner``.

Collections: the owner's ``calendar`` and ``contacts`` and a ``group`` calendar (the
department agenda of a group of the other school), each granted to the reader, the
writer and the manager; and the directory address book ``gal``, read by all.

Each case sends one request at the owner's path (``/dav/alice.x/calendar/``) or, for
sharees and members, at the mount in their own home (``/dav/rita.y/alice.x~calendar/``),
checks the status against the contract, that no refused answer carries the owner's
data, and, for a change, that the storage changed exactly when it was allowed. Changes
work on items (and collections) of their own, so the cases are independent.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from groupware.core.services import Core
from groupware.core.sharing import CollectionRef, Level
from groupware.dav.directory_books import card_uid
from tests.dav.accounts import Account
from tests.dav.matrix_support import (
    FREE_BUSY_BODY,
    MKCOL_BOOK_BODY,
    ServerStorage,
    import_people,
    multiget_body,
    privileges_of,
)
from tests.dav.webdav import (
    DavHttp,
    Reply,
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

SCHOOL_A = "Lycée Joffre"
SCHOOL_B = "Collège Voltaire"
PEOPLE = {
    "other": ("Omar", "Ailleurs", SCHOOL_B, "Mathématiques"),
    "colleague": ("Claire", "Voisine", SCHOOL_A, "Lettres"),
    "reader": ("Rita", "Lectrice", SCHOOL_B, "Mathématiques"),
    "writer": ("Walid", "Redacteur", SCHOOL_B, "Mathématiques"),
    "manager": ("Mona", "Gerante", SCHOOL_B, "Mathématiques"),
    "member": ("Marc", "Membre", SCHOOL_B, "Histoire"),
    "former": ("Fanny", "Ancienne", SCHOOL_B, "Histoire"),
    "owner": ("Alice", "Matrice", SCHOOL_A, "Lettres"),
}
GROUP = "@college-voltaire.histoire"  # the department "Histoire" of school B
ACTORS = ("anonymous", *PEOPLE)
MOUNT_ACTORS = ("reader", "writer", "member", "former")  # former: the mount it had is gone
COLLECTIONS = ("calendar", "contacts", "group", "gal")
GRANTS = {"reader": Level.READ, "writer": Level.WRITE, "manager": Level.MANAGE}
READ_METHODS = {
    "PROPFIND_0": 207,
    "PROPFIND_1": 207,
    "PRIVILEGES": 207,  # PROPFIND depth 0 of current-user-privilege-set
    "REPORT_calendar_query": 207,
    "REPORT_calendar_multiget": 207,
    "REPORT_addressbook_query": 207,
    "REPORT_addressbook_multiget": 207,
    "REPORT_sync_collection": 207,
    "REPORT_free_busy": 200,
    "GET": 200,
}


def change_methods(make: str) -> tuple[str, ...]:
    """The methods that change something; ``make`` makes a collection (MKCALENDAR, MKCOL)."""
    return (
        "PUT_new",
        "PUT_replace",
        "DELETE_item",
        "DELETE_collection",
        f"{make}_inside",
        f"{make}_home",
        "PROPPATCH",
        "MOVE_out",
    )


CALENDAR_METHODS = (
    "PROPFIND_0",
    "PROPFIND_1",
    "PRIVILEGES",
    "REPORT_calendar_query",
    "REPORT_calendar_multiget",
    "REPORT_sync_collection",
    "REPORT_free_busy",
    "GET",
    *change_methods("MKCALENDAR"),
)
BOOK_METHODS = (
    "PROPFIND_0",
    "PROPFIND_1",
    "PRIVILEGES",
    "REPORT_addressbook_query",
    "REPORT_addressbook_multiget",
    "REPORT_sync_collection",
    "GET",
    *change_methods("MKCOL"),
)
WRITE_STATUSES = {
    "PUT_new": frozenset({201}),
    "PUT_replace": frozenset({204}),
    "DELETE_item": frozenset({200, 204}),
    "MOVE_out": frozenset({201}),
}
#: A collection inside a calendar or address book: refused to everyone, owner included
#: (rights give nothing below ``/<owner>/<name>/``; Radicale would refuse it too).
INSIDE_STATUSES = frozenset({403})
NO_ACCESS_STATUSES = frozenset({403, 404})
XML = xml_headers()


class Access(enum.IntEnum):
    """What the contract lets an actor do on a collection."""

    ANONYMOUS = 0
    NONE = 1
    FREEBUSY = 2
    READ = 3
    WRITE = 4
    MANAGE = 5
    OWNER = 6


ACCESS = {
    "calendar": {
        "colleague": Access.FREEBUSY,
        "reader": Access.READ,
        "writer": Access.WRITE,
        "manager": Access.MANAGE,
        "owner": Access.OWNER,
    },
    "contacts": {
        "reader": Access.READ,
        "writer": Access.WRITE,
        "manager": Access.MANAGE,
        "owner": Access.OWNER,
    },
    "group": {
        "reader": Access.READ,
        "writer": Access.WRITE,
        "manager": Access.MANAGE,
        "member": Access.READ,
    },
}


@dataclass(frozen=True)
class Case:
    """One request of the matrix: who, on which collection, which method, by which path."""

    actor: str
    collection: str
    method: str
    via_mount: bool = False

    @property
    def id(self) -> str:
        where = self.collection + ("_via_mount" if self.via_mount else "")
        return f"{self.actor}-{where}-{self.method}"

    @property
    def access(self) -> Access:
        if self.actor == "anonymous":
            return Access.ANONYMOUS
        if self.collection == "gal":
            return Access.READ
        return ACCESS[self.collection].get(self.actor, Access.NONE)

    @property
    def is_calendar(self) -> bool:
        return self.collection in ("calendar", "group")

    @property
    def is_gal(self) -> bool:
        return self.collection == "gal"

    def expected(self) -> frozenset[int]:
        """The statuses the contract allows for this case."""
        access, method = self.access, self.method
        if access is Access.ANONYMOUS:
            return frozenset({401})
        if access is Access.NONE:
            return NO_ACCESS_STATUSES
        if access is Access.FREEBUSY:  # the calendar answers, its items do not
            allowed = {"PROPFIND_0": 207, "PRIVILEGES": 207, "REPORT_free_busy": 200}
            return frozenset({allowed.get(method, 403)})
        if method in READ_METHODS:
            return frozenset({READ_METHODS[method]})
        if method.endswith("_inside"):
            return INSIDE_STATUSES
        if access is Access.READ:
            return frozenset({403})
        if method in WRITE_STATUSES:
            return WRITE_STATUSES[method]
        if access is Access.OWNER:
            created = {"DELETE_collection": {200, 204}, "PROPPATCH": {207}}
            return frozenset(created.get(method, {201}))
        if method == "PROPPATCH" and (self.via_mount or access is Access.MANAGE):
            # Through the owner's path, manage renames the collection for everyone;
            # through a mount, write changes the sharee's own view only (dav.storage).
            return frozenset({207})
        return frozenset({403})  # collection delete, collection in the owner's home, PROPPATCH

    def is_allowed(self) -> bool:
        return all(200 <= status < 300 for status in self.expected())


def methods_of(collection: str) -> tuple[str, ...]:
    return CALENDAR_METHODS if collection in ("calendar", "group") else BOOK_METHODS


def all_cases() -> Iterator[Case]:
    """Every actor at the owner's path; sharees, members and the former one at their mounts."""
    for actor in ACTORS:
        for collection in COLLECTIONS:
            for method in methods_of(collection):
                yield Case(actor, collection, method)
    for actor in MOUNT_ACTORS:
        for collection in COLLECTIONS:
            for method in methods_of(collection):
                if not method.endswith("_home"):  # the owner's home: no mount in that path
                    yield Case(actor, collection, method, via_mount=True)


CASES = list(all_cases())


@dataclass(frozen=True)
class Seed:
    """The item every reader of a collection sees and nobody else may."""

    href: str
    uid: str
    marker: str  # its SUMMARY or FN


@dataclass
class World:
    """The module's server, people, seeds and storage, and how each actor names things."""

    base_url: str
    core: Core
    storage: ServerStorage
    accounts: dict[str, Account]
    seeds: dict[str, Seed]

    def login(self, actor: str) -> str:
        return self.accounts["owner" if actor == "anonymous" else actor].login

    def client(self, actor: str) -> DavHttp:
        credentials = None if actor == "anonymous" else self.accounts[actor].credentials
        return DavHttp(self.base_url, credentials)

    def principal(self, collection: str) -> str:
        return GROUP if collection == "group" else self.login("owner")

    def storage_path(self, collection: str, name: str = "") -> str:
        """The collection's storage path; ``name`` another one of the same owner."""
        if collection == "gal":
            return "~directory/all"
        default = "agenda" if collection == "group" else collection
        return f"{self.principal(collection)}/{name or default}"

    def url(self, case: Case, name: str = "") -> str:
        """The collection as the case's actor names it: the owner's path or the mount."""
        if not case.via_mount:
            return f"/dav/{self.storage_path(case.collection, name)}/"
        home = f"/dav/{self.login(case.actor)}/"
        if case.is_gal:
            return home + "~directory/"
        owner, default = self.storage_path(case.collection, name).split("/")
        return f"{home}{owner}~{default}/"

    def throwaway(self, collection: str) -> str:
        """A new collection of the same owner, kind and grants: for collection-wide changes."""
        name = "doomed-" + uuid.uuid4().hex[:10]
        kind = "calendar" if collection in ("calendar", "group") else "addressbook"
        owner = self.principal(collection)
        self.storage.collections.create(owner, name, kind, "Doomed " + name)
        for actor, level in GRANTS.items():
            self.core.sharing.grant(
                CollectionRef(owner, name), self.login(actor), level, actor="test"
            )
        return name

    def secrets(self, collection: str) -> tuple[str, ...]:
        """What a refused answer must not show: the owner's items."""
        if collection == "gal":
            return ()
        seed = self.seeds[collection]
        return (seed.uid, seed.marker)


def item_text(is_calendar: bool, uid: str, marker: str) -> str:
    return event_ics(uid, marker) if is_calendar else contact_vcf(uid, marker)


def item_href(case: Case, uid: str) -> str:
    return uid + (".ics" if case.is_calendar else ".vcf")


def content_type(case: Case) -> dict[str, str]:
    kind = "text/calendar" if case.is_calendar else "text/vcard"
    return {"Content-Type": f"{kind}; charset=utf-8"}


@dataclass
class Verdict:
    """Every way one case departs from the contract (all of them, not just the first)."""

    case: Case
    findings: list[str] = field(default_factory=list)

    def expect(self, condition: bool, finding: str) -> None:
        if not condition:
            self.findings.append(finding)


def send(
    world: World,
    verdict: Verdict,
    method: str,
    path: str,
    body: str = "",
    headers: dict[str, str] | None = None,
    hidden: tuple[str, ...] = (),
) -> Reply:
    """Send the case's request; note a wrong status and any data a refusal shows."""
    case = verdict.case
    reply = world.client(case.actor).request(method, path, body or None, headers)
    expected = case.expected()
    verdict.expect(
        reply.status in expected,
        f"{method} {path} as {case.actor}: expected {sorted(expected)}, got {reply.status}"
        f" {reply.text[:300]!r}",
    )
    if case.access <= Access.FREEBUSY or reply.status >= 400:
        for secret in (*world.secrets(case.collection), *hidden):
            verdict.expect(
                secret not in reply.text, f"{method} {path} as {case.actor} shows {secret!r}"
            )
    return reply


# --- the requests, one function per method ---------------------------------------------


def do_propfind_0(world: World, verdict: Verdict) -> None:
    path = world.url(verdict.case)
    body = propfind_body(["d:displayname"])
    reply = send(world, verdict, "PROPFIND", path, body, {**XML, "Depth": "0"})
    if reply.status == 207:
        verdict.expect(path in reply.multistatus(), f"the answer does not describe {path}")


def do_propfind_1(world: World, verdict: Verdict) -> None:
    case = verdict.case
    path = world.url(case)
    reply = send(
        world, verdict, "PROPFIND", path, propfind_body(["d:getetag"]), {**XML, "Depth": "1"}
    )
    if reply.status == 207:
        seed = path + world.seeds[case.collection].href
        verdict.expect(seed in reply.multistatus(), f"depth 1 does not list {seed}")


def do_privileges(world: World, verdict: Verdict) -> None:
    case = verdict.case
    path = world.url(case)
    body = propfind_body(["d:current-user-privilege-set"])
    reply = send(world, verdict, "PROPFIND", path, body, {**XML, "Depth": "0"})
    if reply.status != 207:
        return
    listed = privileges_of(reply, path)
    if case.access is Access.FREEBUSY:
        wanted, unwanted = {"read-free-busy"}, {"read", "write", "write-content", "all"}
    elif case.access is Access.READ:
        wanted, unwanted = {"read"}, {"write", "write-content", "all"}
    else:
        wanted, unwanted = {"read", "write-content"}, set()
    verdict.expect(
        wanted <= listed and not listed & unwanted,
        f"current-user-privilege-set is {sorted(listed)}: wanted {sorted(wanted)}"
        f", none of {sorted(unwanted)}",
    )


def do_query(world: World, verdict: Verdict) -> None:
    case = verdict.case
    seed = world.seeds[case.collection]
    if case.is_calendar:
        body = calendar_query_body("20300101T000000Z", "20300201T000000Z")
    else:
        body = addressbook_query_body(seed.marker)
    reply = send(world, verdict, "REPORT", world.url(case), body, {**XML, "Depth": "1"})
    if reply.status == 207:
        verdict.expect(seed.marker in reply.text, f"the query does not find {seed.marker!r}")


def do_multiget(world: World, verdict: Verdict) -> None:
    case = verdict.case
    path = world.url(case)
    seed = world.seeds[case.collection]
    body = multiget_body(case.is_calendar, path + seed.href)
    reply = send(world, verdict, "REPORT", path, body, {**XML, "Depth": "1"})
    if reply.status == 207:
        verdict.expect(seed.marker in reply.text, f"the multiget misses {seed.marker!r}")


def do_sync(world: World, verdict: Verdict) -> None:
    case = verdict.case
    path = world.url(case)
    reply = send(world, verdict, "REPORT", path, sync_collection_body(), XML)
    if reply.status == 207:
        seed = path + world.seeds[case.collection].href
        verdict.expect(seed in reply.multistatus(), f"the first sync does not list {seed}")


def do_free_busy(world: World, verdict: Verdict) -> None:
    case = verdict.case
    reply = send(world, verdict, "REPORT", world.url(case), FREE_BUSY_BODY, {**XML, "Depth": "1"})
    if reply.status == 200:
        seed = world.seeds[case.collection]
        text = reply.text
        verdict.expect(
            reply.headers["Content-Type"].startswith("text/calendar"),
            f"free/busy answered as {reply.headers['Content-Type']}",
        )
        verdict.expect("BEGIN:VFREEBUSY" in text and "\nFREEBUSY" in text, f"no busy time: {text}")
        verdict.expect("SUMMARY" not in text and seed.uid not in text, f"details shown: {text}")


def do_get(world: World, verdict: Verdict) -> None:
    case = verdict.case
    seed = world.seeds[case.collection]
    reply = send(world, verdict, "GET", world.url(case) + seed.href)
    if reply.status == 200:
        verdict.expect(f"UID:{seed.uid}" in reply.text, f"GET did not return {seed.uid}")


def do_put_new(world: World, verdict: Verdict) -> None:
    case = verdict.case
    uid = new_uid()
    href = item_href(case, uid)
    headers = {**content_type(case), "If-None-Match": "*"}
    send(
        world,
        verdict,
        "PUT",
        world.url(case) + href,
        item_text(case.is_calendar, uid, "New " + uid),
        headers,
    )
    if not case.is_gal:
        stored = world.storage.text(f"{world.storage_path(case.collection)}/{href}")
        verdict.expect((stored is not None) == case.is_allowed(), f"stored afterwards: {stored}")


def seeded_item(world: World, case: Case) -> tuple[str, str, str]:
    """``(uid, href, storage path)`` of a new item (in the GAL: the owner's card, no path)."""
    if case.is_gal:
        seed = world.seeds["gal"]
        return seed.uid, seed.href, ""
    uid = new_uid()
    href = item_href(case, uid)
    stored = f"{world.storage_path(case.collection)}/{href}"
    world.storage.put(stored, item_text(case.is_calendar, uid, "Original " + uid))
    return uid, href, stored


def do_put_replace(world: World, verdict: Verdict) -> None:
    case = verdict.case
    uid, href, stored = seeded_item(world, case)
    body = item_text(case.is_calendar, uid, "Replaced " + uid)
    path = world.url(case) + href
    send(world, verdict, "PUT", path, body, content_type(case), (f"Original {uid}",))
    if stored:
        text = world.storage.text(stored) or ""
        marker = "Replaced" if case.is_allowed() else "Original"
        verdict.expect(f"{marker} {uid}" in text, f"stored afterwards: {text!r}")


def do_delete_item(world: World, verdict: Verdict) -> None:
    case = verdict.case
    uid, href, stored = seeded_item(world, case)
    send(world, verdict, "DELETE", world.url(case) + href, hidden=(f"Original {uid}",))
    if stored:
        is_gone = world.storage.text(stored) is None
        verdict.expect(is_gone == case.is_allowed(), f"item deleted: {is_gone}")


def do_move_out(world: World, verdict: Verdict) -> None:
    case = verdict.case
    uid, href, stored = seeded_item(world, case)
    target = "calendar" if case.is_calendar else "contacts"
    moved = f"{world.login(case.actor)}/{target}/{new_uid()}-moved{href[-4:]}"
    headers = {"Destination": f"{world.base_url}/dav/{moved}"}
    path = world.url(case) + href
    send(world, verdict, "MOVE", path, headers=headers, hidden=(f"Original {uid}",))
    has_arrived = world.storage.text(moved) is not None
    verdict.expect(has_arrived == case.is_allowed(), f"arrived at {moved}: {has_arrived}")
    if stored:  # not in the GAL, whose cards are made from the directory at each request
        has_left = world.storage.text(stored) is None
        verdict.expect(has_left == case.is_allowed(), f"left {stored}: {has_left}")


def do_delete_collection(world: World, verdict: Verdict) -> None:
    case = verdict.case
    if case.is_gal:
        send(world, verdict, "DELETE", world.url(case))
        return
    name = world.throwaway(case.collection)
    send(world, verdict, "DELETE", world.url(case, name))
    is_gone = world.storage.meta(world.storage_path(case.collection, name)) is None
    verdict.expect(is_gone == case.is_allowed(), f"collection deleted: {is_gone}")


def make_collection(world: World, verdict: Verdict, path: str) -> None:
    """MKCALENDAR, or MKCOL of an address book, at ``path``."""
    if verdict.case.is_calendar:
        send(world, verdict, "MKCALENDAR", path, mkcalendar_body("Matrix"), XML)
    else:
        send(world, verdict, "MKCOL", path, MKCOL_BOOK_BODY, XML)


def do_make_inside(world: World, verdict: Verdict) -> None:
    case = verdict.case
    child = "child-" + new_uid()
    make_collection(world, verdict, f"{world.url(case)}{child}/")
    stored = f"{world.storage_path(case.collection)}/{child}"
    verdict.expect(world.storage.meta(stored) is None, f"{stored} was made")


def do_make_in_home(world: World, verdict: Verdict) -> None:
    case = verdict.case
    home = "~directory" if case.is_gal else world.principal(case.collection)
    stored = f"{home}/new-{new_uid()}"
    make_collection(world, verdict, f"/dav/{stored}/")
    is_made = world.storage.meta(stored) is not None
    verdict.expect(is_made == case.is_allowed(), f"collection made: {is_made}")


def do_proppatch(world: World, verdict: Verdict) -> None:
    case = verdict.case
    if case.is_gal:
        body = proppatch_displayname_body("Patched")
        send(world, verdict, "PROPPATCH", world.url(case), body, XML)
        return
    name = world.throwaway(case.collection)
    stored = world.storage_path(case.collection, name)
    before = (world.storage.meta(stored) or {}).get("D:displayname")
    body = proppatch_displayname_body("Patched " + name)
    send(world, verdict, "PROPPATCH", world.url(case, name), body, XML)
    after = (world.storage.meta(stored) or {}).get("D:displayname")
    # Through a mount, only the sharee's own view may change, never the owner's name.
    changes_owner = case.is_allowed() and not case.via_mount
    expected = "Patched " + name if changes_owner else before
    verdict.expect(after == expected, f"the owner's display name is {after!r}, not {expected!r}")


RUNNERS: dict[str, Callable[[World, Verdict], None]] = {
    "PROPFIND_0": do_propfind_0,
    "PROPFIND_1": do_propfind_1,
    "PRIVILEGES": do_privileges,
    "REPORT_calendar_query": do_query,
    "REPORT_addressbook_query": do_query,
    "REPORT_calendar_multiget": do_multiget,
    "REPORT_addressbook_multiget": do_multiget,
    "REPORT_sync_collection": do_sync,
    "REPORT_free_busy": do_free_busy,
    "GET": do_get,
    "PUT_new": do_put_new,
    "PUT_replace": do_put_replace,
    "DELETE_item": do_delete_item,
    "DELETE_collection": do_delete_collection,
    "MKCALENDAR_inside": do_make_inside,
    "MKCOL_inside": do_make_inside,
    "MKCALENDAR_home": do_make_in_home,
    "MKCOL_home": do_make_in_home,
    "PROPPATCH": do_proppatch,
    "MOVE_out": do_move_out,
}


def new_uid() -> str:
    return "m-" + uuid.uuid4().hex[:12]


# --- the world and the tests -----------------------------------------------------------


def snapshot(world: World) -> dict[str, object]:
    """The shared collections' properties, seed items and grants, read from storage."""
    state: dict[str, object] = {}
    for collection in ("calendar", "contacts", "group"):
        path = world.storage_path(collection)
        state[path] = world.storage.meta(path)
        state[f"{path}/{world.seeds[collection].href}"] = world.storage.text(
            f"{path}/{world.seeds[collection].href}"
        )
        ref = CollectionRef(*path.split("/"))
        state[f"{path} grants"] = sorted(
            (g.grantee, g.level.label) for g in world.core.sharing.grants(collection=ref)
        )
    return state


@pytest.fixture(scope="module")
def world(dav_server: RunningServer) -> World:
    core = dav_server.core
    accounts = dict(zip(PEOPLE, import_people(core, list(PEOPLE.values())), strict=True))
    for actor, account in accounts.items():
        # A first request makes the defaults (and, for the members, the department agenda).
        home = f"/dav/{account.login}/"
        reply = DavHttp(dav_server.http_url, account.credentials).propfind(home, ["d:displayname"])
        assert reply.status == 207, (actor, reply.status, reply.text)
    storage = ServerStorage(core)
    owner = core.directory.get(accounts["owner"].login)
    seeds = {
        "calendar": Seed("matrix-event.ics", "matrix-event", "Conseil de classe confidentiel"),
        "contacts": Seed("matrix-card.vcf", "matrix-card", "Confidentielle Personne"),
        "group": Seed("matrix-group.ics", "matrix-group", "Reunion secrete du departement"),
        "gal": Seed(f"{owner.login}.vcf", card_uid(owner), owner.display_name),
    }
    built = World(dav_server.http_url, core, storage, accounts, seeds)
    assert storage.meta(built.storage_path("group")) is not None, "no department agenda"
    for collection in ("calendar", "contacts", "group"):
        seed = seeds[collection]
        text = item_text(collection != "contacts", seed.uid, seed.marker)
        storage.put(f"{built.storage_path(collection)}/{seed.href}", text)
        ref = CollectionRef(*built.storage_path(collection).split("/"))
        for actor, level in GRANTS.items():
            core.sharing.grant(ref, accounts[actor].login, level, actor="test")
    # The former member read the agenda; the removal applies on the next request.
    agenda = f"/dav/{built.storage_path('group')}/"
    assert built.client("former").propfind(agenda, ["d:displayname"]).status == 207
    core.directory.remove_member(GROUP[1:], accounts["former"].login, actor="test")
    return built


@pytest.fixture(scope="module")
def baseline(world: World) -> dict[str, object]:
    return snapshot(world)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_request_has_the_contracted_outcome(
    case: Case, world: World, baseline: dict[str, object]
) -> None:
    verdict = Verdict(case)

    RUNNERS[case.method](world, verdict)

    assert not verdict.findings, "\n".join(verdict.findings)


def test_shared_collections_are_intact_after_the_matrix(
    world: World, baseline: dict[str, object]
) -> None:
    assert snapshot(world) == baseline
