"""Shared fixtures: a data folder and a live server per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from groupware.config import Config
from groupware.core.services import Core
from tests.support.servers import RunningServer, make_config, running_server

# The throwaway PostgreSQL cluster (session) and a fresh database per test.
pytest_plugins = ("tests.support.postgres",)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """A fresh data folder with cheap hashing and port-0 listeners."""
    return make_config(tmp_path)


@pytest.fixture
def core(config: Config) -> Iterator[Core]:
    """The core services over the test's data folder (no server)."""
    opened = Core.open(config)
    yield opened
    opened.close()


@pytest.fixture
def server(config: Config) -> Iterator[RunningServer]:
    """``groupware serve --only http`` on 127.0.0.1 with OS-chosen ports."""
    with running_server(config) as live:
        yield live
