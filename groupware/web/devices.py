# SPDX-License-Identifier: GPL-3.0-or-later
"""Devices: app passwords, one per phone or program, and one-tap client set-up.

``/account/devices`` lists a person's app passwords (name, scope, last use: when,
which protocol, from where) and makes or revokes them. A new one is shown once, on
the page the creating POST answers (never stored, never redirected through the
session), with what sets a device up in one go: the Thunderbird autoconfig address,
an Apple profile (``.mobileconfig``, made on request from the secret on that page)
and the DAVx⁵ link. ``/.well-known/autoconfig/mail/config-v1.1.xml`` and
``/mail/config-v1.1.xml`` serve Thunderbird's autoconfig for the domain.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, StringField
from wtforms.validators import DataRequired, Length

from groupware.core import client_setup
from groupware.core.app_passwords import SCOPES
from groupware.errors import GroupwareError
from groupware.web.context import services
from groupware.web.home import base_url

bp = Blueprint("devices", __name__)


def scope_labels() -> dict[str, Any]:
    return {
        "mail": _l("Mail only"),
        "dav": _l("Calendars and contacts only"),
        "all": _l("Mail, calendars and contacts"),
    }


class NewDeviceForm(FlaskForm):
    """Name the device and choose what it may reach."""

    name = StringField(
        _l("Device name"),
        validators=[DataRequired(), Length(max=64)],
        description=_l("For example: Android phone, Thunderbird at school"),
    )
    scope = RadioField(
        _l("It may reach"),
        choices=lambda: list(scope_labels().items()),
        default="all",
        validators=[DataRequired()],
    )


class RevokeForm(FlaskForm):
    """Revoke one app password (the id is in the URL)."""


class ProfileForm(FlaskForm):
    """The new secret, sent back from its page to build the Apple profile."""

    secret = HiddenField(validators=[DataRequired(), Length(max=64)])
    name = HiddenField(validators=[DataRequired(), Length(max=64)])


@bp.route("/account/devices")
@login_required
def index() -> str:
    """The person's app passwords, and the form to make one."""
    return _page(NewDeviceForm())


@bp.route("/account/devices", methods=["POST"])
@login_required
def create() -> Response | str:
    """Make an app password and show it once, with the set-up helpers."""
    form = NewDeviceForm()
    if not form.validate_on_submit():
        return _page(form)
    person = current_user.person
    try:
        device, secret = services().core.app_passwords.create(
            person, form.name.data, form.scope.data, actor=person.login
        )
    except GroupwareError:
        flash(_("The app password could not be made: remove one you no longer use."), "error")
        return redirect(url_for("devices.index"))
    base = base_url()
    response = make_response(
        render_template(
            "devices/created.html",
            device=device,
            secret=secret,
            scope_labels=scope_labels(),
            autoconfig_url=f"{base}/.well-known/autoconfig/mail/config-v1.1.xml",
            davx5_url=client_setup.davx5_url(person.login, base),
            dav_url=f"{base}/dav/",
            mail_host=client_setup.mail_host(services().core.config),
            profile_form=ProfileForm(secret=secret, name=device.name),
        )
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/account/devices/<int:device_id>/revoke", methods=["POST"])
@login_required
def revoke(device_id: int) -> Response:
    """Revoke one app password: the device is refused from its next login."""
    if RevokeForm().validate_on_submit():
        person = current_user.person
        try:
            gone = services().core.app_passwords.revoke(person, device_id, actor=person.login)
        except GroupwareError:
            abort(404)
        flash(_("“%(name)s” can no longer sign in.", name=gone.name), "success")
    return redirect(url_for("devices.index"))


@bp.route("/account/devices/profile", methods=["POST"])
@login_required
def profile() -> Response:
    """The Apple profile for a new app password (checked to be the person's)."""
    form = ProfileForm()
    if not form.validate_on_submit():
        abort(400)
    person = current_user.person
    device = services().core.app_passwords.owned(person, form.secret.data)
    if device is None:
        abort(404)
    body = client_setup.mobileconfig(
        services().core.config,
        email=person.email,
        display_name=person.display_name,
        login=person.login,
        password=form.secret.data,
        scope=device.scope,
        portal_url=base_url(),
        device=f"{device.id}",
    )
    response = make_response(body)
    response.headers["Content-Type"] = "application/x-apple-aspen-config"
    response.headers["Content-Disposition"] = 'attachment; filename="groupware.mobileconfig"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/.well-known/autoconfig/mail/config-v1.1.xml")
@bp.route("/mail/config-v1.1.xml")
def autoconfig() -> Response:
    """Thunderbird autoconfig for the domain (public, like the DNS it complements)."""
    response = make_response(client_setup.autoconfig_xml(services().core.config))
    response.headers["Content-Type"] = "application/xml; charset=utf-8"
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


def _page(form: NewDeviceForm) -> str:
    person = current_user.person
    return render_template(
        "devices/index.html",
        devices=services().core.app_passwords.list(person),
        form=form,
        revoke_form=RevokeForm(),
        scope_labels=scope_labels(),
        scopes=SCOPES,
    )
