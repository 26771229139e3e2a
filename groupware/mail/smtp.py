# SPDX-License-Identifier: GPL-3.0-or-later
"""SMTP listeners (aiosmtpd): inbound (MX role) and authenticated submission.

RFC 5321 (SMTP), RFC 6409 (submission), RFC 4954 (AUTH), RFC 3207 (STARTTLS),
RFC 1870 (SIZE), RFC 2920 (PIPELINING), RFC 2034/3463 (enhanced status codes).

Inbound accepts mail for local recipients only and never relays; AUTH is not
offered there. Submission requires TLS then AUTH (PLAIN, LOGIN) through the common
auth module; the envelope sender and ``From:`` must be addresses the user owns.
A local recipient accepted a moment ago is accepted again from memory
(``mail.acceptances``).
``250`` is answered only once the message is durably in the spool. Replies are the
constants of ``mail.replies``; no exception text reaches a client.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from email._header_value_parser import AddrSpec, AngleAddr, get_addr_spec, get_angle_addr
from email.errors import HeaderParseError
from email.utils import getaddresses
from typing import Any, Final

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from groupware.config import Config
from groupware.core.auth import Authenticator, Outcome
from groupware.core.directory import Person
from groupware.mail import replies
from groupware.mail.acceptances import RecentAcceptances
from groupware.mail.addressing import Address, Recipients, parse_address
from groupware.mail.mime import parse_headers
from groupware.mail.spool import Envelope as SpoolEnvelope
from groupware.mail.spool import Spool, SpooledMessage
from groupware.mail.store import MailStore
from groupware.mail.store_write import has_bare_cr_or_lf

log = logging.getLogger(__name__)

_BARE_CR_OR_LF: Final = re.compile(rb"\r(?!\n)|(?<!\r)\n")
_SOURCE_ROUTE: Final = re.compile(r"(?i)^\s*TO:\s*<\s*@[^:>]*:")
# ``<dot-atom@dot-atom>``: the usual MAIL FROM/RCPT TO argument, which the RFC 5322
# parser would return unchanged (anything else goes to that parser).
_ATOM: Final = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ANGLE_ADDRESS: Final = re.compile(
    # The parser also eats the blanks after ">" (CFWS); a comment there goes to it.
    rf"<({_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>[ \t]*+(?![(])"
)


@dataclass(frozen=True, slots=True)
class SmtpContext:
    """What the handlers need, shared by every connection."""

    config: Config
    authenticator: Authenticator
    recipients: Recipients
    store: MailStore
    spool: Spool
    hostname: str
    on_spooled: Callable[[SpooledMessage], None]


@dataclass(frozen=True, slots=True)
class SmtpUser:
    """The authenticated submitter (``acting_for`` when the portal sends for a user)."""

    person: Person
    via_portal: bool = False


class GroupwareSMTP(SMTP):
    """aiosmtpd's protocol with every reply given its RFC 3463 form."""

    async def smtp_RCPT(self, arg: str) -> None:
        """A source route (``TO:<@relay:user@host>``) is a relay attempt, not a typo."""
        if (
            arg
            and _SOURCE_ROUTE.match(arg)
            and self.envelope is not None
            and self.envelope.mail_from is not None
            and not (self.session and isinstance(self.session.auth_data, SmtpUser))
        ):
            log.warning("smtp.relay.refused rcpt=%s (source route)", arg)
            await self.push(replies.R554_NO_RELAY)
            return
        await super().smtp_RCPT(arg)

    async def push(self, status: Any) -> None:  # aiosmtpd seam: str or bytes
        """Send one reply line."""
        if isinstance(status, str):
            status = replies.translate(status)
        await super().push(status)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """The address of ``MAIL FROM:``/``RCPT TO:`` and the rest (parameters).

        The parse of aiosmtpd 1.4's ``_getaddr``, which a test holds this to, without
        the ``typing.Protocol`` class it defines on every call for its type checker:
        making that class costs about 100 µs, twice per message, on the event loop.
        None for the address when it does not parse.
        """
        if not arg:
            return "", ""
        plain = _PLAIN_ANGLE_ADDRESS.match(arg)
        if plain is not None:
            # What the parser makes of it, character for character, at a tenth the cost.
            addr, rest = plain.group(1), arg[plain.end() :]
        else:
            parsed = self._parse_address(arg)
            if parsed is None:
                return None, None
            addr, rest = parsed
        local_part = addr.rpartition("@")[0]
        if self.local_part_limit and len(local_part) > self.local_part_limit:
            return None, None
        return addr, rest

    @staticmethod
    def _parse_address(arg: str) -> tuple[str, str] | None:
        """RFC 5322 parse of an address and what follows it, or None."""
        address: AngleAddr | AddrSpec
        try:
            if arg.lstrip().startswith("<"):
                address, rest = get_angle_addr(arg)
            else:
                address, rest = get_addr_spec(arg)
        except HeaderParseError:
            return None
        return address.addr_spec, rest


def _peer(session: Session) -> str:
    peer = session.peer
    return str(peer[0]) if isinstance(peer, tuple) else str(peer or "")


class InboundHandler:
    """MX role: local recipients only, no AUTH, no relay."""

    is_submission = False

    def __init__(self, context: SmtpContext) -> None:
        self.context = context
        # Shared by this listener's connections, used on the loop only.
        self._acceptances = RecentAcceptances()

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        """Advertise PIPELINING and ENHANCEDSTATUSCODES; no AUTH on inbound."""
        session.host_name = hostname
        lines = [
            line for line in responses if self.is_submission or not line.startswith("250-AUTH")
        ]
        lines[-1:-1] = ["250-PIPELINING", "250-ENHANCEDSTATUSCODES"]
        return lines

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        """Check the sender's syntax (and, on submission, ownership)."""
        if address in ("", "<>"):
            if self.is_submission:
                return replies.R553_SENDER_NOT_OWNED
            envelope.mail_from = ""
            envelope.mail_options.extend(mail_options)
            return replies.R250_SENDER_OK
        parsed = parse_address(address)
        if parsed is None:
            return replies.R553_BAD_ADDRESS
        if self.is_submission:
            user = session.auth_data
            if not isinstance(user, SmtpUser):
                return replies.R530_AUTH_REQUIRED
            owned = await asyncio.to_thread(self.context.recipients.owned_addresses, user.person)
            if parsed.has_routing_tricks or str(parsed).lower() not in owned:
                log.warning("smtp.sender.refused user=%s sender=%s", user.person.login, address)
                return replies.R553_SENDER_NOT_OWNED
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return replies.R250_SENDER_OK

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        """Accept local recipients; relay only for authenticated submitters."""
        config = self.context.config.smtp
        if len(envelope.rcpt_tos) >= config.max_recipients_count:
            return replies.R452_TOO_MANY_RECIPIENTS
        parsed = parse_address(address)
        if parsed is None:
            return replies.R553_BAD_ADDRESS
        recipients = self.context.recipients
        is_authenticated = isinstance(session.auth_data, SmtpUser)
        if parsed.has_routing_tricks or not recipients.is_local_domain(parsed.domain):
            if is_authenticated and not parsed.has_routing_tricks:
                envelope.rcpt_tos.append(address)
                envelope.rcpt_options.extend(rcpt_options)
                return replies.R250_RECIPIENT_OK
            log.warning("smtp.relay.refused peer=%s rcpt=%s", _peer(session), address)
            return replies.R554_NO_RELAY
        if not self._acceptances.is_accepted(str(parsed), is_authenticated=is_authenticated):
            # One worker-thread call for the lookup and the quota: each hop costs.
            refusal = await asyncio.to_thread(self._refusal_of_local, parsed, is_authenticated)
            if refusal is not None:
                if refusal == replies.R550_NO_SUCH_USER:
                    log.info(
                        "smtp.rcpt.rejected peer=%s rcpt=%s reply=550", _peer(session), address
                    )
                return refusal
            self._acceptances.remember(str(parsed), is_authenticated=is_authenticated)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return replies.R250_RECIPIENT_OK

    def _refusal_of_local(self, address: Address, is_authenticated: bool) -> str | None:
        """Why a local recipient is refused, or None to accept it (blocking)."""
        found = self.context.recipients.resolve(address)
        if found is None:
            return replies.R550_NO_SUCH_USER
        if found.group is not None:
            kinds = self.context.config.smtp.external_group_kinds
            if not is_authenticated and found.group.kind not in kinds:
                return replies.R550_GROUP_INTERNAL
            return None
        person = found.persons[0]
        used, _count = self.context.store.usage(person.id)
        return replies.R452_MAILBOX_FULL if used >= person.quota_bytes else None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Spool durably, then answer 250 with the queue id."""
        data = envelope.original_content or b""
        if not envelope.rcpt_tos:
            return replies.R554_NO_VALID_RECIPIENTS
        if has_bare_cr_or_lf(data):
            # Normalised, not passed on: a lone LF or CR can never end the data of a
            # message we relay (SMTP smuggling); smtplib dot-stuffs what follows.
            data = _BARE_CR_OR_LF.sub(b"\r\n", data)
        user = session.auth_data if isinstance(session.auth_data, SmtpUser) else None
        if self.is_submission and user is not None:
            refusal = await self._check_from_header(user, data)
            if refusal:
                return refusal
        tls = ""
        ssl_object = server.transport.get_extra_info("ssl_object") if server.transport else None
        if ssl_object is not None:
            tls = f"{ssl_object.version()} {ssl_object.cipher()[0]}"
        spooled = SpoolEnvelope(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            peer=_peer(session),
            helo=session.host_name or "",
            received_at=time.time(),
            authenticated_as=user.person.login if user else "",
            listener="submission" if self.is_submission else "smtp",
            tls=tls,
            smtp_utf8=bool(envelope.smtp_utf8),
        )
        try:
            queue_id = await asyncio.to_thread(self.context.spool.accept, spooled, data)
        except OSError:
            log.exception("smtp.spool.failed peer=%s", _peer(session))
            return replies.R451_TRY_LATER
        log.info(
            "smtp.accepted queue_id=%s peer=%s from=%s rcpts=%d bytes=%d",
            queue_id,
            _peer(session),
            envelope.mail_from,
            len(envelope.rcpt_tos),
            len(data),
        )
        self.context.on_spooled(SpooledMessage(queue_id, spooled, data))
        return replies.R250_QUEUED.format(queue_id=queue_id)

    async def _check_from_header(self, user: SmtpUser, data: bytes) -> str | None:
        header_end = data.find(b"\r\n\r\n")
        headers = parse_headers(data[: header_end + 2] if header_end >= 0 else data)
        addresses = [addr.lower() for _name, addr in getaddresses(headers.get_all("from", []))]
        owned = await asyncio.to_thread(self.context.recipients.owned_addresses, user.person)
        if not addresses or any(addr not in owned for addr in addresses):
            log.warning("smtp.from.refused user=%s from=%s", user.person.login, addresses)
            return replies.R553_SENDER_NOT_OWNED
        return None

    async def handle_exception(self, error: Exception) -> str:
        """Log our failure; the client only learns to try again later."""
        log.exception("smtp.session.error error=%s", type(error).__name__)
        return replies.R451_TRY_LATER


class SubmissionHandler(InboundHandler):
    """Submission: AUTH PLAIN/LOGIN after TLS, sender ownership, relay for the user."""

    is_submission = True

    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:
        """RFC 4616: ``authzid NUL authcid NUL password``, initial response or challenge."""
        if len(args) == 1:
            response = await server.challenge_auth("")
            if not isinstance(response, bytes):
                return AuthResult(success=False, handled=True)
        else:
            try:
                response = base64.b64decode(args[1], validate=True)
            except binascii.Error:
                return AuthResult(success=False, handled=False, message=replies.R501_SYNTAX_ARGS)
        parts = response.split(b"\x00")
        if len(parts) != 3:
            return AuthResult(success=False, handled=False, message=replies.R501_SYNTAX_ARGS)
        authzid, authcid, password = (part.decode("utf-8", "replace") for part in parts)
        return await self._authenticate(server, authcid, password, authzid)

    async def auth_LOGIN(self, server: SMTP, args: list[str]) -> AuthResult:
        """The LOGIN mechanism (username and password challenges)."""
        if len(args) == 2:
            try:
                username = base64.b64decode(args[1], validate=True)
            except binascii.Error:
                return AuthResult(success=False, handled=False, message=replies.R501_SYNTAX_ARGS)
        else:
            answered = await server.challenge_auth("Username:")
            if not isinstance(answered, bytes):
                return AuthResult(success=False, handled=True)
            username = answered
        password = await server.challenge_auth("Password:")
        if not isinstance(password, bytes):
            return AuthResult(success=False, handled=True)
        return await self._authenticate(
            server, username.decode("utf-8", "replace"), password.decode("utf-8", "replace"), ""
        )

    async def _authenticate(
        self, server: SMTP, identifier: str, password: str, authzid: str
    ) -> AuthResult:
        client = _peer(server.session) if server.session else ""
        authenticator = self.context.authenticator
        if authzid and authzid.lower() != identifier.lower():
            result = await asyncio.to_thread(
                authenticator.authenticate_for,
                identifier,
                password,
                authzid,
                protocol="smtp",
                client=client,
            )
            via_portal = True
        else:
            result = await asyncio.to_thread(
                authenticator.authenticate, identifier, password, protocol="smtp", client=client
            )
            via_portal = False
        if result.outcome is Outcome.THROTTLED:
            return AuthResult(success=False, handled=False, message=replies.R454_TEMP_AUTH_FAILURE)
        if result.outcome is Outcome.MUST_CHANGE_PASSWORD:
            return AuthResult(success=False, handled=False, message=replies.R535_MUST_CHANGE)
        if result.outcome is Outcome.APP_PASSWORD_REQUIRED:
            return AuthResult(
                success=False, handled=False, message=replies.R535_APP_PASSWORD_REQUIRED
            )
        if not result.is_ok or result.person is None:
            return AuthResult(success=False, handled=False, message=replies.R535_AUTH_FAILED)
        return AuthResult(success=True, auth_data=SmtpUser(result.person, via_portal))


def tls_context(config: Config) -> ssl.SSLContext:
    """The server TLS context for STARTTLS and implicit TLS."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.path(config.tls.cert_file), config.path(config.tls.key_file))
    return context


def protocol_factory(
    context: SmtpContext, *, submission: bool, tls: ssl.SSLContext, implicit_tls: bool = False
) -> Callable[[], SMTP]:
    """Makes one aiosmtpd protocol object per connection."""
    config = context.config.smtp
    handler: InboundHandler = SubmissionHandler(context) if submission else InboundHandler(context)

    def make() -> SMTP:
        protocol = GroupwareSMTP(
            handler,
            data_size_limit=config.max_message_bytes,
            enable_SMTPUTF8=True,
            hostname=context.hostname,
            ident="groupware ESMTP",
            tls_context=None if implicit_tls else tls,
            require_starttls=submission and not implicit_tls,
            timeout=config.timeout_seconds,
            auth_required=submission,
            auth_require_tls=True,
            auth_exclude_mechanism=() if submission else ("PLAIN", "LOGIN"),
            # Never called: our auth_PLAIN/auth_LOGIN replace aiosmtpd's; fail closed.
            authenticator=lambda *_args: AuthResult(success=False),
        )
        if implicit_tls:
            # The transport itself is TLS (RFC 8314), which aiosmtpd cannot see; its
            # "AUTH only after STARTTLS" rule is met. Private attribute, aiosmtpd 1.4.
            protocol._auth_require_tls = False  # noqa: SLF001
        return protocol

    return make
