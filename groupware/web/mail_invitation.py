# SPDX-License-Identifier: GPL-3.0-or-later
"""Calendar invitations in mail (iMIP, RFC 6047): read for people, kept for the agenda.

An invitation is a ``text/calendar`` part (often beside the text and HTML
alternatives, sometimes an ``.ics`` attachment) whose ``METHOD`` (RFC 5546 §1.4)
says what it is: ``REQUEST`` (an invitation or an update), ``CANCEL`` (the
organiser cancelled), ``REPLY`` (an attendee answered), ``PUBLISH`` (for
information). :func:`read_invitation` turns its first event into an
:class:`Invitation`, with times in the person's zone; :func:`agenda_object` makes
the calendar object the agenda stores (same UID, no ``METHOD``: RFC 4791 §4.1
forbids it in a calendar collection). Mail is hostile: a part that does not parse
as iCalendar, or has no event with a start, raises :class:`InvitationError` and
the message still reads. No Flask here; the words are ``web.mail_invitation_text``'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events

#: The largest calendar part read (an invitation is a few kilobytes).
MAX_INVITATION_BYTES: Final = 512 * 1024
#: How many coming dates of a repeating event are shown.
NEXT_DATES_COUNT: Final = 3
#: Rules whose first dates are listed (see ``_is_plain``).
PLAIN_FREQUENCIES: Final = frozenset({"DAILY", "WEEKLY", "MONTHLY", "YEARLY"})
PLAIN_RULE_PARTS: Final = frozenset(
    {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTH", "WKST"}
)
#: Occurrences of the part's events looked at, at most, to find those dates.
MAX_SCANNED_OCCURRENCES: Final = 50
CALENDAR_TYPES: Final = frozenset({"text/calendar", "application/ics"})
ANSWERS: Final = frozenset({"needs-action", "accepted", "declined", "tentative", "delegated"})
METHODS: Final = frozenset({"REQUEST", "CANCEL", "REPLY", "PUBLISH", "COUNTER", "REFRESH"})
#: The answers a person may send back (RFC 5546 §3.2.3), as PARTSTAT values.
REPLY_ANSWERS: Final = ("accepted", "tentative", "declined")
#: Properties of the invitation's event copied into a REPLY (RFC 5546 §3.2.3).
_REPLY_COPIED: Final = ("uid", "sequence", "dtstart", "dtend", "duration", "summary", "rrule")


class InvitationError(ValueError):
    """The calendar part could not be read as an event."""


@dataclass(frozen=True, slots=True)
class Participant:
    """The organiser or an attendee; ``answer`` is the PARTSTAT, in lower case."""

    name: str
    address: str
    answer: str = "needs-action"

    @property
    def shown(self) -> str:
        """The name when there is one, else the address."""
        return self.name or self.address


@dataclass(frozen=True, slots=True)
class Rule:
    """The parts of an RRULE people are told about."""

    frequency: str  # DAILY, WEEKLY, MONTHLY, YEARLY (others are described as such)
    interval: int
    weekdays: tuple[int, ...]  # 0 = Monday
    count: int | None
    until: date | None


@dataclass(frozen=True, slots=True)
class Invitation:
    """The event of an invitation, as the reading pane shows it."""

    method: str  # upper case, "" when absent
    uid: str
    title: str
    start: datetime | date  # aware in the person's zone, or a day
    end: datetime | date  # idem; an all-day end is the last day (inclusive)
    is_all_day: bool
    rule: Rule | None
    next_dates: tuple[datetime | date, ...]
    location: str
    description: str
    organizer: Participant | None
    attendees: tuple[Participant, ...]
    is_cancelled: bool

    @property
    def can_be_added(self) -> bool:
        """Whether this is an event to keep (not a cancellation or someone's answer)."""
        return not self.is_cancelled and self.method in ("REQUEST", "PUBLISH", "")


def is_calendar_part(mime: str, filename: str) -> bool:
    """Whether a MIME part is an iCalendar object (by type, or an ``.ics`` name)."""
    return mime in CALENDAR_TYPES or filename.lower().endswith(".ics")


#: What icalendar and recurring-ical-events raise on content they cannot use.
_LIBRARY_ERRORS: Final = (
    *(ValueError, KeyError, TypeError, IndexError, AttributeError, OverflowError),
    AssertionError,  # icalendar asserts on some content lines it cannot write
)


@contextmanager
def _unreadable() -> Iterator[None]:
    """Any library error while reading a hostile part becomes an InvitationError.

    icalendar parses lazily: a broken property (``BrokenCalendarProperty``, a
    ValueError) surfaces only when it is read, anywhere below.
    """
    try:
        yield
    except InvitationError:
        raise
    except _LIBRARY_ERRORS as exc:
        raise InvitationError("unreadable") from exc


def _parse(text: str) -> icalendar.Calendar:
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        # icalendar reports broken content with several exception types.
        raise InvitationError("not iCalendar") from exc
    if not isinstance(calendar, icalendar.Calendar):
        raise InvitationError("not a VCALENDAR")
    return calendar


def _master(calendar: icalendar.Calendar) -> icalendar.Component:
    events = list(calendar.walk("VEVENT"))
    if not events:
        raise InvitationError("no event")
    plain = [e for e in events if e.get("recurrence-id") is None]
    return (plain or events)[0]


def _local(value: datetime | date, zone: ZoneInfo) -> datetime | date:
    if not isinstance(value, datetime):
        return value
    if value.tzinfo is None:  # floating time: the person's wall clock
        return value.replace(tzinfo=zone)
    return value.astimezone(UTC).astimezone(zone)


def _times(event: icalendar.Event, zone: ZoneInfo) -> tuple[datetime | date, datetime | date]:
    """Start and end in the person's zone; an all-day end is made inclusive."""
    try:
        start_value = event.decoded("dtstart")
    except (KeyError, ValueError, TypeError) as exc:
        raise InvitationError("no start") from exc
    if not isinstance(start_value, date):
        raise InvitationError("bad start")
    try:
        if event.get("dtend") is not None:
            end_value = event.decoded("dtend")
        elif event.get("duration") is not None:
            end_value = start_value + event.decoded("duration")
        else:
            end_value = start_value + (timedelta(days=1) if _is_day(start_value) else timedelta())
    except (KeyError, ValueError, TypeError) as exc:
        raise InvitationError("bad end") from exc
    if _is_day(start_value):
        last = end_value - timedelta(days=1) if _is_day(end_value) else start_value
        return start_value, max(start_value, last)
    start, end = _local(start_value, zone), _local(end_value, zone)
    if not isinstance(start, datetime) or not isinstance(end, datetime) or end < start:
        return start, start
    return start, end


def _is_day(value: object) -> bool:
    return isinstance(value, date) and not isinstance(value, datetime)


def _rule(event: icalendar.Event, zone: ZoneInfo) -> Rule | None:
    rule = event.get("rrule")
    if rule is None:
        return None
    if isinstance(rule, list):
        rule = rule[0]
    days = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
    weekdays = tuple(
        days.index(str(d).upper()[-2:]) for d in rule.get("BYDAY", []) if str(d)[-2:] in days
    )
    until_values = rule.get("UNTIL") or [None]
    until = until_values[0]
    if isinstance(until, datetime):
        until = _local(until, zone)
        until = until.date() if isinstance(until, datetime) else until
    count_values = rule.get("COUNT") or [None]
    try:
        interval = max(1, int(rule.get("INTERVAL", [1])[0]))
        count = int(count_values[0]) if count_values[0] is not None else None
    except (TypeError, ValueError) as exc:
        raise InvitationError("bad rule") from exc
    return Rule(
        frequency=str(rule.get("FREQ", [""])[0]).upper(),
        interval=interval,
        weekdays=tuple(sorted(set(weekdays))),
        count=count,
        until=until if isinstance(until, date) else None,
    )


def _is_plain(event: icalendar.Component) -> bool:
    """Whether the event's dates come regularly enough to list the first few cheaply.

    dateutil (under recurring-ical-events) looks for the next date of a rule until
    it finds one: a hostile ``FREQ=SECONDLY``, a ``BYSECOND`` list or an
    impossible rule (``BYMONTH=2;BYMONTHDAY=30``, ``BYDAY=9MO``) costs seconds or
    scans to the year 9999. Only rules made of plain parts get their first dates;
    every rule is still described in words.
    """
    rules = event.get("rrule")
    for rule in rules if isinstance(rules, list) else [rules]:
        if str(rule.get("FREQ", [""])[0]).upper() not in PLAIN_FREQUENCIES:
            return False
        if set(rule) - PLAIN_RULE_PARTS:
            return False
        if any(char.isdigit() for day in rule.get("BYDAY", []) for char in str(day)):
            return False
    return True


def _next_dates(
    calendar: icalendar.Calendar, event: icalendar.Component, zone: ZoneInfo
) -> tuple[datetime | date, ...]:
    """The first few dates of a repeating event, from its start (read lazily)."""
    if not _is_plain(event):
        return ()
    start = event.decoded("dtstart")
    low = start if _is_day(start) else _local(start, zone)
    uid = str(event.get("uid", ""))
    dates: list[datetime | date] = []
    for scanned, occurrence in enumerate(recurring_ical_events.of(calendar).after(low)):
        if scanned >= MAX_SCANNED_OCCURRENCES:
            break
        if str(occurrence.get("uid", "")) == uid:
            dates.append(_local(occurrence.decoded("dtstart"), zone))
            if len(dates) == NEXT_DATES_COUNT:
                break
    return tuple(dates)


def day_of(value: datetime | date) -> date:
    """The day of a date or time."""
    return value.date() if isinstance(value, datetime) else value


def _participant(value: Any, answer_default: str = "needs-action") -> Participant:
    address = str(value)
    if address.lower().startswith("mailto:"):
        address = address[len("mailto:") :]
    params = getattr(value, "params", {})
    answer = str(params.get("PARTSTAT", answer_default)).lower()
    return Participant(
        name=str(params.get("CN", "")).strip('"'),
        address=address.strip(),
        answer=answer if answer in ANSWERS else "needs-action",
    )


def _attendees(event: icalendar.Event) -> tuple[Participant, ...]:
    values = event.get("attendee", [])
    if not isinstance(values, list):
        values = [values]
    return tuple(_participant(v) for v in values)


def read_invitation(text: str, zone: ZoneInfo) -> Invitation:
    """The first event of a calendar part, for the reading pane.

    Raises:
        InvitationError: the text is not iCalendar, or has no readable event.
    """
    with _unreadable():
        if len(text) > MAX_INVITATION_BYTES:
            raise InvitationError("too large")
        calendar = _parse(text)
        event = _master(calendar)
        start, end = _times(event, zone)
        rule = _rule(event, zone)
        method = str(calendar.get("method", "")).upper()
        organizer = event.get("organizer")
        return Invitation(
            method=method if method in METHODS else "",
            uid=str(event.get("uid", "")),
            title=str(event.get("summary", "")),
            start=start,
            end=end,
            is_all_day=_is_day(start),
            rule=rule,
            next_dates=_next_dates(calendar, event, zone) if rule else (),
            location=str(event.get("location", "")),
            description=str(event.get("description", "")),
            organizer=_participant(organizer, "accepted") if organizer is not None else None,
            attendees=_attendees(event),
            is_cancelled=method == "CANCEL" or str(event.get("status", "")).upper() == "CANCELLED",
        )


def agenda_object(text: str) -> tuple[str, str]:
    """The calendar object to store for an invitation, and its UID.

    Only the events of the invitation's UID and the time zones go in; ``METHOD``
    stays out (RFC 4791 §4.1), and the UID is kept so that the organiser's later
    updates and the agenda's copy are one event.

    Raises:
        InvitationError: unreadable, or an event without a UID.
    """
    with _unreadable():
        calendar = _parse(text)
        uid = str(_master(calendar).get("uid", "")).strip()
        if not uid:
            raise InvitationError("no UID")
        kept = icalendar.Calendar()
        kept.add("prodid", "-//groupware//webmail invitation//EN")
        kept.add("version", "2.0")
        for component in calendar.subcomponents:
            if component.name == "VTIMEZONE" or (
                component.name == "VEVENT" and str(component.get("uid", "")).strip() == uid
            ):
                kept.add_component(component)
        return kept.to_ical().decode("utf-8"), uid


def attendee_for(invitation: Invitation, addresses: Iterable[str]) -> Participant | None:
    """The attendee of the invitation who is the person (by any of their addresses)."""
    mine = {a.lower() for a in addresses}
    return next((a for a in invitation.attendees if a.address.lower() in mine), None)


def reply_object(text: str, attendee: Participant, answer: str, now: datetime) -> str:
    """An iTIP REPLY (RFC 5546 §3.2.3) from one attendee with their answer.

    Raises:
        InvitationError: the invitation is unreadable or has no organiser.
        ValueError: ``answer`` is not one of :data:`REPLY_ANSWERS`.
    """
    with _unreadable():
        if answer not in REPLY_ANSWERS:
            raise ValueError(answer)
        parsed = _parse(text)
        event = _master(parsed)
        organizer = event.get("organizer")
        if organizer is None or not str(event.get("uid", "")).strip():
            raise InvitationError("no organiser or UID")
        reply = icalendar.Event()
        for name in _REPLY_COPIED:
            if event.get(name) is not None:
                reply[name] = event[name]
        reply.add("dtstamp", now.astimezone(UTC))
        reply["organizer"] = organizer
        reply.add(
            "attendee",
            f"mailto:{attendee.address}",
            parameters={
                "PARTSTAT": answer.upper(),
                **({"CN": attendee.name} if attendee.name else {}),
            },
        )
        calendar = icalendar.Calendar()
        calendar.add("prodid", "-//groupware//webmail invitation//EN")
        calendar.add("version", "2.0")
        calendar.add("method", "REPLY")
        for zone in parsed.walk("VTIMEZONE"):  # the TZIDs of DTSTART/DTEND refer to them
            calendar.add_component(zone)
        calendar.add_component(reply)
        return calendar.to_ical().decode("utf-8")
