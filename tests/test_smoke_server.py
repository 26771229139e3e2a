"""The server starts on port 0, answers, and DAV refuses anonymous requests."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from tests.support.servers import RunningServer


def test_server_answers_login_page_on_os_chosen_port(server: RunningServer) -> None:
    with urllib.request.urlopen(server.http_url + "/login", timeout=5) as response:
        assert response.status == 200
        assert b"<form" in response.read()


def test_anonymous_propfind_gets_401(server: RunningServer) -> None:
    request = urllib.request.Request(server.dav_url, method="PROPFIND")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    info.value.close()
    assert info.value.code == 401
    assert "Basic" in info.value.headers["WWW-Authenticate"]
