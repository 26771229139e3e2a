# SPDX-License-Identifier: GPL-3.0-or-later
"""Agenda pages: the person's calendars overlaid in day, week, month and list views.

Everything is read through the DAV front as the signed-in person
(``web.dav_client``): what shows here is what their phone syncs, and a calendar
shared read-only offers no editing control. The URL carries the view and the day
(``/agenda/week/2026-03-29``) so that back, forward and bookmarks work. Events are
edited in ``web.agenda_events``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from typing import Any, Final
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, redirect, render_template, request, session, url_for
from flask_babel import format_date
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from groupware.web import agenda_layout as layout
from groupware.web.agenda_data import Occurrence, occurrences
from groupware.web.context import services
from groupware.web.dav_client import Collection, DavClient

bp = Blueprint("agenda", __name__, url_prefix="/agenda")

#: Session key: the calendars the person unticked in the overlay (their segments).
HIDDEN_KEY: Final = "agenda_unticked"
DEFAULT_VIEW: Final = "week"


def view_labels() -> dict[str, Any]:
    """Each view's name in the switcher."""
    return {"day": _l("Day"), "week": _l("Week"), "month": _l("Month"), "list": _l("List")}


def client() -> DavClient:
    """The signed-in person's DAV client."""
    return DavClient(services().dav_requests, current_user.person)


def zone() -> ZoneInfo:
    """The zone the person's agenda is shown in."""
    return ZoneInfo(services().core.config.accounts.default_time_zone)


def today() -> date:
    """Today, in the person's zone."""
    return datetime.now(zone()).date()


def calendars(dav: DavClient) -> list[Collection]:
    """The person's calendars (own first), with the colour each is drawn in."""
    return [c for c in dav.collections() if c.kind == "calendar"]


def fetch(dav: DavClient, shown: Sequence[Collection], start: date, end: date) -> list[Occurrence]:
    """Every occurrence in ``[start, end)`` of the calendars shown."""
    here = zone()
    low = datetime.combine(start, time(), here).astimezone(UTC)
    high = datetime.combine(end, time(), here).astimezone(UTC)
    found: list[Occurrence] = []
    for calendar in shown:
        resources = dav.calendar_query(calendar.path, low, high)
        found.extend(occurrences(resources, calendar, start, end, here))
    return sorted(found, key=lambda o: (o.start, not o.is_all_day, o.title.lower()))


def parse_day(text: str) -> date:
    """A ``YYYY-MM-DD`` from the URL; anything else is a 404."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        abort(404)


@bp.app_template_filter("hm")
def hours_minutes(moment: datetime) -> str:
    """``14:05``: the 24-hour clock both languages use here."""
    return moment.strftime("%H:%M")


# --- pages ---------------------------------------------------------------------------


@bp.route("")
@login_required
def index() -> Response:
    """Today's week."""
    return redirect(url_for("agenda.show", view=DEFAULT_VIEW, day=today().isoformat()))


@bp.route("/<view>/<day>")
@login_required
def show(view: str, day: str) -> str:
    """One view of the overlaid calendars."""
    if view not in layout.VIEWS:
        abort(404)
    period = layout.period(view, parse_day(day))
    dav = client()
    every = calendars(dav)
    unticked = set(session.get(HIDDEN_KEY, []))
    shown = [c for c in every if c.segment not in unticked]
    colours = layout.colours([(c.segment, c.color) for c in every])
    found = fetch(dav, shown, period.start, period.end)
    context: dict[str, Any] = {
        "period": period,
        "calendars": every,
        "unticked": unticked,
        "colours": colours,
        "indexes": {c.segment: n for n, c in enumerate(every)},
        "today": today(),
        "title": _period_title(period),
        "views": view_labels(),
        "can_create": any(c.is_writable for c in every),
    }
    if view in ("day", "week"):
        context["columns"] = layout.columns(period.days, found)
    elif view == "month":
        context["weeks"] = layout.month_weeks(period, found)
    else:
        context["list_days"] = layout.list_days(period, found)
    return render_template(f"agenda/{view}.html", **context)


@bp.route("/calendars", methods=["POST"])
@login_required
def tick() -> Response:
    """Choose which calendars the views overlay (the person's choice, in the session)."""
    known = {c.segment for c in calendars(client())}
    ticked = set(request.form.getlist("shown"))
    session[HIDDEN_KEY] = sorted(known - ticked)
    return redirect(_back())


def _back() -> str:
    """Where a form sends the person back to: a page of ours, never another site."""
    target = request.form.get("back", "") or request.args.get("back", "")
    if target.startswith("/agenda/") and not target.startswith("//"):
        return target
    return url_for("agenda.index")


def _period_title(period: layout.Period) -> str:
    if period.view == "day":
        return str(format_date(period.start, "EEEE d MMMM y"))
    if period.view == "month":
        return str(format_date(period.anchor, "LLLL y")).capitalize()
    last = period.days[-1]
    return f"{format_date(period.start, 'd MMM')} – {format_date(last, 'd MMM y')}"
