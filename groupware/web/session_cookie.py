# SPDX-License-Identifier: GPL-3.0-or-later
"""The portal's session cookie: sent again only when a request changed the session.

The session (sign-in keys, the token of its server-side record, CSRF token, language,
flash messages) lives in Flask's signed cookie, and a browser keeps the last
``Set-Cookie`` it gets. Flask's ``SESSION_REFRESH_EACH_REQUEST`` re-sent the whole
cookie, as the request had found it, with every answer: a read-only answer arriving
after another request had changed the session put the old session back. That is how
an address suggestion still on its way when "Send" was pressed lost the "Sent" message.
So here an answer carries the cookie when its request changed the session, and else
only in the one case below.

The idle timeout is not the cookie's: the server-side record (``core.web_sessions``)
is touched by every request and ends an idle session. The cookie only has to outlive
that record (by ``COOKIE_GRACE_SECONDS``, so that the next page can say why the person
was signed out). A page load re-signs an unchanged cookie once it is
``REISSUE_AFTER_SECONDS`` old, so that a browser in use for days keeps it. Background
requests (``fetch``: ``Sec-Fetch-Mode`` other than ``navigate``) never do: they are the
ones in flight while a form of the same page is sent. A page load re-signing at the
very moment another tab changes the session can still lose that change, at most once
every ``REISSUE_AFTER_SECONDS``; two requests that both change the session were never
safe together with a cookie session.
"""

from __future__ import annotations

import time
from typing import Final

from flask import Flask, Request, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin
from itsdangerous import BadSignature

#: How long the session cookie outlives the idle timeout of its record.
COOKIE_GRACE_SECONDS: Final = 24 * 3600
#: Age from which a page load re-signs an unchanged cookie (under the grace, so that
#: activity with gaps shorter than the idle timeout never lets the cookie lapse).
REISSUE_AFTER_SECONDS: Final = COOKIE_GRACE_SECONDS // 2
_NAVIGATE: Final = "navigate"


class Session(SecureCookieSession):
    """The session, and when its cookie was signed (``None``: no valid cookie came)."""

    signed_at: float | None = None


def _is_page_load() -> bool:
    # Browsers without Fetch Metadata send no Sec-Fetch-Mode: taken as page loads,
    # so that their cookie still lasts (their background requests may then re-sign
    # it too, at most once every REISSUE_AFTER_SECONDS).
    return request.method == "GET" and request.headers.get("Sec-Fetch-Mode", _NAVIGATE) == _NAVIGATE


class SessionCookie(SecureCookieSessionInterface):
    """Signed-cookie sessions written when changed; ``Secure`` whenever over HTTPS."""

    session_class = Session

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(request.is_secure) or bool(app.config["SESSION_COOKIE_SECURE"])

    def open_session(self, app: Flask, request: Request) -> Session | None:
        """Flask's own reading of the cookie, keeping the time it was signed."""
        serializer = self.get_signing_serializer(app)
        if serializer is None:
            return None
        value = request.cookies.get(self.get_cookie_name(app))
        if not value:
            return Session()
        max_age = int(app.permanent_session_lifetime.total_seconds())
        try:
            data, signed_at = serializer.loads(value, max_age=max_age, return_timestamp=True)
        except BadSignature:
            return Session()
        session = Session(data)
        session.signed_at = signed_at.timestamp()
        return session

    def should_set_cookie(self, app: Flask, session: SessionMixin) -> bool:
        """A changed session; an unchanged one only when a page load finds it old."""
        if session.modified:
            return True
        if not session.permanent or not _is_page_load():
            return False
        signed_at = getattr(session, "signed_at", None)
        return signed_at is not None and time.time() - signed_at >= REISSUE_AFTER_SECONDS
