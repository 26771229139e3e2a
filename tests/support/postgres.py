"""A real, throwaway PostgreSQL for tests: one cluster per session, one database per test.

The cluster is made with Debian's ``initdb`` in a temporary folder and listens only on
a Unix socket in that folder (no TCP port, so nothing to race for and nothing reachable
from outside; the folder is private to the cluster's owner, which is why ``trust``
authentication is safe). PostgreSQL refuses to run as root: under uid 0 every server
command runs as the ``postgres`` user (made by the Debian package) through ``runuser``.

There is no skip: when PostgreSQL is missing or cannot start, the fixture errors with
the server's log, because CI installs it (``scripts/test``).
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import psycopg
import pytest

PG_ROOT: Final = Path("/usr/lib/postgresql")
SUPERUSER: Final = "postgres"
#: Durability is worth nothing in a cluster thrown away after the run.
SETTINGS: Final = {
    "listen_addresses": "''",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "log_min_messages": "warning",
    # Not UTC, as on a server in France: timestamps come back in the session's zone,
    # which shows any code that takes a stored instant for a UTC wall-clock reading.
    "timezone": "'Europe/Paris'",
}


def _bin_dir() -> Path:
    """The newest installed server's programs (``/usr/lib/postgresql/<version>/bin``)."""
    versions = sorted(
        (path for path in PG_ROOT.glob("*/bin") if (path / "initdb").is_file()),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
    )
    if not versions:
        raise RuntimeError(
            f"PostgreSQL server programs not found under {PG_ROOT}: "
            "apt-get install postgresql (scripts/test installs it)"
        )
    return versions[-1]


@dataclass(frozen=True, slots=True)
class PostgresCluster:
    """A running cluster reachable through the Unix socket in ``socket_dir``."""

    socket_dir: Path
    _names: Iterator[int]

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of one database of this cluster."""
        return f"postgresql+psycopg://{SUPERUSER}@/{database}?host={self.socket_dir}"

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        """An autocommit connection to the ``postgres`` database (CREATE/DROP DATABASE)."""
        return psycopg.connect(
            host=str(self.socket_dir), user=SUPERUSER, dbname="postgres", autocommit=True
        )

    def create_database(self) -> str:
        """A new, empty UTF-8 database; returns its name."""
        name = f"test_{os.getpid()}_{next(self._names)}"
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database, ending any connection still open to it."""
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _as_owner(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root ("root execution of the PostgreSQL server
    # is not permitted"), so root hands the cluster to the Debian package's user.
    return ["runuser", "-u", SUPERUSER, "--", *command] if os.geteuid() == 0 else command


def _run(command: list[str], cwd: Path, log: Path | None = None) -> None:
    result = subprocess.run(  # noqa: S603 - fixed programs, our own arguments
        _as_owner(command), cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        server_log = log.read_text(errors="replace")[-4000:] if log and log.exists() else ""
        raise RuntimeError(
            f"{' '.join(command)} failed ({result.returncode}):\n"
            f"{result.stdout}{result.stderr}{server_log}"
        )


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """initdb + pg_ctl start in a temporary folder; pg_ctl stop and removal at the end."""
    bin_dir = _bin_dir()
    # Not under pytest's tmp_path: that is private to the test user, and under root
    # the cluster belongs to ``postgres``. A short path keeps the socket's path
    # within the 107 bytes a Unix socket address may hold.
    root = Path(tempfile.mkdtemp(prefix="groupware-pg-"))
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam(SUPERUSER)
        except KeyError as exc:
            raise RuntimeError(
                "running as root needs the 'postgres' user: apt-get install postgresql"
            ) from exc
        os.chown(root, owner.pw_uid, owner.pw_gid)
    data, log = root / "data", root / "server.log"
    started = False
    try:
        _run(
            [
                str(bin_dir / "initdb"),
                "--pgdata",
                str(data),
                "--username",
                SUPERUSER,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                # Byte order, as SQLite compares: results do not depend on the host's locales.
                "--locale",
                "C.UTF-8",
                "--no-sync",
            ],
            cwd=root,
        )
        settings = {**SETTINGS, "unix_socket_directories": f"'{root}'"}
        with (data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        _run(
            [str(bin_dir / "pg_ctl"), "start", "--pgdata", str(data), "--log", str(log)]
            + ["--wait", "--timeout", "60", "--silent"],
            cwd=root,
            log=log,
        )
        started = True
        yield PostgresCluster(socket_dir=root, _names=itertools.count(1))
    finally:
        if started:
            _run(
                [str(bin_dir / "pg_ctl"), "stop", "--pgdata", str(data)]
                + ["--mode", "fast", "--wait", "--silent"],
                cwd=root,
                log=log,
            )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> Iterator[str]:
    """The SQLAlchemy URL of a fresh database, dropped after the test."""
    name = postgres_cluster.create_database()
    yield postgres_cluster.url(name)
    postgres_cluster.drop_database(name)
