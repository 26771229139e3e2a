# SPDX-License-Identifier: GPL-3.0-or-later
"""The core objects every service shares, built once from the configuration."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from groupware.config import Config
from groupware.core.app_passwords import AppPasswords
from groupware.core.audit import Audit
from groupware.core.auth import Authenticator, portal_credential
from groupware.core.db import make_engine
from groupware.core.directory import Directory
from groupware.core.group_managers import GroupManagers
from groupware.core.mail_preferences import MailPreferences
from groupware.core.passwords import Hasher, NumenKey
from groupware.core.second_factor import SecondFactor
from groupware.core.sharing import Sharing
from groupware.core.web_sessions import WebSessions


@dataclass(frozen=True, slots=True)
class Core:
    """Config, database, directory, authentication, sharing and audit, wired together."""

    config: Config
    engine: Engine
    audit: Audit
    directory: Directory
    authenticator: Authenticator
    sharing: Sharing
    app_passwords: AppPasswords
    second_factor: SecondFactor
    web_sessions: WebSessions
    group_managers: GroupManagers
    mail_preferences: MailPreferences

    @classmethod
    def open(cls, config: Config) -> Core:
        """Connect to the database (creating the schema) and build the services.

        Raises:
            ConfigError: the server secret is missing or unreadable, or the webmail's
                master password file (see :func:`portal_credential`).
        """
        secret = config.read_secret()
        engine = make_engine(config.database_url)
        audit = Audit(engine)
        hasher = Hasher(config.auth)
        directory = Directory(engine, config, NumenKey(secret), hasher, audit)
        app_passwords = AppPasswords(
            engine, hasher, audit, secret, cache_seconds=config.auth.cache_seconds
        )
        second_factor = SecondFactor(
            engine, hasher, audit, secret, issuer=config.server.institution_name
        )
        authenticator = Authenticator(
            directory,
            engine,
            config.auth,
            audit,
            secret,
            app_passwords=app_passwords,
            second_factor=second_factor,
            portal=portal_credential(config, secret),
        )
        sharing = Sharing(engine, directory, audit, freebusy_default=config.dav.freebusy_default)
        web_sessions = WebSessions(engine, audit, idle_seconds=config.http.session_idle_seconds)
        return cls(
            config,
            engine,
            audit,
            directory,
            authenticator,
            sharing,
            app_passwords,
            second_factor,
            web_sessions,
            GroupManagers(engine, directory, audit),
            MailPreferences(
                engine,
                directory,
                audit,
                default_per_page=config.webmail.messages_per_page_count,
            ),
        )

    def close(self) -> None:
        """Release database connections."""
        self.engine.dispose()
