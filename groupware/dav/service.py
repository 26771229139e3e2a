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
import io
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import radicale

from groupware.core.auth import APP_PASSWORD_MESSAGE, MUST_CHANGE_MESSAGE, Outcome
from groupware.core.directory import Person
from groupware.core.directory_log import DirectoryLog
from groupware.core.services import Core
from groupware.core.sharing import CollectionRef, Level
from groupware.dav import guard, radicale_config
from groupware.dav import rights as dav_rights
from groupware.dav.auth import TICKET_ENVIRON_KEY, USER_ENVIRON_KEY, TicketBook
from groupware.dav.collections import Collections
from groupware.dav.directory_books import DirectoryBooks
from groupware.dav.fastpath import FastAnswer, PropfindFastPath
from groupware.dav.freebusy import FreeBusy, is_freebusy_path
from groupware.dav.multiget import MultigetFastPath
from groupware.dav.put import PutFastPath, PutSettings
from groupware.dav.query import QueryFastPath
from groupware.dav.reports import ReportSettings
from groupware.dav.scope import RequestScope, ScopeSource, is_mount_segment
from groupware.dav.sqlstore.collection import SqlCollection
from groupware.dav.sqlstore.storage import SqlStorage
from groupware.dav.sync import SyncFastPath

log = logging.getLogger(__name__)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

REALM: Final = "groupware"
#: Where ``/dav`` is mounted: the prefix of every href Radicale writes.
DAV_PREFIX: Final = "/dav"
#: The client address of in-process requests (the portal's own), as logs show it.
IN_PROCESS_ADDRESS: Final = "127.0.0.1"
#: What each refused login outcome is told (throttling has its own answer, with Retry-After).
_LOGIN_REFUSALS: Final = {
    Outcome.MUST_CHANGE_PASSWORD: ("403 Forbidden", MUST_CHANGE_MESSAGE),
    Outcome.DISABLED: ("403 Forbidden", "This account is disabled."),
    Outcome.APP_PASSWORD_REQUIRED: ("403 Forbidden", APP_PASSWORD_MESSAGE),
    Outcome.BAD_CREDENTIALS: ("401 Unauthorized", "Wrong login or password."),
}


@dataclass(frozen=True, slots=True)
class DavAnswer:
    """The answer to an in-process request (:meth:`DavService.request_as`)."""

    status: int
    headers: Mapping[str, str]  # names in lower case
    body: bytes


class DavService:
    """Radicale plus our front; the storage operations live in ``dav.collections``."""

    def __init__(self, core: Core, tickets: TicketBook | None = None) -> None:
        config = core.config
        self._authenticator = core.authenticator
        self._sharing = core.sharing
        self._directory = core.directory
        self._tickets = tickets if tickets is not None else TicketBook()
        self._max_resource_bytes = config.dav.max_resource_bytes
        self._retry_after_seconds = config.auth.lockout_seconds
        books = DirectoryBooks(
            core.directory,
            DirectoryLog(core.engine),
            institution=config.server.institution_name,
            language=config.accounts.default_language,
        )
        self.scopes = ScopeSource(core.sharing, core.directory, books)
        radicale_configuration, storage = radicale_config.build(
            config,
            self._tickets,
            engine=core.engine,
            scopes=self.scopes,
            sharing=core.sharing,
            books=books,
        )
        self._radicale = radicale.Application(radicale_configuration)
        self._storage = storage
        # The rights Radicale asks, for the fast path's one check per collection.
        self._rights = dav_rights.Rights(
            radicale_configuration, scopes=self.scopes, storage=storage
        )
        encoding = radicale_configuration.get("encoding", "request")
        self._propfind = PropfindFastPath(core.engine, encoding=encoding)
        report_settings = ReportSettings.of(radicale_configuration)
        self._multiget = MultigetFastPath(core.engine, report_settings)
        self._query = QueryFastPath(core.engine, report_settings, self._sql_collection)
        self._sync = SyncFastPath(core.engine, report_settings)
        self._put = PutFastPath(core.engine, storage, PutSettings.of(self._radicale))
        #: Whether ``dav.fastpath`` may answer (tests turn it off to get Radicale's answer).
        self.use_fast_paths = True
        # They read the SQL store's tables: Radicale's file store has none.
        self._is_sql_store = isinstance(storage.inner, SqlStorage)
        self.freebusy = FreeBusy(storage, core.directory, core.sharing)
        self.collections = Collections(
            storage,
            core.directory,
            core.sharing,
            language=config.accounts.default_language,
            department_agendas=config.dav.department_agendas,
        )

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """Serve one request under ``/dav``."""
        _forget_client_claims(environ)
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
        return self._serve(result.person, environ, start_response)

    def request_as(
        self,
        person: Person,
        method: str,
        path: str,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
    ) -> DavAnswer:
        """Serve one in-process request as ``person``, as if it came over the network.

        The portal reads and writes calendars and address books through this, so it
        gets exactly the rights, checks and storage DAV clients get (an event made in
        the browser is what a phone syncs). The person must be signed in already: this
        skips the password check, nothing else.

        Args:
            person: who asks (an active account).
            method: the HTTP method (``PROPFIND``, ``REPORT``, ``PUT`` ...).
            path: the path under ``/dav``, decoded as a WSGI ``PATH_INFO`` is
                (``/bob.durand/@lycee-joffre.lettres~agenda/``), query included.
            body: the request body.
            headers: request headers (``Depth``, ``If-Match``, ``Content-Type`` ...).
        """
        path_info, _sep, query = path.partition("?")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method.upper(),
            "SCRIPT_NAME": DAV_PREFIX,
            "PATH_INFO": path_info,
            "QUERY_STRING": query,
            "SERVER_NAME": "localhost",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": IN_PROCESS_ADDRESS,
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": io.StringIO(),
            "wsgi.url_scheme": "http",
            "wsgi.version": (1, 0),
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in (headers or {}).items():
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                environ[key] = value
            else:
                environ["HTTP_" + key] = value
        _forget_client_claims(environ)
        answer: dict[str, Any] = {}
        if not person.is_active:
            return DavAnswer(403, {}, b"This account is disabled.\n")

        def keep(status: str, response_headers: list[tuple[str, str]], *_rest: Any) -> None:
            answer["status"] = int(status.split(" ", 1)[0])
            answer["headers"] = {key.lower(): value for key, value in response_headers}

        chunks = self._serve(person, environ, keep)
        try:
            content = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        return DavAnswer(answer["status"], answer["headers"], content)

    def _serve(
        self, person: Person, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """Everything after authentication, for network and in-process requests alike."""
        refusal = guard.screen(environ, self._max_resource_bytes)
        if refusal is not None:
            log.warning(
                "dav.request.refused user=%s method=%s status=%s",
                person.login,
                environ.get("REQUEST_METHOD", ""),
                refusal.status,
            )
            return _refuse(
                start_response, refusal.status, refusal.body, content_type=refusal.content_type
            )
        # Read once per request (a removed member loses access on the next one) and
        # shared by the default collections and the request's access view.
        groups = self._directory.groups_of(person.id)
        with self.scopes.request(person, [group.name for group in groups]) as scope:
            self.collections.ensure_defaults(person, groups)
            if is_freebusy_path(environ.get("PATH_INFO", "")):
                return self._freebusy_answer(person, environ, start_response)
            if not _may_patch(scope, person, environ):
                return _refuse(
                    start_response,
                    "403 Forbidden",
                    "Only the owner and those who manage a collection may change its properties.",
                )
            statuses: list[str] = []

            def noting_status(status: str, headers: Any, *rest: Any) -> Any:
                statuses.append(status)
                return start_response(status, headers, *rest)

            fast = self._fast_answer(person, environ) if self._fast_paths_apply else None
            if fast is not None:
                start_response(fast.status, fast.headers)
                return [fast.body]
            answer = self._radicale_answer(person, environ, noting_status)
        if environ.get("REQUEST_METHOD") == "DELETE" and statuses[:1] == ["200 OK"]:
            self.collections.deleted(person, environ.get("PATH_INFO", ""))
        return answer

    def _freebusy_answer(
        self, person: Person, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> list[bytes]:
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _refuse(start_response, "405 Method Not Allowed", "Use GET.")
        answer = self.freebusy.answer(
            person, environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
        )
        headers = [
            ("Content-Type", answer.content_type),
            ("Content-Length", str(len(answer.body))),
            ("Cache-Control", "private, max-age=60"),
        ]
        start_response(answer.status, headers)
        return [b""] if environ.get("REQUEST_METHOD") == "HEAD" else [answer.body]

    @property
    def _fast_paths_apply(self) -> bool:
        return self.use_fast_paths and self._is_sql_store

    def _fast_answer(self, person: Person, environ: dict[str, Any]) -> FastAnswer | None:
        """Our own answer to the hot requests the fast paths handle.

        ``dav.fastpath`` (Depth-1 PROPFIND), ``dav.multiget``, ``dav.query``,
        ``dav.sync`` and ``dav.put``; ``None`` when none does: Radicale answers.
        """
        method = environ.get("REQUEST_METHOD")
        if method == "REPORT":
            for report in (self._multiget, self._query, self._sync):
                answer = report.answer(
                    person.login, environ, resolve=self._storage_path, letters_of=self._letters
                )
                if answer is not None:
                    return answer
            return None
        if method == "PUT":
            return self._put.answer(
                person.login, environ, resolve=self._storage_path, letters_of=self._letters
            )
        if method == "PROPFIND":
            return self._propfind.answer(
                person.login,
                environ,
                resolve=self._storage_path,
                letters_of=self._letters,
                call_radicale=lambda inner, keep: self._radicale_answer(person, inner, keep),
            )
        return None

    def _sql_collection(self, real: str) -> SqlCollection | None:
        """The SQL-store collection at storage path ``real`` (``None``: another store)."""
        inner = self._storage.inner
        if not isinstance(inner, SqlStorage):
            return None
        found = next(iter(inner.discover(f"/{real}/")), None)
        return found if isinstance(found, SqlCollection) else None

    def _storage_path(self, path: str) -> str:
        return self._storage.resolve(path)[0]

    def _letters(self, user: str, path: str) -> str:
        return self._rights.authorization(user, set(), path)

    def _radicale_answer(
        self, person: Person, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """Radicale's answer, with a ticket for its auth plugin (inside the scope)."""
        ticket = self._tickets.issue(person.login)
        environ[USER_ENVIRON_KEY] = person.login
        environ[TICKET_ENVIRON_KEY] = ticket
        try:
            # Radicale answers in full before returning (a list of bytes).
            return self._radicale(environ, start_response)
        finally:
            # Radicale answers some requests (unknown method, .well-known, bad path)
            # without asking our auth plugin, which would leave the ticket behind.
            self._tickets.discard(ticket)


def _may_patch(scope: RequestScope, person: Person, environ: dict[str, Any]) -> bool:
    """PROPPATCH on someone else's collection needs ``manage``, not just ``write``.

    (On a mount in one's own home it changes one's own view: see ``dav.storage``.)
    """
    if environ.get("REQUEST_METHOD") != "PROPPATCH":
        return True
    parts = [part for part in environ.get("PATH_INFO", "").split("/") if part]
    if len(parts) != 2 or parts[0] == person.login or is_mount_segment(parts[1]):
        return True
    view = scope.view(person.login)
    level = None if view is None else view.level(CollectionRef(parts[0], parts[1]))
    return level is not None and level >= Level.MANAGE


def _forget_client_claims(environ: dict[str, Any]) -> None:
    """Drop what only our own stack may set: the vouched user and the href prefix.

    Radicale takes a client-sent X-Script-Name as the prefix of every href it
    writes; our prefix is SCRIPT_NAME, set by our own WSGI stack (and ProxyFix).
    """
    environ.pop(USER_ENVIRON_KEY, None)
    environ.pop(TICKET_ENVIRON_KEY, None)
    environ.pop("HTTP_X_SCRIPT_NAME", None)


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
