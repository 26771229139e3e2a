# SPDX-License-Identifier: GPL-3.0-or-later
"""What a DAV request needs from the ACL, read once per request.

Radicale asks the rights plugin about many paths in one request (a home listing asks
about each collection), and our storage lists what is mapped into a home. Both read
through the request's :class:`RequestScope`, which memoizes people's access views and
homes' mounts for the length of one request only: a grant, a revocation or a group
membership change shows on the next request.

A *mount* is a collection of someone else listed in a person's home, so that clients
find it there without any manual URL (DAVx5, iOS and Thunderbird only look in the
home): ``/bob.durand/alice.martin~calendar/`` is Alice's ``calendar`` as Bob sees it,
``/bob.durand/@lycee-joffre.lettres~agenda/`` a department agenda of a group of his,
``/bob.durand/~directory/`` the directory address book. A ``~`` in a home's segment
always means a mount: a person cannot make a collection of their own with one.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Final

from groupware.core.directory import Directory, Person
from groupware.core.sharing import AccessView, CollectionRef, Level, Sharing
from groupware.dav import directory_books

MOUNT_MARK: Final = "~"
DIRECTORY_SEGMENT: Final = MOUNT_MARK + "directory"

ListCollections = Callable[[str], list[str]]  # principal -> its collections' names


@dataclass(frozen=True, slots=True)
class Mount:
    """A collection listed in a home it does not belong to."""

    segment: str  # its name in the home
    target: str  # the storage path of the collection itself: "alice.martin/calendar"
    level: Level
    collection: CollectionRef | None  # None for a directory book
    owner_name: str  # added to the display name ("" when the name says it already)


def mount_segment(collection: CollectionRef) -> str:
    """The name of ``collection`` in the homes it is mounted in."""
    return f"{collection.owner}{MOUNT_MARK}{collection.name}"


def is_mount_segment(segment: str) -> bool:
    return MOUNT_MARK in segment


class RequestScope:
    """One request's memo of access views and mounts."""

    def __init__(
        self, sharing: Sharing, directory: Directory, books: directory_books.DirectoryBooks
    ) -> None:
        self.sharing = sharing
        self.directory = directory
        self.books = books
        self._views: dict[str, AccessView | None] = {}
        self._mounts: dict[str, dict[str, Mount]] = {}
        self._letters: dict[tuple[str, str], str] = {}

    def letters(self, user: str, path: str, find: Callable[[], str]) -> str:
        """The rights letters of ``user`` on ``path``, found once per request.

        Radicale asks again for every item of a listing (10,000 times for one
        Depth-1 PROPFIND of a big calendar), always about the same collection.
        """
        key = (user, path)
        if key not in self._letters:
            self._letters[key] = find()
        return self._letters[key]

    def view(self, login: str) -> AccessView | None:
        """The access of the active person ``login``; ``None`` for anyone else."""
        if login not in self._views:
            person = self.directory.find(login) if login and "@" not in login else None
            active = person is not None and person.is_active and person.login == login
            self._views[login] = self.sharing.view(person) if active else None  # type: ignore[arg-type]
        return self._views[login]

    def adopt(self, person: Person, group_names: Iterable[str] | None = None) -> None:
        """Take ``person`` (active, read in this request) as the view of their login."""
        self._views[person.login] = self.sharing.view(person, group_names)

    def mounts(self, login: str, list_collections: ListCollections) -> dict[str, Mount]:
        """``{segment: mount}`` for ``login``'s home."""
        if login not in self._mounts:
            self._mounts[login] = self._read_mounts(login, list_collections)
        return self._mounts[login]

    def _read_mounts(self, login: str, list_collections: ListCollections) -> dict[str, Mount]:
        view = self.view(login)
        if view is None:
            return {}
        hidden = self.sharing.hidden_collections(login)
        found: dict[str, Mount] = {}
        for collection, level in view.shared_with_me():
            if collection.key in hidden:
                continue
            owner_name = (
                "" if collection.is_group_owned else self.sharing.display_name(collection.owner)
            )
            segment = mount_segment(collection)
            found[segment] = Mount(segment, collection.key, level, collection, owner_name)
        for group in sorted(view.group_names):
            owner = "@" + group
            for name in list_collections(owner):
                collection = CollectionRef(owner, name)
                segment = mount_segment(collection)
                level = view.level(collection)
                if collection.key in hidden or level is None or segment in found:
                    continue
                found[segment] = Mount(segment, collection.key, level, collection, "")
        found[DIRECTORY_SEGMENT] = Mount(
            DIRECTORY_SEGMENT,
            f"{directory_books.ROOT}/{directory_books.ALL}",
            Level.READ,
            None,
            "",
        )
        book = self.books.book_of_school(view.person.school) if view.person.school else None
        if book is not None:
            segment = f"{DIRECTORY_SEGMENT}{MOUNT_MARK}{book}"
            found[segment] = Mount(segment, f"{directory_books.ROOT}/{book}", Level.READ, None, "")
        return found


class ScopeSource:
    """Hands out the current request's scope (a fresh one outside requests)."""

    def __init__(
        self, sharing: Sharing, directory: Directory, books: directory_books.DirectoryBooks
    ) -> None:
        self._parts = (sharing, directory, books)
        self._current: contextvars.ContextVar[RequestScope | None] = contextvars.ContextVar(
            "groupware_dav_scope", default=None
        )

    def current(self) -> RequestScope:
        """The scope of the request being served, or a new one for a one-off call."""
        return self._current.get() or RequestScope(*self._parts)

    @contextlib.contextmanager
    def request(
        self, person: Person | None = None, group_names: Iterable[str] | None = None
    ) -> Iterator[RequestScope]:
        """Serve one request in a scope of its own.

        Args:
            person: the authenticated person, as the front read them for this request
                (active): their access view is then made from it and ``group_names``
                instead of reading both again.
            group_names: ``person``'s groups, read in this request.
        """
        scope = RequestScope(*self._parts)
        if person is not None:
            scope.adopt(person, group_names)
        token = self._current.set(scope)
        try:
            yield scope
        finally:
            self._current.reset(token)
