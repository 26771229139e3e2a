"""Real servers for tests: a data folder per test and ``groupware serve`` in a thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from groupware.app import run
from groupware.config import Config, load_config
from groupware.core.directory import NewPerson, Person
from groupware.core.services import Core
from groupware.datadir import init_data_dir

# Cheap argon2 and no throttling delay: for speed and determinism (DESIGN.md §9).
TEST_OVERRIDES: dict[str, dict[str, Any]] = {
    "auth": {
        "argon2_time_cost": 1,
        "argon2_memory_kib": 64,
        "argon2_parallelism": 1,
        "failure_delay_seconds": 0.0,
    },
    "http": {"listen": ["127.0.0.1:0"], "tls_listen": ["127.0.0.1:0"], "threads_count": 8},
    "smtp": {"listen": ["127.0.0.1:0"]},
    "submission": {"listen": ["127.0.0.1:0"], "tls_listen": ["127.0.0.1:0"]},
    "imap": {"listen": ["127.0.0.1:0"], "tls_listen": ["127.0.0.1:0"]},
}


def make_config(
    tmp_path: Path, domain: str = "example.org", **overrides: Mapping[str, Any]
) -> Config:
    """A fresh data folder under ``tmp_path`` and its config with test overrides."""
    data_dir = tmp_path / "data"
    if not (data_dir / "groupware.toml").exists():
        init_data_dir(data_dir, domain=domain)
    merged = {section: dict(values) for section, values in TEST_OVERRIDES.items()}
    for section, values in overrides.items():
        merged.setdefault(section, {}).update(values)
    return load_config(data_dir, env={}, overrides=merged)


_numen_counter = iter(range(1, 10**9))


def next_numen() -> str:
    """A valid, unique NUMEN for tests."""
    return f"{next(_numen_counter):010d}ABC"


def add_user(
    core: Core,
    first_name: str,
    last_name: str,
    *,
    password: str | None = None,
    numen: str | None = None,
    school: str = "Lycée Joffre",
    role: str = "Enseignant",
    discipline: str = "Lettres",
    birth_date: date = date(1980, 5, 17),
) -> Person:
    """Create a person; with ``password``, also set it (so "must change" is cleared)."""
    person = core.directory.add_person(
        NewPerson(
            numen=numen or next_numen(),
            first_name=first_name,
            last_name=last_name,
            birth_date=birth_date,
            role=role,
            school=school,
            discipline=discipline,
        ),
        actor="test",
    )
    if password is not None:
        person = core.directory.set_password(
            person.login, password, actor="test", enforce_policy=False
        )
    return person


@dataclass
class RunningServer:
    """A live ``groupware serve`` and a Core of its own to prepare data with."""

    config: Config
    core: Core
    addresses: Mapping[str, tuple[str, int]]

    @property
    def http_url(self) -> str:
        host, port = self.addresses["http"]
        return f"http://{host}:{port}"

    @property
    def https_url(self) -> str:
        host, port = self.addresses["https"]
        return f"https://{host}:{port}"

    @property
    def dav_url(self) -> str:
        return f"{self.http_url}/dav/"


@contextmanager
def running_server(
    config: Config, only: frozenset[str] = frozenset({"http"})
) -> Iterator[RunningServer]:
    """Start the real services on port 0 in a background thread; stop them after."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    found: dict[str, tuple[str, int]] = {}
    failure: list[BaseException] = []
    stop_holder: list[asyncio.Event] = []

    def on_ready(addresses: Mapping[str, tuple[str, int]]) -> None:
        found.update(addresses)
        ready.set()

    async def main() -> None:
        stop = asyncio.Event()
        stop_holder.append(stop)
        await run(config, only, on_ready=on_ready, stop=stop)

    def target() -> None:
        try:
            loop.run_until_complete(main())
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            failure.append(exc)
            ready.set()
        finally:
            loop.close()

    thread = threading.Thread(target=target, name="groupware-serve", daemon=True)
    thread.start()
    if not ready.wait(timeout=30):
        raise TimeoutError("server did not start within 30 s")
    if failure:
        raise failure[0]
    core = Core.open(config)
    try:
        yield RunningServer(config=config, core=core, addresses=dict(found))
    finally:
        core.close()
        loop.call_soon_threadsafe(stop_holder[0].set)
        thread.join(timeout=30)
