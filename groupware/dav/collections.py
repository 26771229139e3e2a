# SPDX-License-Identifier: GPL-3.0-or-later
"""Storage operations outside DAV requests: defaults, group collections, listings.

The portal and the CLI create and list calendars and address books through these,
on the same storage (and under the same locks) as DAV clients.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from radicale import storage as radicale_storage

from groupware.core.directory import Directory, Group, Person
from groupware.core.sharing import GROUP_PREFIX, CollectionRef, Level, Sharing
from groupware.dav.scope import is_mount_segment
from groupware.dav.storage import MountedCollection, Storage
from groupware.errors import ConflictError, GroupwareError, NotFoundError

log = logging.getLogger(__name__)

CALENDAR_NAME: Final = "calendar"
ADDRESSBOOK_NAME: Final = "contacts"
DEPARTMENT_AGENDA_NAME: Final = "agenda"
DEFAULT_NAMES: Final = {
    "fr": {
        CALENDAR_NAME: "Agenda personnel",
        ADDRESSBOOK_NAME: "Contacts personnels",
        DEPARTMENT_AGENDA_NAME: "Agenda — {group}",
    },
    "en": {
        CALENDAR_NAME: "Personal calendar",
        ADDRESSBOOK_NAME: "Personal contacts",
        DEPARTMENT_AGENDA_NAME: "Calendar — {group}",
    },
}
KINDS: Final = {"calendar": "VCALENDAR", "addressbook": "VADDRESSBOOK"}
_NAME: Final = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_CALENDAR_COMPONENTS: Final = "VEVENT,VTODO,VJOURNAL"
_DEFAULT_COLOR: Final = "#2a6ebb"


@dataclass(frozen=True, slots=True)
class CollectionInfo:
    """A calendar or address book as the portal and the CLI list it."""

    path: str  # "/<principal>/<name>/", relative to the DAV root, as the person sees it
    name: str  # the path segment (a mount's, for collections of others)
    display_name: str
    kind: str  # calendar | addressbook
    color: str
    owner: str  # the principal that owns it
    level: Level
    collection: CollectionRef | None  # None for a directory book

    @property
    def is_own(self) -> bool:
        return self.level is Level.OWNER


class Collections:
    """Creates and lists collections in the DAV storage."""

    def __init__(
        self,
        storage: Storage,
        directory: Directory,
        sharing: Sharing,
        *,
        language: str = "fr",
        department_agendas: bool = True,
    ) -> None:
        self._storage = storage
        self._directory = directory
        self._sharing = sharing
        self._language = language
        self._department_agendas = department_agendas
        self._ensured: set[str] = set()
        self._ensured_lock = threading.Lock()

    # --- defaults --------------------------------------------------------------------

    def ensure_defaults(self, person: Person, groups: Sequence[Group] | None = None) -> None:
        """The person's home, calendar and address book, and their departments' agendas.

        Args:
            person: whose.
            groups: the person's groups, when the caller read them in this request.
        """
        if person.login not in self._ensured:
            names = DEFAULT_NAMES.get(person.language, DEFAULT_NAMES["en"])
            with self._storage.acquire_lock("w", person.login):
                home = f"/{person.login}/"
                if next(iter(self._storage.inner.discover(home, depth="0")), None) is None:
                    self._storage.inner.create_collection(home)
                    self._make(home + CALENDAR_NAME + "/", "calendar", names[CALENDAR_NAME])
                    self._make(
                        home + ADDRESSBOOK_NAME + "/", "addressbook", names[ADDRESSBOOK_NAME]
                    )
                    log.info("dav.defaults.created user=%s", person.login)
            self._remember(person.login)
        if self._department_agendas:
            if groups is None:
                groups = self._directory.groups_of(person.id)
            for group in groups:
                if group.kind == "department":
                    self._ensure_agenda(GROUP_PREFIX + group.name, group.display_name)

    def _ensure_agenda(self, principal: str, group_display_name: str) -> None:
        if principal in self._ensured:
            return
        names = DEFAULT_NAMES.get(self._language, DEFAULT_NAMES["en"])
        with self._storage.acquire_lock("w", principal):
            home = f"/{principal}/"
            if next(iter(self._storage.inner.discover(home, depth="0")), None) is None:
                self._storage.inner.create_collection(home)
                display = names[DEPARTMENT_AGENDA_NAME].format(group=group_display_name)
                self._make(home + DEPARTMENT_AGENDA_NAME + "/", "calendar", display)
                log.info("dav.department_agenda.created group=%s", principal)
        self._remember(principal)

    def _remember(self, principal: str) -> None:
        with self._ensured_lock:
            self._ensured.add(principal)

    def _make(self, path: str, kind: str, display_name: str, color: str = "") -> None:
        props = {"tag": KINDS[kind], "D:displayname": display_name}
        if kind == "calendar":
            props["C:supported-calendar-component-set"] = _CALENDAR_COMPONENTS
            props["ICAL:calendar-color"] = color or _DEFAULT_COLOR
        self._storage.inner.create_collection(path, props=props)

    # --- creating --------------------------------------------------------------------

    def create(
        self, owner: str, name: str, kind: str, display_name: str, *, color: str = ""
    ) -> CollectionInfo:
        """Make a calendar or address book under ``owner`` (a login or ``@group``)."""
        owner = self._sharing.principal(owner)
        if kind not in KINDS:
            raise GroupwareError(f"unknown kind {kind!r}: use calendar or addressbook")
        if not _NAME.match(name) or is_mount_segment(name):
            raise GroupwareError(
                f"invalid collection name {name!r}: lowercase letters, digits, '.', '-', '_'"
            )
        if owner.startswith(GROUP_PREFIX):
            group = self._directory.get_group(owner[len(GROUP_PREFIX) :])
            home = f"/{owner}/"
            with self._storage.acquire_lock("w", owner):
                if next(iter(self._storage.inner.discover(home, depth="0")), None) is None:
                    self._storage.inner.create_collection(home)
            display_name = display_name or group.display_name
        else:
            self.ensure_defaults(self._directory.get(owner))
        path = f"/{owner}/{name}/"
        with self._storage.acquire_lock("w", owner):
            if next(iter(self._storage.inner.discover(path, depth="0")), None) is not None:
                raise ConflictError(f"{owner}/{name} exists already")
            self._make(path, kind, display_name or name, color)
        found = self.find(CollectionRef(owner, name))
        assert found is not None
        return found

    # --- listing ---------------------------------------------------------------------

    def find(self, collection: CollectionRef) -> CollectionInfo | None:
        """An existing collection by owner and name."""
        with self._storage.acquire_lock("r", collection.owner):
            found = next(iter(self._storage.inner.discover(f"/{collection.key}/", depth="0")), None)
            if not isinstance(found, radicale_storage.BaseCollection):
                return None
            return _info(found, f"/{collection.key}/", collection, Level.OWNER)

    def get(self, collection: CollectionRef) -> CollectionInfo:
        """Like :meth:`find`, but a missing collection is an error."""
        found = self.find(collection)
        if found is None:
            raise NotFoundError("collection", collection.key)
        return found

    def owned_by(self, principal: str) -> list[CollectionInfo]:
        """The calendars and address books of ``principal``, calendars first."""
        found = []
        with self._storage.acquire_lock("r", principal):
            for entry in self._storage.inner.discover(f"/{principal}/", depth="1"):
                if not isinstance(entry, radicale_storage.BaseCollection):
                    continue
                parts = entry.path.split("/")
                if len(parts) != 2:
                    continue
                info = _info(entry, f"/{entry.path}/", CollectionRef(*parts), Level.OWNER)
                if info is not None:
                    found.append(info)
        return _ordered(found)

    def collections_for(self, person: Person) -> list[CollectionInfo]:
        """Everything in the person's home: their own, then what others share with them."""
        self.ensure_defaults(person)
        found = self.owned_by(person.login)
        with self._storage.acquire_lock("r", person.login):
            for entry in self._storage.discover(f"/{person.login}/", depth="1"):
                if isinstance(entry, MountedCollection):
                    mount = entry.mount
                    info = _info(entry, f"/{entry.path}/", mount.collection, mount.level)
                    if info is not None:
                        found.append(info)
        own = [c for c in found if c.is_own]
        return own + _ordered([c for c in found if not c.is_own])

    # --- events ----------------------------------------------------------------------

    def deleted(self, person: Person, path: str) -> None:
        """A DELETE succeeded on ``path``: a deleted collection loses its grants."""
        parts = [part for part in path.split("/") if part]
        if len(parts) == 2 and not is_mount_segment(parts[1]):
            self._sharing.forget_collection(CollectionRef(*parts), actor=person.login)


def _info(
    entry: radicale_storage.BaseCollection,
    path: str,
    collection: CollectionRef | None,
    level: Level,
) -> CollectionInfo | None:
    tag = entry.get_meta("tag")
    if tag not in ("VCALENDAR", "VADDRESSBOOK"):
        return None
    name = path.strip("/").rsplit("/", 1)[-1]
    return CollectionInfo(
        path=path,
        name=name,
        display_name=entry.get_meta("D:displayname") or name,
        kind="calendar" if tag == "VCALENDAR" else "addressbook",
        color=entry.get_meta("ICAL:calendar-color") or "",
        owner=collection.owner if collection else "",
        level=level,
        collection=collection,
    )


def _ordered(found: list[CollectionInfo]) -> list[CollectionInfo]:
    return sorted(found, key=lambda c: (c.kind != "calendar", c.display_name.lower()))
