# SPDX-License-Identifier: GPL-3.0-or-later
"""Sharing pages: who may see a calendar or an address book, and free/busy visibility.

``/sharing`` lists what the person may share (their own collections and those they
manage, department agendas among them) and their free/busy choice;
``/sharing/<owner>/<name>`` lists a collection's grants, revokes them, and finds a
person or a group by name to give them a level. Only the owner and holders of
``manage`` reach a collection's page; others get the same 404 as for a collection
that does not exist. Every change goes through ``core.sharing`` (audited there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import HiddenField, RadioField, SelectField, StringField
from wtforms.validators import DataRequired, Length

from groupware.core.sharing import (
    FREEBUSY_SCOPES,
    GRANTABLE,
    GROUP_PREFIX,
    CollectionRef,
    Level,
)
from groupware.errors import GroupwareError
from groupware.web.context import services

bp = Blueprint("sharing", __name__, url_prefix="/sharing")

SEARCH_LIMIT: Final = 20


def level_labels() -> dict[str, Any]:
    """Each level as people read it."""
    return {
        Level.OWNER.label: _l("Owner"),
        Level.MANAGE.label: _l("Can edit and share"),
        Level.WRITE.label: _l("Can edit"),
        Level.READ.label: _l("Can view"),
        Level.FREEBUSY.label: _l("Free/busy only"),
    }


def _level_choices() -> list[tuple[str, Any]]:
    labels = level_labels()
    return [(level.label, labels[level.label]) for level in GRANTABLE]


def _scope_choices() -> list[tuple[str, Any]]:
    labels = {
        "nobody": _l("Nobody"),
        "school": _l("People of my school"),
        "everyone": _l("Everyone in the directory"),
    }
    return [(scope, labels[scope]) for scope in FREEBUSY_SCOPES]


class GrantForm(FlaskForm):
    """Give a person or a group a level."""

    grantee = RadioField(_l("Share with"), validators=[DataRequired()], choices=[])
    level = SelectField(_l("Access"), choices=_level_choices)
    q = HiddenField()


class RevokeForm(FlaskForm):
    """Withdraw one grant."""

    grantee = HiddenField(validators=[DataRequired(), Length(max=160)])


class FreeBusyForm(FlaskForm):
    """Who may see when the person is busy."""

    scope = SelectField(_l("Who may see when you are busy"), choices=_scope_choices)


class SearchForm(FlaskForm):
    """Find people and groups by name (a GET form: no token needed)."""

    class Meta:
        csrf = False

    q = StringField(_l("Name, address or group"), validators=[Length(max=100)])


@dataclass(frozen=True, slots=True)
class GrantRow:
    """A grant as the page lists it."""

    grantee: str
    name: str
    is_group: bool
    level: str


@dataclass(frozen=True, slots=True)
class Candidate:
    """A search result one may share with."""

    principal: str
    name: str
    detail: str
    is_group: bool


# --- pages -------------------------------------------------------------------------


@bp.route("")
@login_required
def index() -> str:
    """What the person may share, and their free/busy choice."""
    person = current_user.person
    core = services().core
    view = core.sharing.view(person)
    dav = services().dav
    shareable = [c for c in dav.owned_by(person.login)]
    for entry in dav.collections_for(person):
        if entry.collection is not None and not entry.is_own and entry.level >= Level.MANAGE:
            shareable.append(entry)
    counts = {
        c.collection.key: len(core.sharing.grants(collection=c.collection))
        for c in shareable
        if c.collection is not None
    }
    form = FreeBusyForm(scope=core.sharing.freebusy_scope(person.login))
    return render_template(
        "sharing/index.html",
        shareable=shareable,
        counts=counts,
        form=form,
        view=view,
    )


@bp.route("/freebusy", methods=["POST"])
@login_required
def set_freebusy() -> Response:
    """Save who may see when the person is busy."""
    form = FreeBusyForm()
    if form.validate_on_submit():
        services().core.sharing.set_freebusy_scope(
            current_user.person.login, form.scope.data, actor=current_user.person.login
        )
        flash(_("Saved."), "success")
    else:
        flash(_("Choose one of the options."), "error")
    return redirect(url_for("sharing.index"))


@bp.route("/<owner>/<name>")
@login_required
def collection(owner: str, name: str) -> str:
    """A collection's grants, and the search to add one."""
    ref, info = _managed(owner, name)
    search = SearchForm(request.args)
    candidates = _search(search.q.data or "", ref) if search.q.data else []
    grant_form = GrantForm(q=search.q.data or "", level=Level.READ.label)
    grant_form.grantee.choices = [(c.principal, c.name) for c in candidates]
    return render_template(
        "sharing/collection.html",
        ref=ref,
        info=info,
        grants=_grant_rows(ref),
        search=search,
        candidates=candidates,
        grant_form=grant_form,
        revoke_form=RevokeForm(),
    )


@bp.route("/<owner>/<name>/grant", methods=["POST"])
@login_required
def grant(owner: str, name: str) -> Response:
    """Give the chosen person or group the chosen level."""
    ref, _info = _managed(owner, name)
    form = GrantForm()
    # The choices were the search results; any existing principal is acceptable.
    form.grantee.choices = [(form.grantee.data, form.grantee.data)] if form.grantee.data else []
    back = url_for("sharing.collection", owner=ref.owner, name=ref.name, q=form.q.data or None)
    if not form.validate_on_submit():
        flash(_("Choose a person or a group, and an access level."), "error")
        return redirect(back)
    sharing = services().core.sharing
    try:
        done = sharing.grant(
            ref, form.grantee.data, Level.parse(form.level.data), actor=current_user.person.login
        )
    except GroupwareError:
        flash(_("This person or group cannot be given access."), "error")
        return redirect(back)
    flash(_("Shared with %(name)s.", name=sharing.display_name(done.grantee)), "success")
    return redirect(url_for("sharing.collection", owner=ref.owner, name=ref.name))


@bp.route("/<owner>/<name>/revoke", methods=["POST"])
@login_required
def revoke(owner: str, name: str) -> Response:
    """Withdraw one grant."""
    ref, _info = _managed(owner, name)
    form = RevokeForm()
    sharing = services().core.sharing
    if form.validate_on_submit():
        try:
            sharing.revoke(ref, form.grantee.data, actor=current_user.person.login)
        except GroupwareError:
            flash(_("This access was already withdrawn."), "error")
        else:
            flash(
                _("%(name)s no longer has access.", name=sharing.display_name(form.grantee.data)),
                "success",
            )
    return redirect(url_for("sharing.collection", owner=ref.owner, name=ref.name))


# --- helpers -----------------------------------------------------------------------


def _managed(owner: str, name: str) -> tuple[CollectionRef, Any]:
    """The collection, if the person may share it; 404 otherwise (nothing revealed)."""
    ref = CollectionRef(owner, name)
    level = services().core.sharing.view(current_user.person).level(ref)
    if level is None or level < Level.MANAGE:
        abort(404)
    info = services().dav.find(ref)
    if info is None:
        abort(404)
    return ref, info


def _grant_rows(ref: CollectionRef) -> list[GrantRow]:
    sharing = services().core.sharing
    rows = [
        GrantRow(
            grant.grantee,
            sharing.display_name(grant.grantee),
            grant.grantee.startswith(GROUP_PREFIX),
            grant.level.label,
        )
        for grant in sharing.grants(collection=ref)
    ]
    return sorted(rows, key=lambda row: (row.is_group, row.name.lower()))


def _search(text: str, ref: CollectionRef) -> list[Candidate]:
    people, groups = services().core.directory.search(text, limit=SEARCH_LIMIT)
    found = [
        Candidate(GROUP_PREFIX + g.name, g.display_name, g.name, True)
        for g in groups
        if GROUP_PREFIX + g.name != ref.owner
    ]
    found += [
        Candidate(p.login, p.display_name, " · ".join(filter(None, (p.email, p.school))), False)
        for p in people
        if p.login != ref.owner
    ]
    return found
