# SPDX-License-Identifier: GPL-3.0-or-later
"""Events as the agenda pages see them: expanded occurrences and edits to iCalendar.

Framework-free. Reading: the events of a period come from a CalDAV calendar-query
(``web.dav_client``) and are expanded with ``recurring-ical-events`` in the person's
time zone (``zoneinfo``), so a weekly 09:00 meeting stays at 09:00 on both sides of
a daylight-saving change. Writing follows RFC 5545 §3.8.4.4 and §3.8.5: one edited
occurrence is an overriding VEVENT with a RECURRENCE-ID in the same resource, a
deleted one an EXDATE on the master, "this and following" ends the master with an
UNTIL and starts a new series (new UID) at that occurrence. Attendees are
ATTENDEE/ORGANIZER (RFC 5545 §3.8.4.1, §3.8.4.3), reminders VALARM DISPLAY (§3.6.6,
see ``web.agenda_alarms``: alarms the form does not show are kept on every save).

A wall time that does not exist (02:30 on the last Sunday of March in Paris) is
read with the offset before the gap, as RFC 5545 §3.3.5 asks, and so shown at
03:30; an ambiguous one (02:30 on the last Sunday of October) is its first
occurrence. Both are what ``zoneinfo`` does with ``fold=0``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events

from groupware.web import agenda_alarms as alarms
from groupware.web.dav_client import Collection, Resource

PRODID: Final = "-//groupware//portal agenda//EN"
FREQUENCIES: Final = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
WEEKDAYS: Final = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_SPLIT_MARGIN: Final = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Recurrence:
    """How an event repeats (a subset of RRULE that people set in a form)."""

    frequency: str  # one of FREQUENCIES
    interval: int = 1
    weekdays: tuple[str, ...] = ()  # WEEKLY only, of WEEKDAYS
    until: date | None = None
    count: int | None = None


@dataclass(frozen=True, slots=True)
class Attendee:
    """Someone invited, by address."""

    email: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class EventDraft:
    """What the event form says; ``start``/``end`` are dates when ``is_all_day``.

    Timed starts and ends are naive wall times in the person's zone; an all-day
    ``end`` is the last day (inclusive), as people read it.
    """

    title: str
    start: datetime | date
    end: datetime | date
    is_all_day: bool = False
    location: str = ""
    description: str = ""
    recurrence: Recurrence | None = None
    reminder_minutes: tuple[int, ...] = ()
    attendees: tuple[Attendee, ...] = ()


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One instance of an event in a period, in the person's zone."""

    uid: str
    calendar: Collection
    resource: Resource
    title: str
    location: str
    start: datetime  # aware, person's zone (midnight for all-day)
    end: datetime
    is_all_day: bool
    is_recurring: bool
    recurrence_id: str  # "" for a single event; see recurrence_key()

    @property
    def days(self) -> list[date]:
        """The days this occurrence shows on."""
        last = (self.end - timedelta(microseconds=1)).date() if self.end > self.start else None
        first = self.start.date()
        last = max(first, last or first)
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]


@dataclass(frozen=True, slots=True)
class Organizer:
    """The person who makes the event."""

    email: str
    name: str


@dataclass(slots=True)
class _Parts:
    calendar: icalendar.Calendar
    master: icalendar.Event
    overrides: list[icalendar.Event] = field(default_factory=list)


# --- reading -------------------------------------------------------------------------


def recurrence_key(value: datetime | date) -> str:
    """A stable text for a RECURRENCE-ID: UTC ``YYYYMMDDTHHMMSSZ`` or ``YYYYMMDD``."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return value.strftime("%Y%m%d")


def occurrences(
    resources: Iterable[Resource], calendar: Collection, start: date, end: date, zone: ZoneInfo
) -> list[Occurrence]:
    """Every instance in the days ``[start, end)`` of the resources of one calendar."""
    low = datetime.combine(start, time(), zone)
    high = datetime.combine(end, time(), zone)
    found = []
    for resource in resources:
        parsed = icalendar.Calendar.from_ical(resource.text)
        masters = {
            str(e.get("uid")): e for e in parsed.walk("VEVENT") if e.get("rrule") is not None
        }
        for event in recurring_ical_events.of(parsed).between(low, high):
            found.append(_occurrence(event, calendar, resource, zone, masters))
    return sorted(found, key=lambda o: (o.start, not o.is_all_day, o.title.lower()))


def _occurrence(
    event: icalendar.Event,
    calendar: Collection,
    resource: Resource,
    zone: ZoneInfo,
    masters: dict[str, icalendar.Event],
) -> Occurrence:
    start_value = event.get("dtstart").dt
    is_all_day = not isinstance(start_value, datetime)
    start = _local(start_value, zone)
    end_property = event.get("dtend")
    end = _local(end_property.dt, zone) if end_property is not None else None
    if end is None:
        end = start + (timedelta(days=1) if is_all_day else timedelta())
    uid = str(event.get("uid", ""))
    recurrence = event.get("recurrence-id")
    is_recurring = uid in masters
    return Occurrence(
        uid=uid,
        calendar=calendar,
        resource=resource,
        title=str(event.get("summary", "")),
        location=str(event.get("location", "")),
        start=start,
        end=max(end, start),
        is_all_day=is_all_day,
        is_recurring=is_recurring,
        recurrence_id=recurrence_key(recurrence.dt) if is_recurring and recurrence else "",
    )


def _local(value: datetime | date, zone: ZoneInfo) -> datetime:
    """A DTSTART/DTEND value as an aware datetime in ``zone``.

    A date is midnight of that day; a floating time is read in ``zone``.
    """
    if not isinstance(value, datetime):
        return datetime.combine(value, time(), zone)
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    # Through UTC: astimezone() to the same zone returns a time in a gap unchanged.
    return value.astimezone(UTC).astimezone(zone)


def read_draft(text: str, zone: ZoneInfo, recurrence_id: str = "") -> EventDraft:
    """The form's view of an event (of one occurrence, when ``recurrence_id`` is given)."""
    parts = _parts(text)
    event = parts.master
    if recurrence_id:
        override = _override(parts, recurrence_id)
        event = override if override is not None else event
    start_value = event.get("dtstart").dt
    end_property = event.get("dtend")
    is_all_day = not isinstance(start_value, datetime)
    if recurrence_id and event is parts.master:
        start_value, end_value = _shifted(event, recurrence_id, zone)
    else:
        end_value = end_property.dt if end_property is not None else start_value
    if is_all_day:
        start: datetime | date = start_value
        end: datetime | date = max(start_value, end_value - timedelta(days=1))
    else:
        start = _local(start_value, zone).replace(tzinfo=None)
        end = _local(end_value, zone).replace(tzinfo=None)
    return EventDraft(
        title=str(event.get("summary", "")),
        start=start,
        end=end,
        is_all_day=is_all_day,
        location=str(event.get("location", "")),
        description=str(event.get("description", "")),
        recurrence=_recurrence_of(parts.master) if not recurrence_id else None,
        reminder_minutes=tuple(alarms.reminder_minutes(event)),
        attendees=tuple(_attendees_of(event)),
    )


def _shifted(
    master: icalendar.Event, recurrence_id: str, zone: ZoneInfo
) -> tuple[datetime | date, datetime | date]:
    """The start and end of the occurrence ``recurrence_id`` of ``master``."""
    start_value = master.get("dtstart").dt
    end_property = master.get("dtend")
    duration = (end_property.dt - start_value) if end_property is not None else timedelta()
    if isinstance(start_value, datetime):
        moment = datetime.strptime(recurrence_id, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        occurrence_start = moment.astimezone(start_value.tzinfo or zone)
        wall_end = occurrence_start.replace(tzinfo=None) + duration
        return occurrence_start, wall_end.replace(tzinfo=occurrence_start.tzinfo)
    day = datetime.strptime(recurrence_id, "%Y%m%d").date()
    return day, day + duration


def _recurrence_of(event: icalendar.Event) -> Recurrence | None:
    rule = event.get("rrule")
    if rule is None:
        return None
    frequency = str(rule.get("FREQ", [""])[0]).upper()
    if frequency not in FREQUENCIES:
        return None
    until_values = rule.get("UNTIL")
    until = until_values[0] if until_values else None
    if isinstance(until, datetime):
        until = until.date()
    count_values = rule.get("COUNT")
    return Recurrence(
        frequency=frequency,
        interval=int(rule.get("INTERVAL", [1])[0]),
        weekdays=tuple(str(day).upper()[-2:] for day in rule.get("BYDAY", [])),
        until=until,
        count=int(count_values[0]) if count_values else None,
    )


def _attendees_of(event: icalendar.Event) -> list[Attendee]:
    values = event.get("attendee", [])
    if not isinstance(values, list):
        values = [values]
    return [
        Attendee(
            str(value).removeprefix("mailto:").removeprefix("MAILTO:"), value.params.get("CN", "")
        )
        for value in values
    ]


# --- writing -------------------------------------------------------------------------


def new_uid(domain: str) -> str:
    """A fresh UID (RFC 5545 §3.8.4.7: globally unique, with our domain)."""
    return f"{uuid.uuid4()}@{domain}"


def new_event(draft: EventDraft, uid: str, organizer: Organizer, zone: ZoneInfo) -> str:
    """The iCalendar text of a new event resource."""
    return _serialized(_new_calendar(_new_event(draft, uid, organizer, zone)))


def _new_event(
    draft: EventDraft, uid: str, organizer: Organizer, zone: ZoneInfo
) -> icalendar.Event:
    event = icalendar.Event()
    event.add("uid", uid)
    _fill(event, draft, organizer, zone)
    return event


def update_series(text: str, draft: EventDraft, organizer: Organizer, zone: ZoneInfo) -> str:
    """The event (the whole series) changed to ``draft``; its exceptions are kept."""
    parts = _parts(text)
    _clear(parts.master)
    _fill(parts.master, draft, organizer, zone)
    _bump_sequence(parts.master)
    return _serialized(parts.calendar)


def update_occurrence(
    text: str, recurrence_id: str, draft: EventDraft, organizer: Organizer, zone: ZoneInfo
) -> str:
    """One occurrence changed: an overriding VEVENT with its RECURRENCE-ID."""
    parts = _parts(text)
    override = _override(parts, recurrence_id)
    if override is None:
        override = icalendar.Event()
        override.add("uid", str(parts.master.get("uid")))
        override.add("recurrence-id", _original_start(parts.master, recurrence_id))
        _copy_foreign_alarms(parts.master, override)
        parts.calendar.add_component(override)
    else:
        recurrence = override.get("recurrence-id")
        _clear(override)
        override["recurrence-id"] = recurrence
    _fill(override, draft, organizer, zone, keep_rule=False)
    _bump_sequence(override)
    return _serialized(parts.calendar)


def delete_occurrence(text: str, recurrence_id: str) -> str:
    """One occurrence removed: an EXDATE on the master (and its override dropped)."""
    parts = _parts(text)
    override = _override(parts, recurrence_id)
    if override is not None:
        parts.calendar.subcomponents.remove(override)
    parts.master.add("exdate", _original_start(parts.master, recurrence_id))
    _bump_sequence(parts.master)
    return _serialized(parts.calendar)


def split_series(
    text: str,
    recurrence_id: str,
    draft: EventDraft | None,
    uid: str,
    organizer: Organizer,
    zone: ZoneInfo,
) -> tuple[str, str | None]:
    """ "This and following": the master ends before ``recurrence_id``.

    Returns:
        The old series (with an UNTIL and without what followed), and the new
        series from that occurrence with ``draft`` (``None``: they were deleted).
    """
    parts = _parts(text)
    original = _original_start(parts.master, recurrence_id)
    rule = parts.master.get("rrule")
    rule.pop("COUNT", None)
    if isinstance(original, datetime):
        rule["UNTIL"] = [original.astimezone(UTC) - _SPLIT_MARGIN]
    else:
        rule["UNTIL"] = [original - timedelta(days=1)]
    for override in list(parts.overrides):
        if recurrence_key(override.get("recurrence-id").dt) >= recurrence_id:
            parts.calendar.subcomponents.remove(override)
    _bump_sequence(parts.master)
    old = _serialized(parts.calendar)
    if draft is None:
        return old, None
    following = _new_event(draft, uid, organizer, zone)
    _copy_foreign_alarms(parts.master, following)
    return old, _serialized(_new_calendar(following))


def _new_calendar(event: icalendar.Event) -> icalendar.Calendar:
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add_component(event)
    return calendar


def _copy_foreign_alarms(source: icalendar.Event, target: icalendar.Event) -> None:
    """A new occurrence or series keeps the alarms a client set that the form cannot show."""
    for alarm in alarms.foreign_alarms(source):
        target.add_component(icalendar.Alarm.from_ical(alarm.to_ical()))


def _serialized(calendar: icalendar.Calendar) -> str:
    calendar.add_missing_timezones()
    return calendar.to_ical().decode("utf-8")


def _parts(text: str) -> _Parts:
    calendar = icalendar.Calendar.from_ical(text)
    events = list(calendar.walk("VEVENT"))
    masters = [e for e in events if e.get("recurrence-id") is None]
    if not masters:
        raise ValueError("no master VEVENT")
    return _Parts(calendar, masters[0], [e for e in events if e.get("recurrence-id") is not None])


def _override(parts: _Parts, recurrence_id: str) -> icalendar.Event | None:
    for override in parts.overrides:
        if recurrence_key(override.get("recurrence-id").dt) == recurrence_id:
            return override
    return None


def _original_start(master: icalendar.Event, recurrence_id: str) -> datetime | date:
    """The RECURRENCE-ID value for ``recurrence_id``, in the master's own zone."""
    start = master.get("dtstart").dt
    if isinstance(start, datetime):
        moment = datetime.strptime(recurrence_id, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        return moment.astimezone(start.tzinfo) if start.tzinfo else moment
    return datetime.strptime(recurrence_id, "%Y%m%d").date()


_EDITED: Final = (
    "summary",
    "location",
    "description",
    "dtstart",
    "dtend",
    "duration",
    "rrule",
    "attendee",
    "organizer",
    "dtstamp",
    "last-modified",
)


def _clear(event: icalendar.Event) -> None:
    for name in _EDITED:
        event.pop(name, None)


def _bump_sequence(event: icalendar.Event) -> None:
    sequence = int(event.pop("sequence", 0))
    event.add("sequence", sequence + 1)


def _fill(
    event: icalendar.Event,
    draft: EventDraft,
    organizer: Organizer,
    zone: ZoneInfo,
    *,
    keep_rule: bool = True,
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    event.add("dtstamp", now)
    event.add("last-modified", now)
    event.add("summary", draft.title)
    if draft.location:
        event.add("location", draft.location)
    if draft.description:
        event.add("description", draft.description)
    if draft.is_all_day:
        first = _as_date(draft.start)
        last = max(first, _as_date(draft.end))
        event.add("dtstart", first)
        event.add("dtend", last + timedelta(days=1))
    else:
        start = _wall(draft.start, zone)
        end = _wall(draft.end, zone)
        event.add("dtstart", start)
        event.add("dtend", max(start, end))
    if keep_rule and draft.recurrence is not None:
        event.add("rrule", _rule(draft.recurrence, draft, zone))
    if draft.attendees:
        organizer_address = icalendar.vCalAddress(f"mailto:{organizer.email}")
        organizer_address.params["CN"] = organizer.name
        event.add("organizer", organizer_address)
        for attendee in draft.attendees:
            address = icalendar.vCalAddress(f"mailto:{attendee.email}")
            if attendee.name:
                address.params["CN"] = attendee.name
            address.params["ROLE"] = "REQ-PARTICIPANT"
            address.params["PARTSTAT"] = "NEEDS-ACTION"
            address.params["RSVP"] = "TRUE"
            event.add("attendee", address)
    alarms.set_reminders(event, draft.reminder_minutes, draft.title)


def _as_date(value: datetime | date) -> date:
    return value.date() if isinstance(value, datetime) else value


def _wall(value: datetime | date, zone: ZoneInfo) -> datetime:
    """A form's wall time in ``zone`` (``fold=0``: RFC 5545 §3.3.5 for gaps and overlaps)."""
    moment = value if isinstance(value, datetime) else datetime.combine(value, time())
    return moment.replace(tzinfo=zone, fold=0)


def _rule(recurrence: Recurrence, draft: EventDraft, zone: ZoneInfo) -> dict[str, object]:
    rule: dict[str, object] = {"FREQ": recurrence.frequency}
    if recurrence.interval > 1:
        rule["INTERVAL"] = recurrence.interval
    if recurrence.frequency == "WEEKLY" and recurrence.weekdays:
        rule["BYDAY"] = [day for day in WEEKDAYS if day in recurrence.weekdays]
    if recurrence.count:
        rule["COUNT"] = recurrence.count
    elif recurrence.until is not None:
        if draft.is_all_day:
            rule["UNTIL"] = recurrence.until
        else:
            # The last day included: until the end of that day, in UTC (§3.3.10).
            end_of_day = datetime.combine(recurrence.until, time(23, 59, 59), zone)
            rule["UNTIL"] = end_of_day.astimezone(UTC)
    return rule


def weekday_code(day: date) -> str:
    """``MO`` … ``SU`` for a date."""
    return WEEKDAYS[day.weekday()]


def writable(calendars: Sequence[Collection]) -> list[Collection]:
    """The calendars an event may be created in."""
    return [c for c in calendars if c.kind == "calendar" and c.is_writable]
