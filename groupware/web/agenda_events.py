# SPDX-License-Identifier: GPL-3.0-or-later
"""Agenda pages for one event: see it, create, edit, delete (one occurrence or more).

Routes of the ``agenda`` blueprint. Every write is a DAV PUT or DELETE as the
signed-in person with the ETag it was read with: a read-only share is refused by
the DAV rights (403, whatever the form says), and a change made elsewhere in the
meantime (412) is reported instead of overwritten. Moving an event to another
writable calendar is a PUT there (If-None-Match) then a DELETE here (If-Match); if
the DELETE is refused the copy is deleted again, so the event is never in both.
For a repeating event the person chooses what a change applies to: this
occurrence, this and the following ones, or the whole series (RFC 5545
exceptions, see ``web.agenda_data``).
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Final

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from groupware.web import agenda_data as data
from groupware.web.agenda import bp, calendars, client, today, zone
from groupware.web.agenda_forms import (
    EventForm,
    attendee_addresses,
    new_event_defaults,
    reminder_text,
)
from groupware.web.context import services
from groupware.web.dav_client import (
    ChangedElsewhereError,
    Collection,
    DavClient,
    DavClientError,
    ForbiddenError,
    Resource,
)

log = logging.getLogger(__name__)

CALENDAR_TYPE: Final = "text/calendar; charset=utf-8"
SCOPES: Final = ("all", "this", "following")
PEOPLE_LIMIT: Final = 10
_ITEM: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,200}$")


def _organizer() -> data.Organizer:
    person = current_user.person
    return data.Organizer(person.email, person.display_name)


def _calendar(dav: DavClient, segment: str) -> Collection:
    """One of the person's calendars by its segment; 404 for anything else."""
    for calendar in calendars(dav):
        if calendar.segment == segment:
            return calendar
    abort(404)


def _resource(dav: DavClient, segment: str, item: str) -> tuple[Collection, Resource]:
    if not _ITEM.match(item):
        abort(404)
    calendar = _calendar(dav, segment)
    found = dav.get(calendar.path + item)
    if found is None:
        abort(404)
    return calendar, found


def _back(default: str) -> str:
    target = request.values.get("back", "")
    return target if target.startswith("/agenda/") and not target.startswith("//") else default


def _scope() -> str:
    scope = request.values.get("scope", "all")
    return scope if scope in SCOPES else "all"


def _names(form: EventForm) -> dict[str, str]:
    """Display names of the attendees found in the directory, by lower-case address."""
    directory = services().core.directory
    names = {}
    for address in attendee_addresses(form.attendees.data or ""):
        person = directory.find(address)
        if person is not None:
            names[address.lower()] = person.display_name
    return names


# --- one event -----------------------------------------------------------------------


@bp.route("/event/<segment>/<item>")
@login_required
def event(segment: str, item: str) -> str:
    """An event (one occurrence of it, with ``rid``) and what the person may do with it."""
    dav = client()
    calendar, resource = _resource(dav, segment, item)
    rid = request.args.get("rid", "")
    draft = data.read_draft(resource.text, zone(), rid)
    master = data.read_draft(resource.text, zone())
    return render_template(
        "agenda/event.html",
        calendar=calendar,
        resource=resource,
        item=item,
        rid=rid,
        draft=draft,
        series=master.recurrence,
        reminders=[reminder_text(m) for m in draft.reminder_minutes],
        back=_back(url_for("agenda.index")),
    )


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new() -> str | Response:
    """Create an event in one of the calendars the person may write."""
    dav = client()
    writable = data.writable(calendars(dav))
    if not writable:
        abort(403)
    form = EventForm()
    form.calendar.choices = [(c.segment, c.display_name) for c in writable]
    if request.method == "GET":
        day_text = request.args.get("day", "")
        try:
            day = datetime.strptime(day_text, "%Y-%m-%d").date()
        except ValueError:
            day = today()
        new_event_defaults(form, day, datetime.now(zone()))
        form.back.data = _back("")
        form.calendar.data = request.args.get("calendar", writable[0].segment)
    if form.validate_on_submit():
        calendar = _calendar(dav, form.calendar.data)
        uid = data.new_uid(services().core.config.server.domain)
        text = data.new_event(form.draft(_names(form)), uid, _organizer(), zone())
        item = uid.split("@", 1)[0] + ".ics"
        if _write(dav, calendar.path + item, text, None):
            flash(_("Event created."), "success")
            return redirect(_after(form, form.start_date.data))
    return render_template("agenda/form.html", form=form, mode="new", scope="all", rid="")


@bp.route("/event/<segment>/<item>/edit", methods=["GET", "POST"])
@login_required
def edit(segment: str, item: str) -> str | Response:
    """Change an event: all of it, one occurrence, or this and the following ones."""
    dav = client()
    calendar, resource = _resource(dav, segment, item)
    if not calendar.is_writable:
        abort(403)
    rid, scope = request.values.get("rid", ""), _scope()
    if not rid:
        scope = "all"
    form = EventForm(calendar=calendar.segment)
    if scope == "all":  # a whole event may move to another calendar the person writes
        form.calendar.choices = [(c.segment, c.display_name) for c in data.writable(calendars(dav))]
    else:
        del form.calendar
    if scope == "this":
        form.drop_recurrence()
    if request.method == "GET":
        shown = data.read_draft(resource.text, zone(), rid if scope != "all" else "")
        if scope == "following":
            master = data.read_draft(resource.text, zone())
            shown = data.EventDraft(**{**_fields(shown), "recurrence": master.recurrence})
        form.fill(shown)
        form.etag.data = resource.etag
        form.back.data = _back("")
    if form.validate_on_submit():
        etag = form.etag.data or resource.etag
        done = _save(dav, calendar, item, resource.text, etag, form, rid, scope)
        if done:
            flash(_("Event saved."), "success")
            return redirect(_after(form, form.start_date.data))
    return render_template(
        "agenda/form.html",
        form=form,
        mode="edit",
        scope=scope,
        rid=rid,
        calendar=calendar,
        item=item,
    )


@bp.route("/event/<segment>/<item>/delete", methods=["POST"])
@login_required
def delete(segment: str, item: str) -> Response:
    """Delete an event, one occurrence of it, or this and the following ones."""
    dav = client()
    calendar, resource = _resource(dav, segment, item)
    if not calendar.is_writable:
        abort(403)
    rid, scope = request.form.get("rid", ""), _scope()
    etag = request.form.get("etag", "") or resource.etag
    path = calendar.path + item
    try:
        if not rid or scope == "all" or _is_first(resource.text, rid):
            dav.delete(path, etag=etag)
        elif scope == "this":
            dav.put(path, data.delete_occurrence(resource.text, rid), CALENDAR_TYPE, etag=etag)
        else:
            old, _new = data.split_series(resource.text, rid, None, "", _organizer(), zone())
            dav.put(path, old, CALENDAR_TYPE, etag=etag)
    except ChangedElsewhereError:
        flash(_changed_message(), "error")
        return redirect(url_for("agenda.event", segment=segment, item=item, rid=rid or None))
    except ForbiddenError:
        abort(403)
    flash(_("Event deleted."), "success")
    return redirect(_back(url_for("agenda.index")))


@bp.route("/people")
@login_required
def people() -> Response:
    """Directory search for the attendee field (JSON: name and address)."""
    text = request.args.get("q", "").strip()[:100]
    if len(text) < 2:
        return jsonify([])
    found, _groups = services().core.directory.search(text, limit=PEOPLE_LIMIT)
    return jsonify(
        [
            {"name": p.display_name, "email": p.email, "detail": p.school}
            for p in found
            if p.is_active
        ]
    )


# --- writing -------------------------------------------------------------------------


def _save(
    dav: DavClient,
    calendar: Collection,
    item: str,
    text: str,
    etag: str,
    form: EventForm,
    rid: str,
    scope: str,
) -> bool:
    path = calendar.path + item
    organizer = _organizer()
    if scope == "this":
        draft = form.draft(_names(form), with_recurrence=False)
        return _write(dav, path, data.update_occurrence(text, rid, draft, organizer, zone()), etag)
    draft = form.draft(_names(form))
    target = form.calendar.data if "calendar" in form else calendar.segment
    if target != calendar.segment:
        changed = data.update_series(text, draft, organizer, zone())
        return _move(dav, calendar, _calendar(dav, target), item, changed, etag)
    if scope == "following" and not _is_first(text, rid):
        uid = data.new_uid(services().core.config.server.domain)
        old, following = data.split_series(text, rid, draft, uid, organizer, zone())
        if not _write(dav, path, old, etag):
            return False
        assert following is not None
        return _write(dav, calendar.path + uid.split("@", 1)[0] + ".ics", following, None)
    return _write(dav, path, data.update_series(text, draft, organizer, zone()), etag)


def _write(dav: DavClient, path: str, text: str, etag: str | None) -> bool:
    """PUT, or say why not (412: changed elsewhere; 403: no right; other: refused)."""
    try:
        dav.put(path, text, CALENDAR_TYPE, etag=etag)
    except ChangedElsewhereError:
        flash(_changed_message(), "error")
        return False
    except ForbiddenError:
        abort(403)
    except DavClientError:
        flash(_("The calendar refused this event."), "error")
        return False
    return True


def _move(
    dav: DavClient, source: Collection, target: Collection, item: str, text: str, etag: str
) -> bool:
    """Copy to ``target``, then delete from ``source``; undo the copy if that fails."""
    if not target.is_writable:
        abort(403)
    copy = target.path + item
    try:
        copy_etag = dav.put(copy, text, CALENDAR_TYPE, etag=None)
    except ChangedElsewhereError:
        flash(_("The other calendar already has this event: nothing was moved."), "error")
        return False
    except ForbiddenError:
        abort(403)
    except DavClientError:
        flash(_("The calendar refused this event."), "error")
        return False
    try:
        dav.delete(source.path + item, etag=etag)
    except DavClientError as exc:
        _undo_copy(dav, copy, copy_etag)
        if isinstance(exc, ChangedElsewhereError):
            flash(_changed_message(), "error")
        else:
            flash(_("The event could not leave its calendar: nothing was moved."), "error")
        return False
    return True


def _undo_copy(dav: DavClient, path: str, etag: str) -> None:
    """Delete the copy a failed move left (the original is still where it was)."""
    try:
        if not etag:
            found = dav.get(path)
            etag = found.etag if found is not None else ""
        if etag:
            dav.delete(path, etag=etag)
    except DavClientError as exc:
        # The event is now in both calendars: say so in the log, the person sees both.
        log.error("web.agenda.move_undo_failed path=%s status=%s", path, exc.status)


def _changed_message() -> str:
    return _(
        "This event was changed elsewhere (on another device or by someone else) "
        "since you opened it: nothing was saved. Open it again to see the latest version."
    )


def _is_first(text: str, rid: str) -> bool:
    """Whether ``rid`` is the series' first occurrence (so "and following" is all of it)."""
    master = data.read_draft(text, zone())
    start = master.start
    if isinstance(start, datetime):
        return data.recurrence_key(start.replace(tzinfo=zone())) == rid
    return data.recurrence_key(start) == rid


def _fields(draft: data.EventDraft) -> dict[str, object]:
    return {name: getattr(draft, name) for name in draft.__dataclass_fields__}


def _after(form: EventForm, day: object) -> str:
    back = form.back.data or ""
    if back.startswith("/agenda/") and not back.startswith("//"):
        return back
    return url_for("agenda.show", view="week", day=str(day))
