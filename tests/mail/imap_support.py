"""Shared helpers for the IMAP tests: one live server per module, users, real clients.

``imap_server(tmp_path_factory, name)`` starts the real SMTP and IMAP services; a test
module wraps it in its own module-scoped fixture. Each test makes its own user with
:func:`new_user`, so tests sharing the server never see each other's mail.
``RawImap`` speaks bytes over TLS for byte-exact and malformed-input checks.
"""

from __future__ import annotations

import itertools
import re
import smtplib
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from groupware.core.directory import Person
from tests.support.servers import RunningServer, add_user, make_config, running_server

PASSWORD = "une phrase de passe solide"
TIMEOUT_SECONDS = 5.0

_names = itertools.count(1)
_FIRST_NAMES = ("Marie", "Paul", "Lucie", "Hugo", "Chloé", "Louis", "Emma", "Jules")


@contextmanager
def imap_server(
    tmp_path_factory: pytest.TempPathFactory, name: str, **overrides: Any
) -> Iterator[RunningServer]:
    """The real SMTP + IMAP services on 127.0.0.1, port 0."""
    config = make_config(tmp_path_factory.mktemp(name), **overrides)
    with running_server(config, only=frozenset({"smtp", "imap"})) as server:
        yield server


def new_user(
    server: RunningServer, *, language: str = "fr", quota_bytes: int | None = None
) -> Person:
    """A fresh person with a known password (unique name per call)."""
    number = next(_names)
    first = _FIRST_NAMES[number % len(_FIRST_NAMES)]
    person = add_user(server.core, first, f"Testeur{number}", password=PASSWORD)
    directory = server.core.directory
    if language != person.language:
        directory.set_language(person.login, language)
    if quota_bytes is not None:
        directory.set_quota(person.login, quota_bytes, actor="test")
    found = directory.get(person.login)
    assert found is not None
    return found


def cert_path(server: RunningServer) -> Path:
    """The server's self-signed certificate (made by ``init_data_dir``)."""
    return server.config.data_dir / "tls" / "cert.pem"


def tls_context(server: RunningServer) -> ssl.SSLContext:
    """A client context that trusts exactly the server's certificate."""
    return ssl.create_default_context(cafile=str(cert_path(server)))


def connect(server: RunningServer, *, implicit_tls: bool = True) -> IMAPClient:
    """An IMAPClient, not logged in: implicit TLS, or plain on the STARTTLS port."""
    if implicit_tls:
        host, port = server.addresses["imaps"]
        return IMAPClient(
            host, port, ssl=True, ssl_context=tls_context(server), timeout=TIMEOUT_SECONDS
        )
    host, port = server.addresses["imap"]
    return IMAPClient(host, port, ssl=False, timeout=TIMEOUT_SECONDS)


def imap_accepts(server: RunningServer, login: str, secret: str) -> bool:
    """Whether a LOGIN over implicit TLS with these credentials succeeds."""
    client = connect(server)
    try:
        client.login(login, secret)
        client.logout()
    except LoginError:
        client.shutdown()
        return False
    return True


@contextmanager
def logged_in(server: RunningServer, person: Person) -> Iterator[IMAPClient]:
    """An IMAPClient logged in as ``person`` over implicit TLS; logged out after."""
    client = connect(server)
    try:
        client.login(person.login, PASSWORD)
        yield client
    finally:
        try:
            client.logout()
        except (OSError, IMAPClient.Error, IMAPClient.AbortError):
            client.shutdown()


def deliver(server: RunningServer, recipient: str, message: bytes) -> None:
    """Send ``message`` to ``recipient`` through the inbound SMTP listener."""
    host, port = server.addresses["smtp"]
    with smtplib.SMTP(host, port, timeout=TIMEOUT_SECONDS) as smtp:
        refused = smtp.sendmail("alice@outside.example", [recipient], message)
    assert refused == {}


def simple_message(subject: str, body: str = "Bonjour,\r\nà demain.\r\n") -> bytes:
    """A small, well-formed text message."""
    return (
        "From: Alice <alice@outside.example>\r\n"
        "To: Someone <someone@example.org>\r\n"
        f"Subject: {subject}\r\n"
        "Date: Mon, 7 Feb 2022 09:30:00 +0100\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}@outside.example>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n" + body
    ).encode()


class RawImap:
    """A byte-level IMAP client over implicit TLS (or plain): send lines, read responses."""

    def __init__(self, server: RunningServer, *, implicit_tls: bool = True) -> None:
        name = "imaps" if implicit_tls else "imap"
        sock = socket.create_connection(server.addresses[name], timeout=TIMEOUT_SECONDS)
        if implicit_tls:
            sock = tls_context(server).wrap_socket(sock, server_hostname="127.0.0.1")
        self.sock = sock
        self.server = server
        self._buffer = b""
        self._tags = itertools.count(1)
        self.greeting = self.read_line()

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()

    def __enter__(self) -> RawImap:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def starttls(self) -> None:
        """Upgrade a plain connection after a tagged OK to STARTTLS."""
        self.sock = tls_context(self.server).wrap_socket(self.sock, server_hostname="127.0.0.1")

    def send(self, data: bytes) -> None:
        """Send raw bytes."""
        self.sock.sendall(data)

    def read_line(self) -> bytes:
        """One line, CRLF included; a literal's octets are not read (see ``read_exactly``)."""
        while b"\r\n" not in self._buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed; buffered {self._buffer!r}")
            self._buffer += chunk
        line, _sep, self._buffer = self._buffer.partition(b"\r\n")
        return line + b"\r\n"

    def read_exactly(self, size: int) -> bytes:
        """``size`` octets."""
        while len(self._buffer) < size:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed inside a literal")
            self._buffer += chunk
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def read_response(self) -> bytes:
        """One response with its literals inlined as ``{n}\\r\\n<octets>``."""
        out = b""
        while True:
            line = self.read_line()
            out += line
            match = re.search(rb"~?\{(\d+)\}\r\n\Z", line)
            if not match:
                return out
            out += self.read_exactly(int(match.group(1)))

    def command(self, text: bytes, tag: bytes | None = None) -> tuple[list[bytes], bytes]:
        """Send ``tag text`` and read to the tagged response: ``(untagged, tagged)``."""
        tag = tag or b"t%d" % next(self._tags)
        self.send(tag + b" " + text + b"\r\n")
        return self.read_until(tag)

    def read_until(self, tag: bytes) -> tuple[list[bytes], bytes]:
        """Responses up to and including the one tagged ``tag``."""
        untagged = []
        while True:
            response = self.read_response()
            if response.startswith(tag + b" "):
                return untagged, response
            untagged.append(response)

    def login(self, person: Person) -> None:
        """LOGIN, checked."""
        _untagged, tagged = self.command(
            b'LOGIN "%s" "%s"' % (person.login.encode(), PASSWORD.encode())
        )
        assert b" OK " in tagged, tagged
