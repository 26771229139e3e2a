# SPDX-License-Identifier: GPL-3.0-or-later
"""Radicale's configuration, built in memory from ours (no Radicale config file)."""

from __future__ import annotations

import functools

from radicale import config as radicale_config

from groupware.config import Config
from groupware.dav import auth as dav_auth
from groupware.dav import rights as dav_rights


def build(config: Config, tickets: dav_auth.TicketBook) -> radicale_config.Configuration:
    """A Radicale ``Configuration`` with our plugins and the data folder's storage."""
    configuration = radicale_config.load()
    storage_folder = config.path(config.dav.storage_folder)
    configuration.update(
        {
            "auth": {
                "type": functools.partial(dav_auth.Auth, tickets=tickets),
                # Throttling and delays are ours (core.auth), for every protocol alike.
                "delay": "0",
            },
            "rights": {"type": dav_rights.Rights},
            "storage": {
                "type": "multifilesystem",
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
    return configuration
