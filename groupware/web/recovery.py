# SPDX-License-Identifier: GPL-3.0-or-later
"""Self-service recovery pages: NUMEN + birth date + CAPTCHA, then a new password.

``/recover`` asks for the NUMEN, the birth date and the characters of a CAPTCHA (an
image, with an audio alternative, from the ``captcha`` package). Whatever the NUMEN,
the answer is the same page with the same status and sentence unless it matches
(``core.recovery`` does the same work either way, throttles and audits). On a match,
``/recover/password`` tells the identifier and takes a new password; the account's
address is then told that its password was reset (and that the IT department never
asks for a password by mail).

The CAPTCHA's answer lives in the session encrypted (Fernet, key from the server
secret): Flask's session cookie is signed, not secret. Each answer serves one try.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Final

from captcha.audio import AudioCaptcha
from captcha.image import ImageCaptcha
from cryptography.fernet import Fernet, InvalidToken
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
from flask_wtf import FlaskForm
from wtforms import DateField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional

from groupware.core.account_notices import password_reset_notice
from groupware.core.directory import Person
from groupware.core.recovery import Check, Recovery
from groupware.errors import PasswordPolicyError
from groupware.web.context import services

bp = Blueprint("recovery", __name__, url_prefix="/recover")

CAPTCHA_KEY: Final = "recovery_captcha"
PERSON_KEY: Final = "recovery_person"
CAPTCHA_LENGTH: Final = 5
CAPTCHA_ALPHABET: Final = "ABCDEFHJKMNPRSTUVWXY345789"  # nothing that reads two ways
PASSWORD_STEP_SECONDS: Final = 600


def new_answer() -> str:
    """A fresh CAPTCHA answer (tests observe it by wrapping this function)."""
    return "".join(secrets.choice(CAPTCHA_ALPHABET) for _ in range(CAPTCHA_LENGTH))


class RecoverForm(FlaskForm):
    numen = StringField(
        _l("NUMEN"),
        validators=[DataRequired(), Length(max=20)],
        description=_l(
            "Your employee number: 13 digits and letters. "
            "Lost? Ask your school's secretariat or your DSDEN."
        ),
    )
    birth_date = DateField(_l("Birth date"), validators=[Optional()])
    captcha = StringField(
        _l("Characters in the picture"), validators=[DataRequired(), Length(max=16)]
    )


class NewPasswordForm(FlaskForm):
    new = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=1024)])
    confirm = PasswordField(
        _l("New password, again"),
        validators=[DataRequired(), EqualTo("new", message=_l("The two new passwords differ."))],
    )


# --- the CAPTCHA -------------------------------------------------------------------------


def _fernet() -> Fernet:
    secret = services().core.config.read_secret()
    key = hmac.new(secret, b"groupware captcha v1", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def _issue_captcha() -> None:
    session[CAPTCHA_KEY] = _fernet().encrypt(json.dumps([new_answer(), time.time()]).encode())


def _current_answer() -> str | None:
    token = session.get(CAPTCHA_KEY)
    if not isinstance(token, bytes | str):
        return None
    try:
        answer, _made = json.loads(_fernet().decrypt(token, ttl=900))
    except (InvalidToken, ValueError, TypeError):
        return None
    return str(answer)


@bp.route("/captcha.png")
def captcha_image() -> Response:
    answer = _current_answer()
    if answer is None:
        _issue_captcha()
        answer = _current_answer()
    data = ImageCaptcha(width=220, height=80).generate(answer or "").getvalue()
    return _no_store(make_response(data), "image/png")


@bp.route("/captcha.wav")
def captcha_audio() -> Response:
    answer = _current_answer()
    if answer is None:
        _issue_captcha()
        answer = _current_answer()
    data = bytes(AudioCaptcha().generate(answer or ""))
    return _no_store(make_response(data), "audio/wav")


def _no_store(response: Response, content_type: str) -> Response:
    response.headers["Content-Type"] = content_type
    response.headers["Cache-Control"] = "no-store"
    return response


# --- step one: NUMEN, birth date, CAPTCHA ---------------------------------------------------


@bp.route("", methods=["GET", "POST"])
def start() -> Response | str | tuple[str, int]:
    form = RecoverForm()
    status = 200
    if form.validate_on_submit():
        expected = _current_answer()
        typed = (form.captcha.data or "").strip().upper().replace(" ", "")
        # One try per picture, right or wrong.
        _issue_captcha()
        if expected is None or not hmac.compare_digest(expected, typed):
            form.captcha.errors.append(
                _("The characters do not match the picture: try the new one.")
            )  # type: ignore[attr-defined]
            status = 400
        else:
            outcome, person = Recovery(
                services().core.directory,
                services().core.authenticator,
                services().core.audit,
            ).check(form.numen.data or "", form.birth_date.data, client=request.remote_addr or "")
            if outcome is Check.MATCH and person is not None:
                session[PERSON_KEY] = {
                    "id": person.id,
                    "version": person.credential_version,
                    "at": time.time(),
                }
                return redirect(url_for("recovery.new_password"))
            status = 429 if outcome is Check.THROTTLED else 400
            flash(_no_match_message(outcome), "error")
    elif request.method == "POST":
        _issue_captcha()
        status = 400
    else:
        _issue_captcha()
    return render_template("recovery/start.html", form=form), status


def _no_match_message(outcome: Check) -> str:
    if outcome is Check.THROTTLED:
        return str(_("Too many attempts. Wait a few minutes before trying again."))
    return str(
        _(
            "These details do not match an active account. Check them, or ask your "
            "school's administration."
        )
    )


# --- step two: the identifier and a new password --------------------------------------------


def _recovering() -> Person | None:
    pending = session.get(PERSON_KEY)
    if not isinstance(pending, dict) or time.time() - pending.get("at", 0) > PASSWORD_STEP_SECONDS:
        return None
    person = services().core.directory.by_id(int(pending.get("id", 0)))
    if person is None or person.credential_version != pending.get("version"):
        return None
    return person


@bp.route("/password", methods=["GET", "POST"])
def new_password() -> Response | str | tuple[str, int]:
    from groupware.web.auth import policy_message  # noqa: PLC0415 - auth imports this module

    person = _recovering()
    if person is None:
        session.pop(PERSON_KEY, None)
        flash(_("Start again: the page waited too long."), "error")
        return redirect(url_for("recovery.start"))
    core = services().core
    form = NewPasswordForm()
    status = 200
    if form.validate_on_submit():
        try:
            core.directory.set_password(
                person.login,
                form.new.data or "",
                actor=person.login,
                client=request.remote_addr or "",
                protocol="web",
            )
        except PasswordPolicyError as exc:
            for problem in exc.problems:
                form.new.errors.append(  # type: ignore[attr-defined]
                    policy_message(problem, core.config.accounts.min_password_length)
                )
            status = 400
        else:
            session.pop(PERSON_KEY, None)
            core.audit.record(
                "password.reset", actor=person.login, subject=person.login,
                client=request.remote_addr or "", protocol="web",
            )  # fmt: skip
            services().notify(person, *_notice(person))
            flash(_("Your password has been changed. Sign in with it now."), "success")
            return redirect(url_for("auth.login"))
    elif request.method == "POST":
        status = 400
    return (
        render_template(
            "recovery/password.html",
            form=form,
            person=person,
            min_length=core.config.accounts.min_password_length,
        ),
        status,
    )


def _notice(person: Person) -> tuple[str, str]:
    """The mail telling the account that its password was reset."""
    institution = services().core.config.server.institution_name
    return password_reset_notice(person, institution, by_admin=False)
