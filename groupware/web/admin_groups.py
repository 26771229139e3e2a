# SPDX-License-Identifier: GPL-3.0-or-later
"""Administration of groups (administrators only): find, create, members, managers.

``/admin/groups`` lists and searches the groups (schools, departments, roles and
hand-made ones, with their number of members) and creates one (name, kind, school).
``/admin/groups/<name>`` shows its members and managers, finds people by name to add
as either, and removes them. A manager has ``manage`` on the group's collections (its
department agenda) and is a member too (``core.group_managers``). Membership is read
by DAV at each request, so a change takes effect on the next one. Every action is
audited with the administrator as actor; others get a 404, as for the other admin pages.
"""

from __future__ import annotations

from typing import Final

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import HiddenField, SelectField, StringField
from wtforms.validators import DataRequired, Length

from groupware.core.directory import (
    MAX_GROUP_DISPLAY_CHARS,
    Group,
    department_display_name,
)
from groupware.core.names import group_slug
from groupware.errors import ConflictError, GroupwareError, NotFoundError
from groupware.web.admin import ActionForm, admin_required
from groupware.web.context import services

bp = Blueprint("admin_groups", __name__, url_prefix="/admin/groups")

LIST_LIMIT: Final = 200
PEOPLE_LIMIT: Final = 20
ROLES: Final = ("member", "manager")


def kind_labels() -> dict[str, str]:
    """The group kinds as people read them."""
    return {
        "school": _("School"),
        "department": _("Department"),
        "role": _("Role"),
        "custom": _("Other group"),
    }


class GroupForm(FlaskForm):
    """A new group: what people read, its kind and, for a department, its school."""

    display_name = StringField(
        _l("Name"),
        validators=[DataRequired(), Length(max=MAX_GROUP_DISPLAY_CHARS // 2)],
        description=_l("For example Lettres, or Conseil pédagogique."),
    )
    kind = SelectField(_l("Kind"), choices=[], validate_choice=True)
    school = StringField(
        _l("School"),
        validators=[Length(max=255)],
        description=_l("Required for a department: the school it belongs to."),
    )


class PersonForm(FlaskForm):
    """The person to add, by identifier (picked from the search results)."""

    login = HiddenField(validators=[DataRequired(), Length(max=160)])


def _group_or_404(name: str) -> Group:
    group = services().core.directory.find_group(name)
    if group is None:
        abort(404)
    return group


def _actor() -> str:
    return str(current_user.person.login)


@bp.route("", methods=["GET", "POST"])
@admin_required
def index() -> Response | str | tuple[str, int]:
    directory = services().core.directory
    form = GroupForm()
    form.kind.choices = list(kind_labels().items())
    status = 200
    if form.validate_on_submit():
        created = _create(form)
        if created is not None:
            flash(_("The group %(name)s is created.", name=created.display_name), "success")
            return redirect(url_for("admin_groups.group", name=created.name))
        status = 400
    elif request.method == "POST":
        status = 400
    query = (request.args.get("q") or "").strip()[:100]
    words = query.casefold().split()
    found = [
        (group, count)
        for group, count in directory.list_groups()
        if all(w in f"{group.name} {group.display_name}".casefold() for w in words)
    ]
    return (
        render_template(
            "admin/groups.html",
            groups=found[:LIST_LIMIT],
            more=len(found) > LIST_LIMIT,
            query=query,
            form=form,
            kinds=kind_labels(),
        ),
        status,
    )


def _create(form: GroupForm) -> Group | None:
    """Make the group the form describes; None (with the form's errors) when it cannot be."""
    display = " ".join((form.display_name.data or "").split())
    school = " ".join((form.school.data or "").split())
    kind = form.kind.data or "custom"
    if kind == "department" and not school:
        form.school.errors.append(_("A department belongs to a school: name it."))  # type: ignore[attr-defined]
        return None
    if kind == "school":
        school = school or display
    name = group_slug(school, display) if school and kind != "school" else group_slug(display)
    if kind == "department":
        display = department_display_name(display, school)
    if not name:
        form.display_name.errors.append(_("The name needs letters or digits."))  # type: ignore[attr-defined]
        return None
    try:
        return services().core.directory.add_group(
            name, display, actor=_actor(), kind=kind, school=school
        )
    except ConflictError:
        form.display_name.errors.append(_("A group with this name exists already."))  # type: ignore[attr-defined]
    except GroupwareError:
        form.display_name.errors.append(_("This name is too long."))  # type: ignore[attr-defined]
    return None


@bp.route("/<name>")
@admin_required
def group(name: str) -> str:
    core = services().core
    found = _group_or_404(name)
    members = core.directory.members(found.name)
    managers = core.group_managers.managers(found.name)
    query = (request.args.get("q") or "").strip()[:100]
    candidates = []
    if query:
        people, _groups = core.directory.search(query, limit=PEOPLE_LIMIT)
        member_ids = {p.id for p in members}
        manager_ids = {p.id for p in managers}
        candidates = [(p, p.id in member_ids, p.id in manager_ids) for p in people]
    return render_template(
        "admin/group.html",
        group=found,
        kinds=kind_labels(),
        members=members,
        manager_ids={p.id for p in managers},
        managers=managers,
        query=query,
        candidates=candidates,
        person_form=PersonForm(),
        action_form=ActionForm(),
    )


@bp.route("/<name>/<role>", methods=["POST"])
@admin_required
def add(name: str, role: str) -> Response:
    found = _group_or_404(name)
    form = PersonForm()
    if role not in ROLES or not form.validate_on_submit():
        abort(400)
    core = services().core
    person = core.directory.find(form.login.data or "")
    if person is None:
        abort(404)
    try:
        if role == "manager":
            core.group_managers.add(found.name, person.login, actor=_actor())
            flash(_("%(name)s now manages the group.", name=person.display_name), "success")
        else:
            core.directory.add_member(found.name, person.login, actor=_actor())
            flash(_("%(name)s is now a member.", name=person.display_name), "success")
    except ConflictError:
        flash(_("%(name)s is there already.", name=person.display_name), "error")
    return redirect(url_for("admin_groups.group", name=found.name))


@bp.route("/<name>/<role>/<login>/remove", methods=["POST"])
@admin_required
def remove(name: str, role: str, login: str) -> Response:
    found = _group_or_404(name)
    if role not in ROLES or not ActionForm().validate_on_submit():
        abort(400)
    core = services().core
    person = core.directory.find(login)
    if person is None:
        abort(404)
    try:
        if role == "manager":
            core.group_managers.remove(found.name, person.login, actor=_actor())
            flash(_("%(name)s no longer manages the group.", name=person.display_name), "success")
        else:
            core.directory.remove_member(found.name, person.login, actor=_actor())
            flash(_("%(name)s is no longer a member.", name=person.display_name), "success")
    except NotFoundError:
        abort(404)
    return redirect(url_for("admin_groups.group", name=found.name))
