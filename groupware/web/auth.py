# SPDX-License-Identifier: GPL-3.0-or-later
"""Sign in, forced password change, sign out, language choice."""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, logout_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import BooleanField, HiddenField, PasswordField, StringField
from wtforms.validators import AnyOf, DataRequired, EqualTo, Length

from groupware.core import passwords
from groupware.core.auth import AuthResult, Outcome
from groupware.core.directory import Person
from groupware.errors import PasswordPolicyError
from groupware.web import security, sessions, webmail
from groupware.web.context import services

bp = Blueprint("auth", __name__)

# Endpoints a person who must change their password may still reach.
OPEN_ENDPOINTS = frozenset(
    {
        "auth.login",
        "auth.logout",
        "auth.change_password",
        "auth.set_language",
        "static",
        "home.well_known",
        "home.root_propfind",
        "devices.autoconfig",
        "security.login_code",
        "recovery.start",
        "recovery.captcha_image",
        "recovery.captcha_audio",
        "recovery.new_password",
    }
)
# Pages a language switch posted from may be shown again with a GET.
_REDISPLAYABLE: Final = frozenset({"auth.login", "auth.change_password"})


class LoginForm(FlaskForm):
    """Identifier (address or its local part) and password or NUMEN."""

    identifier = StringField(_l("Identifier"), validators=[DataRequired(), Length(max=255)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1024)])
    next = HiddenField()


class ChangePasswordForm(FlaskForm):
    """Current secret, new password twice."""

    current = PasswordField(_l("Current password"), validators=[DataRequired(), Length(max=1024)])
    new = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=1024)])
    confirm = PasswordField(
        _l("New password, again"),
        validators=[DataRequired(), EqualTo("new", message=_l("The two new passwords differ."))],
    )
    # Unticked (and absent) by default: a new password signs out every other browser.
    keep_others = BooleanField(_l("Stay signed in on my other devices"))


class LanguageForm(FlaskForm):
    """The language switch in every page's header."""

    language = StringField(validators=[AnyOf(("fr", "en"))])
    next = HiddenField()


def policy_message(problem: str, min_length: int) -> str:
    """A policy problem key as a sentence in the user's language."""
    messages: dict[str, str] = {
        passwords.TOO_SHORT: _("The password must have at least %(n)d characters.", n=min_length),
        passwords.CONTAINS_NUMEN: _("The password must not contain your NUMEN."),
        passwords.CONTAINS_NAME: _("The password must not contain your first or last name."),
        passwords.CONTAINS_BIRTH_DATE: _("The password must not contain your birth date."),
    }
    return messages.get(problem, problem)


def _safe_next(target: str | None) -> str:
    r"""``target`` when it is a path on this site, else the home page.

    Refused: schemes and hosts (``https://evil.example``), protocol-relative
    ``//evil.example``, backslashes (``/\evil.example``, which browsers read as
    ``//``), and any control character or blank, which browsers strip before
    resolving (``/<TAB>/evil.example`` would become ``//evil.example``).
    """
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and all(ch.isprintable() and not ch.isspace() for ch in target)
    ):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("home.index")


def _throttled_message() -> str:
    return str(_("Too many failed attempts. Wait a few minutes before trying again."))


def _login_failure_message(result: AuthResult) -> str:
    if result.outcome is Outcome.THROTTLED:
        return _throttled_message()
    if result.outcome is Outcome.DISABLED:
        return str(_("This account is disabled. Contact your school's administration."))
    return str(_("Wrong identifier or password."))


def finish_sign_in(person: Person, next_url: str) -> Response:
    """Open the session of a person whose every factor was checked."""
    remember_language(person)
    _start_session(person)
    if person.must_change_password:
        return redirect(url_for("auth.change_password"))
    if security.must_enrol(person):
        flash(_("Your institution requires two-factor authentication: turn it on now."), "error")
        return redirect(url_for("security.index"))
    return redirect(_safe_next(next_url))


def _start_session(person: Person) -> None:
    """A new session for ``person`` (no fixation), keeping the language choice."""
    old_token = session.get(sessions.TOKEN_KEY)
    language = session.get("language")
    session.clear()
    if language:
        session["language"] = language
    sessions.begin(person, old_token)


def remember_language(person: Person) -> None:
    """Record the portal's language on the account at sign-in.

    The account's language names the default calendar and address book (created
    on the first visit of the home page) and serves the portal on other devices.
    An explicit choice from the language menu is always recorded; the language
    the browser negotiated is recorded only while the account has never been
    used (first sign-in with the NUMEN or a temporary password), so a borrowed
    computer does not change an established account.
    """
    chosen = session.get("language")
    wanted = chosen or (str(get_locale()) if person.must_change_password else None)
    if wanted in ("fr", "en") and wanted != person.language:
        services().core.directory.set_language(person.login, wanted)


@bp.before_app_request
def _force_password_change() -> Response | None:
    # Unknown URLs and wrong methods keep their 404/405 (routing_exception is set).
    if (
        request.routing_exception is None
        and current_user.is_authenticated
        and current_user.person.must_change_password
        and request.endpoint not in OPEN_ENDPOINTS
    ):
        return redirect(url_for("auth.change_password"))
    if (
        request.routing_exception is None
        and current_user.is_authenticated
        and request.endpoint not in OPEN_ENDPOINTS
        and not (request.endpoint or "").startswith("security.")
        and security.must_enrol(current_user.person)
    ):
        return redirect(url_for("security.index"))
    return None


def meter_names(person: Person) -> list[str]:
    """What the strength meter must find absent: the person's name parts."""
    return sorted(passwords.name_parts((person.first_name, person.last_name)))


def meter_dates(person: Person) -> list[str]:
    """The forms of the person's birth date the strength meter must find absent."""
    return sorted(passwords.date_forms(person.birth_date)) if person.birth_date else []


@bp.app_context_processor
def _meter_helpers() -> dict[str, Any]:
    return {"meter_names": meter_names, "meter_dates": meter_dates}


@bp.app_context_processor
def _language_menu() -> dict[str, Any]:
    # Where the language menu (every page's header, posted as ``LanguageForm``) returns.
    # Its two hidden fields are written by the template: a WTForms form bound for every
    # page cost a sixteenth of a message list's time.
    if request.method == "GET":
        back = request.full_path.rstrip("?")
    elif request.endpoint in _REDISPLAYABLE:
        back = request.path
    else:
        back = "/"
    return {"language_next": back}


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int]:
    """The sign-in page."""
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    form = LoginForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
    status = 200
    if form.validate_on_submit():
        core = services().core
        result = core.authenticator.authenticate(
            form.identifier.data or "",
            form.password.data or "",
            protocol="web",
            client=request.remote_addr or "",
        )
        if result.outcome is Outcome.OK and result.person is not None:
            person = result.person
            if not person.must_change_password and core.authenticator.needs_second_factor(person):
                security.start_pending(person, form.next.data or "")
                return redirect(url_for("security.login_code"))
            return finish_sign_in(person, form.next.data or "")
        status = 429 if result.outcome is Outcome.THROTTLED else 401
        flash(_login_failure_message(result), "error")
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form), status


@bp.route("/password", methods=["GET", "POST"])
@login_required
def change_password() -> Response | str | tuple[str, int]:
    """Choose a new password (forced at first login)."""
    form = ChangePasswordForm()
    core = services().core
    person = current_user.person
    min_length = core.config.accounts.min_password_length
    status = 200
    if form.validate_on_submit():
        check = core.authenticator.authenticate(
            person.login, form.current.data or "", protocol="web", client=request.remote_addr or ""
        )
        if check.outcome is Outcome.THROTTLED:
            form.current.errors.append(_throttled_message())  # type: ignore[attr-defined]
            status = 429
        elif check.person is None or check.person.id != person.id or not check.is_ok:
            form.current.errors.append(_("The current password is wrong."))  # type: ignore[attr-defined]
            status = 400
        else:
            try:
                updated = core.directory.set_password(
                    person.login,
                    form.new.data or "",
                    actor=person.login,
                    client=request.remote_addr or "",
                    protocol="web",
                )
            except PasswordPolicyError as exc:
                for problem in exc.problems:
                    form.new.errors.append(policy_message(problem, min_length))  # type: ignore[attr-defined]
                status = 400
            else:
                _after_password_change(person, updated, keep_others=bool(form.keep_others.data))
                flash(_("Your password has been changed."), "success")
                return redirect(url_for("home.index"))
    elif request.method == "POST":
        status = 400
    return (
        render_template(
            "auth/change_password.html",
            form=form,
            forced=person.must_change_password,
            min_length=min_length,
            person=person,
        ),
        status,
    )


def _after_password_change(before: Person, updated: Person, *, keep_others: bool) -> None:
    """This browser gets a new session; the others end unless the person keeps them.

    The credential version moved on, which ends every session opened under the old
    one; keeping them moves those to the new version.
    """
    web_sessions = services().core.web_sessions
    keep = keep_others and not before.must_change_password
    if keep:
        web_sessions.carry_over(updated, from_version=before.credential_version)
    sessions.rotate(updated)
    if not keep:
        web_sessions.revoke_others(
            updated,
            current_user.session_id,
            actor=updated.login,
            client=request.remote_addr or "",
            reason="password_changed",
        )


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    """Sign out (POST only, with the CSRF token)."""
    if current_user.is_authenticated:
        webmail.forget_session(current_user.session_id)
    sessions.close()
    language = session.get("language")
    logout_user()
    session.clear()
    if language:
        session["language"] = language
    flash(_("You are signed out."), "success")
    return redirect(url_for("auth.login"))


@bp.route("/language", methods=["POST"])
def set_language() -> Response:
    """Switch the portal's language."""
    form = LanguageForm(prefix="lang")
    if form.validate_on_submit() and form.language.data in ("fr", "en"):
        session["language"] = form.language.data
        if current_user.is_authenticated:
            services().core.directory.set_language(current_user.person.login, form.language.data)
    return redirect(_safe_next(form.next.data))
