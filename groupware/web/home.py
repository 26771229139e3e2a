# SPDX-License-Identifier: GPL-3.0-or-later
"""The home page: the person's calendars and address books with client set-up URLs."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, redirect, render_template, request
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from groupware.web.context import services

bp = Blueprint("home", __name__)


@dataclass(frozen=True, slots=True)
class CollectionLink:
    """A calendar or address book as the home page shows it."""

    display_name: str
    url: str  # the full URL to paste into a CalDAV/CardDAV client
    kind: str  # calendar | addressbook
    level: str  # owner, manage, write, read


def base_url() -> str:
    """The portal's public base URL, configured or from the request."""
    configured = services().core.config.server.public_url
    return (configured or request.host_url).rstrip("/")


@bp.route("/")
@login_required
def index() -> str:
    """Calendars and address books, with the exact URLs to paste into a client."""
    person = current_user.person
    collections = services().dav.collections_for(person)
    base = base_url()
    links: dict[str, list[CollectionLink]] = {"calendar": [], "addressbook": [], "shared": []}
    for collection in collections:
        link = CollectionLink(
            collection.display_name,
            f"{base}/dav{collection.path}",
            collection.kind,
            collection.level.label,
        )
        links[collection.kind if collection.is_own else "shared"].append(link)
    return render_template(
        "home/index.html",
        person=person,
        server_url=f"{base}/",
        principal_url=f"{base}/dav/{person.login}/",
        calendars=links["calendar"],
        addressbooks=links["addressbook"],
        shared=links["shared"],
    )


@bp.route("/", methods=["PROPFIND"], endpoint="root_propfind")
@bp.route("/.well-known/caldav", methods=["GET", "PROPFIND", "HEAD", "OPTIONS"])
@bp.route("/.well-known/carddav", methods=["GET", "PROPFIND", "HEAD", "OPTIONS"])
def well_known() -> Response:
    """RFC 6764 §5: the context path of CalDAV and CardDAV is ``/dav/``.

    A PROPFIND on the site root (clients given only the server address) goes there too.
    """
    return redirect("/dav/", code=301)
