# SPDX-License-Identifier: GPL-3.0-or-later
"""The SMTP client side: where a message for another domain goes, and one try there.

RFC 5321 §5.1 (MX lookup, implicit MX, trying each host and address in turn),
RFC 7505 (null MX), RFC 3207 (STARTTLS: opportunistic to MX hosts, required to a
smarthost configured with ``starttls``), RFC 8314 (implicit TLS to a smarthost),
RFC 4954 (AUTH at the smarthost), RFC 3463 (enhanced status codes).

:class:`Transport` makes one delivery attempt for a set of recipients and returns
one :class:`Outcome` per recipient: ``sent``, ``temporary`` (4xx, connection or
DNS trouble: try again later) or ``permanent`` (5xx: give up). Replies are
honoured per recipient, so one refused address does not fail the others. DNS goes
through the small :class:`Resolver` protocol (dnspython in production, a static
table in tests). Everything here runs on the event loop; nothing blocks it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import secrets
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Protocol

import aiosmtplib
import dns.asyncresolver
import dns.exception
import dns.resolver
from aiosmtplib.protocol import SMTPProtocol

from groupware.config import Config

log = logging.getLogger(__name__)

_ENHANCED: Final = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")
#: Addresses tried per attempt and domain, across all its MX hosts.
MAX_ADDRESSES_COUNT: Final = 10
_CLOSE_TICKS: Final = 100
_CLOSE_TICK_SECONDS: Final = 0.01


class DnsNameNotFoundError(Exception):
    """The name does not exist (NXDOMAIN): a permanent answer."""


class DnsTemporaryError(Exception):
    """No usable answer now (timeout, SERVFAIL, no name server): try again later."""


class Resolver(Protocol):
    """DNS lookups, as much as outbound delivery needs."""

    async def resolve(self, name: str, rdtype: str) -> list[str]:
        """The records of one type, in presentation form (``"10 mx.example.net."``).

        Returns ``[]`` when the name exists but has no record of that type.

        Raises:
            DnsNameNotFoundError: the name does not exist.
            DnsTemporaryError: no answer could be had now.
        """
        ...


class DnsPythonResolver:
    """:class:`Resolver` over dnspython's asyncio resolver."""

    def __init__(self, nameservers: Sequence[str] = (), lifetime_seconds: float = 30.0) -> None:
        self._nameservers = list(nameservers)
        self._lifetime_seconds = lifetime_seconds
        self._resolver: dns.asyncresolver.Resolver | None = None

    def _get(self) -> dns.asyncresolver.Resolver:
        # Made on first use: reading resolv.conf is not needed with a smarthost.
        if self._resolver is None:
            try:
                resolver = dns.asyncresolver.Resolver(configure=not self._nameservers)
            except dns.resolver.NoResolverConfiguration as exc:
                raise DnsTemporaryError("no name server configured") from exc
            if self._nameservers:
                resolver.nameservers = self._nameservers
            resolver.lifetime = self._lifetime_seconds
            self._resolver = resolver
        return self._resolver

    async def resolve(self, name: str, rdtype: str) -> list[str]:
        """See :meth:`Resolver.resolve`."""
        try:
            answer = await self._get().resolve(name, rdtype, search=False)
        except dns.resolver.NXDOMAIN as exc:
            raise DnsNameNotFoundError(name) from exc
        except dns.resolver.NoAnswer:
            return []
        except (dns.resolver.NoNameservers, dns.exception.Timeout) as exc:
            raise DnsTemporaryError(f"{name} {rdtype}: {type(exc).__name__}") from exc
        except dns.exception.DNSException as exc:
            raise DnsTemporaryError(f"{name} {rdtype}: {type(exc).__name__}") from exc
        return [record.to_text() for record in answer]


class DeliveryError(Exception):
    """A whole domain cannot be reached, with the status to report."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason

    @property
    def is_permanent(self) -> bool:
        """5.x.x."""
        return self.status.startswith("5")


async def mx_hosts(resolver: Resolver, domain: str) -> list[str]:
    """The hosts to try for ``domain``, best first (RFC 5321 §5.1, RFC 7505).

    MX records sorted by preference, equal preferences shuffled; no MX record: the
    domain itself if it has an address (the implicit MX); a null MX (``0 .``):
    the domain takes no mail.

    Raises:
        DeliveryError: 5.1.2 the domain does not exist or has no mail host, 5.1.10
            null MX, 4.4.3 DNS trouble.
    """
    try:
        records = await resolver.resolve(domain, "MX")
    except DnsNameNotFoundError as exc:
        raise DeliveryError("5.1.2", f"domain {domain} does not exist") from exc
    except DnsTemporaryError as exc:
        raise DeliveryError("4.4.3", f"DNS lookup for {domain} failed: {exc}") from exc
    parsed: list[tuple[int, str]] = []
    for record in records:
        preference, _sep, host = record.strip().partition(" ")
        if preference.isdigit():
            parsed.append((int(preference), host.strip().rstrip(".").lower()))
    if parsed and all(host == "" for _preference, host in parsed):
        raise DeliveryError("5.1.10", f"domain {domain} accepts no mail (null MX)")
    parsed = [(preference, host) for preference, host in parsed if host]
    if not parsed:
        if await host_addresses(resolver, domain, missing_ok=True):
            return [domain]
        raise DeliveryError("5.1.2", f"domain {domain} has no mail host")
    shuffle = secrets.SystemRandom().random
    parsed.sort(key=lambda item: (item[0], shuffle()))
    return [host for _preference, host in parsed]


async def host_addresses(resolver: Resolver, host: str, *, missing_ok: bool = False) -> list[str]:
    """IPv4 then IPv6 addresses of a host (an IP literal is its own address).

    Raises:
        DeliveryError: 4.4.3 DNS trouble; 4.4.4 the host has no address, unless
            ``missing_ok`` (then ``[]``).
    """
    with suppress(ValueError):
        return [str(ipaddress.ip_address(host))]
    found: list[str] = []
    for rdtype in ("A", "AAAA"):
        try:
            found += await resolver.resolve(host, rdtype)
        except DnsNameNotFoundError:
            break
        except DnsTemporaryError as exc:
            raise DeliveryError("4.4.3", f"DNS lookup for {host} failed: {exc}") from exc
    if not found and not missing_ok:
        raise DeliveryError("4.4.4", f"mail host {host} has no address")
    return found


class Disposition(StrEnum):
    """What one attempt did for one recipient."""

    SENT = "sent"
    TEMPORARY = "temporary"
    PERMANENT = "permanent"


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one attempt for one recipient."""

    recipient: str
    disposition: Disposition
    status: str  # RFC 3463, e.g. 2.0.0, 4.3.0, 5.1.1
    reply: str  # one line: the remote reply, or our reason
    mx: str = ""  # the host that answered


@dataclass(frozen=True, slots=True)
class _Route:
    label: str  # host name as configured or found in the MX
    address: str  # what we connect to
    port: int
    tls: str  # starttls | implicit | none | opportunistic
    verify: bool


class _HostUnavailableError(Exception):
    """This host cannot take the message now: try the next one."""

    def __init__(self, status: str, reply: str) -> None:
        super().__init__(reply)
        self.status = status
        self.reply = reply


def status_of(code: int, message: str) -> str:
    """The enhanced status of a reply, derived from its code when it has none."""
    match = _ENHANCED.match(message)
    if match and match.group(1) == str(code)[0]:
        return match.group(0)
    return f"{str(code)[0]}.0.0"


def _one_line(code: int, message: str) -> str:
    return f"{code} {' '.join(message.split())}"


def _outcome(recipient: str, code: int, message: str, mx: str) -> Outcome:
    if 200 <= code < 300:
        disposition = Disposition.SENT
    elif code >= 500:
        disposition = Disposition.PERMANENT
    else:
        disposition = Disposition.TEMPORARY
    return Outcome(recipient, disposition, status_of(code, message), _one_line(code, message), mx)


class _Client(aiosmtplib.SMTP):
    """aiosmtplib's client, remembering its connection so closing can wait for it."""

    connection: SMTPProtocol | None = None

    async def connect(self, *args: Any, **kwargs: Any) -> aiosmtplib.SMTPResponse:
        """Connect (see aiosmtplib), keeping the protocol: QUIT forgets it."""
        response = await super().connect(*args, **kwargs)
        self.connection = self.protocol
        return response

    async def close_and_wait(self) -> None:
        """Close and wait (briefly) until the socket really is closed.

        Closing a TLS transport first exchanges close_notify with the peer; a loop
        that stops before then leaves the socket open. ``protocol.transport``
        becomes None once the connection is lost; a peer that never answers is cut.
        """
        self.close()
        protocol = self.connection
        if protocol is None:
            return
        for _tick in range(_CLOSE_TICKS):
            if protocol.transport is None:
                return
            await asyncio.sleep(_CLOSE_TICK_SECONDS)
        if isinstance(protocol.transport, asyncio.Transport):
            protocol.transport.abort()
        await asyncio.sleep(0)  # the loop closes the socket in its next iteration


class Transport:
    """Sends one attempt through the smarthost or to the recipients' MX hosts."""

    def __init__(self, config: Config, resolver: Resolver, helo_name: str, password: str) -> None:
        self.config = config.outbound
        self.resolver = resolver
        self.helo_name = helo_name
        self._password = password
        opportunistic = ssl.create_default_context()
        # Opportunistic TLS (RFC 7435): encryption against passive eavesdroppers;
        # MX certificates are not checked, as no MX authenticates itself without DANE/MTA-STS.
        opportunistic.check_hostname = False
        opportunistic.verify_mode = ssl.CERT_NONE
        self._opportunistic = opportunistic
        self._verified = ssl.create_default_context()
        self._verified.minimum_version = ssl.TLSVersion.TLSv1_2

    async def send(
        self, mail_from: str, recipients: Sequence[str], data: bytes, *, smtp_utf8: bool = False
    ) -> list[Outcome]:
        """One attempt for ``recipients``; one outcome per recipient, in order."""
        groups: dict[str, list[str]] = {}
        for recipient in recipients:
            domain = "" if self.config.smarthost else recipient.rpartition("@")[2].lower()
            groups.setdefault(domain, []).append(recipient)
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        found: dict[str, Outcome] = {}
        for domain, group in groups.items():
            for outcome in await self._send_to_domain(domain, mail_from, group, data, smtp_utf8):
                found[outcome.recipient] = outcome
        return [found[recipient] for recipient in recipients]

    async def _routes(self, domain: str) -> AsyncIterator[_Route]:
        config = self.config
        if config.smarthost:
            verify = config.smarthost_verify_certificate and config.smarthost_tls != "none"
            yield _Route(
                config.smarthost,
                config.smarthost,
                config.smarthost_port,
                config.smarthost_tls,
                verify,
            )
            return
        tried = 0
        for host in await mx_hosts(self.resolver, domain):
            try:
                addresses = await host_addresses(self.resolver, host)
            except DeliveryError as exc:
                log.info("outbound.mx_unusable domain=%s mx=%s reason=%s", domain, host, exc)
                continue
            for address in addresses:
                if tried >= MAX_ADDRESSES_COUNT:
                    return
                tried += 1
                yield _Route(host, address, config.mx_port, "opportunistic", verify=False)

    async def _send_to_domain(
        self, domain: str, mail_from: str, recipients: list[str], data: bytes, smtp_utf8: bool
    ) -> list[Outcome]:
        failure = _HostUnavailableError("4.4.1", f"no mail host of {domain} answered")
        try:
            async for route in self._routes(domain):
                try:
                    return await self._transaction(route, mail_from, recipients, data, smtp_utf8)
                except _HostUnavailableError as exc:
                    log.info(
                        "outbound.host_failed host=%s address=%s reply=%s",
                        route.label,
                        route.address,
                        exc.reply,
                    )
                    failure = exc
        except DeliveryError as exc:
            disposition = Disposition.PERMANENT if exc.is_permanent else Disposition.TEMPORARY
            return [Outcome(r, disposition, exc.status, exc.reason) for r in recipients]
        return [
            Outcome(r, Disposition.TEMPORARY, failure.status, failure.reply) for r in recipients
        ]

    def _client(self, route: _Route) -> _Client:
        tls_context = self._verified if route.verify else self._opportunistic
        return _Client(
            hostname=route.address,
            port=route.port,
            local_hostname=self.helo_name,
            timeout=self.config.timeout_seconds,
            use_tls=route.tls == "implicit",
            start_tls=False,
            validate_certs=route.verify,
            tls_context=tls_context,
        )

    async def _open(self, client: aiosmtplib.SMTP, route: _Route) -> None:
        """Connect, EHLO, STARTTLS and AUTH as the route asks (host failures only)."""
        try:
            await client.connect()
            await client.ehlo()
            wants_tls = route.tls == "starttls" or (
                route.tls == "opportunistic" and client.supports_extension("starttls")
            )
            if wants_tls:
                if not client.supports_extension("starttls"):
                    raise _HostUnavailableError("4.7.0", f"{route.label} does not offer STARTTLS")
                await client.starttls(server_hostname=route.label)
                await client.ehlo()
            if self.config.smarthost and self.config.smarthost_username:
                await client.login(self.config.smarthost_username, self._password)
        except aiosmtplib.SMTPAuthenticationError as exc:
            # Our credentials, not the sender's fault: retried, and loud.
            log.error("outbound.smarthost_auth_failed host=%s code=%d", route.label, exc.code)
            raise _HostUnavailableError("4.7.0", _one_line(exc.code, exc.message)) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise _HostUnavailableError(
                f"4.{status_of(exc.code, exc.message)[2:]}", _one_line(exc.code, exc.message)
            ) from exc
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise _HostUnavailableError("4.4.1", f"{route.label}: {type(exc).__name__}") from exc

    async def _transaction(
        self, route: _Route, mail_from: str, recipients: list[str], data: bytes, smtp_utf8: bool
    ) -> list[Outcome]:
        """MAIL, RCPT per recipient, DATA on one connection (RFC 5321 §3.3)."""
        client = self._client(route)
        mx = route.label
        try:
            await self._open(client, route)
            options = []
            if smtp_utf8 and client.supports_extension("smtputf8"):
                options.append("SMTPUTF8")
            if any(byte > 127 for byte in data) and client.supports_extension("8bitmime"):
                options.append("BODY=8BITMIME")
            encoding = "utf-8" if "SMTPUTF8" in options else "ascii"
            try:
                await client.mail(mail_from, options=options, encoding=encoding)
            except aiosmtplib.SMTPResponseException as exc:
                if exc.code < 500:
                    raise _HostUnavailableError(
                        status_of(exc.code, exc.message), _one_line(exc.code, exc.message)
                    ) from exc
                return [_outcome(r, exc.code, exc.message, mx) for r in recipients]
            except (aiosmtplib.SMTPException, OSError) as exc:
                raise _HostUnavailableError("4.4.2", f"{mx}: {type(exc).__name__}") from exc
            return await self._recipients_and_data(client, mx, recipients, data, encoding)
        finally:
            await client.close_and_wait()

    async def _recipients_and_data(
        self,
        client: aiosmtplib.SMTP,
        mx: str,
        recipients: list[str],
        data: bytes,
        encoding: str,
    ) -> list[Outcome]:
        outcomes: dict[str, Outcome] = {}
        accepted: list[str] = []
        lost = Outcome("", Disposition.TEMPORARY, "4.4.2", f"connection to {mx} lost", mx)
        for recipient in recipients:
            try:
                await client.rcpt(recipient, encoding=encoding)
            except aiosmtplib.SMTPResponseException as exc:
                outcomes[recipient] = _outcome(recipient, exc.code, exc.message, mx)
            except (aiosmtplib.SMTPException, OSError):
                break
            else:
                accepted.append(recipient)
        else:
            if accepted:
                try:
                    response = await client.data(data)
                except aiosmtplib.SMTPResponseException as exc:
                    for recipient in accepted:
                        outcomes[recipient] = _outcome(recipient, exc.code, exc.message, mx)
                except (aiosmtplib.SMTPException, OSError):
                    # Lost after DATA: the remote may have it (RFC 5321 §6.1's window).
                    pass
                else:
                    for recipient in accepted:
                        outcomes[recipient] = _outcome(
                            recipient, response.code, response.message, mx
                        )
            with suppress(aiosmtplib.SMTPException, OSError):
                await client.quit()
        return [
            outcomes.get(recipient)
            or Outcome(recipient, lost.disposition, lost.status, lost.reply, mx)
            for recipient in recipients
        ]
