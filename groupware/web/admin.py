# SPDX-License-Identifier: GPL-3.0-or-later
"""Administration pages (administrators only): people, their accounts, the audit log.

``/admin`` finds people (disabled ones too); ``/admin/people/<login>`` shows an
account's state (active, must change its password, throttled, two-factor
authentication, app passwords, mail used against the quota, groups, recent audit)
and acts on it: a temporary password (must be changed at next sign-in), lock and
unlock, quota, two-factor authentication off (a lost phone). Each action bumps what
it must (the credential version ends sessions and cached logins on every protocol
at once) and is audited with the administrator as actor. ``/admin/audit`` lists the
audit log with filters. Others get a 404: the pages do not exist for them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from groupware.core.account_notices import password_reset_notice
from groupware.core.directory import Person
from groupware.errors import GroupwareError
from groupware.web.context import services

bp = Blueprint("admin", __name__, url_prefix="/admin")
F = TypeVar("F", bound=Callable[..., Any])

SEARCH_LIMIT = 50
AUDIT_LIMIT = 200
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def admin_required(view: F) -> F:
    @functools.wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.person.is_admin:
            abort(404)
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


class ActionForm(FlaskForm):
    """A button with its token only."""


class QuotaForm(FlaskForm):
    quota = StringField(
        _l("Mail quota"),
        validators=[DataRequired(), Length(max=16)],
        description=_l("For example 30G or 500M."),
    )


def human_size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(count)


def parse_size(text: str) -> int | None:
    cleaned = text.strip().upper().replace("IB", "").replace("B", "").replace("O", "")
    unit = cleaned[-1:] if cleaned[-1:] in _UNITS else ""
    number = cleaned[: len(cleaned) - len(unit)].strip()
    try:
        value = float(number)
    except ValueError:
        return None
    return int(value * _UNITS[unit]) if value > 0 else None


@bp.app_template_filter("size")
def _size_filter(count: int) -> str:
    return human_size(count)


@bp.route("")
@admin_required
def index() -> str:
    query = (request.args.get("q") or "").strip()[:100]
    people: list[Person] = []
    if query:
        people, _groups = services().core.directory.search(
            query, limit=SEARCH_LIMIT, include_disabled=True
        )
    return render_template("admin/index.html", query=query, people=people)


@bp.route("/people/<login>")
@admin_required
def person(login: str) -> str:
    core = services().core
    found = core.directory.find(login)
    if found is None:
        abort(404)
    used_bytes, messages = services().mail_usage(found.id)
    return render_template(
        "admin/person.html",
        person=found,
        groups=core.directory.groups_of(found.id),
        second_factor=core.second_factor.is_enabled(found),
        devices=core.app_passwords.list(found),
        used_bytes=used_bytes,
        messages=messages,
        records=core.audit.recent(limit=20, subject=found.login),
        action_form=ActionForm(),
        quota_form=QuotaForm(quota=human_size(found.quota_bytes).replace(" ", "")),
    )


def _target(login: str) -> Person:
    found = services().core.directory.find(login)
    if found is None or not ActionForm().validate_on_submit():
        abort(404 if found is None else 400)
    return found


def _back(person: Person) -> Response:
    return redirect(url_for("admin.person", login=person.login))


@bp.route("/people/<login>/reset", methods=["POST"])
@admin_required
def reset(login: str) -> Response:
    target = _target(login)
    core = services().core
    temporary = core.directory.reset_password(target.login, actor=current_user.person.login)
    core.web_sessions.end_all(target, actor=current_user.person.login, reason="reset")
    services().notify(
        target, *password_reset_notice(target, core.config.server.institution_name, by_admin=True)
    )
    response = make_response(
        render_template("admin/temporary.html", person=target, temporary=temporary)
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/people/<login>/lock", methods=["POST"])
@admin_required
def lock(login: str) -> Response:
    target = _target(login)
    if target.id == current_user.person.id:
        flash(_("You cannot lock your own account."), "error")
        return _back(target)
    core = services().core
    core.directory.set_active(target.login, False, actor=current_user.person.login)
    core.web_sessions.end_all(target, actor=current_user.person.login, reason="locked")
    flash(_("The account is locked on every service."), "success")
    return _back(target)


@bp.route("/people/<login>/unlock", methods=["POST"])
@admin_required
def unlock(login: str) -> Response:
    target = _target(login)
    services().core.directory.set_active(target.login, True, actor=current_user.person.login)
    flash(_("The account is unlocked."), "success")
    return _back(target)


@bp.route("/people/<login>/quota", methods=["POST"])
@admin_required
def quota(login: str) -> Response:
    core = services().core
    target = core.directory.find(login)
    if target is None:
        abort(404)
    form = QuotaForm()
    size = parse_size(form.quota.data or "") if form.validate_on_submit() else None
    if size is None:
        flash(_("Give a size such as 30G or 500M."), "error")
    else:
        core.directory.set_quota(target.login, size, actor=current_user.person.login)
        flash(_("The quota is now %(size)s.", size=human_size(size)), "success")
    return _back(target)


@bp.route("/people/<login>/second-factor/disable", methods=["POST"])
@admin_required
def disable_second_factor(login: str) -> Response:
    target = _target(login)
    try:
        services().core.second_factor.disable(target, actor=current_user.person.login)
    except GroupwareError:
        abort(400)
    flash(_("Two-factor authentication is off for this account."), "success")
    return _back(target)


@bp.route("/audit")
@admin_required
def audit() -> str:
    event = (request.args.get("event") or "").strip()[:64]
    subject = (request.args.get("subject") or "").strip()[:255]
    actor = (request.args.get("actor") or "").strip()[:255]
    days = request.args.get("days", "7")
    since = None
    if days.isdigit() and int(days) > 0:
        since = datetime.now(UTC) - timedelta(days=min(int(days), 3660))
    records = services().core.audit.recent(
        limit=AUDIT_LIMIT,
        subject=subject or None,
        event_prefix=event,
        actor=actor,
        since=since,
    )
    return render_template(
        "admin/audit.html",
        records=records,
        event=event,
        subject=subject,
        actor=actor,
        days=days,
    )
