"""CalDAV with the ``caldav`` library, as an imported user, from the DAV root URL only."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import caldav
import pytest
from caldav.lib import error as caldav_error

from tests.dav.accounts import Account, import_accounts
from tests.dav.webdav import DavHttp, calendar_query_body, xml_headers
from tests.support.servers import RunningServer

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def alice(dav_server: RunningServer) -> Account:
    return import_accounts(dav_server.core, ("Alice", "Durand"))[0]


@pytest.fixture
def client(dav_server: RunningServer, alice: Account) -> Iterator[caldav.DAVClient]:
    with caldav.DAVClient(
        url=dav_server.dav_url, username=alice.login, password=alice.password, timeout=5
    ) as client:
        yield client


@pytest.fixture
def calendar(client: caldav.DAVClient) -> caldav.Calendar:
    # Her own calendar, then what is mounted in her home (her department's agenda).
    calendars = client.principal().calendars()
    own = [c for c in calendars if str(c.url).endswith(f"/{alice_login(client)}/calendar/")]
    assert len(own) == 1, calendars
    return own[0]


def alice_login(client: caldav.DAVClient) -> str:
    return str(client.username)


@pytest.fixture
def raw(dav_server: RunningServer, alice: Account) -> DavHttp:
    return DavHttp(dav_server.http_url, alice.credentials)


def new_uid() -> str:
    return f"{uuid.uuid4()}@tests.example.org"


def path_of(resource: caldav.DAVObject) -> str:
    """The unquoted path of a resource, as ``DavHttp`` reports hrefs."""
    return unquote(str(resource.url.path))


def at(year: int, month: int, day: int, hour: int) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def test_principal_is_discovered_from_the_dav_root_url(
    client: caldav.DAVClient, dav_server: RunningServer, alice: Account
) -> None:
    assert str(client.principal().url) == f"{dav_server.dav_url}{alice.login}/"


def test_default_calendar_has_its_fixed_path_and_french_display_name(
    calendar: caldav.Calendar, dav_server: RunningServer, alice: Account
) -> None:
    assert str(calendar.url) == f"{dav_server.dav_url}{alice.login}/calendar/"
    assert calendar.get_display_name() == "Agenda personnel"


def test_event_created_with_caldav_reads_back_with_its_fields(
    calendar: caldav.Calendar, raw: DavHttp
) -> None:
    uid = new_uid()
    created = calendar.add_event(
        uid=uid, summary="Conseil de classe", dtstart=at(2030, 3, 4, 17), dtend=at(2030, 3, 4, 18)
    )

    found = calendar.event_by_uid(uid)
    component = found.icalendar_component
    assert str(component["summary"]) == "Conseil de classe"
    assert component.decoded("dtstart") == at(2030, 3, 4, 17)
    assert component.decoded("dtend") == at(2030, 3, 4, 18)
    stored = raw.request("GET", path_of(created))
    assert stored.status == 200
    assert stored.headers["Content-Type"].startswith("text/calendar")
    assert f"UID:{uid}" in stored.text


def test_event_summary_update_is_stored_and_changes_the_etag(
    calendar: caldav.Calendar, raw: DavHttp
) -> None:
    uid = new_uid()
    event = calendar.add_event(
        uid=uid, summary="Réunion", dtstart=at(2030, 4, 1, 9), dtend=at(2030, 4, 1, 10)
    )
    path = path_of(event)
    etag_before = raw.etags(path_of(calendar))[path]

    event.icalendar_component["summary"] = "Réunion parents-professeurs"
    event.save()

    assert str(calendar.event_by_uid(uid).icalendar_component["summary"]) == (
        "Réunion parents-professeurs"
    )
    assert raw.etags(path_of(calendar))[path] != etag_before


def test_search_by_date_range_returns_only_the_events_inside_it(
    calendar: caldav.Calendar, raw: DavHttp
) -> None:
    inside, before, after = new_uid(), new_uid(), new_uid()
    created = calendar.add_event(
        uid=inside, summary="In", dtstart=at(2031, 6, 10, 8), dtend=at(2031, 6, 10, 9)
    )
    calendar.add_event(
        uid=before, summary="Before", dtstart=at(2031, 6, 1, 8), dtend=at(2031, 6, 1, 9)
    )
    calendar.add_event(
        uid=after, summary="After", dtstart=at(2031, 6, 20, 8), dtend=at(2031, 6, 20, 9)
    )

    found = calendar.search(start=at(2031, 6, 9, 0), end=at(2031, 6, 11, 0), event=True)

    assert [str(event.icalendar_component["uid"]) for event in found] == [inside]
    # The library may also filter on its side: the server's own answer must agree.
    report = raw.request(
        "REPORT",
        path_of(calendar),
        calendar_query_body("20310609T000000Z", "20310611T000000Z"),
        xml_headers(Depth="1"),
    )
    assert list(report.multistatus()) == [path_of(created)]


def test_deleted_event_is_gone_from_the_server(calendar: caldav.Calendar, raw: DavHttp) -> None:
    uid = new_uid()
    event = calendar.add_event(
        uid=uid, summary="Annulé", dtstart=at(2030, 5, 5, 14), dtend=at(2030, 5, 5, 15)
    )
    path = path_of(event)

    event.delete()

    with pytest.raises(caldav_error.NotFoundError):
        calendar.event_by_uid(uid)
    assert raw.request("GET", path).status == 404
    assert path not in raw.etags(path_of(calendar))


def test_todo_is_created_completed_and_deleted(calendar: caldav.Calendar) -> None:
    uid = new_uid()
    todo = calendar.add_todo(uid=uid, summary="Corriger les copies", due=at(2030, 6, 1, 12))
    assert [str(t.icalendar_component["uid"]) for t in calendar.todos()].count(uid) == 1

    todo.complete(completion_timestamp=at(2030, 5, 30, 12))

    stored = calendar.todo_by_uid(uid).icalendar_component
    assert str(stored["status"]) == "COMPLETED"
    assert uid not in [str(t.icalendar_component["uid"]) for t in calendar.todos()]
    assert uid in [
        str(t.icalendar_component["uid"]) for t in calendar.todos(include_completed=True)
    ]

    todo.delete()

    with pytest.raises(caldav_error.NotFoundError):
        calendar.todo_by_uid(uid)


def test_event_moved_in_time_is_found_only_in_its_new_range(calendar: caldav.Calendar) -> None:
    uid = new_uid()
    event = calendar.add_event(
        uid=uid, summary="Sortie", dtstart=at(2032, 1, 10, 8), dtend=at(2032, 1, 10, 12)
    )
    component = event.icalendar_component
    component["dtstart"].dt = at(2032, 2, 10, 8)
    component["dtend"].dt = at(2032, 2, 10, 12)
    event.save()

    def uids_between(start: datetime) -> list[str]:
        found = calendar.search(start=start, end=start + timedelta(days=2), event=True)
        return [str(e.icalendar_component["uid"]) for e in found]

    assert uids_between(at(2032, 1, 9, 0)) == []
    assert uids_between(at(2032, 2, 9, 0)) == [uid]


def test_sync_by_token_brings_other_clients_changes(
    calendar: caldav.Calendar, client: caldav.DAVClient, raw: DavHttp
) -> None:
    # RFC 6578 as phones use it: a first sync, then only what changed since its token.
    kept = calendar.add_event(
        uid=new_uid(), summary="Conseil", dtstart=at(2030, 6, 2, 9), dtend=at(2030, 6, 2, 10)
    )
    gone = calendar.add_event(
        uid=new_uid(), summary="Annulé", dtstart=at(2030, 6, 3, 9), dtend=at(2030, 6, 3, 10)
    )
    synced = calendar.objects_by_sync_token(load_objects=True)
    assert {path_of(kept), path_of(gone)} <= {path_of(o) for o in synced}
    token = synced.sync_token

    # Another client: one event changed, one deleted, one added.
    other = [c for c in client.principal().calendars() if c.url == calendar.url][0]
    changed = other.event_by_uid(str(kept.icalendar_component["uid"]))
    changed.icalendar_component["summary"] = "Conseil de classe"
    changed.save()
    other.event_by_uid(str(gone.icalendar_component["uid"])).delete()
    added = other.add_event(
        uid=new_uid(), summary="Nouveau", dtstart=at(2030, 6, 4, 9), dtend=at(2030, 6, 4, 10)
    )

    updated, deleted = synced.sync()

    assert synced.sync_token != token
    assert {path_of(o) for o in updated} == {path_of(kept), path_of(added)}
    assert {path_of(o) for o in deleted} == {path_of(gone)}
    by_path = {path_of(o): o for o in synced}
    assert path_of(gone) not in by_path
    assert str(by_path[path_of(kept)].icalendar_component["summary"]) == "Conseil de classe"
    again_updated, again_deleted = synced.sync()
    assert (list(again_updated), list(again_deleted)) == ([], [])
    assert raw.etags(path_of(calendar))[path_of(added)]
