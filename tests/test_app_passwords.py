"""App passwords with real clients: imapclient, smtplib and the caldav library.

Each works on the protocols of its scope only, is recorded when used, and stops
working at once when revoked; the portal never accepts one.
"""

from __future__ import annotations

import re
import smtplib
import ssl
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import caldav
import pytest
from caldav.lib import error as caldav_error
from imapclient.exceptions import LoginError

from groupware.core.auth import Outcome
from groupware.core.directory import Person
from groupware.errors import GroupwareError, NotFoundError
from tests.mail.imap_support import PASSWORD, connect
from tests.support.servers import RunningServer, add_user, make_config, running_server

ALL_SERVICES = frozenset({"http", "smtp", "imap"})


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = make_config(tmp_path_factory.mktemp("app-passwords"))
    with running_server(config, only=ALL_SERVICES) as server:
        yield server


@pytest.fixture
def person(live: RunningServer, request: pytest.FixtureRequest) -> Person:
    number = abs(hash(request.node.name)) % 10_000
    return add_user(live.core, "Agathe", f"Appareil{number}", password=PASSWORD)


def imap_login(live: RunningServer, login: str, secret: str) -> bool:
    client = connect(live)
    try:
        client.login(login, secret)
    except LoginError:
        return False
    finally:
        try:
            client.logout()
        except Exception:  # noqa: BLE001 - refused sessions may already be closed
            client.shutdown()
    return True


def smtp_login(live: RunningServer, login: str, secret: str) -> bool:
    host, port = live.addresses["submission"]
    context = ssl.create_default_context(cafile=str(live.config.data_dir / "tls" / "cert.pem"))
    context.check_hostname = False
    with smtplib.SMTP(host, port, timeout=5) as client:
        client.starttls(context=context)
        try:
            client.login(login, secret)
        except smtplib.SMTPAuthenticationError:
            return False
    return True


def dav_login(live: RunningServer, login: str, secret: str) -> bool:
    with caldav.DAVClient(url=live.dav_url, username=login, password=secret, timeout=5) as c:
        try:
            c.principal().calendars()
        except caldav_error.AuthorizationError:
            return False
    return True


def test_an_app_password_has_the_documented_shape_and_is_shown_once(
    live: RunningServer, person: Person
) -> None:
    device, secret = live.core.app_passwords.create(
        person, "  Téléphone   Android ", "all", actor="t"
    )

    assert re.fullmatch(r"[a-z2-9]{4}(-[a-z2-9]{4}){3}", secret)
    assert device.name == "Téléphone Android"
    assert secret not in repr(live.core.app_passwords.list(person))
    with pytest.raises(GroupwareError):
        live.core.app_passwords.create(person, "x", "everything", actor="t")
    with pytest.raises(GroupwareError):
        live.core.app_passwords.create(person, "   ", "all", actor="t")


def test_a_full_app_password_works_with_imap_smtp_and_dav_and_is_recorded(
    live: RunningServer, person: Person
) -> None:
    _device, secret = live.core.app_passwords.create(person, "Thunderbird", "all", actor="t")

    assert imap_login(live, person.email, secret)
    assert smtp_login(live, person.login, secret.upper().replace("-", " "))  # as typed
    assert dav_login(live, person.login, secret)

    (used,) = live.core.app_passwords.list(person)
    assert used.last_used_at is not None
    assert used.last_used_protocol in ("imap", "smtp", "dav")
    assert used.last_used_from == "127.0.0.1"
    events = [r.detail for r in live.core.audit.recent(limit=10, subject=person.login)]
    assert "app_password=Thunderbird" in events


def test_a_scope_limits_the_protocols(live: RunningServer, person: Person) -> None:
    _mail, mail_secret = live.core.app_passwords.create(person, "Mail app", "mail", actor="t")
    _dav, dav_secret = live.core.app_passwords.create(person, "DAVx5", "dav", actor="t")

    assert imap_login(live, person.login, mail_secret)
    assert not dav_login(live, person.login, mail_secret)
    assert dav_login(live, person.login, dav_secret)
    assert not imap_login(live, person.login, dav_secret)
    assert not smtp_login(live, person.login, dav_secret)


def test_the_portal_never_accepts_an_app_password(live: RunningServer, person: Person) -> None:
    _device, secret = live.core.app_passwords.create(person, "Phone", "all", actor="t")

    result = live.core.authenticator.authenticate(
        person.login, secret, protocol="web", client="127.0.0.1"
    )

    assert result.outcome is Outcome.BAD_CREDENTIALS


def test_revoking_cuts_the_device_off_at_once(live: RunningServer, person: Person) -> None:
    apps = live.core.app_passwords
    device, secret = apps.create(person, "Old phone", "all", actor="t")
    assert imap_login(live, person.login, secret)  # verified and remembered

    apps.revoke(person, device.id, actor=person.login)

    assert not imap_login(live, person.login, secret)
    assert not smtp_login(live, person.login, secret)
    assert not dav_login(live, person.login, secret)
    assert imap_login(live, person.login, PASSWORD)  # the person's own password still works
    other = add_user(live.core, "Bastien", "Autre", password=PASSWORD)
    with pytest.raises(NotFoundError):
        apps.revoke(other, device.id, actor=other.login)


def test_someone_elses_app_password_is_no_key(live: RunningServer, person: Person) -> None:
    _device, secret = live.core.app_passwords.create(person, "Phone", "all", actor="t")
    other = add_user(live.core, "Capucine", "Voisine", password=PASSWORD)

    assert not imap_login(live, other.login, secret)


def test_thunderbird_autoconfig_is_served_for_the_domain(live: RunningServer) -> None:
    for path in ("/.well-known/autoconfig/mail/config-v1.1.xml", "/mail/config-v1.1.xml"):
        with urllib.request.urlopen(live.http_url + path, timeout=5) as reply:  # noqa: S310
            assert reply.headers["Content-Type"].startswith("application/xml")
            root = ET.fromstring(reply.read())
        provider = root.find("emailProvider")
        assert provider is not None
        assert provider.get("id") == live.config.server.domain
        incoming = [
            (s.findtext("port"), s.findtext("socketType")) for s in provider.iter("incomingServer")
        ]
        outgoing = [
            (s.findtext("port"), s.findtext("socketType")) for s in provider.iter("outgoingServer")
        ]
        assert incoming == [("993", "SSL"), ("143", "STARTTLS")]
        assert outgoing == [("465", "SSL"), ("587", "STARTTLS")]
        assert provider.findtext("incomingServer/username") == "%EMAILADDRESS%"
