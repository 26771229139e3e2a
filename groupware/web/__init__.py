# SPDX-License-Identifier: GPL-3.0-or-later
"""The portal: Flask app factory and the one WSGI app that also serves ``/dav``."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from flask import Flask, g, render_template, request, session
from flask_babel import Babel, get_locale
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response

from groupware.core.services import Core
from groupware.web.context import (
    DavCollections,
    DavRequests,
    MailUsage,
    Notify,
    PortalServices,
    PortalUser,
)
from groupware.web.formatting import install_template_gettext, install_template_url_for
from groupware.web.mail_access import MailAccess
from groupware.web.session_cookie import COOKIE_GRACE_SECONDS, SessionCookie

log = logging.getLogger(__name__)

LANGUAGES = ("fr", "en")
# Error pages: the status codes that get a sentence of their own (see error.html).
ERROR_REASONS = {
    400: "bad_request",
    403: "forbidden",
    404: "not_found",
    405: "not_allowed",
    413: "too_large",
    429: "too_many",
}
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)


def select_locale() -> str:
    """The language of this request.

    An explicit choice from the language menu (kept in the session) comes first,
    then the signed-in person's language (recorded on the account, see
    ``auth.remember_language``), then the browser's preference, else French.
    """
    chosen = session.get("language")
    if chosen in LANGUAGES:
        return str(chosen)
    if current_user.is_authenticated and current_user.person.language in LANGUAGES:
        return str(current_user.person.language)
    return request.accept_languages.best_match(LANGUAGES) or "fr"


def _log_notice(person: Any, subject: str, _body: str) -> None:
    log.warning("notice.not_mailed to=%s subject=%s", person.email, subject)


def create_app(
    core: Core,
    dav: DavCollections,
    dav_requests: DavRequests,
    notify: Notify | None = None,
    mail_usage: MailUsage | None = None,
    mail_access: MailAccess | None = None,
) -> Flask:
    """Build the portal for ``core``; ``dav`` reads and makes DAV collections.

    ``dav_requests`` serves DAV requests as the signed-in person (agendas and
    contacts go through it, with the rights DAV clients have).

    ``notify(person, subject, body)`` mails the account a notice (the composition
    root gives the mail service's; without it, notices are only logged).
    """
    app = Flask(__name__)
    config = core.config
    app.config.update(
        SECRET_KEY=core.config.read_secret(),
        SESSION_COOKIE_NAME="groupware_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=False,
        # The session record ends an idle session (core.web_sessions); the cookie lives
        # on a little, so that the next page can say why the person was signed out.
        PERMANENT_SESSION_LIFETIME=config.http.session_idle_seconds + COOKIE_GRACE_SECONDS,
        # Re-sending an unchanged cookie with every answer let a late answer put back
        # the session of before a change: SessionCookie re-sends it when it changed.
        SESSION_REFRESH_EACH_REQUEST=False,
        MAX_CONTENT_LENGTH=config.http.max_request_bytes,
        WTF_CSRF_TIME_LIMIT=None,  # bound to the session, which expires on its own
        BABEL_DEFAULT_LOCALE="fr",
        BABEL_TRANSLATION_DIRECTORIES="translations",
        BABEL_DEFAULT_TIMEZONE="Europe/Paris",
    )
    app.session_interface = SessionCookie()
    app.extensions["groupware"] = PortalServices(
        core=core,
        dav=dav,
        dav_requests=dav_requests,
        notify=notify or _log_notice,
        mail_usage=mail_usage or (lambda _person_id: (0, 0)),
        mail=mail_access,
    )

    CSRFProtect(app)
    Babel(app, locale_selector=select_locale)
    install_template_gettext(app)
    install_template_url_for(app)
    login_manager = LoginManager(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None  # type: ignore[assignment]
    # Sessions are permanent (idle timeout) and re-created at sign-in: "basic" marks a
    # changed client as not fresh; "strong" would do no more with permanent sessions.
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def load_user(user_id: str) -> PortalUser | None:
        return sessions.load_user(core, user_id)

    from groupware.web import (
        admin,
        admin_groups,
        agenda,
        agenda_events,  # noqa: F401 - its routes are the agenda blueprint's
        auth,
        collections_page,  # noqa: F401 - its routes are the agenda blueprint's
        contacts,
        devices,
        home,
        recovery,
        security,
        sessions,
        sharing,
        webmail,
        webmail_compose,  # noqa: F401 - its routes are the mail blueprint's
        webmail_compose_api,  # noqa: F401 - its routes are the mail blueprint's
        webmail_folders,  # noqa: F401 - its routes are the mail blueprint's
        webmail_invitations,  # noqa: F401 - its routes are the mail blueprint's
        webmail_reading,  # noqa: F401 - its routes are the mail blueprint's
        webmail_search,  # noqa: F401 - its routes are the mail blueprint's
        webmail_senders,  # noqa: F401 - its routes are the mail blueprint's
        webmail_settings,  # noqa: F401 - its routes are the mail blueprint's
    )
    from groupware.web.sharing import level_labels

    app.register_blueprint(auth.bp)
    app.register_blueprint(home.bp)
    app.register_blueprint(sharing.bp)
    app.register_blueprint(devices.bp)
    app.register_blueprint(security.bp)
    app.register_blueprint(recovery.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(admin_groups.bp)
    app.register_blueprint(sessions.bp)
    app.register_blueprint(agenda.bp)
    app.register_blueprint(contacts.bp)
    app.register_blueprint(webmail.bp)

    @app.context_processor
    def _globals() -> dict[str, Any]:
        return {
            "institution": config.server.institution_name,
            "get_locale": get_locale,
            "level_labels": level_labels(),
        }

    @app.before_request
    def _request_id() -> None:
        g.request_id = secrets.token_hex(6)
        # Idle timeout for signed-in sessions; anonymous replies (DAV discovery
        # redirects among them) set no cookie at all. Set once: writing it on every
        # request would mark every session changed, and every answer would re-send it.
        if current_user.is_authenticated and not session.permanent:
            session.permanent = True

    @app.after_request
    def _security_headers(response: Any) -> Any:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if request.is_secure:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        if response.mimetype == "text/html":
            headers.setdefault("Cache-Control", "no-store")
        return response

    @app.errorhandler(CSRFError)
    def _csrf_error(_exc: CSRFError) -> tuple[str, int]:
        return render_template("error.html", code=400, reason="csrf"), 400

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        # Werkzeug's own page is English-only; keep its status and headers (Allow on 405).
        response = exc.get_response()
        code = exc.code or 500
        page = render_template("error.html", code=code, reason=ERROR_REASONS.get(code, "other"))
        response.set_data(page)
        response.mimetype = "text/html"
        return response

    @app.errorhandler(500)
    def _server_error(_exc: Exception) -> tuple[str, int]:
        return render_template("error.html", code=500, reason="server"), 500

    return app


def create_wsgi(
    core: Core,
    dav_app: Any,
    dav: DavCollections,
    notify: Notify | None = None,
    mail_usage: MailUsage | None = None,
    mail_access: MailAccess | None = None,
) -> Any:
    """The single HTTP application: the portal at ``/``, DAV at ``/dav``."""
    portal = create_app(core, dav, dav_app, notify, mail_usage, mail_access)
    application: Any = DispatcherMiddleware(portal.wsgi_app, {"/dav": dav_app})
    if core.config.http.trusted_proxy_count:
        count = core.config.http.trusted_proxy_count
        application = ProxyFix(
            application, x_for=count, x_proto=count, x_host=count, x_prefix=count
        )
    portal.wsgi_app = application  # type: ignore[method-assign]
    return portal
