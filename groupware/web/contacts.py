# SPDX-License-Identifier: GPL-3.0-or-later
"""Contacts pages: personal address books (list, search, create, edit, delete) and the directory.

Cards are read and written through the DAV front as the signed-in person
(``web.dav_client``), so a contact made here is on the person's phone at its next
sync. The directory book (``~directory`` in the home) is searched with a CardDAV
addressbook-query. "Write to" is a ``mailto:`` link until the webmail exists.
"""

from __future__ import annotations

import re
from typing import Final

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import HiddenField, StringField, TextAreaField
from wtforms.validators import Length, Optional, ValidationError

from groupware.web import contact_data
from groupware.web.agenda import client
from groupware.web.dav_client import (
    ChangedElsewhereError,
    Collection,
    DavClient,
    DavClientError,
    ForbiddenError,
)

bp = Blueprint("contacts", __name__, url_prefix="/contacts")

VCARD_TYPE: Final = "text/vcard; charset=utf-8"
DEFAULT_BOOK: Final = "contacts"
DIRECTORY_MARK: Final = "~directory"
DIRECTORY_LIMIT: Final = 50
_ITEM: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,200}$")


class ContactForm(FlaskForm):
    """A personal contact."""

    given_name = StringField(_l("First name"), validators=[Optional(), Length(max=100)])
    family_name = StringField(_l("Last name"), validators=[Optional(), Length(max=100)])
    full_name = StringField(_l("Name as shown"), validators=[Optional(), Length(max=200)])
    emails = TextAreaField(
        _l("Email addresses (one per line)"), validators=[Optional(), Length(max=2000)]
    )
    phones = TextAreaField(
        _l("Phone numbers (one per line)"), validators=[Optional(), Length(max=2000)]
    )
    organization = StringField(_l("Organisation"), validators=[Optional(), Length(max=200)])
    title = StringField(_l("Job title"), validators=[Optional(), Length(max=200)])
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=5000)])
    etag = HiddenField()

    def validate_full_name(self, field: StringField) -> None:
        """A contact has a name of some kind."""
        if not (field.data or self.given_name.data or self.family_name.data or "").strip():
            raise ValidationError(_l("Give a name."))

    def contact(self, uid: str) -> contact_data.Contact:
        """The contact the form describes."""
        return contact_data.Contact(
            uid=uid,
            full_name=(self.full_name.data or "").strip()
            or " ".join(filter(None, (self.given_name.data, self.family_name.data))).strip(),
            given_name=(self.given_name.data or "").strip(),
            family_name=(self.family_name.data or "").strip(),
            emails=_lines(self.emails.data),
            phones=_lines(self.phones.data),
            organization=(self.organization.data or "").strip(),
            title=(self.title.data or "").strip(),
            note=(self.note.data or "").strip(),
        )

    def fill(self, contact: contact_data.Contact) -> None:
        """Show ``contact`` in the form."""
        for name in ("given_name", "family_name", "full_name", "organization", "title", "note"):
            getattr(self, name).data = getattr(contact, name)
        self.emails.data = "\n".join(contact.emails)
        self.phones.data = "\n".join(contact.phones)
        self.etag.data = contact.etag


def _lines(text: str | None) -> tuple[str, ...]:
    return tuple(line.strip() for line in (text or "").splitlines() if line.strip())


def _books(dav: DavClient) -> list[Collection]:
    return [c for c in dav.collections() if c.kind == "addressbook"]


def _book(dav: DavClient, segment: str) -> Collection:
    for book in _books(dav):
        if book.segment == segment and DIRECTORY_MARK not in segment:
            return book
    abort(404)


@bp.route("")
@login_required
def index() -> str:
    """The person's contacts (one address book at a time), searchable."""
    dav = client()
    books = [b for b in _books(dav) if DIRECTORY_MARK not in b.segment]
    segment = request.args.get("book", DEFAULT_BOOK)
    book = _book(dav, segment)
    text = request.args.get("q", "").strip()[:100]
    everyone = contact_data.read_all(dav.address_cards(book.path))
    shown = contact_data.search(everyone, text) if text else everyone
    return render_template(
        "contacts/index.html", books=books, book=book, contacts=shown, q=text, total=len(everyone)
    )


@bp.route("/directory")
@login_required
def directory() -> str:
    """Search the directory address book (everyone in the directory)."""
    text = request.args.get("q", "").strip()[:100]
    found: list[contact_data.Contact] = []
    if len(text) >= 2:
        dav = client()
        book = next((b for b in _books(dav) if b.segment == DIRECTORY_MARK), None)
        if book is None:
            abort(404)
        cards = dav.address_cards(book.path, text)
        found = contact_data.search(contact_data.read_all(cards), text)[:DIRECTORY_LIMIT]
    return render_template("contacts/directory.html", q=text, found=found)


@bp.route("/<book>/new", methods=["GET", "POST"])
@login_required
def new(book: str) -> str | Response:
    """Add a contact to an address book the person may write."""
    dav = client()
    target = _book(dav, book)
    if not target.is_writable:
        abort(403)
    form = ContactForm()
    if form.validate_on_submit():
        uid = contact_data.new_uid()
        text = contact_data.write(form.contact(uid))
        if _put(dav, f"{target.path}{uid}.vcf", text, None):
            flash(_("Contact saved."), "success")
            return redirect(url_for("contacts.index", book=book))
    return render_template("contacts/form.html", form=form, book=target, item="")


@bp.route("/<book>/<item>/edit", methods=["GET", "POST"])
@login_required
def edit(book: str, item: str) -> str | Response:
    """Change a contact (the properties the form does not show are kept)."""
    dav = client()
    target = _book(dav, book)
    if not _ITEM.match(item):
        abort(404)
    resource = dav.get(target.path + item)
    current = contact_data.read(resource) if resource is not None else None
    if resource is None or current is None:
        abort(404)
    if not target.is_writable:
        abort(403)
    form = ContactForm()
    if request.method == "GET":
        form.fill(current)
    if form.validate_on_submit():
        changed = form.contact(current.uid)
        text = contact_data.write(changed, resource.text)
        if _put(dav, resource.path, text, form.etag.data or resource.etag):
            flash(_("Contact saved."), "success")
            return redirect(url_for("contacts.index", book=book))
    return render_template("contacts/form.html", form=form, book=target, item=item)


@bp.route("/<book>/<item>/delete", methods=["POST"])
@login_required
def delete(book: str, item: str) -> Response:
    """Delete a contact."""
    dav = client()
    target = _book(dav, book)
    if not _ITEM.match(item) or not target.is_writable:
        abort(403)
    try:
        dav.delete(target.path + item, etag=request.form.get("etag", "") or "*")
    except ChangedElsewhereError:
        flash(_("This contact was changed elsewhere: open it again."), "error")
    except ForbiddenError:
        abort(403)
    except DavClientError:
        abort(404)
    else:
        flash(_("Contact deleted."), "success")
    return redirect(url_for("contacts.index", book=book))


def _put(dav: DavClient, path: str, text: str, etag: str | None) -> bool:
    try:
        dav.put(path, text, VCARD_TYPE, etag=etag)
    except ChangedElsewhereError:
        flash(_("This contact was changed elsewhere: open it again."), "error")
        return False
    except ForbiddenError:
        abort(403)
    return True
