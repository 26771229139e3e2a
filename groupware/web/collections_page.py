# SPDX-License-Identifier: GPL-3.0-or-later
"""The person's calendars and address books: import, export, and their own view of shares.

Routes of the ``agenda`` blueprint under ``/agenda/collections``. Export is a GET of
the whole collection through the DAV front (Radicale answers it with one ``.ics`` or
``.vcf``), so it is exactly what the person may read. Import splits the file
(``web.import_data``) and writes it in a background job whose progress the page
polls (``/agenda/imports/<id>.json``); the report says what was skipped and why.
The job lives in the database, so any portal process answers the poll; one whose
process stopped reads as interrupted.
"""

from __future__ import annotations

import re
from typing import Final

from flask import Response, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from groupware.core.import_jobs import ImportJobStore
from groupware.core.sharing import CollectionRef
from groupware.web import import_data
from groupware.web.agenda import bp, client
from groupware.web.context import services
from groupware.web.dav_client import Collection, DavClient, DavClientError

MAX_NAME: Final = 100
#: The keys of a person's own view of a shared collection (those the DAV storage reads).
OWN_VIEW_NAME: Final = "D:displayname"
OWN_VIEW_COLOUR: Final = "ICAL:calendar-color"
_COLOUR: Final = re.compile(r"^#[0-9a-f]{6}$")
EXPORT_TYPES: Final = {"calendar": "text/calendar", "addressbook": "text/vcard"}
EXPORT_SUFFIXES: Final = {"calendar": ".ics", "addressbook": ".vcf"}


def skip_reasons() -> dict[str, object]:
    """Why an item was not imported, as the report says it."""
    return {
        "exists": _l("already in the collection"),
        "too_large": _l("too large"),
        "refused": _l("refused by the server"),
    }


def _jobs() -> import_data.ImportJobs:
    """The import jobs (a handle on their table: nothing of them is kept in memory)."""
    return import_data.ImportJobs(ImportJobStore(services().core.engine))


def _collection(dav: DavClient, segment: str) -> Collection:
    for found in dav.collections():
        if found.segment == segment:
            return found
    abort(404)


@bp.route("/collections")
@login_required
def settings() -> str:
    """Every calendar and address book, with export links and the import form."""
    dav = client()
    found = [c for c in dav.collections()]
    return render_template(
        "agenda/collections.html",
        collections=found,
        writable=[c for c in found if c.is_writable],
        hidden=hidden_rows(current_user.person.login),
    )


@bp.route("/collections/<segment>/export")
@login_required
def export(segment: str) -> Response:
    """The whole collection as one file, to download."""
    dav = client()
    collection = _collection(dav, segment)
    body = dav.export(collection.path)
    filename = import_data.resource_name(segment, EXPORT_SUFFIXES[collection.kind])
    return Response(
        body,
        mimetype=EXPORT_TYPES[collection.kind],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.route("/collections/import", methods=["POST"])
@login_required
def start_import() -> Response:
    """Split the uploaded file and start writing it into the chosen collection."""
    dav = client()
    # The CSRF token is checked by CSRFProtect before this runs.
    collection = _collection(dav, request.form.get("collection", ""))
    upload = request.files.get("file")
    if not collection.is_writable:
        abort(403)
    if upload is None or not upload.filename:
        flash(_("Choose a file to import."), "error")
        return redirect(url_for("agenda.settings"))
    data = upload.read()
    try:
        if collection.kind == "calendar":
            parts = import_data.split_calendar(data)
            content_type = import_data.CALENDAR_TYPE
        else:
            parts = import_data.split_cards(data)
            content_type = import_data.VCARD_TYPE
    except (ValueError, UnicodeDecodeError):
        flash(_("This file cannot be read: is it an .ics or .vcf file?"), "error")
        return redirect(url_for("agenda.settings"))
    job = _jobs().start(dav, collection.path, parts, content_type)
    return redirect(url_for("agenda.import_progress", job_id=job.id, segment=collection.segment))


@bp.route("/imports/<job_id>")
@login_required
def import_progress(job_id: str) -> str:
    """The progress bar, then the report."""
    job = _jobs().get(job_id, current_user.person.login)
    if job is None:
        abort(404)
    return render_template(
        "agenda/import.html",
        job=job,
        reasons=skip_reasons(),
        segment=request.args.get("segment", ""),
    )


@bp.route("/imports/<job_id>.json")
@login_required
def import_status(job_id: str) -> Response:
    """How far the import is (polled by agenda.js)."""
    job = _jobs().get(job_id, current_user.person.login)
    if job is None:
        abort(404)
    return jsonify(
        {
            "total": job.total,
            "done": job.done,
            "imported": job.imported,
            "skipped": job.skipped_count,
            # An interrupted job goes no further: the page reloads to say so.
            "finished": job.is_finished or job.is_interrupted,
            "interrupted": job.is_interrupted,
        }
    )


# --- the person's own view of what is shared with them ---------------------------------


def _shared_ref(collection: Collection) -> CollectionRef:
    """The shared collection behind a mount (``owner~name``); 404 for the directory."""
    owner, _sep, name = collection.segment.rpartition("~")
    if not collection.is_mount or not owner or owner.startswith("~") or not name:
        abort(404)
    return CollectionRef(owner, name)


@bp.route("/collections/<segment>/appearance", methods=["POST"])
@login_required
def appearance(segment: str) -> Response:
    """Set the name and colour the person sees; their phone and computer see them too.

    Their own collection gets a PROPPATCH. A shared one keeps the owner's: the
    person's view of it changes (``Sharing.set_view``, the properties the DAV
    storage shows on the mount), whatever their level; Radicale would refuse a
    PROPPATCH from someone who may only read.
    """
    dav = client()
    collection = _collection(dav, segment)
    name = request.form.get("display_name", "").strip()[:MAX_NAME]
    colour = request.form.get("color", "").strip().lower()
    if not name or not _COLOUR.match(colour):
        flash(_("Give a name and a colour."), "error")
        return redirect(url_for("agenda.settings"))
    if collection.is_mount:
        props = {OWN_VIEW_NAME: name, OWN_VIEW_COLOUR: colour}
        services().core.sharing.set_view(
            current_user.person.login, _shared_ref(collection), props=props
        )
    else:
        try:
            dav.set_properties(collection.path, display_name=name, color=colour)
        except DavClientError:
            abort(403)
    flash(_("Saved."), "success")
    return redirect(url_for("agenda.settings"))


@bp.route("/collections/<segment>/hide", methods=["POST"])
@login_required
def hide(segment: str) -> Response:
    """Stop listing a shared collection (in the portal and on the person's devices)."""
    collection = _collection(client(), segment)
    ref = _shared_ref(collection)
    services().core.sharing.set_view(current_user.person.login, ref, is_hidden=True)
    flash(_("%(name)s is hidden.", name=collection.display_name), "success")
    return redirect(url_for("agenda.settings"))


@bp.route("/collections/show", methods=["POST"])
@login_required
def show_again() -> Response:
    """List a hidden shared collection again."""
    login = current_user.person.login
    sharing = services().core.sharing
    key = request.form.get("collection", "")
    if key not in sharing.hidden_collections(login):
        abort(404)
    owner, _sep, name = key.rpartition("/")
    sharing.set_view(login, CollectionRef(owner, name), is_hidden=False)
    flash(_("Shown again."), "success")
    return redirect(url_for("agenda.settings"))


def hidden_rows(login: str) -> list[tuple[str, str]]:
    """``(key, name)`` of the shared collections the person hid."""
    sharing = services().core.sharing
    rows = []
    for key in sorted(sharing.hidden_collections(login)):
        owner, _sep, name = key.rpartition("/")
        rows.append((key, f"{name} ({sharing.display_name(owner)})"))
    return rows
