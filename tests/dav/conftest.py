"""Fixtures of the DAV tests: one live server per module, shared by its tests.

A server start costs about a second, so tests that can share a server and its
accounts do; each test makes its own items (unique UIDs) and leaves the
accounts' other data alone.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.dav.webdav import DavHttp
from tests.support.servers import RunningServer, make_config, running_server


@pytest.fixture(scope="module")
def dav_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """``groupware serve --only http`` with default DAV settings, for one module."""
    config = make_config(tmp_path_factory.mktemp("dav-server"))
    with running_server(config) as live:
        yield live


@pytest.fixture(scope="module")
def anonymous(dav_server: RunningServer) -> DavHttp:
    """A raw HTTP client of the module's server, without credentials."""
    return DavHttp(dav_server.http_url)
