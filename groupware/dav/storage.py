# SPDX-License-Identifier: GPL-3.0-or-later
"""Radicale storage plugin: the inner store, plus mounts and the directory books.

Every path Radicale asks about goes through :meth:`Storage.discover`:

- ``/<home>/<owner>~<name>/...`` (a mount, see ``dav.scope``) is served by the mounted
  collection, wrapped in a :class:`MountedCollection` that answers with the path in
  the home, the owner's name in its display name and the person's own display name
  and colour when they set one (``PROPPATCH`` on a mount never changes the owner's);
- ``/<home>/`` listed at depth 1 gets the home's mounts after its own collections;
- ``/~directory/...`` is served by ``dav.directory_books``;
- anything else goes to the inner storage unchanged (``dav.sqlstore``, or
  Radicale's file store when so configured: see ``dav.radicale_config``).

Rights are not decided here: Radicale asks ``dav.rights`` about the path requested,
the mount path included, before any storage call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from radicale import item as radicale_item
from radicale import pathutils, storage

from groupware.core.sharing import GROUP_PREFIX, Sharing
from groupware.dav import directory_books
from groupware.dav.scope import Mount, ScopeSource, is_mount_segment

_OWN_VIEW_KEYS = ("D:displayname", "ICAL:calendar-color", "ICAL:calendar-order")


class Storage(storage.BaseStorage):
    """Radicale's storage hook; the class name is what Radicale's loader expects."""

    def __init__(  # Radicale seam
        self,
        configuration: Any,
        *,
        inner: storage.BaseStorage,
        scopes: ScopeSource,
        sharing: Sharing,
        books: directory_books.DirectoryBooks,
    ) -> None:
        super().__init__(configuration)
        self.inner = inner
        self._scopes = scopes
        self._sharing = sharing
        self._books = books
        # Radicale asks these of its storage class (pathutils, app start).
        self._is_collision_free = self.inner._is_collision_free  # noqa: SLF001
        self._supports_unicode = self.inner._supports_unicode  # noqa: SLF001
        self._supports_trailing_whitespace = self.inner._supports_trailing_whitespace  # noqa: SLF001
        self._supports_problematic_chars = self.inner._supports_problematic_chars  # noqa: SLF001

    # --- paths -----------------------------------------------------------------------

    def mounts(self, home: str) -> dict[str, Mount]:
        """The mounts of ``home`` (a login), in the current request's scope."""
        return self._scopes.current().mounts(home, self.collection_names)

    def collection_names(self, principal: str) -> list[str]:
        """The names of the collections directly under ``principal`` in the inner storage."""
        names = []
        for found in self.inner.discover(f"/{principal}/", depth="1"):
            if (
                isinstance(found, storage.BaseCollection)
                and found.path != principal
                and found.get_meta("tag")
            ):
                names.append(found.path.rsplit("/", 1)[-1])
        return sorted(names)

    def resolve(self, path: str) -> tuple[str, Mount | None, str]:
        """``(storage path, mount, home)`` for a request path (sanitized)."""
        parts = [part for part in pathutils.strip_path(path).split("/") if part]
        if len(parts) >= 2 and _is_home(parts[0]) and is_mount_segment(parts[1]):
            mount = self.mounts(parts[0]).get(parts[1])
            if mount is not None:
                return "/".join([mount.target, *parts[2:]]), mount, parts[0]
        return "/".join(parts), None, parts[0] if parts else ""

    # --- BaseStorage -----------------------------------------------------------------

    def discover(
        self,
        path: str,
        depth: str = "0",
        child_context_manager: Callable[[str, str | None], contextlib.AbstractContextManager[None]]
        | None = None,
        user_groups: set[str] | None = None,
    ) -> Iterable[Any]:
        """The object at ``path`` and, at depth 1, its children (see the module doc)."""
        parts = [part for part in pathutils.strip_path(path).split("/") if part]
        if len(parts) >= 2 and _is_home(parts[0]) and is_mount_segment(parts[1]):
            mount = self.mounts(parts[0]).get(parts[1])
            if mount is None:
                return iter(())
            return self._discover_mount(parts[0], mount, parts[2:], depth)
        if parts and parts[0] == directory_books.ROOT:
            return self._books.discover(parts[1:], depth)
        found = self.inner.discover(path, depth, child_context_manager, user_groups or set())
        if len(parts) == 1 and _is_home(parts[0]) and depth != "0":
            return self._with_mounts(parts[0], found)
        return found

    def _with_mounts(self, home: str, found: Iterable[Any]) -> Iterator[Any]:
        any_found = False
        for entry in found:
            any_found = True
            yield entry
        if not any_found:
            return
        for mount in self.mounts(home).values():
            collection = self._target(mount)
            if collection is not None:
                yield MountedCollection(collection, home, mount, self._sharing)

    def _discover_mount(
        self, home: str, mount: Mount, rest: list[str], depth: str
    ) -> Iterator[Any]:
        target = self._target(mount)
        if target is None:
            return
        wrapped = MountedCollection(target, home, mount, self._sharing)
        if rest:
            if len(rest) == 1:
                for _href, entry in target.get_multi(rest):
                    if entry is not None:
                        yield wrapped.adopt(entry)
            return
        yield wrapped
        if depth != "0":
            for entry in target.get_all():
                yield wrapped.adopt(entry)

    def _target(self, mount: Mount) -> storage.BaseCollection | None:
        parts = mount.target.split("/")
        if parts[0] == directory_books.ROOT:
            return self._books.book(parts[1])
        found = next(iter(self.inner.discover(f"/{mount.target}/", depth="0")), None)
        if isinstance(found, storage.BaseCollection) and found.get_meta("tag"):
            return found
        return None

    def move(
        self, item: radicale_item.Item, to_collection: storage.BaseCollection, to_href: str
    ) -> None:
        """Move an item, between real collections whatever path named them."""
        if isinstance(item.collection, MountedCollection):
            item.collection = item.collection.inner
        if isinstance(to_collection, MountedCollection):
            to_collection = to_collection.inner
        if isinstance(item.collection, directory_books.DirectoryBook) or isinstance(
            to_collection, directory_books.DirectoryBook
        ):
            raise PermissionError("the directory address book is read-only")
        self.inner.move(item, to_collection, to_href)

    def create_collection(
        self,
        href: str,
        items: Iterable[radicale_item.Item] | None = None,
        props: Mapping[str, str] | None = None,
    ) -> Any:
        """Create (or, with items, replace) a collection of the inner storage."""
        real, mount, _home = self.resolve(href)
        if mount is not None or real.split("/", 1)[0] == directory_books.ROOT:
            # Rights refuse this before we are asked; never replace through a mount.
            raise PermissionError("a shared collection cannot be replaced through a share")
        return self.inner.create_collection(href, items, props)

    @contextlib.contextmanager
    def acquire_lock(self, mode: str, user: str = "", *args: Any, **kwargs: Any) -> Iterator[None]:
        """The inner store's lock, for the real collections a mount path names."""
        for key in ("path", "to_path"):
            if kwargs.get(key):
                kwargs[key] = "/" + self.resolve(kwargs[key])[0] + "/"
        with self.inner.acquire_lock(mode, user, *args, **kwargs):
            yield

    def verify(self) -> bool:
        return bool(self.inner.verify())


class MountedCollection(storage.BaseCollection):
    """Someone else's collection as it appears in a home (see the module doc)."""

    def __init__(
        self, inner: storage.BaseCollection, home: str, mount: Mount, sharing: Sharing
    ) -> None:
        self.inner = inner
        self._path = f"{home}/{mount.segment}"
        self._home = home
        self.mount = mount
        self._sharing = sharing
        self._own: dict[str, str | None] | None = None

    def adopt(self, entry: radicale_item.Item) -> radicale_item.Item:
        """``entry`` of the inner collection, answered under this path."""
        entry.collection = self
        return entry

    @property
    def path(self) -> str:
        return self._path

    @property
    def owner(self) -> str:
        owner = self.inner.owner
        return owner if owner else self._home

    @property
    def etag(self) -> str:
        return self.inner.etag

    @property
    def last_modified(self) -> str:
        return self.inner.last_modified

    def sync(self, old_token: str = "") -> tuple[str, Iterable[str]]:
        return self.inner.sync(old_token)

    def get_multi(self, hrefs: Iterable[str]) -> Iterable[tuple[str, radicale_item.Item | None]]:
        return [
            (href, None if entry is None else self.adopt(entry))
            for href, entry in self.inner.get_multi(hrefs)
        ]

    def get_all(self) -> Iterable[radicale_item.Item]:
        return (self.adopt(entry) for entry in self.inner.get_all())

    def get_filtered(self, filters: Iterable[Any]) -> Iterable[tuple[radicale_item.Item, bool]]:
        return ((self.adopt(entry), matched) for entry, matched in self.inner.get_filtered(filters))

    def has_uid(self, uid: str) -> bool:
        return self.inner.has_uid(uid)

    def upload(
        self, href: str, item: radicale_item.Item
    ) -> tuple[radicale_item.Item, radicale_item.Item | None]:
        uploaded, replaced = self.inner.upload(href, item)
        return self.adopt(uploaded), replaced

    def delete(self, href: str | None = None) -> None:
        if href is None:
            # Rights never let a sharee delete the collection itself.
            raise PermissionError("a shared collection cannot be deleted through a share")
        self.inner.delete(href)

    # --- properties: the owner's, with the person's own display name and colour -------

    def _own_props(self) -> dict[str, str | None]:
        if self._own is None:
            collection = self.mount.collection
            self._own = (
                {} if collection is None else self._sharing.view_props(self._home, collection)
            )
        return self._own

    def get_meta(self, key: str | None = None) -> Any:
        meta = dict(self.inner.get_meta())
        name = meta.get("D:displayname") or self.mount.segment.rsplit("~", 1)[-1]
        if self.mount.owner_name:
            name = f"{name} ({self.mount.owner_name})"
        meta["D:displayname"] = name
        for own_key, value in self._own_props().items():
            if value is None:
                meta.pop(own_key, None)
            else:
                meta[own_key] = value
        return meta if key is None else meta.get(key)

    def set_meta(self, props: Mapping[str, str]) -> None:
        """PROPPATCH on a mount: the person's own view changes, never the owner's."""
        collection = self.mount.collection
        if collection is None:
            raise PermissionError("the directory address book is read-only")
        current = self.get_meta()
        changes: dict[str, str | None] = {}
        for key in set(current) | set(props):
            if key == "tag" or props.get(key) == current.get(key):
                continue
            if key not in _OWN_VIEW_KEYS:
                continue  # the owner's to change
            changes[key] = props.get(key)
        if changes:
            self._sharing.set_view(self._home, collection, props=changes)
            self._own = None


def _is_home(segment: str) -> bool:
    """Whether a first path segment can be a person's home (not a group, not a book)."""
    return not segment.startswith((GROUP_PREFIX, directory_books.ROOT))
