# SPDX-License-Identifier: GPL-3.0-or-later
"""Commands of any state and of the not-authenticated state (RFC 3501 §6.1, §6.2).

CAPABILITY, NOOP, LOGOUT, ID (RFC 2971), ENABLE (RFC 5161), LOGIN and the end of
AUTHENTICATE PLAIN (RFC 4616; the transport reads its continuation). Split out of
``imap.session``: each handler is a function taking the session.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from groupware.core.auth import APP_PASSWORD_MESSAGE, AuthResult, Outcome
from groupware.mail.imap import commands as c
from groupware.mail.imap import wire
from groupware.mail.imap.command_error import bad, no

if TYPE_CHECKING:
    from groupware.mail.imap.session import ImapSession

log = logging.getLogger(__name__)


async def do_capability(session: ImapSession, command: c.Capability) -> None:
    await session.send(wire.untagged(b"CAPABILITY " + " ".join(session.capabilities()).encode()))
    await session.finish(command.tag, "CAPABILITY completed")


async def do_noop(session: ImapSession, command: c.Noop) -> None:
    await session.finish(command.tag, "NOOP completed")


async def do_logout(session: ImapSession, command: c.Logout) -> None:
    await session.send(wire.untagged_status("BYE", "Logging out"))
    await session.tagged(command.tag, "OK", "LOGOUT completed")
    session.logged_out = True


async def do_id(session: ImapSession, command: c.Id) -> None:
    if command.params:
        log.info("imap.id client=%s params=%s", session.client, dict(command.params))
    info = [
        wire.string("name"),
        wire.string("groupware"),
        wire.string("vendor"),
        wire.string("groupware"),
    ]
    await session.send(wire.untagged(b"ID " + wire.paren_list(info)))
    await session.finish(command.tag, "ID completed")


async def do_enable(session: ImapSession, command: c.Enable) -> None:
    if session.person is None:
        raise bad("Authenticate first")
    enabled = []
    for capability in command.capabilities:
        name = capability.upper()
        if name == "CONDSTORE" and not session.condstore:
            session.condstore = True
            enabled.append(name)
        elif name == "QRESYNC" and not session.qresync:
            session.qresync = session.condstore = True
            enabled.append(name)
        elif name in ("UTF8=ACCEPT", "IMAP4REV2") and name == "UTF8=ACCEPT" and not session.utf8:
            session.utf8 = True
            enabled.append(name)
    await session.send(wire.untagged(("ENABLED " + " ".join(enabled)).strip().encode()))
    await session.finish(command.tag, "ENABLE completed")


async def do_login(session: ImapSession, command: c.Login) -> None:
    if not session.is_tls and session.context.has_tls:
        raise no("Use STARTTLS before logging in", "PRIVACYREQUIRED")
    result = await session.run(
        session.context.authenticator.authenticate,
        command.userid,
        command.password,
        protocol="imap",
        client=session.client,
    )
    await _login_result(session, command.tag, result)


async def authenticate_plain(session: ImapSession, tag: str, response: bytes) -> None:
    """Finish AUTHENTICATE PLAIN with the client's decoded response (RFC 4616)."""
    parts = response.split(b"\x00")
    if len(parts) != 3:
        await session.tagged(tag, "BAD", "Malformed PLAIN response")
        return
    authzid, authcid, password = (part.decode("utf-8", "replace") for part in parts)
    authenticator = session.context.authenticator
    if authzid and authzid.lower() != authcid.lower():
        result = await session.run(
            authenticator.authenticate_for,
            authcid,
            password,
            authzid,
            protocol="imap",
            client=session.client,
        )
    else:
        result = await session.run(
            authenticator.authenticate, authcid, password, protocol="imap", client=session.client
        )
    await _login_result(session, tag, result)


async def _login_result(session: ImapSession, tag: str, result: AuthResult) -> None:
    if result.outcome is Outcome.THROTTLED:
        await session.tagged(tag, "NO", "Too many failed logins, try again later", "UNAVAILABLE")
        return
    if result.outcome is Outcome.MUST_CHANGE_PASSWORD:
        await session.tagged(
            tag,
            "NO",
            "Your password must be changed first: sign in to the web portal",
            "CONTACTADMIN",
        )
        return
    if result.outcome is Outcome.DISABLED:
        await session.tagged(tag, "NO", "This account is disabled", "CONTACTADMIN")
        return
    if result.outcome is Outcome.APP_PASSWORD_REQUIRED:
        # RFC 5530: the credentials are right but not enough here.
        await session.tagged(tag, "NO", APP_PASSWORD_MESSAGE, "AUTHORIZATIONFAILED")
        return
    if not result.is_ok or result.person is None:
        await session.tagged(tag, "NO", "Wrong login or password", "AUTHENTICATIONFAILED")
        return
    session.person = session.context.persons.share(result.person)
    await session.run(session.store.ensure_mailboxes, result.person)
    code = wire.ResponseCode("CAPABILITY", " ".join(session.capabilities()).encode())
    await session.tagged(tag, "OK", "Logged in", code)
