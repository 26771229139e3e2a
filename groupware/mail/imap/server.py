# SPDX-License-Identifier: GPL-3.0-or-later
"""IMAP transport: asyncio protocol per connection, STARTTLS, implicit TLS, timeouts, IDLE.

No thread per connection, and while a connection waits for its client no task either
(DESIGN.md §10: memory per idle connection). A :class:`Connection` is an
``asyncio.Protocol``: received bytes are kept until a task, started on demand, feeds
them through the sans-IO :class:`~groupware.mail.imap.parser.CommandParser` and runs
the commands one after the other (responses stay in order); with nothing left to do
the task ends. IDLE (RFC 2177) registers the connection with the
:class:`ChangeDispatcher`: on a ``MailboxChanged`` event it reads the changes once for
all the connections waiting on that mailbox and writes their updates, without a task
per connection; in IDLE even the parser is dropped until the client speaks. Timeouts
are one sweep over all connections every few seconds, not a timer each.

Measured with ``bench/imap_idle_memory.py``; a TLS connection costs several times a
plain one, most of it OpenSSL's own state (see that script's report).

Split: :class:`ChangeDispatcher` lives in ``imap.idle_dispatch``, :class:`Listener` and
:func:`share_tls_read_buffer` in ``imap.listener``; both are re-exported here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import sys
from typing import Final

from groupware.mail.imap import commands as c
from groupware.mail.imap import parser as p
from groupware.mail.imap import wire
from groupware.mail.imap.idle_dispatch import WRITES_PER_TURN, ChangeDispatcher
from groupware.mail.imap.listener import CLOSE_WAIT_SECONDS, Listener, share_tls_read_buffer
from groupware.mail.imap.session import ImapSession, RefreshFrom
from groupware.mail.store import Changes

log = logging.getLogger(__name__)

PRE_AUTH_TIMEOUT_SECONDS: Final = 60.0
AUTO_LOGOUT_SECONDS: Final = 30 * 60.0  # RFC 3501 §5.4: at least 30 minutes
SWEEP_SECONDS: Final = 5.0  # how often timeouts are looked for
# Input held while a command runs; above it, reading pauses until the command is done.
PAUSE_READING_BYTES: Final = 256 * 1024
TLS_READ_BUFFER_BYTES: Final = 256 * 1024  # asyncio's SSLProtocol.max_size


class Connection(asyncio.Protocol):
    """One client: buffers input, runs commands in a task made on demand, IDLE, STARTTLS."""

    __slots__ = (
        "_auth_tag",
        "_drained",
        "_idle_mailbox",
        "_idle_tag",
        "_input",
        "_is_closing",
        "_is_eof",
        "_is_lost",
        "_is_reading_paused",
        "_is_woken",
        "_listener",
        "_task",
        "last_active",
        "parser",
        "session",
        "transport",
    )

    def __init__(self, listener: Listener) -> None:
        """Wait for :meth:`connection_made`."""
        self._listener = listener
        self.transport: asyncio.Transport
        self.session: ImapSession
        self.parser: p.CommandParser | None = None
        self._input: bytes | bytearray | None = None
        self._task: asyncio.Task[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._idle_tag: str | None = None
        self._idle_mailbox: int | None = None
        self._auth_tag: str | None = None
        self._is_woken = False
        self._is_closing = False
        self._is_eof = False
        self._is_lost = False
        self._is_reading_paused = False
        self.last_active = listener.loop.time()

    # --- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Greet the client (after the handshake, on implicit TLS)."""
        assert isinstance(transport, asyncio.Transport)
        listener = self._listener
        self.transport = transport
        share_tls_read_buffer(transport, listener.tls_read_buffer)
        peer = transport.get_extra_info("peername")
        # One string per client address, not one per connection.
        client = sys.intern(str(peer[0])) if isinstance(peer, tuple) else ""
        self.session = ImapSession(
            listener.context, self.send, client=client, is_tls=listener.is_tls
        )
        listener.connections.add(self)
        caps = " ".join(self.session.capabilities()).encode()
        transport.write(
            wire.untagged_status(
                "OK", "groupware IMAP4rev1 ready", wire.ResponseCode("CAPABILITY", caps)
            )
        )

    def data_received(self, data: bytes) -> None:
        """Keep the bytes; start a task unless one is running."""
        self.last_active = self._listener.loop.time()
        held = self._input
        if held is None:
            held = self._input = data
        elif isinstance(held, bytearray):
            held += data
        else:
            held = self._input = bytearray(held) + data
        if self._task is None:
            self._start()
        elif len(held) > PAUSE_READING_BYTES and not self._is_reading_paused:
            self._is_reading_paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        """The client is done sending: answer what it sent, then close."""
        self._is_eof = True
        if self._task is None:
            self._start()
        # As asyncio's StreamReaderProtocol: TLS cannot stay half-open.
        return self.transport.get_extra_info("sslcontext") is None

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection; a running task fails at its next write."""
        self._is_lost = True
        self._wake_writer(ConnectionResetError("Connection lost"))
        self._leave_idle()
        if self._task is None:
            self._forget()

    def _forget(self) -> None:
        """Lost, and no task left: release what the session shares."""
        self.session.close()
        self._listener.forget(self)

    def pause_writing(self) -> None:
        """The client reads slower than we write: :meth:`send` waits."""
        if self._drained is None:
            self._drained = self._listener.loop.create_future()

    def resume_writing(self) -> None:
        """The transport's buffer drained."""
        self._wake_writer(None)

    def _wake_writer(self, error: Exception | None) -> None:
        waiter, self._drained = self._drained, None
        if waiter is not None and not waiter.done():
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)

    # --- what the dispatcher, the listener and the session call ----------------------

    @property
    def is_working(self) -> bool:
        """Whether a task runs for this connection (none while it waits for its client)."""
        return self._task is not None

    async def send(self, data: bytes) -> None:
        """Write a response and apply back-pressure."""
        if self._is_lost:
            raise ConnectionResetError("Connection lost")
        self.transport.write(data)
        if self._drained is not None:
            await self._drained

    def wake(self) -> None:
        """The mailbox this connection is IDLE on changed."""
        self._is_woken = True
        if self._task is None and not self._is_lost:
            self._start()

    def shared_refresh_point(self) -> RefreshFrom | None:
        """Where this connection's view stands, if in IDLE, idle and able to share a read."""
        if self._task is not None or self._is_lost or self._idle_tag is None:
            return None
        return self.session.refresh_point()

    def take_refresh(self, point: RefreshFrom, changes: Changes) -> bool:
        """Apply ``changes``, read at ``point``, and write the responses.

        Returns:
            Whether they were taken: False when the view moved on meanwhile (or the
            connection is busy), and the connection then refreshes by itself.
        """
        current = self.shared_refresh_point()
        if current is None or current.key != point.key:
            self.wake()
            return False
        lines = self.session.apply_refresh(changes)
        if lines:
            self.transport.write(lines)
        self.last_active = self._listener.loop.time()  # as when woken (see expire)
        return True

    def expire(self, now: float) -> None:
        """Say BYE and close when silent for too long (and not working)."""
        if self._task is not None or self._is_lost or self._is_closing:
            return
        limit = AUTO_LOGOUT_SECONDS if self.session.person else PRE_AUTH_TIMEOUT_SECONDS
        if now - self.last_active > limit:
            self.transport.write(wire.untagged_status("BYE", "Autologout: idle for too long"))
            self._close()

    def shutdown(self) -> asyncio.Task[None] | None:
        """The service stops: cancel the task (returned, to be awaited), close."""
        task = self._task
        if task is not None:
            task.cancel()
        self._close()
        return task

    # --- the task ----------------------------------------------------------------------

    def _start(self) -> None:
        task = self._listener.loop.create_task(self._work())
        task.add_done_callback(self._work_done)
        self._task = task

    def _work_done(self, task: asyncio.Task[None]) -> None:
        # A task cancelled before its first step never ran _work's ``finally``.
        if self._task is task:
            self._task = None
            if self._is_lost:
                self._forget()

    async def _work(self) -> None:
        try:
            await self._serve()
        except (ConnectionError, ssl.SSLError):
            self._close()
        except asyncio.CancelledError:
            self._close()
            raise
        except Exception:  # noqa: BLE001 - boundary: log and drop this connection only
            log.exception("imap.connection.failed client=%s", self.session.client)
            self._close()
        finally:
            self._task = None
            self.last_active = self._listener.loop.time()
            if self._is_lost:
                self._forget()
            else:
                self._hibernate()

    async def _serve(self) -> None:
        session = self.session
        while not (self._is_closing or session.logged_out):
            if self._is_woken:
                self._is_woken = False
                if self._idle_tag is not None and session.selected is not None:
                    await session.refresh(allow_expunge=True)
                continue
            data = self._take_input()
            if data is None:
                if self._is_eof:
                    break
                return
            parser = self._parser()
            events = parser.feed(bytes(data) if isinstance(data, bytearray) else data)
            if not events:
                # Part of a command, and nothing to answer that would carry our ACK:
                # the client may hold the rest until it comes (see _quick_ack).
                self._quick_ack()
            while events:
                for event in events:
                    await self._handle(event)
                    if session.logged_out or self._is_closing:
                        self._close()
                        return
                events = parser.feed(b"") if parser.has_pending_input else []
        self._close()

    def _take_input(self) -> bytes | bytearray | None:
        data, self._input = self._input, None
        if self._is_reading_paused:
            self._is_reading_paused = False
            self.transport.resume_reading()
        return data

    def _parser(self) -> p.CommandParser:
        parser = self.parser
        if parser is None:
            max_literal = self._listener.max_literal_bytes
            parser = p.CommandParser(
                max_literal_bytes=max_literal, max_command_bytes=max_literal + 64 * 1024
            )
            parser.utf8_accept = self.session.utf8
            if self._idle_tag is not None:
                parser.expect_raw_line()  # dropped in IDLE (see _hibernate)
            self.parser = parser
        return parser

    def _hibernate(self) -> None:
        """In IDLE with nothing buffered, the parser holds only "a raw line comes next"."""
        parser = self.parser
        if (
            self._idle_tag is not None
            and parser is not None
            and not parser.has_pending_input
            and self._input is None
        ):
            self.parser = None

    def _close(self) -> None:
        if not self._is_closing:
            self._is_closing = True
            self._leave_idle()
            self.transport.close()

    def _quick_ack(self) -> None:
        """ACK what was received at once (Linux ``TCP_QUICKACK``).

        Clients such as imaplib send a literal and its closing CRLF in two writes (and
        imapclient a command line and its CRLF); with Nagle on their side and delayed
        ACKs on ours, the CRLF would wait ~40 ms for our ACK, on every APPEND.
        """
        sock = self.transport.get_extra_info("socket")
        if sock is not None and hasattr(socket, "TCP_QUICKACK"):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)

    # --- events and the commands the transport handles ---------------------------------

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
            self._close()

    async def _command(self, command: c.Command) -> None:
        session = self.session
        if isinstance(command, c.Idle):
            await self._idle(command)
            return
        if isinstance(command, c.Starttls):
            await self._starttls(command)
            return
        if isinstance(command, c.Authenticate):
            await self._authenticate(command)
            return
        await session.execute(command)
        if isinstance(command, c.Enable) and self.parser is not None:
            self.parser.utf8_accept = session.utf8

    async def _idle(self, command: c.Idle) -> None:
        session = self.session
        if session.person is None:
            await self.send(wire.tagged(command.tag, "BAD", "Authenticate first"))
            return
        self._idle_tag = command.tag
        selected = session.selected
        if selected is not None and not self._is_lost:
            # Registered before the refresh: a change after it wakes us, one before it
            # is in what it reads.
            self._idle_mailbox = selected.mailbox_id
            self._listener.dispatcher.register(self._idle_mailbox, self)
            self._is_woken = False
            await session.refresh(allow_expunge=True)
        await self.send(wire.continuation("idling"))
        assert self.parser is not None
        self.parser.expect_raw_line()

    def _leave_idle(self) -> None:
        if self._idle_mailbox is not None:
            self._listener.dispatcher.unregister(self._idle_mailbox, self)
            self._idle_mailbox = None

    async def _raw_line(self, line: bytes) -> None:
        if self._idle_tag is not None:
            tag, self._idle_tag = self._idle_tag, None
            self._leave_idle()
            self._is_woken = False
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
        tls = self._listener.starttls
        if self.session.is_tls or tls is None:
            await self.send(wire.tagged(command.tag, "BAD", "TLS is already active or unavailable"))
            return
        if self.session.person is not None:
            await self.send(wire.tagged(command.tag, "BAD", "Already authenticated"))
            return
        await self.send(wire.tagged(command.tag, "OK", "Begin TLS negotiation now"))
        # RFC 3501 §6.2.1: nothing sent in the clear after STARTTLS is trusted.
        assert self.parser is not None
        self.parser.discard_pending_input()
        self._take_input()
        transport = await self._listener.loop.start_tls(self.transport, self, tls, server_side=True)
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        share_tls_read_buffer(transport, self._listener.tls_read_buffer)
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
        assert self.parser is not None
        self.parser.expect_raw_line()


__all__ = [
    "AUTO_LOGOUT_SECONDS",
    "CLOSE_WAIT_SECONDS",
    "PAUSE_READING_BYTES",
    "PRE_AUTH_TIMEOUT_SECONDS",
    "SWEEP_SECONDS",
    "TLS_READ_BUFFER_BYTES",
    "WRITES_PER_TURN",
    "ChangeDispatcher",
    "Connection",
    "Listener",
    "share_tls_read_buffer",
]
