# SPDX-License-Identifier: GPL-3.0-or-later
"""IMAP transport: asyncio listeners, STARTTLS, implicit TLS, timeouts, IDLE.

One coroutine per connection and no thread: idle connections cost a few kilobytes.
Bytes go through the sans-IO :class:`~groupware.mail.imap.parser.CommandParser`; each
command runs to completion before the next (responses stay in order). IDLE
(RFC 2177) is woken by the store's ``MailboxChanged`` events, dispatched per person.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable
from typing import Final

from groupware.core.events import EventBus, MailboxChanged
from groupware.mail.imap import commands as c
from groupware.mail.imap import parser as p
from groupware.mail.imap import wire
from groupware.mail.imap.session import ImapContext, ImapSession

log = logging.getLogger(__name__)

PRE_AUTH_TIMEOUT_SECONDS: Final = 60.0
AUTO_LOGOUT_SECONDS: Final = 30 * 60.0  # RFC 3501 §5.4: at least 30 minutes
READ_BYTES: Final = 64 * 1024


class ChangeDispatcher:
    """Wakes the IDLE sessions of a person when one of their mailboxes changes."""

    def __init__(self, events: EventBus, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiters: dict[int, set[asyncio.Event]] = {}
        self._unsubscribe = events.subscribe(MailboxChanged, self._on_change)

    def _on_change(self, event: object) -> None:
        assert isinstance(event, MailboxChanged)
        # Publishers run in worker threads: hop onto the loop.
        self._loop.call_soon_threadsafe(self._wake, event.person_id)

    def _wake(self, person_id: int) -> None:
        for waiter in self._waiters.get(person_id, ()):
            waiter.set()

    def register(self, person_id: int, waiter: asyncio.Event) -> Callable[[], None]:
        """Wake ``waiter`` on changes for ``person_id``; returns the unregister."""
        self._waiters.setdefault(person_id, set()).add(waiter)

        def unregister() -> None:
            waiters = self._waiters.get(person_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[person_id]

        return unregister

    def close(self) -> None:
        """Stop listening to the bus."""
        self._unsubscribe()


class Connection:
    """One client: reads, parses, runs commands, handles IDLE and STARTTLS."""

    def __init__(
        self,
        context: ImapContext,
        dispatcher: ChangeDispatcher,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        tls: ssl.SSLContext | None,
        is_tls: bool,
        max_literal_bytes: int,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.tls = tls
        self.dispatcher = dispatcher
        peer = writer.get_extra_info("peername")
        client = str(peer[0]) if isinstance(peer, tuple) else ""
        self.session = ImapSession(context, self.send, client=client, is_tls=is_tls)
        self.parser = p.CommandParser(
            max_literal_bytes=max_literal_bytes, max_command_bytes=max_literal_bytes + 64 * 1024
        )
        self._idle_tag: str | None = None
        self._auth_tag: str | None = None
        self._closing = False

    def _quick_ack(self) -> None:
        """ACK what was received at once (Linux ``TCP_QUICKACK``).

        Clients such as imaplib send a literal and its closing CRLF in two writes (and
        imapclient a command line and its CRLF); with Nagle on their side and delayed
        ACKs on ours, the CRLF would wait ~40 ms for our ACK, on every APPEND.
        """
        sock = self.writer.get_extra_info("socket")
        if sock is not None and hasattr(socket, "TCP_QUICKACK"):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)

    async def send(self, data: bytes) -> None:
        """Write a response and apply back-pressure."""
        self.writer.write(data)
        await self.writer.drain()

    async def run(self) -> None:
        """Serve the connection until LOGOUT, timeout or disconnect."""
        try:
            caps = " ".join(self.session.capabilities()).encode()
            await self.send(
                wire.untagged_status(
                    "OK", "groupware IMAP4rev1 ready", wire.ResponseCode("CAPABILITY", caps)
                )
            )
            await self._loop()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        except Exception:  # noqa: BLE001 - boundary: log and drop this connection only
            log.exception("imap.connection.failed client=%s", self.session.client)
        finally:
            await self._close()

    async def _read(self) -> bytes:
        timeout = AUTO_LOGOUT_SECONDS if self.session.person else PRE_AUTH_TIMEOUT_SECONDS
        if self._idle_tag is None:
            return await asyncio.wait_for(self.reader.read(READ_BYTES), timeout)
        return await self._read_while_idle(timeout)

    async def _read_while_idle(self, limit_seconds: float) -> bytes:
        person = self.session.person
        assert person is not None
        woken = asyncio.Event()
        unregister = self.dispatcher.register(person.id, woken)
        read = asyncio.ensure_future(self.reader.read(READ_BYTES))
        try:
            # A change between IDLE's first refresh and the registration above woke
            # nobody: look once more now that every later change sets ``woken``.
            if self.session.selected is not None:
                await self.session.refresh(allow_expunge=True)
            while True:
                wait = asyncio.ensure_future(woken.wait())
                done, _pending = await asyncio.wait(
                    {read, wait}, timeout=limit_seconds, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    wait.cancel()
                    raise TimeoutError
                if wait in done:
                    woken.clear()
                    if self.session.selected is not None:
                        await self.session.refresh(allow_expunge=True)
                else:
                    wait.cancel()
                if read in done:
                    return read.result()
        finally:
            unregister()
            if not read.done():
                read.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await read

    async def _loop(self) -> None:
        while not self.session.logged_out and not self._closing:
            try:
                data = await self._read()
            except TimeoutError:
                await self.send(wire.untagged_status("BYE", "Autologout: idle for too long"))
                return
            if not data:
                return
            events = self.parser.feed(data)
            if not events:
                # Part of a command, and nothing to answer that would carry our ACK:
                # the client may hold the rest until it comes (see _quick_ack).
                self._quick_ack()
            while events:
                for event in events:
                    await self._handle(event)
                    if self.session.logged_out or self._closing:
                        return
                events = self.parser.feed(b"") if self.parser.has_pending_input else []

    async def _handle(self, event: p.ParserEvent) -> None:
        if isinstance(event, p.CommandReady):
            await self._command(event.command)
        elif isinstance(event, p.RawLine):
            await self._raw_line(event.line)
        elif isinstance(event, p.ContinuationNeeded):
            await self.send(wire.continuation(event.text))
            self._quick_ack()
        elif isinstance(event, p.CommandRejected | p.LiteralRefused):
            if event.tag is None:
                await self.send(wire.untagged_status(event.status, event.reason, event.code))
            else:
                await self.send(wire.tagged(event.tag, event.status, event.reason, event.code))
        elif isinstance(event, p.ConnectionMustClose):
            await self.send(wire.untagged_status("BYE", event.reason))
            self._closing = True

    async def _command(self, command: c.Command) -> None:
        session = self.session
        if isinstance(command, c.Idle):
            if session.person is None:
                await self.send(wire.tagged(command.tag, "BAD", "Authenticate first"))
                return
            if session.selected is not None:
                await session.refresh(allow_expunge=True)
            self._idle_tag = command.tag
            await self.send(wire.continuation("idling"))
            self.parser.expect_raw_line()
            return
        if isinstance(command, c.Starttls):
            await self._starttls(command)
            return
        if isinstance(command, c.Authenticate):
            await self._authenticate(command)
            return
        await session.execute(command)
        if isinstance(command, c.Enable):
            self.parser.utf8_accept = session.utf8

    async def _raw_line(self, line: bytes) -> None:
        if self._idle_tag is not None:
            tag, self._idle_tag = self._idle_tag, None
            if line.strip().upper() == b"DONE":
                await self.session.finish(tag, "IDLE terminated")
            else:
                await self.send(wire.tagged(tag, "BAD", "Expected DONE"))
            return
        if self._auth_tag is not None:
            tag, self._auth_tag = self._auth_tag, None
            if line.strip() == b"*":
                await self.send(wire.tagged(tag, "BAD", "AUTHENTICATE cancelled"))
                return
            response = self.session.decode_sasl(line)
            if response is None:
                await self.send(wire.tagged(tag, "BAD", "Malformed base64"))
                return
            await self.session.authenticate_plain(tag, response)

    async def _starttls(self, command: c.Starttls) -> None:
        if self.session.is_tls or self.tls is None:
            await self.send(wire.tagged(command.tag, "BAD", "TLS is already active or unavailable"))
            return
        if self.session.person is not None:
            await self.send(wire.tagged(command.tag, "BAD", "Already authenticated"))
            return
        await self.send(wire.tagged(command.tag, "OK", "Begin TLS negotiation now"))
        # RFC 3501 §6.2.1: nothing sent in the clear after STARTTLS is trusted.
        self.parser.discard_pending_input()
        await self.writer.start_tls(self.tls)
        self.session.is_tls = True

    async def _authenticate(self, command: c.Authenticate) -> None:
        session = self.session
        if session.person is not None:
            await self.send(wire.tagged(command.tag, "BAD", "Already authenticated"))
            return
        if command.mechanism != "PLAIN":
            await self.send(wire.tagged(command.tag, "NO", "Only PLAIN is supported"))
            return
        if not session.is_tls and session.context.has_tls:
            await self.send(wire.tagged(command.tag, "NO", "Use STARTTLS first", "PRIVACYREQUIRED"))
            return
        if command.initial_response is not None:
            await session.authenticate_plain(command.tag, command.initial_response)
            return
        self._auth_tag = command.tag
        await self.send(b"+ \r\n")
        self.parser.expect_raw_line()

    async def _close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), timeout=5)
