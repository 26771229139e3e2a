# SPDX-License-Identifier: GPL-3.0-or-later
"""More processes serving HTTP on the same ports, so that the portal uses every core.

One Python process runs one request's code at a time (the GIL): the portal, the
DAV front and the IMAP server of one ``serve`` share a core however many cores the
machine has, and the IMAP server's loop waits for the GIL behind the portal's
threads (the webmail's own IMAP round trips then wait too). With
``http.processes_count`` above one, ``serve`` runs the other services (SMTP, IMAP)
and that many worker processes serving HTTP only, all bound to the same HTTP and
HTTPS addresses with ``SO_REUSEPORT``: the kernel spreads new connections over
them, and a browser's connection stays with its process. The first process holds
each address (a bound, not listening ``SO_REUSEPORT`` socket: port 0 becomes a
real port that stays reserved) and logs ``listener.started`` once every worker
listens.

The services are stateless (DESIGN.md §8): what a request needs is in the database
or the data folder (sessions, throttling, shares, import jobs), collection writes
are serialized across processes (``dav.sqlstore.storage``: file locks on SQLite,
advisory locks on PostgreSQL), and notices spooled by a worker are adopted by the
first process's SMTP service. A worker's webmail reaches IMAP and submission at the
first process's listeners (``webmail.imap_server``, ``webmail.submission_server``
given in its environment).

Workers are ``serve --only http --http-worker``: they log no ``listener.started``
(the first process does) but ``http.worker.started``, and say they listen on a pipe
(``READY_FD_ENV``); they end with the first process (SIGTERM on its exit, even a
``kill -9``: ``PR_SET_PDEATHSIG``), and one that dies is started again, at most
``MAX_RESTARTS_COUNT`` times in ``RESTART_WINDOW_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Mapping
from contextlib import AsyncExitStack
from typing import Final

from groupware.config import Config, Listen
from groupware.errors import ConfigError
from groupware.web.mail_access import reachable

log = logging.getLogger(__name__)

#: ``http.processes_count = 0``: one process per core, at most this many.
MAX_AUTO_PROCESSES_COUNT: Final = 8
#: A worker that keeps dying is given up after this many restarts in the window.
MAX_RESTARTS_COUNT: Final = 5
RESTART_WINDOW_SECONDS: Final = 60.0
RESTART_DELAY_SECONDS: Final = 1.0
#: How long workers have to stop on SIGTERM before they are killed.
STOP_TIMEOUT_SECONDS: Final = 15.0
#: How long the first process waits for its workers to listen.
READY_TIMEOUT_SECONDS: Final = 120.0
#: The environment variable naming the pipe a worker writes to once it listens.
READY_FD_ENV: Final = "GROUPWARE_HTTP_WORKER_READY_FD"
_PR_SET_PDEATHSIG: Final = 1


def processes_count(config: Config) -> int:
    """How many processes serve HTTP: the setting, or one per core (0)."""
    chosen = config.http.processes_count
    if chosen > 0:
        return chosen
    return max(1, min(os.cpu_count() or 1, MAX_AUTO_PROCESSES_COUNT))


def worker_environment(config: Config, addresses: Mapping[str, tuple[str, int]]) -> dict[str, str]:
    """The variables that make a worker bind the first process's HTTP addresses.

    Args:
        config: the first process's configuration.
        addresses: its live listeners (``http``, ``https1``, ``imaps``...), as bound.
    """
    plain = [Listen(*addresses[name]) for name in sorted(addresses) if _kind(name) == "http"]
    secure = [Listen(*addresses[name]) for name in sorted(addresses) if _kind(name) == "https"]
    env = {
        "GROUPWARE_HTTP_LISTEN": ",".join(str(listen) for listen in plain),
        "GROUPWARE_HTTPS_LISTEN": ",".join(str(listen) for listen in secure),
    }
    # The webmail of a worker reaches the first process's IMAP and submission.
    for key, service in (("imap_server", "imaps"), ("submission_server", "submissions")):
        if not getattr(config.webmail, key) and service in addresses:
            host, port = reachable(addresses[service])
            env[f"GROUPWARE_WEBMAIL__{key.upper()}"] = str(Listen(host, port))
    return env


def _kind(name: str) -> str:
    return name.rstrip("0123456789")


def reserve_http_addresses(
    config: Config, stack: contextlib.ExitStack | AsyncExitStack
) -> dict[str, tuple[str, int]]:
    """Hold every HTTP and HTTPS address for the workers; ``{name: (host, port)}``.

    Each is a bound ``SO_REUSEPORT`` socket that does not listen (it gets no
    connection), closed when ``stack`` unwinds: port 0 becomes a real port, kept.

    Raises:
        ConfigError: an address cannot be bound.
    """
    reserved: dict[str, tuple[str, int]] = {}
    plans = [("http", listen, "http.listen") for listen in config.http.listen]
    plans += [("https", listen, "http.tls_listen") for listen in config.http.tls_listen]
    counts = {"http": 0, "https": 0}
    for kind, listen, key in plans:
        family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
        holder = socket.socket(family, socket.SOCK_STREAM)
        try:
            holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            holder.bind((listen.host, listen.port))
        except OSError as exc:
            holder.close()
            raise ConfigError(f"{key}: cannot listen on {listen}: {exc.strerror}") from exc
        stack.callback(holder.close)
        name = f"{kind}{counts[kind] or ''}"
        counts[kind] += 1
        reserved[name] = (listen.host, int(holder.getsockname()[1]))
    return reserved


def signal_ready() -> None:
    """In a worker, once it listens: tell the first process (see ``READY_FD_ENV``)."""
    found = os.environ.get(READY_FD_ENV, "")
    if not found.isdigit():
        return
    with contextlib.suppress(OSError):
        os.write(int(found), b"ready\n")
        os.close(int(found))


def end_with_parent() -> None:
    """In a worker: be sent SIGTERM when the first process ends (Linux), or end now."""
    expected = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != expected:  # the parent ended before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


class HttpWorkers:
    """The worker processes of the first process, started and watched on its loop."""

    def __init__(self, config: Config, count: int, env: Mapping[str, str]) -> None:
        self._command = [
            sys.executable,
            "-m",
            "groupware",
            "--data",
            str(config.data_dir),
            "serve",
            "--only",
            "http",
            "--http-worker",
        ]
        self._env = dict(os.environ) | dict(env)
        self._count = count
        self._stopping = False
        self._processes: list[asyncio.subprocess.Process] = []

    async def start(self, stack: AsyncExitStack) -> None:
        """Start the workers and wait until each listens; stopped when ``stack`` unwinds.

        Raises:
            ConfigError: a worker ended or did not listen within the time allowed.
        """
        stack.push_async_callback(self._stop)
        # The first alone, then the others: the first start of a new data folder makes
        # what every worker would otherwise make at the same moment (the DAV tables).
        await self._start_workers(stack, range(1))
        await self._start_workers(stack, range(1, self._count))

    async def _start_workers(self, stack: AsyncExitStack, numbers: range) -> None:
        loop = asyncio.get_running_loop()
        ready: list[asyncio.Future[None]] = []
        for number in numbers:
            started: asyncio.Future[None] = loop.create_future()
            ready.append(started)
            task = asyncio.create_task(self._keep(number, started), name=f"http-worker-{number}")
            stack.push_async_callback(_cancel, task)
        try:
            await asyncio.wait_for(asyncio.gather(*ready), READY_TIMEOUT_SECONDS)
        except TimeoutError as exc:
            raise ConfigError("http: the HTTP worker processes did not start listening") from exc

    async def _spawn(self) -> tuple[asyncio.subprocess.Process, int]:
        """A new worker and the read end of its readiness pipe."""
        read_end, write_end = os.pipe()
        try:
            process = await asyncio.create_subprocess_exec(
                *self._command,
                env=self._env | {READY_FD_ENV: str(write_end)},
                stdin=asyncio.subprocess.DEVNULL,
                pass_fds=(write_end,),
            )
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        self._processes.append(process)
        return process, read_end

    async def _keep(self, number: int, started: asyncio.Future[None]) -> None:
        """Run worker ``number``; start it again when it dies (within limits)."""
        restarts: list[float] = []
        while not self._stopping:
            process, read_end = await self._spawn()
            try:
                said = await asyncio.to_thread(os.read, read_end, 64)
            finally:
                os.close(read_end)
            if said and not started.done():
                started.set_result(None)
            elif not said and not started.done():
                code = await process.wait()
                self._processes.remove(process)
                started.set_exception(
                    ConfigError(f"http: an HTTP worker process ended at start (exit {code})")
                )
                return
            code = await process.wait()
            self._processes.remove(process)
            if self._stopping:
                return
            now = time.monotonic()
            restarts = [at for at in restarts if now - at < RESTART_WINDOW_SECONDS] + [now]
            if len(restarts) > MAX_RESTARTS_COUNT:
                log.error(
                    "http.worker.given_up number=%d exit=%s restarts=%d within=%ds",
                    number,
                    code,
                    MAX_RESTARTS_COUNT,
                    RESTART_WINDOW_SECONDS,
                )
                return
            log.warning("http.worker.exited number=%d pid=%d exit=%s", number, process.pid, code)
            await asyncio.sleep(RESTART_DELAY_SECONDS)

    async def _stop(self) -> None:
        self._stopping = True
        running = [p for p in self._processes if p.returncode is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        for process in running:
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT_SECONDS)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
