# SPDX-License-Identifier: GPL-3.0-or-later
"""The event form: fields, their checks, and the draft they make (``EventDraft``).

Reminders are rows of a number and a unit (minutes, hours or days before the start),
as many as the person adds (``static/agenda.js`` adds and removes rows; without
JavaScript an emptied number removes one). Only the reminders ``web.agenda_alarms``
calls the form's kind are shown here; the others stay in the event untouched.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any, Final

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    FieldList,
    Form,
    FormField,
    HiddenField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    TimeField,
    widgets,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional, ValidationError

from groupware.web.agenda_data import WEEKDAYS, Attendee, EventDraft, Recurrence

MAX_TITLE: Final = 200
MAX_TEXT: Final = 5000
MAX_ATTENDEES: Final = 100
DEFAULT_DURATION: Final = timedelta(hours=1)
MAX_REMINDERS: Final = 10
MAX_REMINDER_AMOUNT: Final = 999
MINUTES_PER_UNIT: Final = {"minutes": 1, "hours": 60, "days": 1440}
_RECURRENCE_FIELDS: Final = ("repeat", "interval", "weekdays", "ends", "until", "count")


def _repeat_choices() -> list[tuple[str, Any]]:
    return [
        ("", _l("Does not repeat")),
        ("DAILY", _l("Every day")),
        ("WEEKLY", _l("Every week")),
        ("MONTHLY", _l("Every month")),
        ("YEARLY", _l("Every year")),
    ]


def _weekday_choices() -> list[tuple[str, Any]]:
    names = (_l("Monday"), _l("Tuesday"), _l("Wednesday"), _l("Thursday"), _l("Friday"))
    names += (_l("Saturday"), _l("Sunday"))
    return list(zip(WEEKDAYS, names, strict=True))


def _ends_choices() -> list[tuple[str, Any]]:
    return [
        ("never", _l("Never")),
        ("until", _l("On a date")),
        ("count", _l("After a number of times")),
    ]


def _unit_choices() -> list[tuple[str, Any]]:
    return [
        ("minutes", _l("minutes before")),
        ("hours", _l("hours before")),
        ("days", _l("days before")),
    ]


class ReminderRow(Form):
    """One reminder: a number of minutes, hours or days before the start.

    A plain ``wtforms.Form``: the CSRF token is the event form's own.
    """

    amount = IntegerField(
        _l("Reminder"),
        validators=[Optional(), NumberRange(min=0, max=MAX_REMINDER_AMOUNT)],
    )
    unit = SelectField(_l("Unit"), choices=_unit_choices, default="minutes")

    def minutes(self) -> int | None:
        """Minutes before the start, or ``None`` when the number is left empty."""
        if self.amount.data is None:
            return None
        return self.amount.data * MINUTES_PER_UNIT.get(self.unit.data, 1)


def reminder_row(minutes: int) -> dict[str, object]:
    """The largest unit that says ``minutes`` exactly (90 → 90 minutes, 120 → 2 hours)."""
    for unit in ("days", "hours"):
        size = MINUTES_PER_UNIT[unit]
        if minutes and minutes % size == 0:
            return {"amount": minutes // size, "unit": unit}
    return {"amount": minutes, "unit": "minutes"}


def reminder_text(minutes: int) -> str:
    """How the event page says a reminder."""
    row = reminder_row(minutes)
    if not minutes:
        return _("At the start")
    if row["unit"] == "days":
        return _("%(count)s day(s) before", count=row["amount"])
    if row["unit"] == "hours":
        return _("%(count)s h before", count=row["amount"])
    return _("%(count)s min before", count=row["amount"])


class EventForm(FlaskForm):
    """Create or change an event (or one occurrence of it)."""

    calendar = SelectField(_l("Calendar"), choices=[])
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=MAX_TITLE)])
    location = StringField(_l("Place"), validators=[Optional(), Length(max=MAX_TITLE)])
    all_day = BooleanField(_l("All day"))
    start_date = DateField(_l("Start date"), validators=[DataRequired()])
    start_time = TimeField(_l("Start time"), validators=[Optional()])
    end_date = DateField(_l("End date"), validators=[DataRequired()])
    end_time = TimeField(_l("End time"), validators=[Optional()])
    description = TextAreaField(_l("Description"), validators=[Optional(), Length(max=MAX_TEXT)])
    repeat = SelectField(_l("Repeat"), choices=_repeat_choices)
    interval = IntegerField(
        _l("Every how many (days, weeks, months or years)"),
        default=1,
        validators=[Optional(), NumberRange(min=1, max=99)],
    )
    weekdays = SelectMultipleField(
        _l("On these days (weekly)"),
        choices=_weekday_choices,
        option_widget=widgets.CheckboxInput(),
        widget=widgets.ListWidget(prefix_label=False),
        validators=[Optional()],
    )
    ends = SelectField(_l("Ends"), choices=_ends_choices)
    until = DateField(_l("Last day"), validators=[Optional()])
    count = IntegerField(
        _l("Number of times"), validators=[Optional(), NumberRange(min=1, max=999)]
    )
    reminders = FieldList(FormField(ReminderRow), min_entries=1, max_entries=MAX_REMINDERS)
    attendees = TextAreaField(
        _l("Attendees (one address per line)"), validators=[Optional(), Length(max=MAX_TEXT)]
    )
    etag = HiddenField()
    back = HiddenField()

    def validate_end_date(self, field: DateField) -> None:
        """The end is not before the start."""
        start, end = self._moments()
        if start is not None and end is not None and end < start:
            raise ValidationError(_l("The end is before the start."))

    def validate_start_time(self, field: TimeField) -> None:
        """A timed event has a start time."""
        if not self.all_day.data and field.data is None:
            raise ValidationError(_l("Give a start time, or tick “All day”."))

    def validate_until(self, field: DateField) -> None:
        """An end date for the repetition when that is what was chosen."""
        if self.repeat.data and self.ends.data == "until" and field.data is None:
            raise ValidationError(_l("Give the last day of the repetition."))

    def validate_count(self, field: IntegerField) -> None:
        """A number of times when that is what was chosen."""
        if self.repeat.data and self.ends.data == "count" and not field.data:
            raise ValidationError(_l("Give how many times it happens."))

    def validate_attendees(self, field: TextAreaField) -> None:
        """Addresses that look like addresses."""
        addresses = attendee_addresses(field.data or "")
        if len(addresses) > MAX_ATTENDEES:
            raise ValidationError(_l("Too many attendees."))
        for address in addresses:
            local, at, domain = address.partition("@")
            if not local or not at or "." not in domain or " " in address:
                raise ValidationError(_l("“%(address)s” is not an address.", address=address))

    def _moments(self) -> tuple[datetime | None, datetime | None]:
        if self.start_date.data is None or self.end_date.data is None:
            return None, None
        if self.all_day.data:
            return (
                datetime.combine(self.start_date.data, time()),
                datetime.combine(self.end_date.data, time()),
            )
        start_time = self.start_time.data or time()
        end_time = self.end_time.data or start_time
        return (
            datetime.combine(self.start_date.data, start_time),
            datetime.combine(self.end_date.data, end_time),
        )

    def drop_recurrence(self) -> None:
        """One occurrence is edited: it has no repetition of its own (RFC 5545 §3.8.4.4)."""
        for name in _RECURRENCE_FIELDS:
            delattr(self, name)

    # --- to and from drafts ------------------------------------------------------------

    def draft(self, names: dict[str, str], *, with_recurrence: bool = True) -> EventDraft:
        """The event the form describes; ``names`` gives attendees' names by address."""
        start, end = self._moments()
        assert start is not None
        assert end is not None
        if self.all_day.data:
            start_value: datetime | date = start.date()
            end_value: datetime | date = end.date()
        else:
            start_value, end_value = start, end
        recurrence = None
        if with_recurrence and "repeat" in self and self.repeat.data:
            recurrence = Recurrence(
                frequency=self.repeat.data,
                interval=self.interval.data or 1,
                weekdays=tuple(self.weekdays.data or ()) if self.repeat.data == "WEEKLY" else (),
                until=self.until.data if self.ends.data == "until" else None,
                count=self.count.data if self.ends.data == "count" else None,
            )
        found = (row.form.minutes() for row in self.reminders)
        reminder = tuple(sorted({m for m in found if m is not None}))
        attendees = tuple(
            Attendee(a, names.get(a.lower(), ""))
            for a in attendee_addresses(self.attendees.data or "")
        )
        return EventDraft(
            title=self.title.data.strip(),
            start=start_value,
            end=end_value,
            is_all_day=bool(self.all_day.data),
            location=(self.location.data or "").strip(),
            description=(self.description.data or "").strip(),
            recurrence=recurrence,
            reminder_minutes=reminder,
            attendees=attendees,
        )

    def fill(self, draft: EventDraft) -> None:
        """Show ``draft`` in the form (a GET of the edit page)."""
        self.title.data = draft.title
        self.location.data = draft.location
        self.description.data = draft.description
        self.all_day.data = draft.is_all_day
        self.start_date.data = (
            draft.start if not isinstance(draft.start, datetime) else draft.start.date()
        )
        self.end_date.data = draft.end if not isinstance(draft.end, datetime) else draft.end.date()
        if isinstance(draft.start, datetime) and isinstance(draft.end, datetime):
            self.start_time.data = draft.start.time()
            self.end_time.data = draft.end.time()
        rule = draft.recurrence
        if "repeat" in self:
            self.repeat.data = rule.frequency if rule else ""
        if rule and "repeat" in self:
            self.interval.data = rule.interval
            self.weekdays.data = list(rule.weekdays)
            self.ends.data = "count" if rule.count else "until" if rule.until else "never"
            self.until.data = rule.until
            self.count.data = rule.count
        while self.reminders.entries:
            self.reminders.pop_entry()
        for minutes in draft.reminder_minutes:
            self.reminders.append_entry(reminder_row(minutes))
        if not self.reminders.entries:
            self.reminders.append_entry()
        self.attendees.data = "\n".join(a.email for a in draft.attendees)


def attendee_addresses(text: str) -> list[str]:
    """The addresses of the attendees field (lines, commas or semicolons), deduplicated."""
    seen: dict[str, str] = {}
    for part in text.replace(",", "\n").replace(";", "\n").splitlines():
        address = part.strip().removeprefix("mailto:")
        if address and address.lower() not in seen:
            seen[address.lower()] = address
    return list(seen.values())


def new_event_defaults(form: EventForm, day: date, now: datetime) -> None:
    """A new event on ``day``: at the next hour when it is today, else 09:00."""
    start = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    if start.date() != day:
        start = datetime.combine(day, time(9, 0))
    start = start.replace(tzinfo=None)
    form.start_date.data = day
    form.end_date.data = (start + DEFAULT_DURATION).date()
    form.start_time.data = start.time()
    form.end_time.data = (start + DEFAULT_DURATION).time()
    form.interval.data = 1
