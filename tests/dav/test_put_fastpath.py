"""The PUT fast path writes and answers as Radicale does (``dav.put``).

Each PUT is made twice on one real ``DavService``, into two collections with the
same items: with the fast paths into one, with Radicale alone into the other. The
answers (status, ETag) and what each store then holds (the text a client reads
back, and the item's index rows) must be the same. Radicale's application is
watched, so that the cases the fast path must take are shown to be taken by it, and
the ones it leaves (errors, failed preconditions, UID conflicts) to be Radicale's.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from radicale import item as radicale_item
from sqlalchemy import select

from groupware.core.directory import Person
from groupware.core.services import Core
from groupware.core.sharing import CollectionRef, Level
from groupware.dav.service import DavAnswer, DavService
from groupware.dav.sqlstore.indexing import enclosing_range, expand_item
from groupware.dav.sqlstore.schema import (
    dav_collections,
    dav_item_ranges,
    dav_item_texts,
    dav_items,
)
from tests.dav.matrix_support import MKCOL_BOOK_BODY
from tests.support.servers import add_user

CRLF = "\r\n"
TIMEZONE = CRLF.join(
    [
        "BEGIN:VTIMEZONE",
        "TZID:Europe/Paris",
        "BEGIN:DAYLIGHT",
        "TZOFFSETFROM:+0100",
        "TZOFFSETTO:+0200",
        "DTSTART:19810329T020000",
        "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
        "TZNAME:CEST",
        "END:DAYLIGHT",
        "BEGIN:STANDARD",
        "TZOFFSETFROM:+0200",
        "TZOFFSETTO:+0100",
        "DTSTART:19961027T030000",
        "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
        "TZNAME:CET",
        "END:STANDARD",
        "END:VTIMEZONE",
    ]
)


def calendar(*lines: str, component: str = "VEVENT", uid: str = "{uid}") -> str:
    """A VCALENDAR with one component of ``lines`` (``{uid}`` filled in later)."""
    body = [f"BEGIN:{component}", f"UID:{uid}", "DTSTAMP:20260101T000000Z", *lines]
    return CRLF.join(
        ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", *body, f"END:{component}"]
        + ["END:VCALENDAR", ""]
    )


#: Events and other calendar objects the fast path must store as Radicale does.
CALENDAR_OBJECTS = {
    "one hour": calendar("DTSTART:20260105T100000Z", "DTEND:20260105T110000Z", "SUMMARY:Conseil"),
    "weekly, ten times": calendar(
        "DTSTART:20260105T100000Z", "DTEND:20260105T110000Z", "RRULE:FREQ=WEEKLY;COUNT=10"
    ),
    "daily, no end": calendar("DTSTART:20260105T080000Z", "DURATION:PT1H", "RRULE:FREQ=DAILY"),
    "monthly until": calendar(
        "DTSTART:20260105T100000Z",
        "DTEND:20260105T110000Z",
        "RRULE:FREQ=MONTHLY;UNTIL=20270101T000000Z",
    ),
    "all day": calendar("DTSTART;VALUE=DATE:20260105", "DTEND;VALUE=DATE:20260106"),
    "start only": calendar("DTSTART:20260105T100000Z"),
    "in a time zone": CRLF.join(
        calendar("DTSTART;TZID=Europe/Paris:20260705T100000", "DURATION:PT2H").split(CRLF)[:3]
        + [TIMEZONE]
        + calendar("DTSTART;TZID=Europe/Paris:20260705T100000", "DURATION:PT2H").split(CRLF)[3:]
    ),
    "exception dates as dates (Evolution)": calendar(
        "DTSTART:20260105T100000Z",
        "DTEND:20260105T110000Z",
        "RRULE:FREQ=WEEKLY;COUNT=5",
        "EXDATE;VALUE=DATE:20260112",
    ),
    "zero duration beside an end (Thunderbird)": calendar(
        "DTSTART:20260105T100000Z", "DTEND:20260105T110000Z", "DURATION:PT0S"
    ),
    "an overridden occurrence": CRLF.join(
        calendar(
            "DTSTART:20260105T100000Z", "DTEND:20260105T110000Z", "RRULE:FREQ=WEEKLY;COUNT=4"
        ).split(CRLF)[:-2]
        + [
            "BEGIN:VEVENT",
            "UID:{uid}",
            "DTSTAMP:20260101T000000Z",
            "RECURRENCE-ID:20260112T100000Z",
            "DTSTART:20260113T150000Z",
            "DTEND:20260113T160000Z",
            "END:VEVENT",
            "END:VCALENDAR",
            "",
        ]
    ),
    "a task without dates": calendar("SUMMARY:Corriger les copies", component="VTODO"),
    "a task with a due date": calendar("DUE:20260110T170000Z", component="VTODO"),
    "a recurring task": calendar(
        "DTSTART:20260105T080000Z", "RRULE:FREQ=WEEKLY;COUNT=3", component="VTODO"
    ),
    "a journal entry": calendar("DTSTART;VALUE=DATE:20260105", component="VJOURNAL"),
    "bare line feeds": calendar("DTSTART:20260105T100000Z", "DURATION:PT1H").replace(CRLF, "\n"),
    "a control character": calendar("DTSTART:20260105T100000Z", "SUMMARY:Bilan\x01 du jour"),
    "long folded text": calendar(
        "DTSTART:20260105T100000Z", "DESCRIPTION:" + "Ordre du jour, " * 20 + "fin"
    ),
}
CARDS = {
    "vCard 3.0": CRLF.join(
        ["BEGIN:VCARD", "VERSION:3.0", "UID:{uid}", "FN:Jean Dupont", "N:Dupont;Jean;;;"]
        + ["EMAIL;TYPE=INTERNET:jean.dupont@example.org", "TEL;TYPE=CELL:06 12 34 56 78"]
        + ["ORG:Lycée Joffre;Vie scolaire", "END:VCARD", ""]
    ),
    "vCard 4.0": CRLF.join(
        ["BEGIN:VCARD", "VERSION:4.0", "UID:{uid}", "FN:Léa Martin", "N:Martin;Léa;;;"]
        + ["EMAIL:lea.martin@example.org", "NICKNAME:Lé", "TITLE:Professeure", "END:VCARD", ""]
    ),
    "photo as a data URI (InfCloud)": CRLF.join(
        ["BEGIN:VCARD", "VERSION:3.0", "UID:{uid}", "FN:Photo Graphe", "N:Graphe;Photo;;;"]
        + ["PHOTO;ENCODING=b;TYPE=PNG:data:image/png;base64,iVBORw0KGgo=", "END:VCARD", ""]
    ),
}
#: Bodies Radicale refuses, which the fast path must leave to it.
REFUSED_CALENDAR_BODIES = {
    "not iCalendar": "this is not a calendar\r\n",
    "cut short": calendar("DTSTART:20260105T100000Z").replace("END:VCALENDAR\r\n", ""),
    "no UID": calendar("DTSTART:20260105T100000Z").replace("UID:{uid}\r\n", ""),
    "two component types": calendar("DTSTART:20260105T100000Z").replace(
        "END:VCALENDAR", "BEGIN:VTODO\r\nUID:{uid}\r\nEND:VTODO\r\nEND:VCALENDAR"
    ),
    "a vCard": CARDS["vCard 3.0"],
    "a broken rule": calendar("DTSTART:20260105T100000Z", "RRULE:FREQ=SOMETIMES"),
    "endless by count": calendar("DTSTART:20260105T100000Z", "RRULE:FREQ=DAILY;COUNT=99999999"),
    "a UID longer than the store keeps": calendar("DTSTART:20260105T100000Z", uid="u" * 600),
}


@dataclass
class Watched:
    """Radicale's application, counting the requests it answers."""

    inner: Callable[..., Any]
    methods: list[str] = field(default_factory=list)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        self.methods.append(environ.get("REQUEST_METHOD", ""))
        return self.inner(environ, start_response)


@dataclass(frozen=True)
class Twins:
    """Two collections of one owner with the same items, the fast one and the other."""

    owner: Person
    writer: Person  # may write to both through a share
    fast: str  # collection name
    slow: str


@pytest.fixture
def dav(core: Core) -> Iterator[DavService]:
    service = DavService(core)
    return service


@pytest.fixture
def people(core: Core, dav: DavService) -> dict[str, Person]:
    owner = add_user(core, "Alice", "Martin", password="x" * 12)
    writer = add_user(core, "Bob", "Durand", password="x" * 12)
    reader = add_user(core, "Chloé", "Petit", password="x" * 12)
    for person in (owner, writer, reader):
        dav.collections.ensure_defaults(person)
    return {"owner": owner, "writer": writer, "reader": reader}


def _twins(core: Core, dav: DavService, people: dict[str, Person], kind: str) -> Twins:
    owner = people["owner"]
    names = (f"{kind}-fast-{uuid.uuid4().hex[:6]}", f"{kind}-slow-{uuid.uuid4().hex[:6]}")
    for name in names:
        if kind == "calendar":
            made = dav.request_as(owner, "MKCALENDAR", f"/{owner.login}/{name}/")
        else:
            made = dav.request_as(
                owner,
                "MKCOL",
                f"/{owner.login}/{name}/",
                MKCOL_BOOK_BODY.encode(),
                {"Content-Type": "application/xml"},
            )
        assert made.status == 201, made.body
        ref = CollectionRef(owner.login, name)
        core.sharing.grant(ref, people["writer"].login, Level.WRITE, actor="test")
        core.sharing.grant(ref, people["reader"].login, Level.READ, actor="test")
    return Twins(owner, people["writer"], *names)


def _put(
    dav: DavService, person: Person, path: str, body: str, headers: dict[str, str]
) -> DavAnswer:
    content_type = "text/vcard" if path.endswith(".vcf") else "text/calendar"
    return dav.request_as(
        person, "PUT", path, body.encode(), {"Content-Type": content_type, **headers}
    )


def _stored(core: Core, owner: str, collection: str, href: str) -> tuple[Any, ...] | None:
    """What the store keeps of one item: its row, ranges and texts (ids left out)."""
    with core.engine.connect() as conn:
        collection_id = conn.execute(
            select(dav_collections.c.id).where(dav_collections.c.path == f"{owner}/{collection}")
        ).scalar_one()
        row = conn.execute(
            select(dav_items).where(
                dav_items.c.collection_id == collection_id, dav_items.c.href == href
            )
        ).first()
        if row is None:
            return None
        ranges = conn.execute(
            select(dav_item_ranges.c.is_long, dav_item_ranges.c.start_ts, dav_item_ranges.c.end_ts)
            .where(dav_item_ranges.c.item_id == row.id)
            .order_by(dav_item_ranges.c.start_ts, dav_item_ranges.c.end_ts)
        ).all()
        texts = conn.execute(
            select(dav_item_texts.c.prop, dav_item_texts.c.value)
            .where(dav_item_texts.c.item_id == row.id)
            .order_by(dav_item_texts.c.prop, dav_item_texts.c.value)
        ).all()
    kept = (
        row.uid,
        row.etag,
        row.name,
        row.component,
        row.text,
        row.start_ts,
        row.end_ts,
        row.indexed_until,
        bool(row.is_infinite),
    )
    return kept, [tuple(r) for r in ranges], [tuple(t) for t in texts]


def both_ways(
    core: Core,
    dav: DavService,
    twins: Twins,
    *,
    name: str,
    body: str,
    headers: dict[str, str] | None = None,
    before: str | None = None,
    as_writer: bool = False,
) -> tuple[DavAnswer, DavAnswer, list[str]]:
    """(fast answer, Radicale's answer, methods Radicale answered on the fast side)."""
    uid = f"uid-{uuid.uuid4().hex[:8]}"
    if before is not None:
        for collection in (twins.fast, twins.slow):
            path = f"/{twins.owner.login}/{collection}/{name}"
            made = _put(dav, twins.owner, path, before.replace("{uid}", uid), {})
            assert made.status == 201, made.body
    watched = Watched(dav._radicale)
    answers = []
    for collection, fast in ((twins.fast, True), (twins.slow, False)):
        person = twins.writer if as_writer else twins.owner
        home = (
            f"/{person.login}/{twins.owner.login}~{collection}"
            if as_writer
            else f"/{twins.owner.login}/{collection}"
        )
        asked = {
            key: value.replace("{etag}", _etag_of(core, twins.owner, collection, name))
            for key, value in (headers or {}).items()
        }
        dav.use_fast_paths = fast
        dav._radicale = watched if fast else watched.inner
        try:
            answers.append(_put(dav, person, f"{home}/{name}", body.replace("{uid}", uid), asked))
        finally:
            dav.use_fast_paths = True
            dav._radicale = watched.inner
    return answers[0], answers[1], watched.methods


def _etag_of(core: Core, owner: Person, collection: str, href: str) -> str:
    stored = _stored(core, owner.login, collection, href)
    return "" if stored is None else str(stored[0][1])


def _horizon_apart(stored: tuple[Any, ...] | None) -> tuple[Any, ...] | None:
    """What is stored, with an open-ended item's horizon apart.

    Such an item is indexed up to a horizon counted from the second it was written,
    and the two writes may fall on either side of a second: the horizon is left out
    here and compared by :func:`assert_same` within a few seconds.
    """
    if stored is None or not stored[0][8]:
        return stored
    row, ranges, texts = stored
    return (*row[:7], None, row[8]), ranges, texts


def assert_same(core: Core, twins: Twins, name: str, fast: DavAnswer, slow: DavAnswer) -> None:
    assert fast.status == slow.status, (fast.body, slow.body)
    assert fast.body == slow.body
    assert fast.headers.get("etag") == slow.headers.get("etag")
    assert {key for key in fast.headers if key != "etag"} <= set(slow.headers)
    fast_stored = _stored(core, twins.owner.login, twins.fast, name)
    slow_stored = _stored(core, twins.owner.login, twins.slow, name)
    assert _horizon_apart(fast_stored) == _horizon_apart(slow_stored)
    if fast_stored is not None and slow_stored is not None:
        assert abs(fast_stored[0][7] - slow_stored[0][7]) <= 5
    if fast.status in (201, 204):
        assert fast_stored is not None
        assert fast.headers["etag"] == fast_stored[0][1]


@pytest.mark.parametrize("case", sorted(CALENDAR_OBJECTS))
def test_a_new_calendar_object_is_stored_as_radicale_stores_it(
    core: Core, dav: DavService, people: dict[str, Person], case: str
) -> None:
    twins = _twins(core, dav, people, "calendar")
    fast, slow, radicale_calls = both_ways(
        core, dav, twins, name="new.ics", body=CALENDAR_OBJECTS[case]
    )

    assert fast.status == 201
    assert_same(core, twins, "new.ics", fast, slow)
    assert radicale_calls == []  # the fast path wrote it


@pytest.mark.parametrize("case", sorted(CARDS))
def test_a_new_card_is_stored_as_radicale_stores_it(
    core: Core, dav: DavService, people: dict[str, Person], case: str
) -> None:
    twins = _twins(core, dav, people, "book")
    fast, slow, radicale_calls = both_ways(core, dav, twins, name="new.vcf", body=CARDS[case])

    assert fast.status == 201
    assert_same(core, twins, "new.vcf", fast, slow)
    assert radicale_calls == []


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 204),
        ({"If-Match": "{etag}"}, 204),
        ({"If-Match": "*"}, 204),
        ({"If-Match": '"not-the-etag"'}, 412),
        ({"If-None-Match": "*"}, 412),
    ],
)
def test_a_replaced_item_follows_radicale_preconditions(
    core: Core, dav: DavService, people: dict[str, Person], headers: dict[str, str], status: int
) -> None:
    twins = _twins(core, dav, people, "calendar")
    before = CALENDAR_OBJECTS["one hour"]
    after = CALENDAR_OBJECTS["weekly, ten times"]
    fast, slow, radicale_calls = both_ways(
        core, dav, twins, name="event.ics", body=after, headers=headers, before=before
    )

    assert fast.status == status
    assert_same(core, twins, "event.ics", fast, slow)
    assert radicale_calls == ([] if status == 204 else ["PUT"])


@pytest.mark.parametrize(
    ("headers", "status"),
    [({"If-None-Match": "*"}, 201), ({"If-Match": "*"}, 412), ({"If-Match": '"x"'}, 412)],
)
def test_a_new_item_follows_radicale_preconditions(
    core: Core, dav: DavService, people: dict[str, Person], headers: dict[str, str], status: int
) -> None:
    twins = _twins(core, dav, people, "calendar")
    fast, slow, radicale_calls = both_ways(
        core, dav, twins, name="new.ics", body=CALENDAR_OBJECTS["one hour"], headers=headers
    )

    assert fast.status == status
    assert_same(core, twins, "new.ics", fast, slow)
    assert radicale_calls == ([] if status == 201 else ["PUT"])


def test_a_uid_held_by_another_item_is_radicale_conflict(
    core: Core, dav: DavService, people: dict[str, Person]
) -> None:
    twins = _twins(core, dav, people, "calendar")
    uid = f"held-{uuid.uuid4().hex[:6]}"
    body = CALENDAR_OBJECTS["one hour"].replace("{uid}", uid)
    for collection in (twins.fast, twins.slow):
        made = _put(dav, twins.owner, f"/{twins.owner.login}/{collection}/first.ics", body, {})
        assert made.status == 201

    fast, slow, radicale_calls = both_ways(core, dav, twins, name="second.ics", body=body)

    assert fast.status == 409
    assert b"no-uid-conflict" in fast.body
    assert_same(core, twins, "second.ics", fast, slow)
    assert radicale_calls == ["PUT"]


def test_changing_the_uid_of_an_href_is_radicale_conflict(
    core: Core, dav: DavService, people: dict[str, Person]
) -> None:
    twins = _twins(core, dav, people, "calendar")
    other = CALENDAR_OBJECTS["one hour"].replace("{uid}", "another-uid")
    fast, slow, radicale_calls = both_ways(
        core, dav, twins, name="event.ics", body=other, before=CALENDAR_OBJECTS["one hour"]
    )

    assert fast.status == 409
    assert_same(core, twins, "event.ics", fast, slow)
    assert radicale_calls == ["PUT"]


@pytest.mark.parametrize("case", sorted(REFUSED_CALENDAR_BODIES))
def test_a_body_radicale_refuses_is_left_to_it(
    core: Core, dav: DavService, people: dict[str, Person], case: str
) -> None:
    twins = _twins(core, dav, people, "calendar")
    fast, slow, radicale_calls = both_ways(
        core, dav, twins, name="bad.ics", body=REFUSED_CALENDAR_BODIES[case]
    )

    assert fast.status == 400
    assert_same(core, twins, "bad.ics", fast, slow)
    assert radicale_calls == ["PUT"]


def test_an_href_longer_than_the_store_keeps_is_refused_as_radicale_refuses(
    core: Core, dav: DavService, people: dict[str, Person]
) -> None:
    twins = _twins(core, dav, people, "calendar")
    name = "n" * 600 + ".ics"
    fast, slow, radicale_calls = both_ways(
        core, dav, twins, name=name, body=CALENDAR_OBJECTS["one hour"]
    )

    assert fast.status == 400
    assert_same(core, twins, name, fast, slow)
    assert radicale_calls == ["PUT"]


def test_an_event_into_an_address_book_is_left_to_radicale(
    core: Core, dav: DavService, people: dict[str, Person]
) -> None:
    twins = _twins(core, dav, people, "book")
    fast, slow, radicale_calls = both_ways(
        core, dav, twins, name="event.vcf", body=CALENDAR_OBJECTS["one hour"]
    )

    assert fast.status == 400
    assert_same(core, twins, "event.vcf", fast, slow)
    assert radicale_calls == ["PUT"]


def test_a_writer_puts_through_the_share_as_radicale_would(
    core: Core, dav: DavService, people: dict[str, Person]
) -> None:
    twins = _twins(core, dav, people, "calendar")
    fast, slow, radicale_calls = both_ways(
        core, dav, twins, name="shared.ics", body=CALENDAR_OBJECTS["all day"], as_writer=True
    )

    assert fast.status == 201
    assert_same(core, twins, "shared.ics", fast, slow)
    assert radicale_calls == []


def test_a_reader_cannot_put_through_the_share(
    core: Core, dav: DavService, people: dict[str, Person]
) -> None:
    twins = _twins(core, dav, people, "calendar")
    reader = people["reader"]
    for fast in (True, False):
        dav.use_fast_paths = fast
        answer = _put(
            dav,
            reader,
            f"/{reader.login}/{twins.owner.login}~{twins.fast}/x.ics",
            CALENDAR_OBJECTS["one hour"].replace("{uid}", "read-only"),
            {},
        )
        assert answer.status == 403
    dav.use_fast_paths = True
    assert _stored(core, twins.owner.login, twins.fast, "x.ics") is None


def test_a_body_in_latin_1_is_read_in_its_charset(
    core: Core, dav: DavService, people: dict[str, Person]
) -> None:
    twins = _twins(core, dav, people, "calendar")
    uid = "latin-1"
    body = calendar("DTSTART:20260105T100000Z", "SUMMARY:Réunion d'équipe").replace("{uid}", uid)
    answers = []
    for collection, fast in ((twins.fast, True), (twins.slow, False)):
        dav.use_fast_paths = fast
        answers.append(
            dav.request_as(
                twins.owner,
                "PUT",
                f"/{twins.owner.login}/{collection}/latin.ics",
                body.encode("iso8859-1"),
                {"Content-Type": "text/calendar; charset=iso-8859-1"},
            )
        )
    dav.use_fast_paths = True
    assert [answer.status for answer in answers] == [201, 201]
    assert_same(core, twins, "latin.ics", answers[0], answers[1])
    stored = _stored(core, twins.owner.login, twins.fast, "latin.ics")
    assert stored is not None
    assert "Réunion d'équipe" in stored[0][4]


@pytest.mark.parametrize("case", sorted(CALENDAR_OBJECTS))
def test_the_enclosing_range_from_the_index_is_radicale_time_range(case: str) -> None:
    (component,) = radicale_item.read_components(CALENDAR_OBJECTS[case].replace("{uid}", "u"))
    radicale_item.check_and_sanitize_items(
        [component], max_vevent_rrule_occurrence=0, is_collection=False, tag="VCALENDAR"
    )
    tag = radicale_item.find_tag(component)
    enclosing = enclosing_range(expand_item(component, tag))
    expected = radicale_item.find_time_range(component, tag)

    if enclosing is not None:
        assert enclosing == expected
    else:  # left to find_time_range: an infinite rule, or ranges past the horizon
        assert "RRULE" in CALENDAR_OBJECTS[case]


def test_a_store_made_before_the_covering_text_index_gets_it(core: Core) -> None:
    from radicale import config as radicale_config

    from groupware.dav.sqlstore.storage import SqlStorage

    def indexes() -> set[str]:
        with core.engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT name FROM sqlite_master"
                " WHERE type = 'index' AND tbl_name = 'dav_item_texts'"
            )
            return {row[0] for row in rows}

    SqlStorage(radicale_config.load(), core.engine)
    assert "ix_dav_item_texts_value" in indexes()
    with core.engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_dav_item_texts_value")
    assert "ix_dav_item_texts_value" not in indexes()

    SqlStorage(radicale_config.load(), core.engine)  # as at the next start

    assert "ix_dav_item_texts_value" in indexes()
