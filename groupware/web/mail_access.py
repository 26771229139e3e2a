# SPDX-License-Identifier: GPL-3.0-or-later
"""The webmail's IMAP connections: one per web session, reused, in a bounded pool.

The webmail is a plain IMAP client (RFC 3501 over implicit TLS, RFC 8314). It never
holds a user's password: it authenticates with SASL PLAIN (RFC 4616) as its own
identity and names the signed-in person as the authorization identity, which our
IMAP server accepts for the portal's credential only (``core.auth``) and Dovecot
accepts for a master user. Nothing here reaches into our mail store, so the same
code works against another server configured that way.

A web session's requests reuse its connection (one login per session, not one per
page) under that connection's lock, so two tabs of one session take turns. The
pool keeps at most ``max_connections_count`` connections: a new session evicts the
least recently used idle one, and a reaper logs out those unused for
``idle_seconds``. A connection the server or the network dropped is reopened
once, and the operation run again on the fresh one. This module knows no Flask.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

from imapclient import IMAPClient  # type: ignore[import-untyped]  # no type hints
from imapclient.exceptions import (  # type: ignore[import-untyped]
    IMAPClientAbortError,
    LoginError,
)
from markupsafe import Markup

from groupware.config import Config, Listen
from groupware.core.auth import portal_credential
from groupware.errors import ConfigError, GroupwareError
from groupware.web.mail_folders import SortedUidsCache
from groupware.web.mail_page_cache import PAGE_CACHE_ENTRIES_COUNT, PageCache
from groupware.web.mail_search import SearchCache
from groupware.web.mail_tree_memo import TreeMemo
from groupware.web.recent import RecentAnswers

log = logging.getLogger(__name__)

T = TypeVar("T")
#: The reaper looks for idle connections this often, at most (and at least once per idle_seconds).
REAP_INTERVAL_SECONDS: Final = 30.0
#: Errors that mean the connection is gone (socket closed, TLS torn down, BYE).
DROPPED: Final = (IMAPClientAbortError, OSError, EOFError)


class MailUnavailableError(GroupwareError):
    """The IMAP server cannot be reached, or refused the portal's login."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MailBusyError(GroupwareError):
    """Every pooled connection is in use: the pool is full."""

    def __init__(self, max_connections_count: int) -> None:
        super().__init__(f"all {max_connections_count} webmail connections are in use")
        self.max_connections_count = max_connections_count


@dataclass(frozen=True, slots=True)
class MailServer:
    """Where and how the webmail logs in: an implicit-TLS address and its credential."""

    host: str
    port: int
    tls: ssl.SSLContext
    master_login: str
    master_password: str = field(repr=False)
    timeout_seconds: float


#: Opens a logged-in connection acting for a login.
Connector = Callable[[str], IMAPClient]


def client_tls_context(config: Config) -> ssl.SSLContext:
    """A client context that trusts ``webmail.ca_file``, else the server's own certificate.

    Verification and the host name check stay on: the self-signed certificate made
    at ``init`` names ``localhost`` and the loopback addresses. Partial chains are
    allowed so that a CA-issued certificate given as ``tls.cert_file`` is trusted
    itself, as the only anchor, without its whole chain.
    """
    configured = config.webmail.ca_file
    cafile = config.path(Path(configured) if configured else config.tls.cert_file)
    try:
        context = ssl.create_default_context(cafile=str(cafile))
    except OSError as exc:
        raise ConfigError(f"webmail.ca_file: cannot read {cafile}: {exc.strerror}") from exc
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def reachable(address: tuple[str, int]) -> tuple[str, int]:
    """A bound listener address as a client reaches it (a wildcard means loopback)."""
    host, port = address
    if host in ("0.0.0.0", ""):  # noqa: S104 - reading a bound address, not binding
        return ("127.0.0.1", port)
    if host == "::":
        return ("::1", port)
    return (host, port)


def configured_address(text: str) -> tuple[str, int] | None:
    """``webmail.imap_server``-style text as an address, or ``None`` when empty."""
    if not text:
        return None
    listen = Listen.parse(text)
    return (listen.host, listen.port)


def connect_as(server: MailServer, login: str) -> IMAPClient:
    """A new connection logged in as ``login`` through the master identity.

    Raises:
        MailUnavailableError: the server is unreachable or refused the login.
    """
    try:
        client = IMAPClient(
            server.host,
            server.port,
            ssl=True,
            ssl_context=server.tls,
            timeout=server.timeout_seconds,
        )
    except (OSError, IMAPClient.Error) as exc:
        raise MailUnavailableError(f"cannot connect: {exc.__class__.__name__}") from exc
    try:
        client.plain_login(
            server.master_login, server.master_password, authorization_identity=login
        )
    except LoginError as exc:
        _shut(client)
        raise MailUnavailableError("login refused") from exc
    except DROPPED as exc:
        _shut(client)
        raise MailUnavailableError(f"dropped at login: {exc.__class__.__name__}") from exc
    return client


def _shut(client: IMAPClient) -> None:
    """Close a connection: politely if it still answers, else just the socket."""
    try:
        client.logout()
    except (*DROPPED, IMAPClient.Error):
        try:
            client.shutdown()
        except OSError:
            log.debug("webmail.imap.shutdown_failed")


@dataclass(slots=True, eq=False)
class _Pooled:
    """One web session's connection; ``lock`` serialises the requests of that session."""

    login: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    client: IMAPClient | None = None
    last_used: float = 0.0
    is_closed: bool = False


class MailPool:
    """Bounded LRU pool of logged-in IMAP connections, keyed by web session.

    Thread-safe: the pool's own lock guards the table only, never network I/O;
    each entry's lock guards its connection.
    """

    def __init__(
        self,
        connector: Connector,
        *,
        max_connections_count: int,
        idle_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connector = connector
        self._max = max_connections_count
        self._idle_seconds = idle_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, _Pooled] = OrderedDict()
        self._stopping = threading.Event()
        self._reaper: threading.Thread | None = None
        #: How many logins the pool made (for tests and the metrics page).
        self.logins_count = 0

    def start_reaper(self) -> None:
        """Log out idle connections in a background thread until :meth:`close`."""
        if self._reaper is None:
            self._reaper = threading.Thread(
                target=self._reap_forever, name="webmail-reaper", daemon=True
            )
            self._reaper.start()

    def run(self, key: Hashable, login: str, operation: Callable[[IMAPClient], T]) -> T:
        """Run ``operation`` on the connection of web session ``key`` acting for ``login``.

        The connection is opened (and logged in) on first use and kept for the next
        requests. If it turns out dropped, it is reopened and ``operation`` is run
        once more: operations must therefore be safe to repeat (reads, flag changes,
        moves of UIDs, which are no-ops once done).

        Raises:
            MailUnavailableError: the server cannot be reached or refused the login.
            MailBusyError: the pool is full of connections in use.
        """
        while True:
            if self._stopping.is_set():
                raise MailUnavailableError("the webmail is shutting down")
            entry = self._entry(key, login)
            with entry.lock:
                if entry.is_closed:  # evicted or reaped while we waited for it
                    self._forget(key, entry)
                    continue
                try:
                    return self._attempt(entry, operation)
                finally:
                    entry.last_used = self._clock()

    def discard(self, key: Hashable) -> None:
        """Log out a web session's connection (the person signed out)."""
        with self._lock:
            entry = self._entries.pop(key, None)
        if entry is not None:
            with entry.lock:
                self._close_entry(entry)

    def open_count(self) -> int:
        """How many connections are open now."""
        with self._lock:
            return sum(1 for e in self._entries.values() if e.client is not None)

    def close_idle(self) -> int:
        """Log out the connections unused for ``idle_seconds``; how many were closed."""
        deadline = self._clock() - self._idle_seconds
        closed = 0
        with self._lock:
            stale = [(k, e) for k, e in self._entries.items() if e.last_used <= deadline]
        for key, entry in stale:
            if not entry.lock.acquire(blocking=False):
                continue  # in use right now: not idle
            try:
                if entry.last_used <= deadline and not entry.is_closed:
                    with self._lock:
                        if self._entries.get(key) is entry:
                            del self._entries[key]
                    self._close_entry(entry)
                    closed += 1
            finally:
                entry.lock.release()
        return closed

    def close(self) -> None:
        """Stop the reaper and log out every connection (at shutdown)."""
        self._stopping.set()
        if self._reaper is not None:
            self._reaper.join(timeout=10)
            self._reaper = None
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
        for entry in entries:
            with entry.lock:
                self._close_entry(entry)

    # -- internals ---------------------------------------------------------------

    def _entry(self, key: Hashable, login: str) -> _Pooled:
        """The session's entry (most recently used now), making room if needed."""
        victims: list[_Pooled] = []
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.login != login:
                # A session key reused by someone else: never hand over a connection.
                victims.append(self._entries.pop(key))
                entry = None
            if entry is None:
                if len(self._entries) >= self._max:
                    victims.append(self._evict_locked())
                entry = _Pooled(login=login, last_used=self._clock())
                self._entries[key] = entry
            self._entries.move_to_end(key)
        for victim in victims:
            with victim.lock:
                self._close_entry(victim)
        return entry

    def _evict_locked(self) -> _Pooled:
        """Take out the least recently used entry not in use (the pool lock is held)."""
        for key, candidate in self._entries.items():
            if not candidate.lock.locked():
                return self._entries.pop(key)
        raise MailBusyError(self._max)

    def _attempt(self, entry: _Pooled, operation: Callable[[IMAPClient], T]) -> T:
        """Run ``operation``; on a dropped connection, reopen it and run it once more."""
        try:
            return operation(self._client(entry))
        except DROPPED:
            log.info("webmail.imap.reconnect login=%s", entry.login)
            self._drop(entry)
        try:
            return operation(self._client(entry))
        except DROPPED as exc:
            self._drop(entry)
            raise MailUnavailableError(f"dropped twice: {exc.__class__.__name__}") from exc

    def _forget(self, key: Hashable, stale: _Pooled) -> None:
        with self._lock:
            if self._entries.get(key) is stale:
                del self._entries[key]

    def _client(self, entry: _Pooled) -> IMAPClient:
        if entry.client is None:
            entry.client = self._connector(entry.login)
            with self._lock:
                self.logins_count += 1
        return entry.client

    def _drop(self, entry: _Pooled) -> None:
        if entry.client is not None:
            _shut(entry.client)
            entry.client = None

    def _close_entry(self, entry: _Pooled) -> None:
        self._drop(entry)
        entry.is_closed = True

    def _reap_forever(self) -> None:
        interval = min(REAP_INTERVAL_SECONDS, max(self._idle_seconds / 2, 0.05))
        while not self._stopping.wait(interval):
            try:
                closed = self.close_idle()
            except Exception:  # noqa: BLE001 - boundary: the reaper must live on
                log.exception("webmail.reaper.failed")
                continue
            if closed:
                log.debug("webmail.imap.reaped count=%s", closed)


class MailAccess:
    """The webmail's way to IMAP: where the server is, and the pool of connections.

    The composition root makes one per process. When the IMAP listener runs in this
    process and no ``webmail.imap_server`` is configured, :meth:`locate` gives it the
    address actually bound (port 0 in tests) once the IMAP service has started.
    """

    def __init__(self, config: Config) -> None:
        settings = config.webmail
        self._config = config
        self._tls = client_tls_context(config)
        self._credential = portal_credential(config, config.read_secret())
        self.imap_address = configured_address(settings.imap_server)
        self.submission_address = configured_address(settings.submission_server)
        #: Recent SORT answers (``web.mail_folders``), shared by the web sessions.
        self.sorted_uids = SortedUidsCache()
        #: Recent pages of the list (``web.mail_page_cache``), shared by the web sessions.
        self.pages = PageCache()
        #: The rows rendered from those pages (``web.webmail``), with the page they show.
        self.rows: RecentAnswers[tuple[Any, ...], tuple[Any, Markup]] = RecentAnswers(
            PAGE_CACHE_ENTRIES_COUNT
        )
        #: Recent search pages of one folder (``web.mail_search``), shared likewise.
        self.searches = SearchCache()
        #: Each session's folder tree, reused a while (``web.mail_tree_memo``).
        self.trees = TreeMemo()
        self.pool = MailPool(
            self._connect,
            max_connections_count=settings.max_connections_count,
            idle_seconds=settings.idle_seconds,
        )

    @property
    def tls(self) -> ssl.SSLContext:
        """The client TLS context for IMAP and submission."""
        return self._tls

    @property
    def timeout_seconds(self) -> float:
        """Socket timeout towards IMAP and submission."""
        return self._config.webmail.timeout_seconds

    @property
    def master_login(self) -> str:
        """The identity the webmail authenticates as."""
        return self._credential.identity

    @property
    def master_password(self) -> str:
        """That identity's password (never logged)."""
        return self._credential.password

    def locate(
        self,
        imap: tuple[str, int] | None = None,
        submission: tuple[str, int] | None = None,
    ) -> None:
        """Use in-process listeners for what the configuration left empty."""
        if self.imap_address is None and imap is not None:
            self.imap_address = reachable(imap)
        if self.submission_address is None and submission is not None:
            self.submission_address = reachable(submission)

    def run(self, key: Hashable, login: str, operation: Callable[[IMAPClient], T]) -> T:
        """See :meth:`MailPool.run`."""
        return self.pool.run(key, login, operation)

    def close(self) -> None:
        """Log out every connection."""
        self.pool.close()

    def _connect(self, login: str) -> IMAPClient:
        if self.imap_address is None:
            raise MailUnavailableError("no IMAP server configured or running here")
        host, port = self.imap_address
        server = MailServer(
            host=host,
            port=port,
            tls=self._tls,
            master_login=self.master_login,
            master_password=self._credential.password,
            timeout_seconds=self._config.webmail.timeout_seconds,
        )
        return connect_as(server, login)
