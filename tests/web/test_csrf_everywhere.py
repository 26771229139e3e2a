"""Every state-changing request the portal accepts is refused without its CSRF token.

The routes are read from the application itself, so a page added later is covered
without anyone remembering to add it here: each rule that takes POST, PUT, PATCH
or DELETE is called, by a signed-in person, with a form that has everything but
the token. The answer must be the CSRF refusal (400 and its page), and nothing
may have changed: the sample mailbox still holds its message afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from werkzeug.routing import Rule

from groupware.core.directory import Person
from groupware.web import create_app
from tests.mail.imap_support import PASSWORD, deliver, logged_in, new_user, simple_message
from tests.support.servers import RunningServer, make_config, running_server
from tests.support.waiting import wait_for
from tests.web.portal_client import PortalClient

CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: A value for each URL variable the portal's rules use.
SAMPLE_VALUES = {
    "folder": "INBOX",
    "uid": "1",
    "section": "1",
    "path": "x",
    "name": "x",
    "job": "x",
    "number": "1",
    "keyword": "x",
    "address": "x@example.org",
}
#: The form fields the state-changing pages read, all but the token.
FORM = {
    "action": "delete",
    "uid": "1",
    "to": "x@example.org",
    "subject": "x",
    "body": "x",
    "name": "x",
    "language": "en",
    "confirm": "1",
}
REFUSAL = ("The form expired or was sent from another site", "Le formulaire a expiré")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = make_config(tmp_path_factory.mktemp("csrf-everywhere"))
    with running_server(config, only=frozenset({"http", "smtp", "imap"})) as server:
        yield server


@pytest.fixture(scope="module")
def person(live: RunningServer) -> Person:
    found = new_user(live)
    deliver(live, found.email, simple_message("À garder"))
    wait_for(lambda: inbox_count(live, found) == 1)
    return found


def inbox_count(live: RunningServer, person: Person) -> int:
    with logged_in(live, person) as client:
        return int(client.select_folder("INBOX", readonly=True)[b"EXISTS"])


def changing_rules(live: RunningServer) -> list[tuple[str, str]]:
    """(method, path) of every rule of the portal that may change something."""
    found: list[tuple[str, str]] = []
    rule: Rule
    # The same application as the server's, built only to read its routes.
    app = create_app(live.core, dav=None, dav_requests=None)  # type: ignore[arg-type]
    for rule in app.url_map.iter_rules():
        methods = (rule.methods or set()) & CHANGING_METHODS
        if not methods:
            continue
        values = {argument: SAMPLE_VALUES.get(argument, "1") for argument in rule.arguments}
        path = rule.build(values, append_unknown=False)
        assert path is not None
        found.extend((method, path[1]) for method in sorted(methods))
    return sorted(found)


def test_the_portal_has_state_changing_routes_to_check(live: RunningServer) -> None:
    paths = {path for _method, path in changing_rules(live)}
    # The main families are all there (the list would be empty if the app changed shape).
    for expected in ("/login", "/mail/INBOX/actions", "/mail/compose", "/account/sessions"):
        assert any(p.startswith(expected) for p in paths), expected


def test_every_state_changing_route_refuses_a_request_without_its_token(
    live: RunningServer, person: Person
) -> None:
    portal = PortalClient(live.http_url)
    assert portal.sign_in(person.login, PASSWORD).status == 302
    accepted: list[str] = []
    for method, path in changing_rules(live):
        reply = portal.request(method, path, list(FORM.items()))  # type: ignore[arg-type]
        if reply.status != 400 or not any(text in reply.body for text in REFUSAL):
            accepted.append(f"{method} {path} -> {reply.status}")
    assert accepted == []
    assert portal.is_signed_in()  # /logout without a token did not sign out
    assert inbox_count(live, person) == 1
