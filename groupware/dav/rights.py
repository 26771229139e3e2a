# SPDX-License-Identifier: GPL-3.0-or-later
"""Radicale rights plugin: the ACL of ``core.sharing``, deny unless a rule allows.

Radicale asks for the permission letters of a user on a collection path; items
inherit their collection's. The letters we give:

==============================  ==========================================
path                            letters
==============================  ==========================================
``/``                           ``R`` (discovery) for anyone logged in
``/<own login>/``               ``RW``: list the home, make collections
``/<own login>/<name>/``        ``rwDO``: everything, delete and replace it
``/<own login>/<mount>/``       the mount's level (see ``dav.scope``)
``/<login>/<name>/``            the level the ACL gives on it, if any
``/@<group>/``                  ``R`` for the group's members
``/@<group>/<name>/``           the ACL's level (members read)
``/~directory/`` and books      ``R`` / ``r`` for anyone logged in
==============================  ==========================================

Levels become letters: free/busy ``f``, read ``r``, write and manage ``rw``. Only
owners get ``D`` (delete the collection) and ``O`` (replace it whole): Radicale's
``permit_delete_collection`` and ``permit_overwrite_collection`` are off.
"""

from __future__ import annotations

from typing import Any, Final

from radicale import pathutils
from radicale.rights import BaseRights

from groupware.core.sharing import CollectionRef, Level
from groupware.dav import directory_books
from groupware.dav.scope import RequestScope, ScopeSource, is_mount_segment

LETTERS: Final = {
    Level.FREEBUSY: "f",
    Level.READ: "r",
    Level.WRITE: "rw",
    Level.MANAGE: "rw",
    Level.OWNER: "rwDO",
}


class Rights(BaseRights):
    """Radicale's rights hook; the class name is what Radicale's loader expects."""

    def __init__(self, configuration: Any, *, scopes: ScopeSource, storage: Any) -> None:
        super().__init__(configuration)  # Radicale seam
        self._scopes = scopes
        self._storage = storage  # ours (dav.storage.Storage), for the homes' mounts

    def authorization(self, user: str, user_groups: set[str], path: str) -> str:
        """Radicale permission letters for ``user`` on ``path``."""
        if not user:
            return ""
        scope = self._scopes.current()
        return scope.letters(user, path, lambda: self._letters(scope, user, path))

    def _letters(self, scope: RequestScope, user: str, path: str) -> str:
        parts = [part for part in pathutils.strip_path(path).split("/") if part]
        if not parts:
            return "R"
        view = scope.view(user)
        if view is None:
            return ""
        first = parts[0]
        if len(parts) == 1:
            if first == user:
                return "RW"
            if first == directory_books.ROOT or first in view.principals:
                return "R"
            return ""
        if len(parts) > 2:
            return ""
        if first == directory_books.ROOT:
            return "r"
        if first == user and is_mount_segment(parts[1]):
            mount = self._storage.mounts(user).get(parts[1])
            return "" if mount is None else LETTERS[mount.level]
        if is_mount_segment(parts[1]):
            return ""  # a mount is seen from its own home only
        level = view.level(CollectionRef(first, parts[1]))
        return "" if level is None else LETTERS[level]
