# SPDX-License-Identifier: GPL-3.0-or-later
"""Radicale's configuration, built in memory from ours (no Radicale config file)."""

from __future__ import annotations

import functools

from radicale import config as radicale_config
from radicale import storage as radicale_storage
from radicale.storage import multifilesystem
from sqlalchemy import Engine

from groupware.config import Config
from groupware.core.sharing import Sharing
from groupware.dav import auth as dav_auth
from groupware.dav import directory_books
from groupware.dav import rights as dav_rights
from groupware.dav import storage as dav_storage
from groupware.dav.radicale_memo import remember_pure_helpers
from groupware.dav.scope import ScopeSource
from groupware.dav.sqlstore.storage import SqlStorage


def build(
    config: Config,
    tickets: dav_auth.TicketBook,
    *,
    engine: Engine,
    scopes: ScopeSource,
    sharing: Sharing,
    books: directory_books.DirectoryBooks,
) -> tuple[radicale_config.Configuration, dav_storage.Storage]:
    """A Radicale ``Configuration`` with our plugins, and our storage plugin's instance.

    The storage is made here, before Radicale loads its plugins, so that the rights
    plugin can read the homes' mounts from the very instance Radicale serves from.
    Under the wrapper (mounts, directory books) sits the SQL store over ``engine``,
    or Radicale's file store when ``dav.storage = "files"``.
    """
    remember_pure_helpers()
    configuration = radicale_config.load()
    storage_folder = config.path(config.dav.storage_folder)
    configuration.update(
        {
            "auth": {
                "type": functools.partial(dav_auth.Auth, tickets=tickets),
                # Throttling and delays are ours (core.auth), for every protocol alike.
                "delay": "0",
            },
            "rights": {
                # Only the letters D and O of dav.rights (owners) allow these.
                "permit_delete_collection": "False",
                "permit_overwrite_collection": "False",
            },
            "storage": {
                "filesystem_folder": str(storage_folder),
                "predefined_collections": "",
            },
            "sharing": {"type": "none"},
            "web": {"type": "none"},
            "server": {
                "max_content_length": str(config.dav.max_resource_bytes * 2),
                "max_resource_size": str(int(config.dav.max_resource_bytes)),
            },
            "logging": {"mask_passwords": "True"},
            "hook": {"type": "none"},
        },
        "groupware",
        privileged=True,
    )
    inner = inner_storage(config, configuration, engine)
    storage = dav_storage.Storage(
        configuration, inner=inner, scopes=scopes, sharing=sharing, books=books
    )
    configuration.update(
        {
            "storage": {"type": lambda _configuration: storage},
            "rights": {
                "type": functools.partial(dav_rights.Rights, scopes=scopes, storage=storage)
            },
        },
        "groupware plugins",
        privileged=True,
    )
    return configuration, storage


def inner_storage(
    config: Config, configuration: radicale_config.Configuration, engine: Engine
) -> radicale_storage.BaseStorage:
    """The store the wrapper delegates to, as ``dav.storage`` chooses."""
    if config.dav.storage == "files":
        # Radicale's own layout (pinned minor): made here so it never warns at start.
        (config.path(config.dav.storage_folder) / "collection-root").mkdir(
            parents=True, exist_ok=True
        )
        return multifilesystem.Storage(configuration)
    return SqlStorage(configuration, engine)
