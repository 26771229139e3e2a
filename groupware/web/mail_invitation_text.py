# SPDX-License-Identifier: GPL-3.0-or-later
"""An invitation in words, in the person's language: when, how it repeats, who answered.

Times are already in the person's zone (``web.mail_invitation``); they are
written with ``strftime("%H:%M")``, as the agenda does, because flask-babel's
time formatting would convert them again to the app's default zone. Days go
through Babel (``format_date`` of a ``date``, which it does not convert).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from babel.dates import get_day_names
from flask_babel import format_date, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from groupware.web.mail_invitation import Invitation, Rule


def _day(value: datetime | date) -> str:
    return format_date(value.date() if isinstance(value, datetime) else value, "full")


def _clock(value: datetime) -> str:
    return value.strftime("%H:%M")


def moment_text(value: datetime | date) -> str:
    """One date (and time) of an event."""
    if isinstance(value, datetime):
        return _("%(day)s at %(time)s", day=_day(value), time=_clock(value))
    return _day(value)


def when_text(invitation: Invitation) -> str:
    """From when to when, in words."""
    start, end = invitation.start, invitation.end
    if invitation.is_all_day:
        if start == end:
            return _("%(day)s (all day)", day=_day(start))
        return _("From %(first)s to %(last)s (all day)", first=_day(start), last=_day(end))
    assert isinstance(start, datetime)
    assert isinstance(end, datetime)
    if start.date() == end.date():
        return _(
            "%(day)s, %(start)s – %(end)s", day=_day(start), start=_clock(start), end=_clock(end)
        )
    return _("From %(start)s to %(end)s", start=moment_text(start), end=moment_text(end))


def _every(rule: Rule) -> str:
    if rule.interval == 1:
        once = {
            "DAILY": _("Every day"),
            "WEEKLY": _("Every week"),
            "MONTHLY": _("Every month"),
            "YEARLY": _("Every year"),
        }
        return once.get(rule.frequency, _("Repeats"))
    several = {
        "DAILY": _("Every %(count)s days", count=rule.interval),
        "WEEKLY": _("Every %(count)s weeks", count=rule.interval),
        "MONTHLY": _("Every %(count)s months", count=rule.interval),
        "YEARLY": _("Every %(count)s years", count=rule.interval),
    }
    return several.get(rule.frequency, _("Repeats"))


def rule_text(rule: Rule) -> str:
    """How an event repeats, in words (``Every 2 weeks (Tuesday, Thursday), 6 times``)."""
    text = _every(rule)
    if rule.weekdays:
        names = get_day_names("wide", locale=get_locale())
        days = ", ".join(names[day] for day in rule.weekdays)
        text = _("%(rule)s (%(days)s)", rule=text, days=days)
    if rule.count is not None:
        text = _("%(rule)s, %(count)s times", rule=text, count=rule.count)
    elif rule.until is not None:
        text = _("%(rule)s, until %(day)s", rule=text, day=_day(rule.until))
    return text


def answer_labels() -> dict[str, Any]:
    """Each attendee answer (PARTSTAT, RFC 5545 §3.2.12) as people say it."""
    return {
        "needs-action": _l("not answered yet"),
        "accepted": _l("accepted"),
        "declined": _l("declined"),
        "tentative": _l("maybe"),
        "delegated": _l("delegated"),
    }


def heading_text(invitation: Invitation) -> str:
    """What kind of calendar message this is."""
    if invitation.is_cancelled:
        return _("Cancelled event")
    if invitation.method == "REPLY":
        return _("Answer to an invitation")
    if invitation.method == "REQUEST":
        return _("Invitation")
    return _("Event")
