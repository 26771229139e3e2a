"""IMAP login: TLS first (STARTTLS and implicit), LOGIN, AUTHENTICATE PLAIN, the portal's
authorization identity, throttling and the audit trail (RFC 3501 §6.2, RFC 4616, RFC 8314)."""

from __future__ import annotations

import base64
import imaplib
from collections.abc import Iterator

import pytest
from imapclient.exceptions import LoginError

from groupware.core.auth import PORTAL_IDENTITY, portal_password
from tests.mail.imap_support import (
    PASSWORD,
    TIMEOUT_SECONDS,
    RawImap,
    connect,
    imap_server,
    new_user,
    tls_context,
)
from tests.support.servers import RunningServer, add_user, next_numen

REQUIRED_AFTER_LOGIN = {
    *("IMAP4REV1", "IDLE", "UIDPLUS", "MOVE", "SPECIAL-USE", "LIST-EXTENDED", "LIST-STATUS"),
    *("NAMESPACE", "QUOTA", "ID", "ENABLE", "UNSELECT", "CHILDREN", "ESEARCH", "CONDSTORE"),
    *("QRESYNC", "SORT", "UTF8=ACCEPT", "LITERAL+"),
}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with imap_server(tmp_path_factory, "imap-auth") as server:
        yield server


def _audit(live: RunningServer, login: str) -> list[tuple[str, str, str, str]]:
    return [
        (r.event, r.actor, r.protocol, r.detail)
        for r in live.core.audit.recent(limit=20, subject=login)
    ]


def test_plain_port_offers_starttls_and_refuses_login_before_it(live: RunningServer) -> None:
    person = new_user(live)
    client = connect(live, implicit_tls=False)
    try:
        capabilities = set(client.capabilities())
        assert {b"STARTTLS", b"LOGINDISABLED"} <= capabilities
        assert b"AUTH=PLAIN" not in capabilities
        with pytest.raises(LoginError, match="PRIVACYREQUIRED"):
            client.login(person.login, PASSWORD)
        client.starttls(tls_context(live))
        assert b"AUTH=PLAIN" in set(client.capabilities())
        assert b"STARTTLS" not in set(client.capabilities())
        client.login(person.login, PASSWORD)
        assert client.select_folder("INBOX")[b"EXISTS"] == 0
    finally:
        client.logout()


def test_authenticate_before_tls_is_refused(live: RunningServer) -> None:
    person = new_user(live)
    with RawImap(live, implicit_tls=False) as raw:
        response = base64.b64encode(b"\0" + person.login.encode() + b"\0" + PASSWORD.encode())
        _untagged, tagged = raw.command(b"AUTHENTICATE PLAIN " + response)
        assert tagged.startswith(b"t1 NO [PRIVACYREQUIRED]")
        _untagged, tagged = raw.command(b"SELECT INBOX")
        assert tagged.startswith(b"t2 BAD")


def test_login_over_implicit_tls_announces_every_extension(live: RunningServer) -> None:
    person = new_user(live)
    client = connect(live)
    try:
        assert b"AUTH=PLAIN" in client.capabilities()
        response = client.login(person.login, PASSWORD)
        assert b"[CAPABILITY " in response
        assert {cap.decode() for cap in client.capabilities()} >= REQUIRED_AFTER_LOGIN
        assert client.has_capability("QUOTA")
    finally:
        client.logout()
    assert ("login.ok", person.login, "imap", "") in _audit(live, person.login)


def test_login_accepts_the_full_address_in_any_case(live: RunningServer) -> None:
    person = new_user(live)
    client = connect(live)
    try:
        client.login(person.email.upper(), PASSWORD)
    finally:
        client.logout()


def test_authenticate_plain_with_continuation_logs_in(live: RunningServer) -> None:
    person = new_user(live)
    host, port = live.addresses["imaps"]
    with imaplib.IMAP4_SSL(
        host, port, ssl_context=tls_context(live), timeout=TIMEOUT_SECONDS
    ) as client:
        status, _data = client.authenticate(
            "PLAIN", lambda _challenge: b"\0" + person.login.encode() + b"\0" + PASSWORD.encode()
        )
        assert status == "OK"
        assert client.select("INBOX")[0] == "OK"
        client.logout()


def test_authenticate_plain_with_initial_response_logs_in(live: RunningServer) -> None:
    person = new_user(live)
    with RawImap(live) as raw:
        response = base64.b64encode(b"\0" + person.login.encode() + b"\0" + PASSWORD.encode())
        _untagged, tagged = raw.command(b"AUTHENTICATE PLAIN " + response)
        assert tagged.startswith(b"t1 OK [CAPABILITY ")


def test_authenticate_can_be_cancelled_and_bad_base64_is_bad(live: RunningServer) -> None:
    with RawImap(live) as raw:
        raw.send(b"a AUTHENTICATE PLAIN\r\n")
        assert raw.read_line().startswith(b"+")
        raw.send(b"*\r\n")
        assert raw.read_line().startswith(b"a BAD")
        raw.send(b"b AUTHENTICATE PLAIN\r\n")
        assert raw.read_line().startswith(b"+")
        raw.send(b"not base64!\r\n")
        assert raw.read_line().startswith(b"b BAD")
        _untagged, tagged = raw.command(b"AUTHENTICATE CRAM-MD5")
        assert tagged.startswith(b"t1 NO")
        _untagged, tagged = raw.command(b"NOOP")
        assert tagged.startswith(b"t2 OK")


def test_wrong_password_fails_and_is_audited(live: RunningServer) -> None:
    person = new_user(live)
    client = connect(live)
    try:
        with pytest.raises(LoginError, match="AUTHENTICATIONFAILED"):
            client.login(person.login, "pas le bon mot de passe")
        with pytest.raises(LoginError, match="AUTHENTICATIONFAILED"):
            client.plain_login(person.login, "pas le bon non plus")
    finally:
        client.logout()
    assert _audit(live, person.login)[:2] == [("login.failed", person.login, "imap", "")] * 2


def test_repeated_failures_throttle_even_the_right_password(live: RunningServer) -> None:
    person = new_user(live)
    limit = live.config.auth.max_failures_count
    with RawImap(live) as raw:
        for _ in range(limit):
            _untagged, tagged = raw.command(b'LOGIN "%s" "wrong-one"' % person.login.encode())
            assert b"[AUTHENTICATIONFAILED]" in tagged
        _untagged, tagged = raw.command(
            b'LOGIN "%s" "%s"' % (person.login.encode(), PASSWORD.encode())
        )
        assert b"NO [UNAVAILABLE]" in tagged
    assert _audit(live, person.login)[0][0] == "login.throttled"


def test_account_that_must_change_its_password_is_sent_to_the_portal(live: RunningServer) -> None:
    numen = next_numen()
    person = add_user(live.core, "Nouvelle", "Recrue", numen=numen)
    client = connect(live)
    try:
        with pytest.raises(LoginError, match="CONTACTADMIN"):
            client.login(person.login, numen)
    finally:
        client.logout()


def test_disabled_account_cannot_log_in(live: RunningServer) -> None:
    person = new_user(live)
    live.core.directory.set_active(person.login, False, actor="test")
    client = connect(live)
    try:
        with pytest.raises(LoginError, match="CONTACTADMIN"):
            client.login(person.login, PASSWORD)
    finally:
        client.logout()


def test_portal_credential_acts_for_the_named_user(live: RunningServer) -> None:
    person = new_user(live, language="en")
    secret = portal_password(live.config.read_secret())
    client = connect(live)
    try:
        client.plain_login(PORTAL_IDENTITY, secret, authorization_identity=person.login)
        # The special folders are the English ones of that user: we are that user.
        names = {name for _flags, _delim, name in client.list_folders()}
        assert {"INBOX", "Sent", "Drafts", "Trash"} <= names
        client.select_folder("INBOX")
    finally:
        client.logout()
    record = live.core.audit.recent(limit=1, subject=person.login)[0]
    assert (record.event, record.actor, record.detail) == (
        "login.ok",
        PORTAL_IDENTITY,
        "acting_for",
    )


def test_portal_identity_with_a_wrong_secret_is_refused(live: RunningServer) -> None:
    person = new_user(live)
    client = connect(live)
    try:
        with pytest.raises(LoginError, match="AUTHENTICATIONFAILED"):
            client.plain_login(PORTAL_IDENTITY, "0" * 64, authorization_identity=person.login)
        # The portal's own name without an authorization identity is no login either.
        with pytest.raises(LoginError, match="AUTHENTICATIONFAILED"):
            client.plain_login(PORTAL_IDENTITY, portal_password(live.config.read_secret()))
    finally:
        client.logout()


def test_a_user_cannot_act_for_another_user(live: RunningServer) -> None:
    person, victim = new_user(live), new_user(live)
    client = connect(live)
    try:
        with pytest.raises(LoginError, match="AUTHENTICATIONFAILED"):
            client.plain_login(person.login, PASSWORD, authorization_identity=victim.login)
        # Naming oneself as authorization identity is an ordinary login.
        client.plain_login(person.login, PASSWORD, authorization_identity=person.login)
    finally:
        client.logout()


def test_commands_before_login_are_bad_and_the_session_goes_on(live: RunningServer) -> None:
    person = new_user(live)
    with RawImap(live) as raw:
        assert raw.greeting.startswith(b"* OK [CAPABILITY IMAP4rev1")
        for command in (b"SELECT INBOX", b'LIST "" *', b"FETCH 1 FLAGS", b"ENABLE CONDSTORE"):
            _untagged, tagged = raw.command(command)
            assert b" BAD " in tagged, (command, tagged)
        untagged, tagged = raw.command(b'ID ("name" "test")')
        assert untagged[0].startswith(b"* ID (")
        raw.login(person)
        _untagged, tagged = raw.command(b'LOGIN "x" "y"')
        assert b" BAD " in tagged


def test_plaintext_pipelined_after_starttls_is_discarded(live: RunningServer) -> None:
    person = new_user(live)
    with RawImap(live, implicit_tls=False) as raw:
        # An attacker's command injected behind STARTTLS must not run inside TLS.
        raw.send(
            b'a STARTTLS\r\nb LOGIN "%s" "%s"\r\n' % (person.login.encode(), PASSWORD.encode())
        )
        assert raw.read_line().startswith(b"a OK")
        raw.starttls()
        untagged, tagged = raw.command(b"CAPABILITY")
        assert b"AUTH=PLAIN" in untagged[0]
        assert tagged.startswith(b"t1 OK")
        _untagged, tagged = raw.command(b"SELECT INBOX")
        assert tagged.startswith(b"t2 BAD")


def test_logout_says_bye_and_closes(live: RunningServer) -> None:
    with RawImap(live) as raw:
        untagged, tagged = raw.command(b"LOGOUT")
        assert untagged == [b"* BYE Logging out\r\n"]
        assert tagged.startswith(b"t1 OK")
        assert raw.sock.recv(1) == b""


def test_id_answers_with_the_server_name(live: RunningServer) -> None:
    person = new_user(live)
    client = connect(live)
    try:
        expected = (b"name", b"groupware", b"vendor", b"groupware")
        assert client.id_({"name": "pytest", "version": "1"}) == (expected,)
        client.login(person.login, PASSWORD)
        assert client.id_() == (expected,)
    finally:
        client.logout()
