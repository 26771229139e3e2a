# SPDX-License-Identifier: GPL-3.0-or-later
"""Typed access to the services the portal was built with, and the session user."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from flask import current_app
from flask_login import UserMixin

from groupware.core.directory import Person
from groupware.core.services import Core
from groupware.core.sharing import CollectionRef
from groupware.web.mail_access import MailAccess


class DavCollections(Protocol):
    """What the portal asks of the DAV storage (``dav.collections.Collections``).

    Collections come back as objects with ``path``, ``name``, ``display_name``,
    ``kind``, ``color``, ``owner``, ``level`` (a ``core.sharing.Level``),
    ``collection`` (a ``CollectionRef`` or ``None``) and ``is_own``.
    """

    def collections_for(self, person: Person) -> list[Any]: ...

    def owned_by(self, principal: str) -> list[Any]: ...

    def find(self, collection: CollectionRef) -> Any | None: ...


class DavReply(Protocol):
    """The answer to an in-process DAV request (``dav.service.DavAnswer``)."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...  # names in lower case

    @property
    def body(self) -> bytes: ...


class DavRequests(Protocol):
    """Serves DAV requests in process as a signed-in person (``DavService.request_as``).

    The portal reads and writes calendars and address books through this only, so
    it has exactly the rights and storage DAV clients have.
    """

    def request_as(
        self,
        person: Person,
        method: str,
        path: str,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
    ) -> DavReply: ...


#: Mails an account a notice: ``notify(person, subject, body)``.
Notify = Callable[[Person, str, str], Any]
#: ``(bytes, messages)`` a person's mailbox holds.
MailUsage = Callable[[int], tuple[int, int]]


@dataclass(frozen=True, slots=True)
class PortalServices:
    """What ``create_app`` received, read through :func:`services`."""

    core: Core
    dav: DavCollections
    dav_requests: DavRequests
    notify: Notify
    mail_usage: MailUsage
    #: The webmail's IMAP access; ``None`` when the app was built without one.
    mail: MailAccess | None = None


def services() -> PortalServices:
    """The services of the running app."""
    found = current_app.extensions["groupware"]
    assert isinstance(found, PortalServices)
    return found


class PortalUser(UserMixin):
    """A signed-in person and the server-side session they are signed in with.

    Whether the session still holds (not signed out elsewhere, not idle, credentials
    unchanged) is the session record's to say: see ``web.sessions.load_user``.
    """

    def __init__(self, person: Person, session_id: int) -> None:
        self.person = person
        self.session_id = session_id

    def get_id(self) -> str:
        """``<person id>:<credential version>`` (the version is for reading logs)."""
        return f"{self.person.id}:{self.person.credential_version}"

    @property
    def is_active(self) -> bool:
        """Disabled accounts cannot use the portal."""
        return self.person.is_active
