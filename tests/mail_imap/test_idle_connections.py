"""Idle connections stay small, and one delivery wakes them all with one read.

The IMAP service runs on this test's own event loop (``asyncio.run``), so the test can
look at its connections between protocol steps; clients are real TLS sockets.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy

from groupware.config import Config
from groupware.core.events import EventBus
from groupware.core.services import Core
from groupware.mail.imap.server import (
    AUTO_LOGOUT_SECONDS,
    PRE_AUTH_TIMEOUT_SECONDS,
    TLS_READ_BUFFER_BYTES,
    Connection,
)
from groupware.mail.imap.service import ImapService
from groupware.mail.store import INBOX
from tests.support.servers import add_user, make_config

PASSWORD = "une phrase de passe solide"
TIMEOUT_SECONDS = 5.0
MESSAGE = (
    b"From: Alice <alice@outside.example>\r\nTo: Marie <marie@example.org>\r\n"
    b"Subject: pour tous\r\nMessage-ID: <tous@outside.example>\r\n\r\nBonjour.\r\n"
)


@dataclass
class Client:
    """A TLS IMAP client on asyncio streams."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def line(self) -> bytes:
        return await asyncio.wait_for(self.reader.readline(), TIMEOUT_SECONDS)

    async def command(self, tag: bytes, text: bytes) -> list[bytes]:
        """Send ``tag text``; the responses up to the tagged one, which must be OK."""
        self.writer.write(tag + b" " + text + b"\r\n")
        lines = []
        while True:
            line = await self.line()
            lines.append(line)
            if line.startswith(tag + b" "):
                assert line.startswith(tag + b" OK"), lines
                return lines

    async def idle(self) -> None:
        self.writer.write(b"i IDLE\r\n")
        assert await self.line() == b"+ idling\r\n"

    def close(self) -> None:
        self.writer.close()


@dataclass
class Live:
    """The service on this loop, and what the tests need around it."""

    service: ImapService
    config: Config
    core: Core
    login: str

    async def client(self, *, log_in: bool = True) -> Client:
        host, port = self.service.addresses["imaps"]
        context = ssl.create_default_context(cafile=str(self.config.data_dir / "tls" / "cert.pem"))
        reader, writer = await asyncio.open_connection(
            host, port, ssl=context, server_hostname="127.0.0.1"
        )
        client = Client(reader, writer)
        assert (await client.line()).startswith(b"* OK")
        if log_in:
            await client.command(
                b"l", b'LOGIN "%s" "%s"' % (self.login.encode(), PASSWORD.encode())
            )
        return client

    def only_connection(self) -> Connection:
        (connection,) = self.service.connections
        return connection


@asynccontextmanager
async def live_service(tmp_path: Path) -> AsyncIterator[Live]:
    config = make_config(tmp_path)
    core = Core.open(config)
    try:
        person = add_user(core, "Marie", "Dupont", password=PASSWORD)
        async with AsyncExitStack() as stack:
            service = ImapService(core, EventBus())
            await service.start(stack)
            yield Live(service, config, core, person.login)
    finally:
        core.close()


async def eventually(predicate: Callable[[], Any], timeout_seconds: float = 5.0) -> None:
    """Let the loop run until ``predicate()`` is true."""
    deadline = asyncio.get_running_loop().time() + timeout_seconds
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)  # polling interval, not synchronisation


def run(tmp_path: Path, scenario: Callable[[Live], Awaitable[None]]) -> None:
    async def main() -> None:
        async with live_service(tmp_path) as live:
            await scenario(live)

    asyncio.run(main())


def test_a_connection_in_idle_has_no_task_and_no_parser_until_the_client_speaks(
    tmp_path: Path,
) -> None:
    async def scenario(live: Live) -> None:
        client = await live.client()
        await client.command(b"s", b"SELECT INBOX")
        await client.idle()
        connection = live.only_connection()
        await eventually(lambda: not connection.is_working)
        assert connection.parser is None
        client.writer.write(b"DONE\r\n")
        assert await client.line() == b"i OK IDLE terminated\r\n"
        assert (await client.command(b"n", b"NOOP"))[-1] == b"n OK NOOP completed\r\n"
        client.close()

    run(tmp_path, scenario)


def test_utf8_accept_still_applies_after_idle_dropped_the_parser(tmp_path: Path) -> None:
    async def scenario(live: Live) -> None:
        client = await live.client()
        await client.command(b"e", b"ENABLE UTF8=ACCEPT")
        await client.command(b"c", 'CREATE "Réunions"'.encode())
        await client.command(b"s", b"SELECT INBOX")
        await client.idle()
        connection = live.only_connection()
        await eventually(lambda: not connection.is_working and connection.parser is None)
        client.writer.write(b"DONE\r\n")
        assert await client.line() == b"i OK IDLE terminated\r\n"
        # Read as UTF-8 (not modified UTF-7) only if the new parser kept UTF8=ACCEPT.
        await client.command(b"r", 'SELECT "Réunions"'.encode())
        client.close()

    run(tmp_path, scenario)


def test_one_delivery_wakes_every_idle_session_with_one_read_and_one_recent(
    tmp_path: Path,
) -> None:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    async def wake_up(live: Live, sessions: int) -> tuple[list[list[bytes]], int]:
        clients = [await live.client() for _ in range(sessions)]
        for client in clients:
            await client.command(b"s", b"SELECT INBOX")
            await client.idle()
        person = live.core.directory.get(live.login)
        assert person is not None
        before = len(statements)
        await asyncio.to_thread(live.service.store.append, person, INBOX, MESSAGE)
        heard = [[await client.line(), await client.line()] for client in clients]
        # Every session has its EXISTS, so every read of the wake-up is counted.
        used = len(statements) - before
        for client in clients:
            client.writer.write(b"DONE\r\n")
            assert await client.line() == b"i OK IDLE terminated\r\n"
            client.close()
        await eventually(lambda: not live.service.connections)
        return heard, used

    async def scenario(live: Live) -> None:
        sqlalchemy.event.listen(live.core.engine, "before_cursor_execute", count)
        _heard, with_one = await wake_up(live, 1)
        heard, with_forty = await wake_up(live, 40)
        assert all(lines[0] == b"* 2 EXISTS\r\n" for lines in heard), heard
        recent = sorted(lines[1] for lines in heard)
        assert recent == [b"* 0 RECENT\r\n"] * 39 + [b"* 1 RECENT\r\n"]
        # One read for all (a read each would be 39 reads, several statements each, more).
        assert with_forty <= with_one + 2, (with_one, with_forty)

    run(tmp_path, scenario)


def test_silent_connections_get_bye_after_their_state_s_timeout(tmp_path: Path) -> None:
    async def scenario(live: Live) -> None:
        anonymous = await live.client(log_in=False)
        connection = live.only_connection()
        connection.expire(connection.last_active + PRE_AUTH_TIMEOUT_SECONDS - 1)
        connection.expire(connection.last_active + PRE_AUTH_TIMEOUT_SECONDS + 1)
        assert await anonymous.line() == b"* BYE Autologout: idle for too long\r\n"
        assert await anonymous.line() == b""
        await eventually(lambda: not live.service.connections)

        client = await live.client()
        await client.command(b"s", b"SELECT INBOX")
        await client.idle()
        connection = live.only_connection()
        await eventually(lambda: not connection.is_working)
        connection.expire(connection.last_active + PRE_AUTH_TIMEOUT_SECONDS + 1)
        connection.expire(connection.last_active + AUTO_LOGOUT_SECONDS + 1)
        assert await client.line() == b"* BYE Autologout: idle for too long\r\n"
        assert await client.line() == b""

    run(tmp_path, scenario)


def test_tls_connections_share_one_read_buffer(tmp_path: Path) -> None:
    # asyncio's SSLProtocol keeps 256 KiB per connection otherwise; this fails loudly
    # if a new Python changes what share_tls_read_buffer relies on.
    async def scenario(live: Live) -> None:
        clients = [await live.client(log_in=False) for _ in range(2)]
        buffers = [
            connection.transport._ssl_protocol._ssl_buffer  # type: ignore[attr-defined]  # noqa: SLF001
            for connection in live.service.connections
        ]
        assert len(buffers) == 2
        assert buffers[0] is buffers[1]
        assert len(buffers[0]) == TLS_READ_BUFFER_BYTES
        for client in clients:
            assert (await client.command(b"c", b"CAPABILITY"))[-1].startswith(b"c OK")
            client.close()

    run(tmp_path, scenario)
