"""The SQL store answers queries exactly as Radicale's file store does, from its index.

Two live servers, one on each store (``dav.storage``), get the same events and
contacts; every calendar-query and addressbook-query must return the same hrefs
from both. The events are chosen where an index can go wrong: recurrences (finite,
infinite, with exceptions and a moved occurrence), expansions cut at the horizon,
all-day and zero-length events, a range longer than a month, to-dos. The queries
fall within the expansion horizon (answered from the index alone) and far beyond it
(where Radicale checks the recurring items itself).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy

from tests.dav.accounts import Account, import_accounts
from tests.dav.webdav import CALDAV, CARDDAV, DAV, DavHttp, Reply, contact_vcf, xml_headers
from tests.support.servers import RunningServer, make_config, running_server

ICS = "text/calendar"
VCARD = "text/vcard"
#: Next year: within the expansion horizon (three years after indexing).
NEAR = dt.datetime.now(dt.UTC).year + 1
#: Far beyond it.
FAR = NEAR + 12


@pytest.fixture(scope="module")
def file_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = make_config(tmp_path_factory.mktemp("dav-files"), dav={"storage": "files"})
    with running_server(config) as live:
        yield live


def _account(server: RunningServer) -> Account:
    (account,) = import_accounts(server.core, ("Inès", "Lefèvre"))
    return account


@pytest.fixture(scope="module")
def clients(dav_server: RunningServer, file_server: RunningServer) -> tuple[DavHttp, DavHttp]:
    """``(SQL store, file store)`` clients of the same person."""
    ours, theirs = _account(dav_server), _account(file_server)
    assert ours.login == theirs.login
    return (
        DavHttp(dav_server.http_url, ours.credentials),
        DavHttp(file_server.http_url, theirs.credentials),
    )


def _calendar(uid: str, body: str, component: str = "VEVENT") -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//groupware tests//EN\r\n"
        f"BEGIN:{component}\r\nUID:{uid}\r\nDTSTAMP:20200101T000000Z\r\n{body}"
        f"END:{component}\r\nEND:VCALENDAR\r\n"
    )


def _events() -> dict[str, str]:
    moved = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//groupware tests//EN\r\n"
        "BEGIN:VEVENT\r\nUID:moved\r\nDTSTAMP:20200101T000000Z\r\n"
        f"DTSTART:{NEAR}0104T080000Z\r\nDTEND:{NEAR}0104T090000Z\r\n"
        "RRULE:FREQ=MONTHLY;BYMONTHDAY=4\r\nSUMMARY:moved\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:moved\r\nDTSTAMP:20200101T000000Z\r\n"
        f"RECURRENCE-ID:{NEAR}0404T080000Z\r\n"
        f"DTSTART:{NEAR}0331T080000Z\r\nDTEND:{NEAR}0331T090000Z\r\n"
        "SUMMARY:moved\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    return {
        "single": f"DTSTART:{NEAR}0310T100000Z\r\nDTEND:{NEAR}0310T110000Z\r\nSUMMARY:conseil\r\n",
        "all-day": f"DTSTART;VALUE=DATE:{NEAR}0331\r\nSUMMARY:journée\r\n",
        "zero-length": f"DTSTART:{NEAR}0401T000000Z\r\nDURATION:PT0S\r\nSUMMARY:borne\r\n",
        "weekly": f"DTSTART:{NEAR - 1}0107T080000Z\r\nDTEND:{NEAR - 1}0107T090000Z\r\n"
        "RRULE:FREQ=WEEKLY\r\nSUMMARY:cours\r\n",
        "weekly-exdate": f"DTSTART:{NEAR}0302T080000Z\r\nDTEND:{NEAR}0302T090000Z\r\n"
        f"RRULE:FREQ=WEEKLY;UNTIL={NEAR}0410T000000Z\r\n"
        f"EXDATE:{NEAR}0302T080000Z,{NEAR}0309T080000Z,{NEAR}0316T080000Z,"
        f"{NEAR}0323T080000Z,{NEAR}0330T080000Z\r\nSUMMARY:annulé\r\n",
        "daily-count": f"DTSTART:{NEAR}0227T120000Z\r\nDTEND:{NEAR}0227T130000Z\r\n"
        "RRULE:FREQ=DAILY;COUNT=5\r\nSUMMARY:stage\r\n",
        # Expanded from 2015: the index stops long before NEAR (MAX_RANGES_PER_ITEM).
        "daily-old": "DTSTART:20150101T070000Z\r\nDTEND:20150101T073000Z\r\n"
        "RRULE:FREQ=DAILY\r\nSUMMARY:cantine\r\n",
        "long": f"DTSTART:{NEAR}0115T000000Z\r\nDTEND:{NEAR}0415T000000Z\r\nSUMMARY:expo\r\n",
        "timezone": "DTSTART;TZID=Europe/Paris:" + f"{NEAR}0301T003000\r\n"
        "DURATION:PT1H\r\nSUMMARY:minuit\r\n",
        "far": f"DTSTART:{FAR}0310T100000Z\r\nDTEND:{FAR}0310T110000Z\r\nSUMMARY:loin\r\n",
        "moved": moved,
    }


def _todos() -> dict[str, str]:
    return {
        "todo-due": f"DUE:{NEAR}0315T170000Z\r\nSUMMARY:copies\r\n",
        "todo-weekly": f"DTSTART:{NEAR}0105T080000Z\r\nDUE:{NEAR}0105T090000Z\r\n"
        "RRULE:FREQ=WEEKLY\r\nSUMMARY:relevé\r\n",
        "todo-none": "SUMMARY:un jour\r\n",
    }


@pytest.fixture(scope="module")
def calendars(clients: tuple[DavHttp, DavHttp]) -> tuple[str, str]:
    """Both stores get the same events (collection ``events``) and to-dos (``tasks``)."""
    login = clients[0].credentials[0]  # type: ignore[index]
    events, tasks = f"/dav/{login}/events/", f"/dav/{login}/tasks/"
    for dav in clients:
        for path, components in ((events, "VEVENT"), (tasks, "VEVENT,VTODO")):
            body = (
                f'<c:mkcalendar xmlns:d="{DAV}" xmlns:c="{CALDAV}"><d:set><d:prop>'
                f'<c:supported-calendar-component-set><c:comp name="{components.split(",")[-1]}"/>'
                "</c:supported-calendar-component-set></d:prop></d:set></c:mkcalendar>"
            )
            assert dav.request("MKCALENDAR", path, body, xml_headers()).status == 201
        for name, body in _events().items():
            text = body if body.startswith("BEGIN:VCALENDAR") else _calendar(name, body)
            assert dav.put(f"{events}{name}.ics", text, ICS).status == 201, name
        for name, body in _todos().items():
            assert dav.put(f"{tasks}{name}.ics", _calendar(name, body, "VTODO"), ICS).status == 201
    return events, tasks


def _query(dav: DavHttp, path: str, filter_xml: str) -> set[str]:
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<c:calendar-query xmlns:d="{DAV}" xmlns:c="{CALDAV}">'
        f"<d:prop><d:getetag/></d:prop><c:filter>{filter_xml}</c:filter></c:calendar-query>"
    )
    reply = dav.request("REPORT", path, body, xml_headers(Depth="1"))
    return {href.rsplit("/", 1)[-1] for href in reply.multistatus()}


def _range(component: str, start: str, end: str | None = None) -> str:
    end_attribute = f' end="{end}"' if end else ""
    return (
        f'<c:comp-filter name="VCALENDAR"><c:comp-filter name="{component}">'
        f'<c:time-range start="{start}"{end_attribute}/></c:comp-filter></c:comp-filter>'
    )


def _month(year: int, month: int) -> tuple[str, str]:
    after = dt.date(year + month // 12, month % 12 + 1, 1)
    return f"{year}{month:02d}01T000000Z", after.strftime("%Y%m%dT000000Z")


EVENT_QUERIES = {
    "february": _range("VEVENT", *_month(NEAR, 2)),
    "march": _range("VEVENT", *_month(NEAR, 3)),
    "april": _range("VEVENT", *_month(NEAR, 4)),
    "far-march": _range("VEVENT", *_month(FAR, 3)),
    "one-second": _range("VEVENT", f"{NEAR}0401T000000Z", f"{NEAR}0401T000001Z"),
    "open-ended": _range("VEVENT", f"{FAR}0101T000000Z"),
    "calendar-level": f'<c:comp-filter name="VCALENDAR"><c:time-range start="{NEAR}0301T000000Z"'
    f' end="{NEAR}0302T000000Z"/></c:comp-filter>',
    "with-summary": '<c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT">'
    f'<c:time-range start="{NEAR}0301T000000Z" end="{NEAR}0401T000000Z"/>'
    '<c:prop-filter name="SUMMARY"><c:text-match>cours</c:text-match></c:prop-filter>'
    "</c:comp-filter></c:comp-filter>",
    "no-range": '<c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT"/></c:comp-filter>',
}


@pytest.mark.parametrize("query", sorted(EVENT_QUERIES))
def test_event_query_answers_as_the_file_store(
    clients: tuple[DavHttp, DavHttp], calendars: tuple[str, str], query: str
) -> None:
    ours, theirs = (_query(dav, calendars[0], EVENT_QUERIES[query]) for dav in clients)

    assert ours == theirs


def test_march_query_finds_the_recurrences_and_the_moved_occurrence_only(
    clients: tuple[DavHttp, DavHttp], calendars: tuple[str, str]
) -> None:
    found = _query(clients[0], calendars[0], EVENT_QUERIES["march"])

    assert found == {
        "single.ics",
        "all-day.ics",
        "weekly.ics",
        "daily-count.ics",
        "daily-old.ics",
        "long.ics",
        "timezone.ics",
        "moved.ics",
    }
    # Every March occurrence of weekly-exdate is excluded; the April one is not.
    assert "weekly-exdate.ics" not in found
    assert "weekly-exdate.ics" in _query(clients[0], calendars[0], EVENT_QUERIES["april"])


@pytest.mark.parametrize(
    "month", [_month(NEAR, 1), _month(NEAR, 3), _month(FAR, 3)], ids=["jan", "mar", "far"]
)
def test_todo_query_answers_as_the_file_store(
    clients: tuple[DavHttp, DavHttp], calendars: tuple[str, str], month: tuple[str, str]
) -> None:
    ours, theirs = (_query(dav, calendars[1], _range("VTODO", *month)) for dav in clients)

    assert ours == theirs
    assert "todo-none.ics" in ours  # a to-do without dates matches every range


# --- address books -------------------------------------------------------------------

CARDS = {
    "ines": ("Inès Lefèvre", "ines.lefevre@ac-test.fr", "+33 1 42 00 00 01", "Lycée Joffre"),
    "marc": ("Marc Dupont", "marc.dupont@ac-test.fr", "06 12 34 56 78", "Collège Jean Moulin"),
    "zoe": ("Zoé Martin_Roux", "zoe%martin@example.org", "04 67 00 00 00", "Lycée Joffre"),
    "paul": ("Paul Érard", "", "", ""),
}


@pytest.fixture(scope="module")
def book(clients: tuple[DavHttp, DavHttp]) -> str:
    login = clients[0].credentials[0]  # type: ignore[index]
    path = f"/dav/{login}/contacts/"
    for dav in clients:
        for name, (full_name, email, phone, org) in CARDS.items():
            text = contact_vcf(name, full_name, email)
            extra = "".join(
                line
                for line, value in (
                    (f"TEL:{phone}\r\n", phone),
                    (f"ORG:{org};Vie scolaire\r\n", org),
                )
                if value
            )
            text = text.replace("END:VCARD", f"{extra}NOTE:carte {name}\r\nEND:VCARD")
            assert dav.put(f"{path}{name}.vcf", text, VCARD).status == 201
    return path


def _card_query(dav: DavHttp, path: str, filter_xml: str) -> tuple[int, set[str]]:
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<cr:addressbook-query xmlns:d="{DAV}" xmlns:cr="{CARDDAV}">'
        f"<d:prop><d:getetag/></d:prop>{filter_xml}</cr:addressbook-query>"
    )
    reply: Reply = dav.request("REPORT", path, body, xml_headers(Depth="1"))
    if reply.status != 207:
        return reply.status, set()
    return reply.status, {href.rsplit("/", 1)[-1] for href in reply.multistatus()}


def _text(prop: str, text: str, match_type: str = "contains", **attributes: str) -> str:
    extra = "".join(f' {name.replace("_", "-")}="{value}"' for name, value in attributes.items())
    return (
        f'<cr:prop-filter name="{prop}"><cr:text-match match-type="{match_type}"{extra}>'
        f"{text}</cr:text-match></cr:prop-filter>"
    )


CARD_QUERIES = {
    "name-contains": f"<cr:filter>{_text('FN', 'lefè')}</cr:filter>",
    "name-upper": f"<cr:filter>{_text('FN', 'INÈS')}</cr:filter>",
    "email-equals": f"<cr:filter>{_text('EMAIL', 'marc.dupont@ac-test.fr', 'equals')}</cr:filter>",
    "phone-starts": f"<cr:filter>{_text('TEL', '06', 'starts-with')}</cr:filter>",
    "email-ends": f"<cr:filter>{_text('EMAIL', 'ac-test.fr', 'ends-with')}</cr:filter>",
    "org": f"<cr:filter>{_text('ORG', 'joffre')}</cr:filter>",
    "org-unit": f"<cr:filter>{_text('ORG', 'vie scolaire', 'equals')}</cr:filter>",
    "n-structured": f"<cr:filter>{_text('N', 'dupont')}</cr:filter>",
    "like-wildcards": f"<cr:filter>{_text('EMAIL', 'zoe%m')}</cr:filter>"
    f"<cr:filter>{_text('FN', 'n_r')}</cr:filter>",
    "underscore-is-literal": f"<cr:filter>{_text('FN', 's_l')}</cr:filter>",
    "anyof": f'<cr:filter test="anyof">{_text("FN", "marc")}{_text("EMAIL", "example")}'
    "</cr:filter>",
    "allof": f'<cr:filter test="allof">{_text("FN", "e")}{_text("ORG", "lycée")}</cr:filter>',
    "negate": f"<cr:filter>{_text('FN', 'marc', negate_condition='yes')}</cr:filter>",
    "octet": f"<cr:filter>{_text('FN', 'Inès', collation='i;octet')}</cr:filter>",
    "octet-case": f"<cr:filter>{_text('FN', 'inès', collation='i;octet')}</cr:filter>",
    "unindexed-note": f"<cr:filter>{_text('NOTE', 'carte z')}</cr:filter>",
    "empty-text": f"<cr:filter>{_text('EMAIL', '')}</cr:filter>",
    "is-defined": '<cr:filter><cr:prop-filter name="TEL"/></cr:filter>',
}


@pytest.mark.parametrize("query", sorted(CARD_QUERIES))
def test_contact_query_answers_as_the_file_store(
    clients: tuple[DavHttp, DavHttp], book: str, query: str
) -> None:
    ours, theirs = (_card_query(dav, book, CARD_QUERIES[query]) for dav in clients)

    assert ours == theirs
    assert ours[0] == 207


def test_contact_text_search_finds_names_emails_phones_and_organisations(
    clients: tuple[DavHttp, DavHttp], book: str
) -> None:
    dav = clients[0]

    assert _card_query(dav, book, CARD_QUERIES["name-contains"])[1] == {"ines.vcf"}
    assert _card_query(dav, book, CARD_QUERIES["email-equals"])[1] == {"marc.vcf"}
    assert _card_query(dav, book, CARD_QUERIES["phone-starts"])[1] == {"marc.vcf"}
    assert _card_query(dav, book, CARD_QUERIES["org"])[1] == {"ines.vcf", "zoe.vcf"}
    assert _card_query(dav, book, CARD_QUERIES["underscore-is-literal"])[1] == set()


# --- sync ----------------------------------------------------------------------------


def _sync(dav: DavHttp, path: str, token: str) -> tuple[int, str, list[str]]:
    body = (
        f'<d:sync-collection xmlns:d="{DAV}"><d:sync-token>{token}</d:sync-token>'
        "<d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>"
    )
    reply = dav.request("REPORT", path, body, xml_headers())
    if reply.status != 207:
        return reply.status, "", []
    root = reply.xml()
    hrefs = [
        href.rsplit("/", 1)[-1]
        for href in (r.findtext(f"{{{DAV}}}href", "") for r in root.findall(f"{{{DAV}}}response"))
    ]
    return reply.status, root.findtext(f"{{{DAV}}}sync-token", ""), hrefs


def test_sync_after_changes_reports_each_changed_href_once(
    clients: tuple[DavHttp, DavHttp],
) -> None:
    dav = clients[0]
    login = dav.credentials[0]  # type: ignore[index]
    path = f"/dav/{login}/calendar/"
    kept, changed, removed = (str(uuid.uuid4()) for _ in range(3))
    for uid in (kept, changed, removed):
        assert (
            dav.put(f"{path}{uid}.ics", _calendar(uid, "DTSTART:20300101T100000Z\r\n"), ICS).status
            == 201
        )
    _status, token, _all = _sync(dav, path, "")

    for _ in range(3):  # three writes of one item: reported once
        body = _calendar(changed, f"DTSTART:20300101T100000Z\r\nSUMMARY:{uuid.uuid4()}\r\n")
        assert dav.put(f"{path}{changed}.ics", body, ICS).status == 204
    assert dav.request("DELETE", f"{path}{removed}.ics").status == 200
    status, new_token, hrefs = _sync(dav, path, token)

    assert status == 207
    assert sorted(hrefs) == sorted([f"{changed}.ics", f"{removed}.ics"])
    assert new_token != token
    assert _sync(dav, path, new_token)[2] == []


def test_a_token_of_another_collection_is_refused(clients: tuple[DavHttp, DavHttp]) -> None:
    dav = clients[0]
    login = dav.credentials[0]  # type: ignore[index]
    _status, token, _hrefs = _sync(dav, f"/dav/{login}/calendar/", "")

    assert _sync(dav, f"/dav/{login}/contacts/", token)[0] == 403


def test_the_sync_token_property_reads_no_href(clients: tuple[DavHttp, DavHttp]) -> None:
    """A ctag/sync-token PROPFIND costs the same at 10 items and at 10,000."""
    dav = clients[0]
    login = dav.credentials[0]  # type: ignore[index]
    path = f"/dav/{login}/calendar/"
    uid = str(uuid.uuid4())
    assert (
        dav.put(f"{path}{uid}.ics", _calendar(uid, "DTSTART:20300101T100000Z\r\n"), ICS).status
        == 201
    )
    statements: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        statements.append(statement)

    body = f'<d:propfind xmlns:d="{DAV}"><d:prop><d:sync-token/></d:prop></d:propfind>'
    # Every engine of the process: the server's own Core runs in a thread of ours.
    engine = sqlalchemy.engine.Engine
    sqlalchemy.event.listen(engine, "before_cursor_execute", note)
    try:
        reply = dav.request("PROPFIND", path, body, xml_headers(Depth="0"))
    finally:
        sqlalchemy.event.remove(engine, "before_cursor_execute", note)

    assert reply.status == 207
    assert reply.xml().findtext(f".//{{{DAV}}}sync-token", "").startswith("urn:groupware:")
    assert statements  # the listener saw the request's queries
    assert not [s for s in statements if "FROM dav_items" in s]
    assert _sync(dav, path, "")[2].count(f"{uid}.ics") == 1  # an empty token still lists all
