# SPDX-License-Identifier: GPL-3.0-or-later
"""SQL schema and engine for the directory, accounts, throttling and audit.

SQLAlchemy Core, portable SQL only: the same tables run on SQLite (embedded
default) and PostgreSQL. The schema is created with ``metadata.create_all``;
every table belongs to one core module that owns its rows:

- ``persons``, ``addresses``, ``groups``, ``group_members``: ``core.directory``
- ``group_managers``: ``core.group_managers``
- ``login_failures``: ``core.auth`` (throttling)
- ``audit_log``: ``core.audit``
- ``directory_revision``, ``directory_changes``: ``core.directory_log``
- ``dav_shares``, ``dav_share_views``, ``freebusy_policies``: ``core.sharing``
- ``app_passwords``: ``core.app_passwords``
- ``second_factors``, ``recovery_codes``: ``core.second_factor``
- ``web_sessions``: ``core.web_sessions``
- ``mail_trusted_senders``: ``core.trusted_senders``
- ``mail_settings``, ``mail_identities``, ``mail_labels``: ``core.mail_preferences``
- ``import_jobs``: ``core.import_jobs``
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)

metadata = MetaData()

persons = Table(
    "persons",
    metadata,
    Column("id", Integer, primary_key=True),
    # HMAC-SHA256 of the NUMEN with the server secret: the import key and the
    # first-login and reset credential; the NUMEN itself is never stored.
    Column("numen_hmac", String(64), nullable=False, unique=True),
    Column("login", String(128), nullable=False, unique=True),
    Column("email", String(255), nullable=False, unique=True),
    Column("first_name", String(128), nullable=False),
    Column("last_name", String(128), nullable=False),
    Column("birth_date", Date, nullable=True),
    Column("role", String(128), nullable=False, default=""),
    Column("school", String(255), nullable=False, default=""),
    Column("discipline", String(128), nullable=False, default=""),
    Column("service", String(128), nullable=False, default=""),
    Column("is_active", Boolean, nullable=False, default=True),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("must_change_password", Boolean, nullable=False, default=True),
    Column("password_hash", String(255), nullable=True),
    Column("quota_bytes", BigInteger, nullable=False),
    Column("language", String(8), nullable=False, default="fr"),
    # Bumped on every credential or status change; keys the auth cache.
    Column("credential_version", Integer, nullable=False, default=0),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("password_changed_at", DateTime(timezone=True), nullable=True),
)

# Every address ever given, so that none moves to another person.
addresses = Table(
    "addresses",
    metadata,
    Column("address", String(255), primary_key=True),
    Column("person_id", Integer, ForeignKey("persons.id"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # primary | alias
    Column("created_at", DateTime(timezone=True), nullable=False),
)

groups = Table(
    "groups",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("display_name", String(512), nullable=False),
    Column("kind", String(16), nullable=False),  # school | department | role | custom
    Column("school", String(255), nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

group_members = Table(
    "group_members",
    metadata,
    Column("group_id", Integer, ForeignKey("groups.id"), primary_key=True),
    Column("person_id", Integer, ForeignKey("persons.id"), primary_key=True, index=True),
    # import: kept in step with the HR file; manual: only the CLI/admin removes it
    Column("source", String(16), nullable=False),
)

# Who keeps a group: a manager has ``manage`` on every collection the group owns (its
# department agenda first), and is a member too (core.group_managers sees to it).
group_managers = Table(
    "group_managers",
    metadata,
    Column("group_id", Integer, ForeignKey("groups.id"), primary_key=True),
    Column("person_id", Integer, ForeignKey("persons.id"), primary_key=True, index=True),
)

login_failures = Table(
    "login_failures",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account", String(255), nullable=False),
    Column("client", String(64), nullable=False),
    Column("failures_count", Integer, nullable=False),
    Column("first_failure_at", DateTime(timezone=True), nullable=False),
    Column("last_failure_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("account", "client", name="uq_login_failures_pair"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("event", String(64), nullable=False, index=True),
    Column("actor", String(255), nullable=False),
    Column("subject", String(255), nullable=False, default=""),
    Column("protocol", String(16), nullable=False, default=""),
    Column("client", String(64), nullable=False, default=""),
    # Fits every auth.Outcome value ("must_change_password" is 20 characters).
    Column("outcome", String(32), nullable=False),
    Column("detail", Text, nullable=False, default=""),
)
Index("ix_audit_subject_at", audit_log.c.subject, audit_log.c.at)

# One row: the directory's revision, bumped (row-locked until commit) by every
# transaction that changes what the directory address book shows, so that
# revisions are in commit order on PostgreSQL too.
directory_revision = Table(
    "directory_revision",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("revision", BigInteger, nullable=False),
)

# Who changed at which revision, and in which school's book (a move writes two).
directory_changes = Table(
    "directory_changes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("revision", BigInteger, nullable=False, index=True),
    Column("person_id", Integer, ForeignKey("persons.id"), nullable=False),
    Column("school", String(255), nullable=False, default=""),
)
Index("ix_directory_changes_school", directory_changes.c.school, directory_changes.c.revision)

# Grants on calendars and address books. Principals are path segments, stable for
# ever: a login (``alice.martin``) or ``@`` and a group name (``@lycee-joffre.lettres``).
dav_shares = Table(
    "dav_shares",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("owner", String(160), nullable=False),
    Column("collection", String(255), nullable=False),
    Column("grantee", String(160), nullable=False, index=True),
    Column("level", String(8), nullable=False),  # read | write | manage
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(255), nullable=False),
    UniqueConstraint("owner", "collection", "grantee", name="uq_dav_shares_grant"),
)

# A person's own view of a collection shared with them: hidden or not, and the
# properties (display name, colour) they set for themselves.
dav_share_views = Table(
    "dav_share_views",
    metadata,
    Column("login", String(160), primary_key=True),
    Column("target", String(512), primary_key=True),  # "<owner>/<collection>"
    Column("is_hidden", Boolean, nullable=False, default=False),
    Column("props", Text, nullable=False, default="{}"),  # JSON: key -> value or null
)

# Per-device passwords (mail, calendars and contacts, or both). Found by a keyed
# hash of the whole secret (indexed), then checked against its argon2id hash.
app_passwords = Table(
    "app_passwords",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("person_id", Integer, ForeignKey("persons.id"), nullable=False, index=True),
    Column("name", String(64), nullable=False),
    Column("scope", String(8), nullable=False),  # mail | dav | all
    Column("lookup_hmac", String(64), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    Column("last_used_protocol", String(16), nullable=False, default=""),
    Column("last_used_from", String(64), nullable=False, default=""),
)

# TOTP secrets (encrypted with a key derived from the server secret). Enabled once the
# person has typed a first code; the last time step used is kept against replays.
second_factors = Table(
    "second_factors",
    metadata,
    Column("person_id", Integer, ForeignKey("persons.id"), primary_key=True),
    Column("secret_encrypted", Text, nullable=False),
    Column("enabled_at", DateTime(timezone=True), nullable=True),
    Column("last_step", BigInteger, nullable=False, default=0),
)

# One-use recovery codes (argon2id hashes), made when TOTP is turned on.
recovery_codes = Table(
    "recovery_codes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("person_id", Integer, ForeignKey("persons.id"), nullable=False, index=True),
    Column("code_hash", String(255), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
)

# Signed-in browsers: the SHA-256 of the cookie's random token (never the token), the
# credential version the session was opened under, last activity (written at most
# once a minute), the client's address and the browser and system of its User-Agent.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("person_id", Integer, ForeignKey("persons.id"), nullable=False, index=True),
    Column("credential_version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False, index=True),
    Column("client", String(64), nullable=False, default=""),
    Column("browser", String(32), nullable=False, default=""),
    Column("system", String(32), nullable=False, default=""),
    # Ids are never reused: a page listing sessions must not sign out a newer one.
    sqlite_autoincrement=True,
)

# Senders whose remote images a person chose to see without asking each time (the
# address in lower case); the webmail honours a row only for a verified sender.
mail_trusted_senders = Table(
    "mail_trusted_senders",
    metadata,
    Column("person_id", Integer, ForeignKey("persons.id"), primary_key=True),
    Column("address", String(255), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# The webmail's preferences of a person; no row (or a NULL) means the default.
mail_settings = Table(
    "mail_settings",
    metadata,
    Column("person_id", Integer, ForeignKey("persons.id"), primary_key=True),
    Column("messages_per_page", Integer, nullable=True),
    Column("reading_pane", String(16), nullable=True),  # list | right | bottom
    Column("default_address", String(255), nullable=True),
)

# What the person set for an address they may send as (core.send_as): the name shown
# in From and the signature. Rows of addresses no longer theirs are ignored.
mail_identities = Table(
    "mail_identities",
    metadata,
    Column("person_id", Integer, ForeignKey("persons.id"), primary_key=True),
    Column("address", String(255), primary_key=True),
    Column("display_name", String(128), nullable=False, default=""),
    Column("signature", Text, nullable=False, default=""),
)

# Labels: IMAP keywords (RFC 3501 §2.3.2) the person defined, with a name and a colour.
mail_labels = Table(
    "mail_labels",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("person_id", Integer, ForeignKey("persons.id"), nullable=False, index=True),
    Column("keyword", String(64), nullable=False),
    Column("name", String(64), nullable=False),
    Column("colour", String(16), nullable=False),
    UniqueConstraint("person_id", "keyword", name="uq_mail_labels_keyword"),
)

# Who may see a person's free/busy time; no row means the configured default.
freebusy_policies = Table(
    "freebusy_policies",
    metadata,
    Column("login", String(160), primary_key=True),
    Column("scope", String(16), nullable=False),  # nobody | school | everyone
)

# Calendar and contact imports the portal runs in a background thread: progress and
# report, written by the process running the import, read by the progress page in any
# process. ``skipped`` holds only the first skips (the count holds them all).
import_jobs = Table(
    "import_jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("login", String(128), nullable=False),
    Column("total_count", Integer, nullable=False),
    Column("done_count", Integer, nullable=False, default=0),
    Column("imported_count", Integer, nullable=False, default=0),
    Column("skipped_count", Integer, nullable=False, default=0),
    Column("skipped", Text, nullable=False, default="[]"),  # JSON: [[uid, reason], ...]
    Column("is_finished", Boolean, nullable=False, default=False),
    Column("is_failed", Boolean, nullable=False, default=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    # Written with every progress write: a running job's is at most seconds old.
    Column("updated_at", DateTime(timezone=True), nullable=False, index=True),
)


def stored_utc(moment: datetime) -> datetime:
    """A ``DateTime(timezone=True)`` value as read back, made aware (UTC).

    SQLite gives back naive datetimes (they are stored as UTC); PostgreSQL aware ones.
    """
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers proceed during the import's writes; NORMAL is durable
    # in WAL mode except for the last transactions on power loss.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _postgresql_utc(dbapi_connection: Any, _record: Any) -> None:
    # PostgreSQL returns timestamps in the session's zone (the server's TimeZone,
    # often Europe/Paris here); SQLite returns what was stored, UTC. In UTC on both,
    # a stored instant reads back as the same wall clock and the same calendar day
    # (IMAP INTERNALDATE, SEARCH SINCE/ON). Committed: a rolled-back SET is undone.
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'UTC'")
    dbapi_connection.commit()


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that holds SQLite's write lock from its first statement.

    pysqlite begins a transaction only before an INSERT, UPDATE or DELETE, so most
    transactions take the write lock with their first statement and wait for it
    (``busy_timeout``). One that begins otherwise (a ``SAVEPOINT``, from
    ``begin_nested``) and reads before it writes cannot wait: if another connection
    wrote in between, SQLite refuses the write at once ("database is locked"), as
    its snapshot is stale. ``BEGIN IMMEDIATE`` takes the lock first, waiting for it.
    PostgreSQL needs none of this: a plain transaction.
    """
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
            return
        with conn.begin():
            yield conn


def make_engine(url: str) -> Engine:
    """Create the engine for ``url`` and make sure the schema exists."""
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    elif engine.dialect.name == "postgresql":
        event.listen(engine, "connect", _postgresql_utc)
    metadata.create_all(engine)
    return engine
