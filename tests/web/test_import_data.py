"""Splitting an ``.ics`` file for import: one resource per UID, with the zones it uses.

Pure functions; the whole import through the browser is ``test_browser_import.py``.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import icalendar

from groupware.web import import_data

FILE = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//\r\n"
    "BEGIN:VEVENT\r\nUID:a@t\r\nDTSTAMP:20260101T000000Z\r\n"
    "DTSTART;TZID=Europe/Paris:20260329T090000\r\nSUMMARY:A\r\nEND:VEVENT\r\n"
    "BEGIN:VEVENT\r\nUID:b@t\r\nDTSTAMP:20260101T000000Z\r\n"
    "DTSTART;TZID=Nowhere/Else:20260601T090000\r\nSUMMARY:B\r\nEND:VEVENT\r\n"
    "BEGIN:VEVENT\r\nUID:a@t\r\nDTSTAMP:20260101T000000Z\r\n"
    "RECURRENCE-ID;TZID=Europe/Paris:20260405T090000\r\n"
    "DTSTART;TZID=Europe/Paris:20260405T100000\r\nSUMMARY:A moved\r\nEND:VEVENT\r\n"
    "END:VCALENDAR\r\n"
)


def test_a_zone_the_file_names_without_defining_it_is_added_once_per_resource() -> None:
    parts = {p.uid: p for p in import_data.split_calendar(FILE.encode())}
    assert sorted(parts) == ["a@t", "b@t"]
    first = icalendar.Calendar.from_ical(parts["a@t"].text)
    (zone,) = first.walk("VTIMEZONE")
    assert str(zone.get("tzid")) == "Europe/Paris"
    assert len(first.walk("VEVENT")) == 2  # the master and its override together
    # The zone is right for the event (summer time from 29 March 2026, 02:00)…
    master = first.walk("VEVENT")[0]
    assert master.get("dtstart").dt.utcoffset() == ZoneInfo("Europe/Paris").utcoffset(
        datetime(2026, 3, 29, 9, 0)
    )
    # …and does not carry every change since 1970: only from a year before the file.
    starts = [o.get("dtstart").dt for o in zone.subcomponents]
    assert min(starts).date() >= date(2025, 1, 1)
    # A TZID that is no IANA zone stays as written, without a made-up VTIMEZONE.
    other = icalendar.Calendar.from_ical(parts["b@t"].text)
    assert other.walk("VTIMEZONE") == []
    assert "TZID=Nowhere/Else" in parts["b@t"].text
