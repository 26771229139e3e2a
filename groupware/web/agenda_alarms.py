# SPDX-License-Identifier: GPL-3.0-or-later
"""Reminders of an event: the VALARMs the event form shows, and the ones it leaves alone.

Framework-free. RFC 5545 §3.6.6: a reminder the form offers is an ``ACTION:DISPLAY``
alarm with a DESCRIPTION and a TRIGGER that is a duration before (or at) the start,
``RELATED=START`` (the default, §3.2.14). Anything else a client wrote, an absolute
TRIGGER, a trigger after the end, an EMAIL or AUDIO action, is not shown in the form
and is kept as it is when the event is saved. A reminder kept from before keeps its
other properties too (a phone's ``ACKNOWLEDGED`` or ``X-WR-ALARMUID``), so saving an
event in the browser does not make every phone ring again.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Final

import icalendar

SECONDS_PER_MINUTE: Final = 60
DISPLAY: Final = "DISPLAY"


def form_minutes(alarm: icalendar.Component) -> int | None:
    """Minutes before the start for a reminder the form shows; ``None`` for any other alarm."""
    if str(alarm.get("action", "")).upper() != DISPLAY:
        return None
    trigger = alarm.get("trigger")
    if trigger is None or not isinstance(trigger.dt, timedelta):
        return None
    if str(trigger.params.get("RELATED", "START")).upper() != "START":
        return None
    seconds = -trigger.dt.total_seconds()
    if seconds < 0 or seconds % SECONDS_PER_MINUTE:
        return None
    return int(seconds // SECONDS_PER_MINUTE)


def reminder_minutes(event: icalendar.Event) -> list[int]:
    """The form's reminders of ``event``, soonest before the start first, without repeats."""
    found = {form_minutes(alarm) for alarm in event.walk("VALARM")}
    return sorted(m for m in found if m is not None)


def foreign_alarms(event: icalendar.Event) -> list[icalendar.Component]:
    """The alarms of ``event`` that the form does not show (kept on every save)."""
    return [a for a in _alarms(event) if form_minutes(a) is None]


def set_reminders(event: icalendar.Event, minutes: Iterable[int], description: str) -> None:
    """Make the form's reminders of ``event`` exactly ``minutes``; other alarms stay.

    A reminder already there for the same number of minutes is kept untouched; one no
    longer wanted goes; a new one is an ``ACTION:DISPLAY`` alarm saying ``description``.
    """
    wanted = set(minutes)
    kept: list[icalendar.Component] = []
    for alarm in _alarms(event):
        value = form_minutes(alarm)
        if value is None:
            kept.append(alarm)
        elif value in wanted:
            kept.append(alarm)
            wanted.discard(value)
    others = [c for c in event.subcomponents if c.name != "VALARM"]
    event.subcomponents = others + kept
    for value in sorted(wanted):
        event.add_component(new_reminder(value, description))


def new_reminder(minutes: int, description: str) -> icalendar.Alarm:
    """A DISPLAY alarm ``minutes`` before the start (RFC 5545 §3.6.6, DESCRIPTION required)."""
    alarm = icalendar.Alarm()
    alarm.add("action", DISPLAY)
    alarm.add("description", description)
    alarm.add("trigger", timedelta(minutes=-minutes))
    return alarm


def _alarms(event: icalendar.Event) -> list[icalendar.Component]:
    return [c for c in event.subcomponents if c.name == "VALARM"]
