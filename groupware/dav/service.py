# SPDX-License-Identifier: GPL-3.0-or-later
"""The DAV front: WSGI app mounted at ``/dav`` in front of Radicale.

It authenticates HTTP Basic credentials through ``core.auth`` (throttling, audit,
"must change password" refusal with a readable message), asks anonymous requests
to authenticate, screens the body (``dav.guard``), creates each account's default
calendar and address book on first use, and hands the request to Radicale with a
single-use ticket (see ``dav.auth``).

RFC 4791 (CalDAV), RFC 6352 (CardDAV), RFC 6764 (discovery: the portal redirects
``/.well-known/caldav|carddav`` here).
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

import radicale

from groupware.config import Config
from groupware.core.auth import MUST_CHANGE_MESSAGE, Authenticator, Outcome
from groupware.core.directory import Directory, Person
from groupware.dav import guard, radicale_config
from groupware.dav.auth import TICKET_ENVIRON_KEY, USER_ENVIRON_KEY, TicketBook

log = logging.getLogger(__name__)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

CALENDAR_NAME: Final = "calendar"
ADDRESSBOOK_NAME: Final = "contacts"
DEFAULT_NAMES: Final = {
    "fr": {CALENDAR_NAME: "Agenda personnel", ADDRESSBOOK_NAME: "Contacts personnels"},
    "en": {CALENDAR_NAME: "Personal calendar", ADDRESSBOOK_NAME: "Personal contacts"},
}
REALM: Final = "groupware"
#: What each refused login outcome is told (throttling has its own answer, with Retry-After).
_LOGIN_REFUSALS: Final = {
    Outcome.MUST_CHANGE_PASSWORD: ("403 Forbidden", MUST_CHANGE_MESSAGE),
    Outcome.DISABLED: ("403 Forbidden", "This account is disabled."),
    Outcome.BAD_CREDENTIALS: ("401 Unauthorized", "Wrong login or password."),
}


@dataclass(frozen=True, slots=True)
class CollectionInfo:
    """A calendar or address book as the portal lists it."""

    path: str  # "/<login>/<name>/", relative to the DAV root
    name: str
    display_name: str
    kind: str  # calendar | addressbook
    color: str


class DavService:
    """Radicale plus our front, and the storage operations the portal needs."""

    def __init__(
        self,
        config: Config,
        directory: Directory,
        authenticator: Authenticator,
        tickets: TicketBook | None = None,
    ) -> None:
        self._directory = directory
        self._authenticator = authenticator
        self._tickets = tickets if tickets is not None else TicketBook()
        self._max_resource_bytes = config.dav.max_resource_bytes
        self._retry_after_seconds = config.auth.lockout_seconds
        # Radicale's own layout (pinned minor): made here so it never warns at start.
        (config.path(config.dav.storage_folder) / "collection-root").mkdir(
            parents=True, exist_ok=True
        )
        self._radicale = radicale.Application(radicale_config.build(config, self._tickets))
        # Radicale's storage object, shared so that its locks cover our writes too.
        self._storage = self._radicale._storage  # noqa: SLF001 - pinned Radicale minor
        self._ensured: set[str] = set()
        self._ensured_lock = threading.Lock()

    # --- WSGI ----------------------------------------------------------------------

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """Serve one request under ``/dav``."""
        environ.pop(USER_ENVIRON_KEY, None)
        environ.pop(TICKET_ENVIRON_KEY, None)
        # Radicale takes a client-sent X-Script-Name as the prefix of every href it
        # writes; our prefix is SCRIPT_NAME, set by our own WSGI stack (and ProxyFix).
        environ.pop("HTTP_X_SCRIPT_NAME", None)
        header = environ.get("HTTP_AUTHORIZATION", "")
        if not header:
            if environ.get("REQUEST_METHOD") == "OPTIONS":
                return self._radicale(environ, start_response)
            # Fail closed: Radicale would answer some methods (POST, unknown ones,
            # GET of its root) without asking anonymous clients to authenticate.
            return _refuse(start_response, "401 Unauthorized", "Authentication required.")
        credentials = _basic_credentials(header)
        if credentials is None:
            return _refuse(start_response, "401 Unauthorized", "Malformed Authorization header.")
        identifier, secret = credentials
        result = self._authenticator.authenticate(
            identifier, secret, protocol="dav", client=environ.get("REMOTE_ADDR", "")
        )
        if result.outcome is Outcome.THROTTLED:
            return _refuse(
                start_response,
                "429 Too Many Requests",
                "Too many failed logins: try again later.",
                retry_after_seconds=self._retry_after_seconds,
            )
        if not result.is_ok or result.person is None:
            status, message = _LOGIN_REFUSALS.get(
                result.outcome, _LOGIN_REFUSALS[Outcome.BAD_CREDENTIALS]
            )
            return _refuse(start_response, status, message)
        refusal = guard.screen(environ, self._max_resource_bytes)
        if refusal is not None:
            log.warning(
                "dav.request.refused user=%s method=%s status=%s",
                result.person.login,
                environ.get("REQUEST_METHOD", ""),
                refusal.status,
            )
            return _refuse(
                start_response, refusal.status, refusal.body, content_type=refusal.content_type
            )
        self.ensure_defaults(result.person)
        ticket = self._tickets.issue(result.person.login)
        environ[USER_ENVIRON_KEY] = result.person.login
        environ[TICKET_ENVIRON_KEY] = ticket
        try:
            # Radicale answers in full before returning (a list of bytes).
            return self._radicale(environ, start_response)
        finally:
            # Radicale answers some requests (unknown method, .well-known, bad path)
            # without asking our auth plugin, which would leave the ticket behind.
            self._tickets.discard(ticket)

    # --- storage operations ----------------------------------------------------------

    def ensure_defaults(self, person: Person) -> None:
        """Create the principal, a calendar and an address book on first use."""
        if person.login in self._ensured:
            return
        principal = f"/{person.login}/"
        names = DEFAULT_NAMES.get(person.language, DEFAULT_NAMES["en"])
        with self._storage.acquire_lock("w", person.login):
            if next(iter(self._storage.discover(principal, depth="0")), None) is None:
                self._storage.create_collection(principal)
                self._storage.create_collection(
                    principal + CALENDAR_NAME + "/",
                    props={
                        "tag": "VCALENDAR",
                        "D:displayname": names[CALENDAR_NAME],
                        "C:supported-calendar-component-set": "VEVENT,VTODO,VJOURNAL",
                        "ICAL:calendar-color": "#2a6ebb",
                    },
                )
                self._storage.create_collection(
                    principal + ADDRESSBOOK_NAME + "/",
                    props={"tag": "VADDRESSBOOK", "D:displayname": names[ADDRESSBOOK_NAME]},
                )
                log.info("dav.defaults.created user=%s", person.login)
        with self._ensured_lock:
            self._ensured.add(person.login)

    def collections_for(self, person: Person) -> list[CollectionInfo]:
        """The person's calendars and address books, calendars first."""
        self.ensure_defaults(person)
        principal = f"/{person.login}/"
        found: list[CollectionInfo] = []
        with self._storage.acquire_lock("r", person.login):
            for item in self._storage.discover(principal, depth="1"):
                path = "/" + getattr(item, "path", "").strip("/") + "/"
                if path == principal or not hasattr(item, "get_meta"):
                    continue
                tag = item.get_meta("tag")
                if tag not in ("VCALENDAR", "VADDRESSBOOK"):
                    continue
                name = path.rstrip("/").rsplit("/", 1)[-1]
                found.append(
                    CollectionInfo(
                        path=path,
                        name=name,
                        display_name=item.get_meta("D:displayname") or name,
                        kind="calendar" if tag == "VCALENDAR" else "addressbook",
                        color=item.get_meta("ICAL:calendar-color") or "",
                    )
                )
        return sorted(found, key=lambda c: (c.kind != "calendar", c.display_name.lower()))


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _sep, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    identifier, sep, secret = decoded.partition(":")
    return (identifier, secret) if sep else None


def _refuse(
    start_response: Callable[..., Any],
    status: str,
    message: str | bytes,
    *,
    content_type: str = "text/plain; charset=utf-8",
    retry_after_seconds: int | None = None,
) -> list[bytes]:
    body = message if isinstance(message, bytes) else (message + "\n").encode()
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
    if status.startswith("401"):
        headers.append(("WWW-Authenticate", f'Basic realm="{REALM}", charset="UTF-8"'))
    if retry_after_seconds is not None:
        headers.append(("Retry-After", str(retry_after_seconds)))
    start_response(status, headers)
    return [body]
