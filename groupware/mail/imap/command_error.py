# SPDX-License-Identifier: GPL-3.0-or-later
"""How an IMAP command handler fails: :class:`CommandError`, made by :func:`no` or :func:`bad`.

``ImapSession.execute`` turns it into the tagged NO/BAD response (the one place where
IMAP replies are made); split out of ``imap.session`` so that the command modules
raise it without importing the session.
"""

from __future__ import annotations

from groupware.mail.imap import wire


class CommandError(Exception):
    """Answer the command with ``status [code] text``."""

    def __init__(self, status: str, message: str, code: str | wire.ResponseCode | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def no(message: str, code: str | wire.ResponseCode | None = None) -> CommandError:
    """A tagged NO: the command failed."""
    return CommandError("NO", message, code)


def bad(message: str, code: str | None = None) -> CommandError:
    """A tagged BAD: the command was not acceptable here."""
    return CommandError("BAD", message, code)
