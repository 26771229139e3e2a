# SPDX-License-Identifier: GPL-3.0-or-later
"""Two-factor authentication in the portal: the code after the password, and its page.

Sign-in with two-factor authentication on is two steps: the password (``auth.login``)
leaves only a *pending* sign-in in a fresh session (the person's id, credential
version and the time, nothing else), and ``/login/code`` completes it with a TOTP code
or a recovery code, throttled and audited like passwords (``core.auth``). A pending
sign-in lasts five minutes.

``/account/security`` turns it on (QR code made with ``qrcode`` as SVG, served from
the portal's own origin for the strict CSP; the secret in text for apps without a
camera; a first code confirms it; ten recovery codes shown once), makes new recovery
codes, and turns it off after a code. Roles the institution names must turn it on
before anything else (``auth.second_factor_roles``, ``auth.second_factor_for_admins``).
"""

from __future__ import annotations

import io
import time
from typing import Final

import qrcode
import qrcode.image.svg
from flask import (
    Blueprint,
    Response,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from groupware.core.auth import Outcome
from groupware.core.directory import Person
from groupware.errors import GroupwareError
from groupware.web import sessions
from groupware.web.context import services

bp = Blueprint("security", __name__)

PENDING_KEY: Final = "pending_sign_in"
PENDING_SECONDS: Final = 300


class CodeForm(FlaskForm):
    """A six-digit code from the app, or a recovery code."""

    code = StringField(
        _l("Code"),
        validators=[DataRequired(), Length(max=32)],
        description=_l("The six digits your app shows now, or one of your recovery codes."),
    )


class ConfirmForm(FlaskForm):
    """The first code, which turns two-factor authentication on."""

    code = StringField(_l("Code shown by the app"), validators=[DataRequired(), Length(max=32)])


class ActionForm(FlaskForm):
    """A button with its token only."""


# --- sign-in, second step ---------------------------------------------------------------


def start_pending(person: Person, next_url: str) -> None:
    """After the right password: remember who signs in, in a fresh session."""
    language = session.get("language")
    session.clear()
    if language:
        session["language"] = language
    session[PENDING_KEY] = {
        "id": person.id,
        "version": person.credential_version,
        "at": time.time(),
        "next": next_url,
    }


def _pending_person() -> tuple[Person, str] | None:
    pending = session.get(PENDING_KEY)
    if not isinstance(pending, dict) or time.time() - pending.get("at", 0) > PENDING_SECONDS:
        return None
    person = services().core.directory.by_id(int(pending.get("id", 0)))
    if person is None or person.credential_version != pending.get("version"):
        return None
    return person, str(pending.get("next") or "")


@bp.route("/login/code", methods=["GET", "POST"])
def login_code() -> Response | str | tuple[str, int]:
    """The second step of sign-in."""
    from groupware.web.auth import finish_sign_in  # noqa: PLC0415 - auth imports this module

    found = _pending_person()
    if found is None:
        session.pop(PENDING_KEY, None)
        flash(_("Sign in again: the page waited too long."), "error")
        return redirect(url_for("auth.login"))
    person, next_url = found
    form = CodeForm()
    status = 200
    if form.validate_on_submit():
        outcome = services().core.authenticator.check_second_factor(
            person, form.code.data or "", client=request.remote_addr or ""
        )
        if outcome is Outcome.OK:
            session.pop(PENDING_KEY, None)
            return finish_sign_in(person, next_url)
        if outcome is Outcome.THROTTLED:
            status = 429
            flash(_("Too many failed attempts. Wait a few minutes before trying again."), "error")
        else:
            status = 401
            flash(_("Wrong code."), "error")
    return render_template("security/code.html", form=form), status


# --- the security page -------------------------------------------------------------------


def must_enrol(person: Person) -> bool:
    """Whether the institution requires two-factor authentication of this person."""
    config = services().core.config.auth
    required = person.role in config.second_factor_roles or (
        person.is_admin and config.second_factor_for_admins
    )
    return required and not services().core.second_factor.is_enabled(person)


@bp.route("/account/security")
@login_required
def index() -> str:
    person = current_user.person
    factor = services().core.second_factor
    return render_template(
        "security/index.html",
        enabled=factor.is_enabled(person),
        pending=factor.pending_uri(person),
        secret_text=_secret_of(factor.pending_uri(person)),
        codes_left=factor.recovery_codes_left(person),
        required=must_enrol(person),
        confirm_form=ConfirmForm(),
        code_form=CodeForm(),
        action_form=ActionForm(),
    )


@bp.route("/account/security/begin", methods=["POST"])
@login_required
def begin() -> Response:
    if ActionForm().validate_on_submit():
        try:
            services().core.second_factor.begin(current_user.person)
        except GroupwareError:
            flash(_("Two-factor authentication is already on."), "error")
    return redirect(url_for("security.index"))


@bp.route("/account/security/qr.svg")
@login_required
def qr() -> Response:
    uri = services().core.second_factor.pending_uri(current_user.person)
    if uri is None:
        return make_response(("", 404))
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buffer = io.BytesIO()
    image.save(buffer)
    response = make_response(buffer.getvalue())
    response.headers["Content-Type"] = "image/svg+xml"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/account/security/confirm", methods=["POST"])
@login_required
def confirm() -> Response | str:
    person = current_user.person
    form = ConfirmForm()
    if not form.validate_on_submit():
        return redirect(url_for("security.index"))
    try:
        codes = services().core.second_factor.confirm(
            person, form.code.data or "", actor=person.login
        )
    except GroupwareError:
        flash(_("Wrong code: check the time of your phone and try the next one."), "error")
        return redirect(url_for("security.index"))
    services().core.authenticator.forget(person.id)
    sessions.rotate(person)  # the session's power changed: a new id
    return _show_codes(codes, enabled_now=True)


@bp.route("/account/security/recovery-codes", methods=["POST"])
@login_required
def new_recovery_codes() -> Response | str:
    person = current_user.person
    form = CodeForm()
    if not form.validate_on_submit() or not _code_ok(person, form.code.data or ""):
        flash(_("Wrong code."), "error")
        return redirect(url_for("security.index"))
    codes = services().core.second_factor.regenerate_recovery_codes(person, actor=person.login)
    return _show_codes(codes, enabled_now=False)


@bp.route("/account/security/disable", methods=["POST"])
@login_required
def disable() -> Response:
    person = current_user.person
    form = CodeForm()
    if must_enrol_if_disabled(person):
        flash(_("Your institution requires two-factor authentication for your role."), "error")
    elif form.validate_on_submit() and _code_ok(person, form.code.data or ""):
        services().core.second_factor.disable(person, actor=person.login)
        sessions.rotate(person)
        flash(_("Two-factor authentication is off."), "success")
    else:
        flash(_("Wrong code."), "error")
    return redirect(url_for("security.index"))


def must_enrol_if_disabled(person: Person) -> bool:
    config = services().core.config.auth
    return person.role in config.second_factor_roles or (
        person.is_admin and config.second_factor_for_admins
    )


def _code_ok(person: Person, code: str) -> bool:
    outcome = services().core.authenticator.check_second_factor(
        person, code, client=request.remote_addr or ""
    )
    return outcome is Outcome.OK


def _show_codes(codes: list[str], *, enabled_now: bool) -> Response:
    response = make_response(
        render_template("security/codes.html", codes=codes, enabled_now=enabled_now)
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _secret_of(uri: str | None) -> str:
    if not uri or "secret=" not in uri:
        return ""
    secret = uri.split("secret=", 1)[1].split("&", 1)[0]
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
