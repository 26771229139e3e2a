# SPDX-License-Identifier: GPL-3.0-or-later
"""One typed, validated configuration for every service.

Sources, lowest precedence first: dataclass defaults, the data folder's
``groupware.toml``, environment variables, explicit ``overrides`` (tests).

Environment variables are ``GROUPWARE_<SECTION>__<KEY>`` (for example
``GROUPWARE_AUTH__MAX_FAILURES_COUNT=5``). Listener addresses also have the short
forms ``GROUPWARE_HTTP_LISTEN``, ``GROUPWARE_SMTP_LISTEN``,
``GROUPWARE_SUBMISSION_LISTEN`` and ``GROUPWARE_IMAP_LISTEN`` (``host:port``,
comma separated for several; port 0 picks a free port).

Every value is coerced from the field's annotation here and nowhere else; an
unknown key or a bad value raises :class:`ConfigError` naming the key and where
it came from.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
import typing
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from groupware.errors import ConfigError

CONFIG_FILE_NAME: Final = "groupware.toml"
ENV_PREFIX: Final = "GROUPWARE_"
#: Short environment names for listeners, as documented in the README.
LISTEN_ENV_ALIASES: Final = {
    "GROUPWARE_HTTP_LISTEN": ("http", "listen"),
    "GROUPWARE_HTTPS_LISTEN": ("http", "tls_listen"),
    "GROUPWARE_SMTP_LISTEN": ("smtp", "listen"),
    "GROUPWARE_SUBMISSION_LISTEN": ("submission", "listen"),
    "GROUPWARE_SUBMISSION_TLS_LISTEN": ("submission", "tls_listen"),
    "GROUPWARE_IMAP_LISTEN": ("imap", "listen"),
    "GROUPWARE_IMAP_TLS_LISTEN": ("imap", "tls_listen"),
}
#: Environment variables with the prefix that are not configuration keys.
NON_CONFIG_ENV: Final = frozenset({"GROUPWARE_DATA", "GROUPWARE_CONFIG"})


@dataclass(frozen=True, slots=True)
class Listen:
    """A TCP address to listen on; port 0 means "let the system pick"."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Listen:
        """Parse ``host:port`` or ``[v6addr]:port``.

        Raises:
            ValueError: the text is not an address with a port in 0..65535.
        """
        text = text.strip()
        if text.startswith("["):
            host, sep, port_text = text[1:].partition("]:")
        else:
            host, sep, port_text = text.rpartition(":")
        if not sep or not host or not port_text.isdigit():
            raise ValueError(f"expected host:port, got {text!r}")
        port = int(port_text)
        if port > 65535:
            raise ValueError(f"port out of range in {text!r}")
        return cls(host, port)

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _doc(text: str, **kwargs: Any) -> Any:
    """A dataclass field carrying its documentation (rendered into the TOML)."""
    return field(metadata={"doc": text}, **kwargs)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    """Identity of this installation."""

    domain: str = _doc(
        "Mail domain: addresses are firstname.lastname@DOMAIN.", default="example.org"
    )
    institution_name: str = _doc(
        "Name shown in the portal and in client set-up profiles.", default="Académie"
    )
    public_url: str = _doc(
        "Public base URL of the portal (e.g. https://mail.example.org); "
        "empty means: derived from each request.",
        default="",
    )
    secret_key_file: Path = _doc(
        "File holding the server secret (session signing, NUMEN keyed hashes). "
        "Relative paths are inside the data folder.",
        default=Path("secret.key"),
    )

    def __post_init__(self) -> None:
        if "@" in self.domain or "." not in self.domain or " " in self.domain:
            raise ValueError(f"not a domain name: {self.domain!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class DatabaseConfig:
    """Where the directory, accounts, audit log and indexes live."""

    url: str = _doc(
        "SQLAlchemy URL. Empty means SQLite in the data folder (groupware.db). "
        "PostgreSQL: postgresql+psycopg://user:password@host/dbname.",
        default="",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsConfig:
    """Certificate used by every TLS listener."""

    cert_file: Path = _doc("PEM certificate chain.", default=Path("tls/cert.pem"))
    key_file: Path = _doc("PEM private key.", default=Path("tls/key.pem"))


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpConfig:
    """The portal and CalDAV/CardDAV (under /dav) on one HTTP port."""

    listen: tuple[Listen, ...] = _doc(
        "Plain HTTP listeners (env GROUPWARE_HTTP_LISTEN).",
        default=(Listen("127.0.0.1", 8080),),
    )
    tls_listen: tuple[Listen, ...] = _doc(
        "HTTPS listeners (env GROUPWARE_HTTPS_LISTEN); empty list disables HTTPS.",
        default=(Listen("127.0.0.1", 8443),),
    )
    threads_count: int = _doc("Worker threads serving HTTP requests.", default=16)
    processes_count: int = _doc(
        "Processes serving HTTP on the same addresses (SO_REUSEPORT), each with "
        "threads_count threads; above 1, SMTP and IMAP run in the first process and "
        "HTTP in that many others. 0: one per CPU core (at most 8). One Python process "
        "uses one core at a time, whatever its threads.",
        default=0,
    )
    max_request_bytes: int = _doc("Largest request body accepted.", default=50 * 1024 * 1024)
    session_idle_seconds: int = _doc(
        "Portal sessions end after this much inactivity.", default=3600
    )
    trusted_proxy_count: int = _doc(
        "Reverse proxies in front of the portal whose X-Forwarded-* headers are trusted.",
        default=0,
    )

    def __post_init__(self) -> None:
        if self.threads_count < 1 or self.processes_count < 0:
            raise ValueError("threads_count must be positive and processes_count not negative")


@dataclass(frozen=True, slots=True, kw_only=True)
class SmtpConfig:
    """Inbound SMTP (MX role)."""

    listen: tuple[Listen, ...] = _doc(
        "Inbound SMTP listeners (env GROUPWARE_SMTP_LISTEN).",
        default=(Listen("127.0.0.1", 2525),),
    )
    hostname: str = _doc(
        "Name this server gives in greetings and Received: headers; empty: mail.<domain>.",
        default="",
    )
    max_message_bytes: int = _doc(
        "Largest message accepted (SIZE), enforced while receiving.", default=50 * 1024 * 1024
    )
    max_recipients_count: int = _doc("Most recipients in one transaction.", default=200)
    delivery_workers_count: int = _doc(
        "Messages delivered from the spool at the same time.", default=4
    )
    timeout_seconds: int = _doc("Idle time after which a connection is closed.", default=300)
    external_group_kinds: tuple[str, ...] = _doc(
        "Kinds of group lists (school, department, role, custom) that accept mail from "
        "outside the institution; the others only from authenticated senders.",
        default=("school", "department", "custom"),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmissionConfig:
    """Authenticated mail submission."""

    listen: tuple[Listen, ...] = _doc(
        "Submission listeners with STARTTLS (env GROUPWARE_SUBMISSION_LISTEN).",
        default=(Listen("127.0.0.1", 5870),),
    )
    tls_listen: tuple[Listen, ...] = _doc(
        "Submission listeners with implicit TLS (env GROUPWARE_SUBMISSION_TLS_LISTEN).",
        default=(Listen("127.0.0.1", 4650),),
    )


SMARTHOST_TLS_MODES: Final = ("starttls", "implicit", "none")


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboundConfig:
    """Mail for other domains: the outbound queue, its retries, and DKIM signing."""

    smarthost: str = _doc(
        "Relay host that takes all outbound mail; empty: deliver directly to each "
        "domain's MX hosts (RFC 5321 §5.1).",
        default="",
    )
    smarthost_port: int = _doc("Port of the smarthost.", default=587)
    smarthost_tls: str = _doc(
        "TLS to the smarthost: starttls (required, RFC 3207), implicit (RFC 8314) or none.",
        default="starttls",
    )
    smarthost_verify_certificate: bool = _doc(
        "Check the smarthost's certificate against the system's CAs and its name.",
        default=True,
    )
    smarthost_username: str = _doc(
        "User name for AUTH at the smarthost; empty: no AUTH.", default=""
    )
    smarthost_password_file: str = _doc(
        "File holding the smarthost password (required with smarthost_username). "
        "Relative paths are inside the data folder.",
        default="",
        repr=False,
    )
    mx_port: int = _doc(
        "Port of remote MX hosts in direct delivery (25 except in tests).", default=25
    )
    dns_nameservers: tuple[str, ...] = _doc(
        "Name servers (IP addresses) for MX lookups; empty: the system's (resolv.conf).",
        default=(),
    )
    timeout_seconds: float = _doc(
        "Longest wait for a connection or one reply of a remote server (RFC 5321 §4.5.3.2).",
        default=300.0,
    )
    max_connections_count: int = _doc("Most outbound SMTP connections open at once.", default=10)
    retry_initial_seconds: float = _doc(
        "Wait after the first temporary failure; doubled after each further one.",
        default=300.0,
    )
    retry_max_seconds: float = _doc("Longest wait between two attempts.", default=3600.0)
    give_up_seconds: float = _doc(
        "Age at which a message still not delivered is returned to its sender as failed.",
        default=5 * 86400.0,
    )
    delay_warning_seconds: float = _doc(
        "Age at which the sender is told (once) that the message is delayed; 0: never.",
        default=4 * 3600.0,
    )
    dkim_selector: str = _doc(
        "DKIM selector: the key is published at <selector>._domainkey.<domain>.",
        default="mail",
    )
    dkim_key_file: Path = _doc(
        "DKIM private key (RSA, PEM), made if missing. Relative paths are inside the data folder.",
        default=Path("dkim/mail.key"),
    )

    def __post_init__(self) -> None:
        if self.smarthost_tls not in SMARTHOST_TLS_MODES:
            raise ValueError(
                f"smarthost_tls: {self.smarthost_tls!r} is not one of "
                + ", ".join(SMARTHOST_TLS_MODES)
            )
        if self.smarthost_username and not self.smarthost_password_file:
            raise ValueError("smarthost_username needs smarthost_password_file")
        if self.smarthost_username and self.smarthost_tls == "none":
            raise ValueError("smarthost_username needs smarthost_tls starttls or implicit")
        for name in ("retry_initial_seconds", "retry_max_seconds", "give_up_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.retry_max_seconds < self.retry_initial_seconds:
            raise ValueError("retry_max_seconds must not be below retry_initial_seconds")
        if self.delay_warning_seconds < 0:
            raise ValueError("delay_warning_seconds must not be negative")
        if self.max_connections_count < 1 or self.timeout_seconds <= 0:
            raise ValueError("max_connections_count and timeout_seconds must be positive")
        if not self.dkim_selector or "." in self.dkim_selector.strip("."):
            # A dotted selector is legal DNS but mostly a typo for the full name.
            raise ValueError(f"dkim_selector: {self.dkim_selector!r} is not one DNS label")


@dataclass(frozen=True, slots=True, kw_only=True)
class ImapConfig:
    """IMAP access to the mail store."""

    listen: tuple[Listen, ...] = _doc(
        "IMAP listeners with STARTTLS (env GROUPWARE_IMAP_LISTEN).",
        default=(Listen("127.0.0.1", 1143),),
    )
    tls_listen: tuple[Listen, ...] = _doc(
        "IMAP listeners with implicit TLS (env GROUPWARE_IMAP_TLS_LISTEN).",
        default=(Listen("127.0.0.1", 9930),),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class WebmailConfig:
    """The portal's webmail: an IMAP and submission client acting for the signed-in user."""

    imap_server: str = _doc(
        "host:port of the implicit-TLS IMAP server the webmail reads from; empty: this "
        "process's first imap.tls_listen (the address actually bound).",
        default="",
    )
    submission_server: str = _doc(
        "host:port of the implicit-TLS submission server the webmail sends through; "
        "empty: this process's first submission.tls_listen.",
        default="",
    )
    ca_file: str = _doc(
        "PEM certificates the IMAP and submission servers are verified against (put both "
        "servers' CAs in this one file when they differ); empty: the server's own "
        "certificate (tls.cert_file).",
        default="",
    )
    master_login: str = _doc(
        "SASL PLAIN authentication identity the webmail logs in with, naming the user "
        "as authorization identity (a Dovecot master user elsewhere).",
        default="groupware-portal",
    )
    master_password_file: str = _doc(
        "File holding that identity's password (at least 16 characters; this server's "
        "IMAP and submission then accept it too); empty: a credential derived from the "
        "server secret.",
        default="",
    )
    max_connections_count: int = _doc(
        "Most IMAP connections the webmail keeps open (one per web session).", default=200
    )
    idle_seconds: int = _doc("An IMAP connection unused this long is logged out.", default=300)
    timeout_seconds: float = _doc("Socket timeout towards IMAP and submission.", default=10.0)
    messages_per_page_count: int = _doc("Messages on one page of a folder.", default=50)
    max_attachment_bytes: int = _doc(
        "Largest total size of the files attached to one message written in the webmail "
        "(uploads beyond it are refused with a message).",
        default=25 * 1024 * 1024,
    )

    def __post_init__(self) -> None:
        for name in ("imap_server", "submission_server"):
            value = getattr(self, name)
            if value:
                Listen.parse(value)
        if self.max_connections_count < 1 or self.idle_seconds < 1:
            raise ValueError("max_connections_count and idle_seconds must be positive")
        if self.timeout_seconds <= 0 or self.messages_per_page_count < 1:
            raise ValueError("timeout_seconds and messages_per_page_count must be positive")
        if self.max_attachment_bytes < 1:
            raise ValueError("max_attachment_bytes must be positive")


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthConfig:
    """Password hashing, login throttling and the verification cache."""

    argon2_time_cost: int = _doc("argon2id iterations.", default=3)
    argon2_memory_kib: int = _doc("argon2id memory in KiB.", default=65536)
    argon2_parallelism: int = _doc("argon2id lanes.", default=4)
    delay_after_failures_count: int = _doc(
        "Failed logins (per account and client address) after which each attempt is delayed.",
        default=3,
    )
    failure_delay_seconds: float = _doc("Delay added to each attempt once delayed.", default=2.0)
    max_failures_count: int = _doc(
        "Failed logins (per account and client address) after which that pair is refused.",
        default=10,
    )
    failure_window_seconds: int = _doc("Failures older than this are forgotten.", default=900)
    lockout_seconds: int = _doc("How long a throttled pair is refused.", default=900)
    cache_seconds: int = _doc(
        "Successful verifications are remembered this long (0 disables the cache).",
        default=300,
    )
    second_factor_roles: tuple[str, ...] = _doc(
        'Roles (as in the HR file, e.g. "Chef d\'établissement") that must turn on '
        "two-factor authentication at their next sign-in.",
        default=(),
    )
    second_factor_for_admins: bool = _doc(
        "Administrators must turn on two-factor authentication.", default=False
    )

    def __post_init__(self) -> None:
        if self.max_failures_count < 1:
            raise ValueError("max_failures_count must be at least 1")
        if self.delay_after_failures_count > self.max_failures_count:
            raise ValueError("delay_after_failures_count must not exceed max_failures_count")


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountsConfig:
    """Defaults for accounts made by the HR import."""

    default_quota_bytes: int = _doc("Mail quota of a new account.", default=30 * 1024**3)
    default_language: str = _doc(
        "Language of new accounts and of the portal (fr or en).", default="fr"
    )
    min_password_length: int = _doc("Shortest password a user may choose.", default=12)
    default_time_zone: str = _doc(
        "IANA time zone in which the portal shows agendas (e.g. Europe/Paris).",
        default="Europe/Paris",
    )

    def __post_init__(self) -> None:
        try:
            zoneinfo.ZoneInfo(self.default_time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {self.default_time_zone!r}") from exc
        if self.default_language not in ("fr", "en"):
            raise ValueError(f"unsupported language {self.default_language!r} (fr or en)")
        if self.min_password_length < 8:
            raise ValueError("min_password_length must be at least 8")


@dataclass(frozen=True, slots=True, kw_only=True)
class DavConfig:
    """CalDAV/CardDAV (Radicale, embedded under /dav)."""

    storage: str = _doc(
        "Where calendars and address books are kept: sql (indexed tables in the database)"
        " or files (Radicale's own file store in storage_folder, for comparison and import).",
        default="sql",
    )
    storage_folder: Path = _doc(
        "Folder of the files store (used when storage = files).", default=Path("dav")
    )
    max_resource_bytes: int = _doc(
        "Largest single event or contact accepted.", default=10 * 1024 * 1024
    )
    department_agendas: bool = _doc(
        "Give every department group an agenda its members see (managed by those granted it).",
        default=True,
    )
    freebusy_default: str = _doc(
        "Who sees a person's free/busy time unless they choose: nobody, school or everyone.",
        default="school",
    )

    def __post_init__(self) -> None:
        if self.storage not in ("sql", "files"):
            raise ValueError(f"unknown storage {self.storage!r}: sql or files")
        if self.freebusy_default not in ("nobody", "school", "everyone"):
            raise ValueError(f"unknown scope {self.freebusy_default!r}: nobody, school or everyone")


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggingConfig:
    """Log output."""

    level: str = _doc("DEBUG, INFO, WARNING or ERROR.", default="INFO")

    def __post_init__(self) -> None:
        if self.level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError(f"unknown level {self.level!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """The whole configuration; ``data_dir`` anchors every relative path."""

    data_dir: Path
    server: ServerConfig = field(default_factory=ServerConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    submission: SubmissionConfig = field(default_factory=SubmissionConfig)
    outbound: OutboundConfig = field(default_factory=OutboundConfig)
    imap: ImapConfig = field(default_factory=ImapConfig)
    webmail: WebmailConfig = field(default_factory=WebmailConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    accounts: AccountsConfig = field(default_factory=AccountsConfig)
    dav: DavConfig = field(default_factory=DavConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    def path(self, relative: Path) -> Path:
        """Resolve a configured path against the data folder."""
        return relative if relative.is_absolute() else self.data_dir / relative

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL, defaulting to SQLite inside the data folder."""
        return self.database.url or f"sqlite:///{self.data_dir / 'groupware.db'}"

    def read_secret(self) -> bytes:
        """The server secret.

        Raises:
            ConfigError: the secret file is missing, unreadable or too short.
        """
        path = self.path(self.server.secret_key_file)
        try:
            secret = path.read_bytes().strip()
        except OSError as exc:
            raise ConfigError(
                f"server.secret_key_file: cannot read {path}: {exc.strerror}"
            ) from exc
        if len(secret) < 32:
            raise ConfigError(f"server.secret_key_file: {path} holds fewer than 32 bytes")
        return secret

    def read_smarthost_password(self) -> str:
        """The smarthost password ("" when no smarthost AUTH is configured).

        Raises:
            ConfigError: the password file is missing, unreadable or empty.
        """
        outbound = self.outbound
        if not outbound.smarthost_username:
            return ""
        path = self.path(Path(outbound.smarthost_password_file))
        try:
            password = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
            raise ConfigError(
                f"outbound.smarthost_password_file: cannot read {path}: {reason}"
            ) from exc
        if not password or password.lower() in ("changeme", "password", "secret"):
            raise ConfigError(f"outbound.smarthost_password_file: {path} holds no real password")
        return password


SECTIONS: Final[dict[str, type]] = {
    f.name: f.default_factory  # type: ignore[misc]
    for f in dataclasses.fields(Config)
    if f.name != "data_dir"
}


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Turn a TOML or environment value into the field's type."""
    origin = typing.get_origin(annotation)
    from_env = isinstance(value, str) and where.startswith("env ")
    if origin is tuple:
        (item_type, _ellipsis) = typing.get_args(annotation)
        if isinstance(value, str):
            value = [part for part in value.split(",") if part.strip()]
        if not isinstance(value, list | tuple):
            raise TypeError(f"expected a list, got {value!r}")
        return tuple(_coerce(item, item_type, where) for item in value)
    if annotation is Listen:
        if not isinstance(value, str):
            raise TypeError(f"expected 'host:port', got {value!r}")
        return Listen.parse(value)
    if annotation is bool:
        if from_env:
            lowered = value.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
        if not isinstance(value, bool):
            raise TypeError(f"expected true or false, got {value!r}")
        return value
    if annotation is int:
        if from_env and value.strip().lstrip("-").isdigit():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected int, got {value!r}")
        return value
    if annotation is float:
        if from_env:
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"expected a number, got {value!r}")
        return float(value)
    if annotation is Path:
        if not isinstance(value, str):
            raise TypeError(f"expected a path, got {value!r}")
        return Path(value)
    if annotation is str:
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported type {annotation!r}")  # our bug, not the user's


def _section_values(
    section: str,
    raw: Mapping[str, tuple[Any, str]],
) -> Any:
    """Build one section from ``{key: (value, source)}``."""
    cls = SECTIONS[section]
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, (value, source) in raw.items():
        if key not in known:
            raise ConfigError(f"{section}.{key}: unknown key ({source})")
        try:
            kwargs[key] = _coerce(value, hints[key], source)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{section}.{key}: {exc} ({source})") from exc
    try:
        return cls(**kwargs)
    except ValueError as exc:
        sources = ", ".join(sorted({source for _value, source in raw.values()})) or "defaults"
        raise ConfigError(f"{section}: {exc} ({sources})") from exc


def load_config(
    data_dir: Path,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Config:
    """Read the configuration of the data folder ``data_dir``.

    Args:
        data_dir: the folder made by ``groupware init``.
        env: environment to read ``GROUPWARE_*`` variables from (default ``os.environ``).
        overrides: ``{section: {key: value}}`` applied last (tests).

    Returns:
        The validated configuration.

    Raises:
        ConfigError: missing folder or file, unknown key, or bad value.
    """
    env = os.environ if env is None else env
    data_dir = data_dir.absolute()
    config_file = data_dir / CONFIG_FILE_NAME
    if not config_file.is_file():
        raise ConfigError(
            f"{config_file} not found: create the data folder with 'groupware init {data_dir}'"
        )
    try:
        with config_file.open("rb") as handle:
            document = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_file}: not valid TOML: {exc}") from exc

    raw: dict[str, dict[str, tuple[Any, str]]] = {name: {} for name in SECTIONS}
    for section, table in document.items():
        if section not in SECTIONS:
            raise ConfigError(f"{section}: unknown section (file {config_file})")
        if not isinstance(table, dict):
            raise ConfigError(f"{section}: expected a table (file {config_file})")
        for key, value in table.items():
            raw[section][key] = (value, f"file {config_file}")

    for name, value in sorted(env.items()):
        if not name.startswith(ENV_PREFIX) or name in NON_CONFIG_ENV:
            continue
        if name in LISTEN_ENV_ALIASES:
            section, key = LISTEN_ENV_ALIASES[name]
        elif "__" in name:
            section, _sep, key = name[len(ENV_PREFIX) :].lower().partition("__")
            if section not in SECTIONS:
                raise ConfigError(f"{section}: unknown section (env {name})")
        else:
            continue
        raw[section][key] = (value, f"env {name}")

    for section, table in (overrides or {}).items():
        if section not in SECTIONS:
            raise ConfigError(f"{section}: unknown section (overrides)")
        for key, value in table.items():
            raw[section][key] = (value, "overrides")

    sections = {name: _section_values(name, raw[name]) for name in SECTIONS}
    return Config(data_dir=data_dir, **sections)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def render_toml(values: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """Render a complete, documented configuration file.

    Every key of every section is written with its documentation and its default;
    ``values`` replaces the written value of some keys (``groupware init --domain``).
    """
    values = values or {}
    lines = [
        "# groupware configuration. Every key is listed with its default.",
        "# Environment variables GROUPWARE_<SECTION>__<KEY> override this file.",
        "",
    ]
    for section, cls in SECTIONS.items():
        lines.append(f"[{section}]")
        lines.append(f"# {(cls.__doc__ or '').strip()}")
        defaults = cls()
        for f in dataclasses.fields(cls):
            default = getattr(defaults, f.name)
            lines.append(f"# {f.metadata['doc']}")
            lines.append(f"# default: {_toml_value(default)}")
            value = values.get(section, {}).get(f.name, default)
            lines.append(f"{f.name} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)
