# SPDX-License-Identifier: GPL-3.0-or-later
"""The compose form's "From": the person's identities, the one preselected, the one posted.

The identities are those ``core.mail_preferences`` gives now (only addresses the
person may still send as, ``core.send_as``). What the form posts is never
trusted: an address that is not one of them is refused beside the field when
sending (and audited); a draft being saved falls back to the default identity instead, since
saving must not lose the text. A form that posts no identity at all (an older
page) writes as the default one. The SMTP submission checks ``From`` against
the same rule, so a forged choice would be refused there too.
"""

from __future__ import annotations

from flask import request
from flask_babel import gettext as _
from flask_login import current_user
from wtforms import Field

from groupware.core.mail_preferences import Identity
from groupware.web.context import services
from groupware.web.mail_reading import OpenedMessage
from groupware.web.mail_sending import display_address
from groupware.web.mail_signatures import delivered_to, reply_identity
from groupware.web.mail_structure import Mailbox
from groupware.web.webmail import imap


def person_identities() -> list[Identity]:
    """The signed-in person's identities, primary address first."""
    return services().core.mail_preferences.identities_for(current_user.person)


def default_of(identities: list[Identity]) -> Identity:
    """The default identity; the person's own address if they may send as none."""
    found = next((i for i in identities if i.is_default), None)
    if found is not None:
        return found
    person = current_user.person
    return Identity(person.email.lower(), person.display_name, "", is_default=True)


def identity_label(identity: Identity) -> str:
    """How the select shows an identity: ``Name <address>``."""
    return display_address(identity.display_name, identity.address)


def find(identities: list[Identity], address: str) -> Identity | None:
    """The identity of ``address`` among the person's, if it is one."""
    wanted = address.strip().lower()
    return next((i for i in identities if i.address == wanted), None)


def posted_identity(field: Field, identities: list[Identity], *, strict: bool) -> Identity | None:
    """The identity the form chose; ``None`` (error set on the field) if not theirs and strict."""
    posted = (field.data or "").strip()
    if not posted:
        return default_of(identities)
    found = find(identities, posted)
    if found is not None:
        return found
    if strict:
        field.errors = [_("You may not send as this address.")]
        _audit_refusal(posted)
        return None
    return default_of(identities)


def _audit_refusal(address: str) -> None:
    """A forged or stale "From" is worth a trace: the page only offers allowed ones."""
    login = current_user.person.login
    services().core.audit.record(
        "mail.send_as_refused", actor=login, subject=login, outcome="refused",
        protocol="web", client=request.remote_addr or "", detail=address,
    )  # fmt: skip


def sender_of(identity: Identity) -> Mailbox:
    """The ``From`` mailbox of a message written as ``identity``."""
    return Mailbox(identity.display_name, identity.address)


def replying_identity(
    original: OpenedMessage, folder: str, uid: int, identities: list[Identity]
) -> Identity:
    """The identity the original was sent to (To, Cc, then Delivered-To), else the default."""
    found = reply_identity(identities, [m.address for m in (*original.to, *original.cc)])
    if found is None:
        found = reply_identity(identities, imap(lambda c: delivered_to(c, folder, uid)))
    return found or default_of(identities)
