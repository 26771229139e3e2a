# SPDX-License-Identifier: GPL-3.0-or-later
"""Composition root: builds the services from the configuration, starts, stops.

Every service follows one lifecycle: ``async start(stack)`` binds its listeners,
registers its cleanup on the ``AsyncExitStack`` and exposes ``addresses`` read
from the live sockets (so port 0 shows the real port).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import ssl
import threading
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from typing import Any, Final

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter
from sqlalchemy import Engine, select

from groupware.config import Config, Listen
from groupware.core.events import EventBus
from groupware.core.services import Core
from groupware.dav.service import DavService
from groupware.errors import ConfigError
from groupware.http_workers import (
    HttpWorkers,
    reserve_http_addresses,
    signal_ready,
    worker_environment,
)
from groupware.mail.imap.service import ImapService
from groupware.mail.notices import Notices
from groupware.mail.schema import mail_usage
from groupware.mail.service import MailService
from groupware.mail.spool import SpooledMessage
from groupware.web import create_wsgi
from groupware.web.mail_access import MailAccess

log = logging.getLogger(__name__)

SERVICES: Final = ("http", "smtp", "imap")


def build_http_app(
    core: Core, notices: Notices | None = None, mail_access: MailAccess | None = None
) -> Any:
    """The one WSGI application: portal at ``/``, CalDAV/CardDAV at ``/dav``."""
    dav = DavService(core)
    notify = (notices or Notices(core.config)).send
    return create_wsgi(
        core,
        dav,
        dav.collections,
        notify,
        functools.partial(mail_usage_of, core.engine),
        mail_access,
    )


def mail_usage_of(engine: Engine, person_id: int) -> tuple[int, int]:
    """``(bytes, messages)`` in a person's mailboxes, for the admin pages."""
    query = select(mail_usage.c.bytes, mail_usage.c.messages).where(
        mail_usage.c.person_id == person_id
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return (int(row.bytes), int(row.messages)) if row else (0, 0)


class HttpService:
    """Cheroot WSGI servers (plain and TLS) running in threads."""

    def __init__(
        self, core: Core, notices: Notices | None = None, *, is_worker: bool = False
    ) -> None:
        """Args:
        core: the services.
        notices: where the portal's notices go.
        is_worker: an extra HTTP process (``groupware.http_workers``): it binds the
            addresses with ``SO_REUSEPORT`` beside the first process and logs them
            as ``http.worker.started``.
        """
        self._core = core
        self._is_worker = is_worker
        #: The webmail's IMAP pool; told where IMAP listens once that service is up.
        self.mail_access = MailAccess(core.config)
        self._app = build_http_app(core, notices, self.mail_access)
        self.addresses: dict[str, tuple[str, int]] = {}

    def _server(self, listen: Listen, tls: bool) -> wsgi.Server:
        config = self._core.config
        server = wsgi.Server(
            (listen.host, listen.port),
            self._app,
            numthreads=config.http.threads_count,
            max=-1,
            request_queue_size=128,
            timeout=30,
            server_name="groupware",
            reuse_port=self._is_worker,
        )
        if tls:
            server.ssl_adapter = BuiltinSSLAdapter(
                str(config.path(config.tls.cert_file)), str(config.path(config.tls.key_file))
            )
            server.ssl_adapter.context.minimum_version = ssl.TLSVersion.TLSv1_2
        return server

    async def start(self, stack: AsyncExitStack) -> None:
        """Bind every HTTP listener and serve in background threads."""
        config = self._core.config
        listeners = [(listen, False) for listen in config.http.listen]
        listeners += [(listen, True) for listen in config.http.tls_listen]
        counts = {"http": 0, "https": 0}
        for listen, tls in listeners:
            try:
                server = self._server(listen, tls)
                server.prepare()
            except OSError as exc:
                key = "http.tls_listen" if tls else "http.listen"
                raise ConfigError(f"{key}: cannot listen on {listen}: {exc.strerror}") from exc
            host, port = server.bind_addr[:2]  # the real address, after binding
            kind = "https" if tls else "http"
            name = f"{kind}{counts[kind] or ''}"
            counts[kind] += 1
            self.addresses[name] = (host, port)
            thread = threading.Thread(target=server.serve, name=f"http-{name}", daemon=True)
            thread.start()
            stack.callback(_stop_server, server, thread)
            if self._is_worker:
                log.info(
                    "http.worker.started pid=%d service=%s address=%s",
                    os.getpid(),
                    name,
                    Listen(host, port),
                )
                continue
            log.info(
                "listener.started service=%s address=%s url=%s://%s/",
                name,
                Listen(host, port),
                "https" if tls else "http",
                Listen(host, port),
            )


def _stop_server(server: wsgi.Server, thread: threading.Thread) -> None:
    server.stop()
    thread.join(timeout=10)


async def run(
    config: Config,
    only: frozenset[str],
    *,
    on_ready: Callable[[Mapping[str, tuple[str, int]]], None] | None = None,
    stop: asyncio.Event | None = None,
    http_processes: int = 1,
    is_http_worker: bool = False,
) -> None:
    """Run the chosen services until SIGTERM/SIGINT (or ``stop`` is set).

    Args:
        config: the configuration.
        only: the services to run.
        on_ready: called with the live listener addresses once all are bound.
        stop: set it to stop (tests); signals set it too.
        http_processes: processes serving HTTP. Above one, this process serves none
            itself: it runs the other services and that many HTTP workers on the
            HTTP addresses (``groupware.http_workers``), once IMAP and submission
            listen (the workers' webmail uses them).
        is_http_worker: this process is one of those workers (``serve --http-worker``).

    Raises:
        ConfigError: a listener cannot be bound or a service is unavailable.
    """
    unknown = only - set(SERVICES)
    if unknown:
        raise ConfigError(f"--only: unknown service(s) {', '.join(sorted(unknown))}")
    core = Core.open(config)
    stop = stop or asyncio.Event()
    addresses: dict[str, tuple[str, int]] = {}
    async with AsyncExitStack() as stack:
        stack.callback(core.close)
        events = EventBus()
        notices = Notices(config)
        mail_access: MailAccess | None = None
        in_workers = "http" in only and http_processes > 1 and not is_http_worker
        if "http" in only and not in_workers:
            http = HttpService(core, notices, is_worker=is_http_worker)
            mail_access = http.mail_access
            await http.start(stack)
            addresses.update(http.addresses)
            if is_http_worker:
                signal_ready()
        if "smtp" in only:
            mail = MailService(core, events)
            await mail.start(stack)
            addresses.update(mail.addresses)
            loop = asyncio.get_running_loop()

            def wake(message: SpooledMessage) -> None:
                # Notices are spooled from the portal's threads; delivery lives on the loop.
                loop.call_soon_threadsafe(mail.spooled, message)

            notices.wake = wake
        if "imap" in only:
            imap = ImapService(core, events)
            await imap.start(stack)
            addresses.update(imap.addresses)
        if mail_access is not None:
            mail_access.locate(imap=addresses.get("imaps"), submission=addresses.get("submissions"))
            mail_access.pool.start_reaper()
            # Unwound first, so the webmail logs out before the IMAP listener goes; in a
            # thread, since the IMAP server answering that LOGOUT runs on this loop.
            stack.push_async_callback(asyncio.to_thread, mail_access.close)
        if in_workers:
            reserved = reserve_http_addresses(config, stack)
            workers = HttpWorkers(
                config, http_processes, worker_environment(config, reserved | addresses)
            )
            await workers.start(stack)
            for name, (host, port) in reserved.items():
                scheme = name.rstrip("0123456789")
                log.info(
                    "listener.started service=%s address=%s url=%s://%s/ processes=%d",
                    name,
                    Listen(host, port),
                    scheme,
                    Listen(host, port),
                    http_processes,
                )
            addresses.update(reserved)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            # Signal handlers only exist in the main thread (tests run us elsewhere).
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, stop.set)
        started = "http.worker.ready" if is_http_worker else "groupware.started"
        log.info(
            "%s services=%s processes=%d domain=%s data=%s",
            started,
            ",".join(sorted(only)),
            1 if is_http_worker else http_processes,
            config.server.domain,
            config.data_dir,
        )
        if on_ready is not None:
            on_ready(addresses)
        await stop.wait()
        log.info("%s", "http.worker.stopping" if is_http_worker else "groupware.stopping")
    log.info("%s", "http.worker.stopped" if is_http_worker else "groupware.stopped")
