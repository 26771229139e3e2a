"""The agenda's data: occurrences in the person's zone, edits as RFC 5545 asks.

Pure functions over iCalendar text (DST days, all-day events across months,
recurrence exceptions), then the same through the real DAV front in process
(``DavService.request_as``): what the portal writes is what a DAV client reads.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest

from groupware.core.services import Core
from groupware.core.sharing import CollectionRef, Level
from groupware.dav.service import DavService
from groupware.web import agenda_data as agenda
from groupware.web.dav_client import (
    ChangedElsewhereError,
    Collection,
    DavClient,
    ForbiddenError,
    Resource,
)
from tests.support.servers import add_user

PARIS = ZoneInfo("Europe/Paris")
ORGANIZER = agenda.Organizer("emilie.durand@example.org", "Émilie Durand")
CALENDAR = Collection("/e/calendar/", "calendar", "Agenda", "#2a6ebb", "calendar", True, "")


def expand(texts: list[str], start: date, end: date) -> list[agenda.Occurrence]:
    resources = [Resource(f"/e/calendar/{n}.ics", '"1"', t) for n, t in enumerate(texts)]
    return agenda.occurrences(resources, CALENDAR, start, end, PARIS)


def timed(title: str, start: datetime, end: datetime, **extra: object) -> str:
    draft = agenda.EventDraft(title, start, end, **extra)  # type: ignore[arg-type]
    return agenda.new_event(draft, agenda.new_uid("example.org"), ORGANIZER, PARIS)


def test_an_event_at_0230_on_the_march_change_is_read_with_the_offset_before_the_gap() -> None:
    text = timed("Nuit", datetime(2026, 3, 29, 2, 30), datetime(2026, 3, 29, 4, 0))
    (found,) = expand([text], date(2026, 3, 29), date(2026, 3, 30))
    # 02:30 does not exist that night: RFC 5545 §3.3.5 reads it as 02:30+01:00 = 03:30 CEST.
    assert found.start == datetime(2026, 3, 29, 3, 30, tzinfo=PARIS)
    assert found.start.utcoffset() == timedelta(hours=2)
    assert found.start.astimezone(UTC) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert found.end == datetime(2026, 3, 29, 4, 0, tzinfo=PARIS)


def test_an_event_at_0230_on_the_october_change_is_the_first_of_the_two() -> None:
    text = timed("Nuit", datetime(2026, 10, 25, 2, 30), datetime(2026, 10, 25, 3, 30))
    (found,) = expand([text], date(2026, 10, 25), date(2026, 10, 26))
    assert found.start.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert found.end.astimezone(UTC) == datetime(2026, 10, 25, 2, 30, tzinfo=UTC)
    assert found.end.astimezone(UTC) - found.start.astimezone(UTC) == timedelta(hours=2)


def test_a_weekly_event_keeps_its_wall_time_across_both_changes() -> None:
    rule = agenda.Recurrence("WEEKLY", weekdays=("SU",))
    text = timed(
        "Messe", datetime(2026, 3, 22, 9, 0), datetime(2026, 3, 22, 10, 0), recurrence=rule
    )
    found = expand([text], date(2026, 3, 1), date(2026, 11, 2))
    assert {(o.start.hour, o.start.minute) for o in found} == {(9, 0)}
    offsets = {o.start.date(): o.start.utcoffset() for o in found}
    assert offsets[date(2026, 3, 22)] == timedelta(hours=1)
    assert offsets[date(2026, 3, 29)] == timedelta(hours=2)
    assert offsets[date(2026, 10, 25)] == timedelta(hours=1)
    assert len(found) == 33  # every Sunday from 22 March to 1 November


def test_an_all_day_event_across_a_month_boundary_shows_on_each_of_its_days() -> None:
    draft = agenda.EventDraft("Voyage", date(2026, 1, 30), date(2026, 2, 2), is_all_day=True)
    text = agenda.new_event(draft, "trip@example.org", ORGANIZER, PARIS)
    event = icalendar.Calendar.from_ical(text).walk("VEVENT")[0]
    assert event.get("dtstart").dt == date(2026, 1, 30)
    assert event.get("dtend").dt == date(2026, 2, 3)  # exclusive end (RFC 5545 §3.6.1)
    (in_january,) = expand([text], date(2026, 1, 1), date(2026, 2, 1))
    (in_february,) = expand([text], date(2026, 2, 1), date(2026, 3, 1))
    assert in_january.is_all_day
    assert in_january.days == [
        date(2026, 1, 30),
        date(2026, 1, 31),
        date(2026, 2, 1),
        date(2026, 2, 2),
    ]
    assert in_february.days == in_january.days
    assert agenda.read_draft(text, PARIS).end == date(2026, 2, 2)  # the last day, inclusive


def test_moving_one_occurrence_deleting_another_and_splitting_the_series() -> None:
    rule = agenda.Recurrence("WEEKLY", weekdays=("MO", "TH"))
    text = timed("Cours", datetime(2026, 3, 2, 8, 0), datetime(2026, 3, 2, 9, 0), recurrence=rule)
    first = expand([text], date(2026, 3, 1), date(2026, 3, 31))
    assert [o.start.day for o in first] == [2, 5, 9, 12, 16, 19, 23, 26, 30]
    moved = agenda.EventDraft(
        "Cours (salle 12)", datetime(2026, 3, 6, 14, 0), datetime(2026, 3, 6, 15, 0)
    )
    text = agenda.update_occurrence(text, first[1].recurrence_id, moved, ORGANIZER, PARIS)
    text = agenda.delete_occurrence(text, first[2].recurrence_id)
    again = expand([text], date(2026, 3, 1), date(2026, 3, 31))
    assert [(o.start.day, o.start.hour) for o in again][:3] == [(2, 8), (6, 14), (12, 8)]
    assert again[1].title == "Cours (salle 12)"
    assert again[1].recurrence_id == first[1].recurrence_id

    later = agenda.EventDraft(
        "Cours (nouvel horaire)",
        datetime(2026, 3, 19, 10, 0),
        datetime(2026, 3, 19, 11, 0),
        recurrence=rule,
    )
    old, new = agenda.split_series(
        text, first[5].recurrence_id, later, "new@example.org", ORGANIZER, PARIS
    )
    assert new is not None
    split = expand([old, new], date(2026, 3, 1), date(2026, 3, 31))
    assert [(o.start.day, o.start.hour) for o in split] == [
        (2, 8),
        (6, 14),
        (12, 8),
        (16, 8),
        (19, 10),
        (23, 10),
        (26, 10),
        (30, 10),
    ]
    assert {o.uid for o in split if o.start.day >= 19} == {"new@example.org"}
    master = icalendar.Calendar.from_ical(old).walk("VEVENT")[0]
    assert master.get("rrule")["UNTIL"][0] < datetime(2026, 3, 19, 7, 0, tzinfo=UTC)


def test_attendees_and_reminders_are_written_as_clients_read_them() -> None:
    draft = agenda.EventDraft(
        "Conseil",
        datetime(2026, 5, 4, 17, 0),
        datetime(2026, 5, 4, 19, 0),
        reminder_minutes=(15, 1440),
        attendees=(agenda.Attendee("paul.rousseau@example.org", "Paul Rousseau"),),
    )
    text = agenda.new_event(draft, "c@example.org", ORGANIZER, PARIS)
    event = icalendar.Calendar.from_ical(text).walk("VEVENT")[0]
    attendee = event.get("attendee")
    assert str(attendee) == "mailto:paul.rousseau@example.org"
    assert attendee.params["PARTSTAT"] == "NEEDS-ACTION"
    assert attendee.params["CN"] == "Paul Rousseau"
    assert str(event.get("organizer")) == "mailto:emilie.durand@example.org"
    alarms = event.walk("VALARM")
    assert sorted(a.get("trigger").dt for a in alarms) == [
        timedelta(days=-1),
        timedelta(minutes=-15),
    ]
    assert {str(a.get("action")) for a in alarms} == {"DISPLAY"}
    assert "BEGIN:VTIMEZONE" in text
    assert "TZID:Europe/Paris" in text
    assert agenda.read_draft(text, PARIS) == draft


PHONE_ALARMS = (
    "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Conseil\r\nTRIGGER:-PT10M\r\n"
    "X-WR-ALARMUID:kept-10\r\nACKNOWLEDGED:20260504T145000Z\r\nEND:VALARM\r\n"
    "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Drop me\r\nTRIGGER:-PT30M\r\nEND:VALARM\r\n"
    "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Absolute\r\n"
    "TRIGGER;VALUE=DATE-TIME:20260503T080000Z\r\nEND:VALARM\r\n"
    "BEGIN:VALARM\r\nACTION:EMAIL\r\nDESCRIPTION:Mail\r\nSUMMARY:Conseil\r\n"
    "ATTENDEE:mailto:emilie.durand@example.org\r\nTRIGGER:-PT2H\r\nEND:VALARM\r\n"
    "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:After the end\r\n"
    "TRIGGER;RELATED=END:PT5M\r\nEND:VALARM\r\n"
)


def with_phone_alarms(text: str) -> str:
    """The event as a phone leaves it: reminders of its own beside the form's kind."""
    return text.replace("END:VEVENT", PHONE_ALARMS + "END:VEVENT", 1)


def alarm_triggers(event: icalendar.Event) -> list[str]:
    return sorted(a.get("trigger").to_ical().decode() for a in event.walk("VALARM"))


def test_several_reminders_are_read_changed_and_the_others_kept_untouched() -> None:
    draft = agenda.EventDraft("Conseil", datetime(2026, 5, 4, 17, 0), datetime(2026, 5, 4, 19, 0))
    text = with_phone_alarms(agenda.new_event(draft, "c@example.org", ORGANIZER, PARIS))
    # The form shows the two DISPLAY reminders before the start, nothing else.
    assert agenda.read_draft(text, PARIS).reminder_minutes == (10, 30)

    changed = agenda.EventDraft("Conseil", draft.start, draft.end, reminder_minutes=(10, 0, 1440))
    saved = agenda.update_series(text, changed, ORGANIZER, PARIS)
    event = icalendar.Calendar.from_ical(saved).walk("VEVENT")[0]
    assert alarm_triggers(event) == sorted(
        ["-PT10M", "P0D", "-P1D", "20260503T080000Z", "-PT2H", "PT5M"]
    )
    assert agenda.read_draft(saved, PARIS).reminder_minutes == (0, 10, 1440)
    ten = next(a for a in event.walk("VALARM") if a.get("x-wr-alarmuid") is not None)
    assert str(ten.get("x-wr-alarmuid")) == "kept-10"  # the same alarm, not a new one
    assert ten.get("acknowledged") is not None
    mail = next(a for a in event.walk("VALARM") if str(a.get("action")) == "EMAIL")
    assert str(mail.get("attendee")) == "mailto:emilie.durand@example.org"
    new = next(a for a in event.walk("VALARM") if a.get("trigger").dt == timedelta(days=-1))
    assert str(new.get("action")) == "DISPLAY"
    assert str(new.get("description")) == "Conseil"
    assert "Drop me" not in saved

    cleared = agenda.update_series(
        saved, agenda.EventDraft("Conseil", draft.start, draft.end), ORGANIZER, PARIS
    )
    kept = icalendar.Calendar.from_ical(cleared).walk("VEVENT")[0]
    assert alarm_triggers(kept) == sorted(["20260503T080000Z", "-PT2H", "PT5M"])


def test_an_edited_occurrence_and_a_new_series_keep_the_alarms_the_form_does_not_show() -> None:
    rule = agenda.Recurrence("WEEKLY", count=4)
    start, end = datetime(2026, 5, 4, 17, 0), datetime(2026, 5, 4, 18, 0)
    draft = agenda.EventDraft("Conseil", start, end, recurrence=rule, reminder_minutes=(15,))
    text = with_phone_alarms(agenda.new_event(draft, "s@example.org", ORGANIZER, PARIS))
    rid = agenda.recurrence_key(datetime(2026, 5, 11, 17, 0, tzinfo=PARIS))
    one = agenda.EventDraft("Conseil", start + timedelta(days=7), end + timedelta(days=7))
    moved = agenda.update_occurrence(text, rid, one, ORGANIZER, PARIS)
    override = next(
        e for e in icalendar.Calendar.from_ical(moved).walk("VEVENT") if e.get("recurrence-id")
    )
    assert alarm_triggers(override) == sorted(["20260503T080000Z", "-PT2H", "PT5M"])
    _old, following = agenda.split_series(text, rid, one, "n@example.org", ORGANIZER, PARIS)
    assert following is not None
    series = icalendar.Calendar.from_ical(following).walk("VEVENT")[0]
    assert alarm_triggers(series) == sorted(["20260503T080000Z", "-PT2H", "PT5M"])


# --- through the DAV front -----------------------------------------------------------


@pytest.fixture
def dav(core: Core) -> DavService:
    return DavService(core)


def test_the_portal_client_writes_and_reads_through_the_dav_rights(
    core: Core, dav: DavService
) -> None:
    owner = add_user(core, "Émilie", "Durand", password="x" * 12)
    reader = add_user(core, "Paul", "Rousseau", password="x" * 12)
    dav.collections.ensure_defaults(owner)
    core.sharing.grant(CollectionRef(owner.login, "calendar"), reader.login, Level.READ, actor="t")
    mine = DavClient(dav, owner)
    theirs = DavClient(dav, reader)

    text = timed("Réunion", datetime(2026, 3, 30, 10, 0), datetime(2026, 3, 30, 11, 0))
    path = f"/{owner.login}/calendar/meeting.ics"
    etag = mine.put(path, text, "text/calendar; charset=utf-8", etag=None)
    assert etag
    with pytest.raises(ChangedElsewhereError):  # it exists already
        mine.put(path, text, "text/calendar; charset=utf-8", etag=None)
    with pytest.raises(ChangedElsewhereError):  # stale ETag
        mine.put(path, text, "text/calendar; charset=utf-8", etag='"stale"')

    calendars = {c.segment: c for c in theirs.collections()}
    shared = calendars[f"{owner.login}~calendar"]
    assert shared.is_mount
    assert not shared.is_writable
    assert calendars["calendar"].is_writable
    assert not calendars["calendar"].is_mount
    start = datetime(2026, 3, 30, tzinfo=UTC)
    (seen,) = theirs.calendar_query(shared.path, start, start + timedelta(days=1))
    assert "Réunion" in seen.text
    assert (
        theirs.calendar_query(shared.path, start + timedelta(days=1), start + timedelta(days=2))
        == []
    )
    with pytest.raises(ForbiddenError):
        theirs.put(shared.path + "forged.ics", text, "text/calendar", etag=None)
    with pytest.raises(ForbiddenError):
        theirs.delete(shared.path + "meeting.ics", etag=seen.etag)
    assert mine.get(path) is not None
