# SPDX-License-Identifier: GPL-3.0-or-later
"""Web sessions in the portal: the record behind each cookie, and ``/account/sessions``.

Flask's signed cookie still carries the small things (language, CSRF token, flash
messages), plus the random token of a server-side record (``core.web_sessions``).
Every request's user is loaded through :func:`load_user`, which checks that record:
an idle, revoked or outdated one signs the browser out, and the login page says why.
:func:`begin` gives a browser a new token at sign-in and whenever the session's power
changes (second factor, password change, two-factor authentication on or off); the
old record is deleted with it, so a copied cookie opens nothing.

``/account/sessions`` lists the person's signed-in browsers (this one marked) with
browser, system, address and last activity, and ends any of them, or all but this one.
"""

from __future__ import annotations

from typing import Final

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response

from groupware.core.directory import Person
from groupware.core.services import Core
from groupware.core.web_sessions import SessionState
from groupware.web.context import PortalUser, services

bp = Blueprint("sessions", __name__)

#: The session-cookie key holding the token of the server-side record.
TOKEN_KEY: Final = "sid"  # noqa: S105 - a key name, not a secret
_FLASK_LOGIN_KEYS: Final = ("_user_id", "_fresh", "_id")


class ActionForm(FlaskForm):
    """A button with its token only."""


def _client() -> str:
    return request.remote_addr or ""


def begin(person: Person, old_token: str | None) -> None:
    """Sign ``person`` in on a new server-side session, ending ``old_token``'s.

    The caller has cleared what the cookie must not keep; the language stays.
    """
    token, record = services().core.web_sessions.rotate(
        old_token, person, client=_client(), user_agent=request.user_agent.string
    )
    session[TOKEN_KEY] = token
    session.permanent = True  # the cookie outlives the record (see create_app)
    login_user(PortalUser(person, record.id))


def rotate(person: Person) -> None:
    """A new token for the signed-in browser (its power changed); the rest stays."""
    begin(person, session.get(TOKEN_KEY))


def close() -> None:
    """End this browser's record (sign-out)."""
    token = session.get(TOKEN_KEY)
    if isinstance(token, str):
        services().core.web_sessions.close(token)


def load_user(core: Core, user_id: str) -> PortalUser | None:
    """The signed-in person of this request, if its session record still holds.

    An idle or ended record signs the browser out here, once, with a message the
    login page shows.
    """
    token = session.get(TOKEN_KEY)
    person_part = user_id.partition(":")[0]
    if not isinstance(token, str) or not person_part.isdigit():
        _forget()
        return None
    person = core.directory.by_id(int(person_part))
    checked = core.web_sessions.check(token, person)
    if checked.record is None or person is None:
        _forget()
        if checked.state is SessionState.IDLE:
            flash(_("You were signed out after a while without activity."), "error")
        else:
            flash(_("Your session has ended. Sign in again."), "error")
        return None
    return PortalUser(person, checked.record.id)


def _forget() -> None:
    session.pop(TOKEN_KEY, None)
    for key in _FLASK_LOGIN_KEYS:
        session.pop(key, None)


@bp.route("/account/sessions")
@login_required
def index() -> str:
    person = current_user.person
    return render_template(
        "sessions/index.html",
        sessions=services().core.web_sessions.list(person),
        current_id=current_user.session_id,
        action_form=ActionForm(),
        idle_minutes=max(1, services().core.config.http.session_idle_seconds // 60),
    )


@bp.route("/account/sessions/<int:session_id>/revoke", methods=["POST"])
@login_required
def revoke(session_id: int) -> Response:
    if not ActionForm().validate_on_submit():
        abort(400)
    person = current_user.person
    if session_id == current_user.session_id:
        flash(_("To end this session, use Sign out."), "error")
    elif services().core.web_sessions.revoke(
        person, session_id, actor=person.login, client=_client()
    ):
        flash(_("That session is signed out."), "success")
    else:
        abort(404)
    return redirect(url_for("sessions.index"))


@bp.route("/account/sessions/revoke-others", methods=["POST"])
@login_required
def revoke_others() -> Response:
    if not ActionForm().validate_on_submit():
        abort(400)
    person = current_user.person
    services().core.web_sessions.revoke_others(
        person, current_user.session_id, actor=person.login, client=_client()
    )
    flash(_("Every other session is signed out."), "success")
    return redirect(url_for("sessions.index"))
