# SPDX-License-Identifier: GPL-3.0-or-later
"""SMTP replies: named constants with RFC 3463 enhanced status codes.

Handlers return these constants; :func:`translate` gives aiosmtpd's own replies
(which lack enhanced codes) their RFC 3463 form at the single place where bytes go
out, and :func:`reply_for` maps our exceptions. No exception text reaches a client.
"""

from __future__ import annotations

import re
from typing import Final

from groupware.core.auth import APP_PASSWORD_MESSAGE, MUST_CHANGE_MESSAGE
from groupware.errors import GroupwareError, NotFoundError

R220_READY: Final = "220 {host} ESMTP ready"
R221_BYE: Final = "221 2.0.0 Bye"
R235_AUTH_OK: Final = "235 2.7.0 Authentication successful"
R250_OK: Final = "250 2.0.0 OK"
R250_SENDER_OK: Final = "250 2.1.0 Sender OK"
R250_RECIPIENT_OK: Final = "250 2.1.5 Recipient OK"
R250_QUEUED: Final = "250 2.0.0 OK: queued as {queue_id}"
R354_START_DATA: Final = "354 End data with <CR><LF>.<CR><LF>"
R421_SHUTTING_DOWN: Final = "421 4.3.2 Service shutting down, try again later"
R451_TRY_LATER: Final = "451 4.3.0 Temporary failure, please try again later"
R452_TOO_MANY_RECIPIENTS: Final = "452 4.5.3 Too many recipients"
R452_MAILBOX_FULL: Final = "452 4.2.2 Mailbox full, try again later"
R454_TEMP_AUTH_FAILURE: Final = "454 4.7.0 Too many failed logins, try again later"
R500_LINE_TOO_LONG: Final = "500 5.5.6 Line too long"
R500_SYNTAX: Final = "500 5.5.2 Syntax error"
R501_SYNTAX_ARGS: Final = "501 5.5.4 Syntax error in parameters"
R502_NOT_IMPLEMENTED: Final = "502 5.5.1 Command not implemented"
R503_BAD_SEQUENCE: Final = "503 5.5.1 Bad sequence of commands"
R530_AUTH_REQUIRED: Final = "530 5.7.0 Authentication required"
R530_STARTTLS_FIRST: Final = "530 5.7.0 Must issue a STARTTLS command first"
R535_AUTH_FAILED: Final = "535 5.7.8 Authentication credentials invalid"
# RFC 4954 §6 gives 535 5.7.8 for credentials the server does not accept, and the
# two refusals below are exactly that: the password is right but is not a credential
# for mail (yet). 534 5.7.9 ("mechanism too weak") would send clients looking for
# another SASL mechanism, 554 5.7.0 reads as a policy block, and a 4xx would make
# them retry; on 535 mail clients ask for the password again, which is the fix (the
# app password; the new password once chosen in the portal). The text says why.
R535_APP_PASSWORD_REQUIRED: Final = f"535 5.7.8 {APP_PASSWORD_MESSAGE}"
R535_MUST_CHANGE: Final = f"535 5.7.8 {MUST_CHANGE_MESSAGE}"
R550_NO_SUCH_USER: Final = "550 5.1.1 No such user here"
R550_GROUP_INTERNAL: Final = "550 5.7.1 This list accepts mail from the institution only"
R550_SMUGGLING: Final = "550 5.6.0 Bare CR or LF in message data is not accepted"
R552_MESSAGE_TOO_BIG: Final = "552 5.3.4 Message size exceeds fixed maximum message size"
R553_SENDER_NOT_OWNED: Final = "553 5.7.1 Sender address not owned by the authenticated user"
R553_BAD_ADDRESS: Final = "553 5.1.3 Malformed address"
R554_NO_RELAY: Final = "554 5.7.1 Relay access denied"
R554_NO_VALID_RECIPIENTS: Final = "554 5.5.1 No valid recipients"

# aiosmtpd's built-in replies without enhanced codes, by pattern -> ours.
_TRANSLATIONS: Final = (
    (re.compile(r"^250 OK$"), R250_OK),
    (re.compile(r"^221 Bye$"), R221_BYE),
    (re.compile(r"^354 "), R354_START_DATA),
    (re.compile(r"^500 Command line too long"), R500_LINE_TOO_LONG),
    (re.compile(r"^500 Line too long"), R500_LINE_TOO_LONG),
    (re.compile(r"^500 Error: bad syntax"), R500_SYNTAX),
    (re.compile(r"^500 Error: command .* not recognized"), "500 5.5.1 Command not recognized"),
    (re.compile(r"^500 Error: strict ASCII mode"), "500 5.6.7 Non-ASCII data not accepted"),
    (re.compile(r"^501 Syntax: "), R501_SYNTAX_ARGS),
    (re.compile(r"^501 Error: "), R501_SYNTAX_ARGS),
    (re.compile(r"^501 (Not enough|Too many) value"), R501_SYNTAX_ARGS),
    (re.compile(r"^502 "), R502_NOT_IMPLEMENTED),
    (re.compile(r"^503 Error: nested MAIL"), "503 5.5.1 Nested MAIL command"),
    (re.compile(r"^503 Error: need MAIL"), "503 5.5.1 Need MAIL command"),
    (re.compile(r"^503 Error: need RCPT"), "503 5.5.1 Need RCPT command"),
    (re.compile(r"^503 Already authenticated"), "503 5.5.1 Already authenticated"),
    (re.compile(r"^503 Error: send HELO first"), "503 5.5.1 Send HELO or EHLO first"),
    (re.compile(r"^503 "), R503_BAD_SEQUENCE),
    (re.compile(r"^530 Must issue a STARTTLS"), R530_STARTTLS_FIRST),
    (re.compile(r"^552 Error: message size exceeds"), R552_MESSAGE_TOO_BIG),
    (re.compile(r"^552 Error: Too much mail data"), R552_MESSAGE_TOO_BIG),
    (re.compile(r"^454 TLS not available"), "454 4.7.0 TLS not available"),
    (re.compile(r"^220 Ready to start TLS"), "220 2.0.0 Ready to start TLS"),
    (re.compile(r"^421 "), R421_SHUTTING_DOWN),
    (re.compile(r"^250 Syntax: "), "250 2.0.0 See RFC 5321"),
)
_HAS_ENHANCED: Final = re.compile(r"^\d{3}[ -][245]\.\d{1,3}\.\d{1,3}\b")


def translate(reply: str) -> str:
    """One outgoing reply line with an RFC 3463 code (multi-line EHLO left alone)."""
    if reply.startswith("250-") or _HAS_ENHANCED.match(reply) or reply.startswith("220 "):
        return reply
    if reply.startswith("250 ") and not reply.startswith(("250 OK", "250 Syntax")):
        return reply  # last line of EHLO, or a HELO greeting
    for pattern, replacement in _TRANSLATIONS:
        if pattern.match(reply):
            return replacement
    code = reply[:3]
    if code.isdigit():
        klass = code[0]
        if klass == "2":
            return f"{code} 2.0.0 {reply[4:]}"
        if klass == "4":
            return R451_TRY_LATER
        if klass == "5":
            return f"{code} 5.5.0 Command rejected"
    return reply


def reply_for(exc: BaseException) -> str:
    """The reply for an exception at the SMTP edge (never its text)."""
    from groupware.mail.store import QuotaExceededError

    if isinstance(exc, QuotaExceededError):
        return R452_MAILBOX_FULL
    if isinstance(exc, NotFoundError):
        return R550_NO_SUCH_USER
    if isinstance(exc, GroupwareError):
        return R451_TRY_LATER
    return R451_TRY_LATER
