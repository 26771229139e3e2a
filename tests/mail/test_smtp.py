"""SMTP against the real listeners with smtplib and raw sockets."""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Iterator

import pyotp
import pytest

from groupware.core.auth import APP_PASSWORD_MESSAGE, MUST_CHANGE_MESSAGE
from groupware.core.directory import Person
from groupware.mail.store import INBOX, MailStore
from tests.support.servers import RunningServer, add_user, make_config, running_server
from tests.support.waiting import wait_for

PASSWORD = "une phrase de passe solide"
LIMIT = 4096


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = make_config(
        tmp_path_factory.mktemp("smtp"),
        smtp={"max_message_bytes": LIMIT, "max_recipients_count": 5},
    )
    with running_server(config, only=frozenset({"smtp"})) as server:
        core = server.core
        add_user(core, "Marie", "Dupont", password=PASSWORD)
        add_user(core, "Paul", "Roux", password=PASSWORD, discipline="Lettres")
        add_user(core, "Léa", "Martin", numen="12E0000000AAA")  # must change password
        core.directory.add_alias("marie.dupont", "secretariat.lettres@example.org", actor="test")
        yield server


@pytest.fixture(scope="module")
def store(live: RunningServer) -> MailStore:
    from groupware.core.events import EventBus

    return MailStore(live.core.engine, live.config.data_dir / "mail", EventBus())


def _smtp(live: RunningServer, name: str = "smtp") -> smtplib.SMTP:
    host, port = live.addresses[name]
    client = smtplib.SMTP(host, port, timeout=5)
    client.ehlo("client.example.net")
    return client


def _submission(live: RunningServer) -> smtplib.SMTP:
    client = _smtp(live, "submission")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    client.starttls(context=context)
    client.ehlo("laptop")
    return client


def _inbox(store: MailStore, person: Person) -> list[bytes]:
    mailbox = store.find_mailbox(person.id, INBOX)
    if mailbox is None:
        return []
    return [store.files.read(m.blob_path) for m in store.messages(mailbox.id)]


def _message(subject: str, sender: str = "alice@outside.example", body: str = "Bonjour") -> str:
    return f"From: {sender}\r\nTo: x\r\nSubject: {subject}\r\n\r\n{body}\r\n"


def test_inbound_ehlo_offers_extensions_but_not_auth(live: RunningServer) -> None:
    with _smtp(live) as client:
        features = client.esmtp_features
    assert {"pipelining", "enhancedstatuscodes", "8bitmime", "starttls", "size"} <= set(features)
    assert features["size"] == str(LIMIT)
    assert "auth" not in features


def test_inbound_mail_to_a_user_lands_in_inbox_once(live: RunningServer, store: MailStore) -> None:
    marie = live.core.directory.get("marie.dupont")
    with _smtp(live) as client:
        refused = client.sendmail(
            "alice@outside.example", ["Marie.Dupont@example.org"], _message("inbound-1")
        )
    assert refused == {}
    messages = wait_for(lambda: [m for m in _inbox(store, marie) if b"inbound-1" in m])
    assert len(messages) == 1
    assert messages[0].startswith(b"Return-Path: <alice@outside.example>\r\nReceived: from")


def test_unknown_local_recipient_is_refused_at_rcpt_with_550_511(live: RunningServer) -> None:
    with _smtp(live) as client:
        client.mail("alice@outside.example")
        code, text = client.rcpt("nobody.here@example.org")
    assert code == 550
    assert text.startswith(b"5.1.1")


def test_a_refusal_is_not_remembered_a_new_person_is_accepted_at_once(
    live: RunningServer,
) -> None:
    with _smtp(live) as client:
        client.mail("alice@outside.example")
        assert client.rcpt("claire.petit@example.org")[0] == 550
        add_user(live.core, "Claire", "Petit")
        assert client.rcpt("claire.petit@example.org")[0] == 250


def test_a_full_mailbox_is_refused_at_rcpt_with_452(live: RunningServer, store: MailStore) -> None:
    person = add_user(live.core, "Hugo", "Blanc")
    store.ensure_mailboxes(person)
    store.append(person, INBOX, b"Subject: x\r\n\r\nfull\r\n")
    live.core.directory.set_quota(person.login, store.usage(person.id)[0], actor="test")
    with _smtp(live) as client:
        client.mail("alice@outside.example")
        code, text = client.rcpt("hugo.blanc@example.org")
    assert code == 452
    assert text.startswith(b"4.2.2")


@pytest.mark.parametrize(
    "recipient",
    [
        "someone@elsewhere.example",
        "someone%elsewhere.example@example.org",
        "elsewhere.example!someone@example.org",
        "@example.org:someone@elsewhere.example",
        '"someone@elsewhere.example"@example.org',
        "marie.dupont%elsewhere.example@example.org",
    ],
)
def test_relay_attempts_are_refused_with_554_571(live: RunningServer, recipient: str) -> None:
    with _smtp(live) as client:
        client.mail("alice@outside.example")
        # Raw RCPT: smtplib's quoting would rewrite a source route.
        code, text = client.docmd("RCPT", f"TO:<{recipient}>")
    assert code == 554, text
    assert text.startswith(b"5.7.1")


def test_group_list_reaches_every_member_once(live: RunningServer, store: MailStore) -> None:
    directory = live.core.directory
    group = "lycee-joffre.lettres"
    marie, paul = directory.get("marie.dupont"), directory.get("paul.roux")
    with _smtp(live) as client:
        client.sendmail(
            "alice@outside.example",
            [f"{group}@example.org", "paul.roux@example.org"],
            _message("group-1"),
        )
    for person in (marie, paul):
        found = wait_for(lambda p=person: [m for m in _inbox(store, p) if b"group-1" in m])
        assert len(found) == 1


def test_role_list_refuses_mail_from_outside(live: RunningServer) -> None:
    with _smtp(live) as client:
        client.mail("alice@outside.example")
        code, text = client.rcpt("enseignant@example.org")
    assert code == 550
    assert text.startswith(b"5.7.1")


def test_too_many_recipients_get_452(live: RunningServer) -> None:
    with _smtp(live) as client:
        client.mail("alice@outside.example")
        codes = [client.rcpt("marie.dupont@example.org")[0] for _ in range(6)]
    assert codes == [250] * 5 + [452]


def test_message_at_the_size_limit_is_accepted_and_one_byte_over_is_refused(
    live: RunningServer,
) -> None:
    head = "From: alice@outside.example\r\nSubject: size\r\n\r\n"
    line = "a" * 78 + "\r\n"
    lines, rest = divmod(LIMIT - len(head), len(line))
    exact = head + line * lines + "b" * (rest - 2) + "\r\n"
    assert len(exact) == LIMIT
    with _smtp(live) as client:
        assert client.sendmail("alice@outside.example", ["marie.dupont@example.org"], exact) == {}
        # No SIZE declared: the limit is enforced while the data arrives.
        client.mail("alice@outside.example")
        client.rcpt("marie.dupont@example.org")
        code, text = client.data(head + line * lines + "b" * (rest - 1) + "\r\n")
    assert code == 552
    assert text.startswith(b"5.3.4")


def test_declared_size_over_the_limit_is_refused_at_mail_from(live: RunningServer) -> None:
    with _smtp(live) as client:
        code, text = client.mail("alice@outside.example", [f"SIZE={LIMIT + 1}"])
    assert code == 552
    assert text.startswith(b"5.3.4")


def _raw_session(live: RunningServer, payload: bytes) -> bytes:
    """Send ``payload`` (ending in QUIT) in one write; read until the server closes."""
    host, port = live.addresses["smtp"]
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.recv(1024)
        sock.sendall(payload)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(
    "fake_end",
    [b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r", b"\r.\r\n", b"\r\n.\r"],
    ids=["lf-dot-lf", "lf-dot-crlf", "crlf-dot-lf", "cr-dot-cr", "cr-dot-crlf", "crlf-dot-cr"],
)
def test_smtp_smuggling_variants_do_not_start_a_second_message(
    live: RunningServer, store: MailStore, fake_end: bytes
) -> None:
    marker = f"smuggle-{fake_end.hex()}".encode()
    payload = (
        b"EHLO attacker.example\r\nMAIL FROM:<alice@outside.example>\r\n"
        b"RCPT TO:<marie.dupont@example.org>\r\nDATA\r\n"
        b"Subject: "
        + marker
        + b"\r\n\r\nfirst"
        + fake_end
        + b"MAIL FROM:<ceo@example.org>\r\nRCPT TO:<paul.roux@example.org>\r\nDATA\r\n"
        b"Subject: " + marker + b"-smuggled\r\n\r\nsecond\r\n.\r\nQUIT\r\n"
    )
    transcript = _raw_session(live, payload)
    assert transcript.count(b"250 2.0.0 OK: queued as") == 1
    marie = live.core.directory.get("marie.dupont")
    paul = live.core.directory.get("paul.roux")
    [message] = wait_for(lambda: [m for m in _inbox(store, marie) if marker in m])
    assert b"second" in message
    assert b"\r\n" in message
    assert not any(
        b"-smuggled" in m and b"Subject: " + marker + b"-smuggled" in m.split(b"\r\n\r\n")[0]
        for m in _inbox(store, paul)
    )


def test_pipelined_commands_are_answered_in_order(live: RunningServer, store: MailStore) -> None:
    payload = (
        b"EHLO pipe.example\r\nMAIL FROM:<alice@outside.example>\r\n"
        b"RCPT TO:<nobody.here@example.org>\r\nRCPT TO:<marie.dupont@example.org>\r\nDATA\r\n"
        b"Subject: pipelined\r\n\r\nhello\r\n.\r\nQUIT\r\n"
    )
    transcript = _raw_session(live, payload).decode()
    codes = [line[:3] for line in transcript.split("\r\n") if line and line[3:4] == " "]
    assert codes == ["250", "250", "550", "250", "354", "250", "221"]


def test_submission_requires_starttls_before_auth(live: RunningServer) -> None:
    with _smtp(live, "submission") as client:
        assert "auth" not in client.esmtp_features
        code, text = client.docmd("AUTH", "PLAIN AG1hcmllLmR1cG9udABw")
    assert code == 530
    assert text.startswith(b"5.7.0")


def test_submission_with_tls_and_password_sends_anywhere(
    live: RunningServer, store: MailStore
) -> None:
    marie = live.core.directory.get("marie.dupont")
    with _submission(live) as client:
        assert "PLAIN" in client.esmtp_features["auth"]
        client.login("marie.dupont", PASSWORD)
        refused = client.sendmail(
            "marie.dupont@example.org",
            ["paul.roux@example.org", "friend@elsewhere.example"],
            _message("submitted-1", sender="Marie Dupont <marie.dupont@example.org>"),
        )
    assert refused == {}
    paul = live.core.directory.get("paul.roux")
    [message] = wait_for(lambda: [m for m in _inbox(store, paul) if b"submitted-1" in m])
    assert b"with ESMTPSA" in message
    assert marie.id != paul.id


def test_submission_auth_login_mechanism_works(live: RunningServer) -> None:
    with _submission(live) as client:
        client.user, client.password = "marie.dupont@example.org", PASSWORD
        code, _text = client.auth("LOGIN", client.auth_login, initial_response_ok=False)
    assert code == 235


def test_submission_wrong_password_and_must_change_are_535_5_7_8_each_with_its_reason(
    live: RunningServer,
) -> None:
    with _submission(live) as client, pytest.raises(smtplib.SMTPAuthenticationError) as wrong:
        client.login("paul.roux", "not the password")
    assert wrong.value.smtp_code == 535
    assert wrong.value.smtp_error == b"5.7.8 Authentication credentials invalid"
    with _submission(live) as client, pytest.raises(smtplib.SMTPAuthenticationError) as first:
        client.login("lea.martin", "12E0000000AAA")
    assert first.value.smtp_code == 535
    assert first.value.smtp_error == f"5.7.8 {MUST_CHANGE_MESSAGE}".encode()


def test_submission_tells_a_two_factor_account_to_use_an_app_password(
    live: RunningServer,
) -> None:
    core = live.core
    person = add_user(core, "Inès", "Garnier", password=PASSWORD)
    secret = pyotp.parse_uri(core.second_factor.begin(person)).secret
    core.second_factor.confirm(person, pyotp.TOTP(secret).now(), actor="test")
    core.authenticator.forget(person.id)
    with _submission(live) as client, pytest.raises(smtplib.SMTPAuthenticationError) as main:
        client.login(person.login, PASSWORD)
    assert main.value.smtp_code == 535
    assert main.value.smtp_error == f"5.7.8 {APP_PASSWORD_MESSAGE}".encode()
    # A wrong password still gets the generic answer: the precise one needs the password.
    with _submission(live) as client, pytest.raises(smtplib.SMTPAuthenticationError) as wrong:
        client.login(person.login, "not the password")
    assert wrong.value.smtp_error == b"5.7.8 Authentication credentials invalid"
    _device, app_password = core.app_passwords.create(person, "Phone", "mail", actor="test")
    with _submission(live) as client:
        code, _text = client.login(person.login, app_password)
    assert code == 235


def test_submission_without_auth_is_refused(live: RunningServer) -> None:
    with _submission(live) as client:
        code, text = client.mail("marie.dupont@example.org")
    assert code == 530


def test_submission_envelope_sender_must_be_owned(live: RunningServer) -> None:
    with _submission(live) as client:
        client.login("marie.dupont", PASSWORD)
        code, text = client.mail("paul.roux@example.org")
    assert code == 553
    assert text.startswith(b"5.7.1")


def test_submission_from_header_must_be_owned(live: RunningServer) -> None:
    with _submission(live) as client:
        client.login("marie.dupont", PASSWORD)
        with pytest.raises(smtplib.SMTPDataError) as info:
            client.sendmail(
                "marie.dupont@example.org",
                ["paul.roux@example.org"],
                _message("spoof", sender="Le Recteur <recteur@example.org>"),
            )
    assert info.value.smtp_code == 553


def test_implicit_tls_submission_listener_accepts_auth(live: RunningServer) -> None:
    host, port = live.addresses["submissions"]
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP_SSL(host, port, context=context, timeout=5) as client:
        client.ehlo("laptop")
        assert "auth" in client.esmtp_features
        client.login("marie.dupont", PASSWORD)


def test_every_handler_hook_name_is_one_aiosmtpd_calls() -> None:
    import inspect

    from aiosmtpd import smtp as aiosmtpd_smtp

    from groupware.mail.smtp import InboundHandler, SubmissionHandler

    called = {
        "EHLO",
        "HELO",
        "MAIL",
        "RCPT",
        "DATA",
        "RSET",
        "NOOP",
        "QUIT",
        "VRFY",
        "EXPN",
        "HELP",
        "AUTH",
        "PROXY",
        "STARTTLS",
    }
    source = inspect.getsource(aiosmtpd_smtp)
    for cls in (InboundHandler, SubmissionHandler):
        for name in vars(cls):
            if name.startswith("handle_") and name != "handle_exception":
                assert name.removeprefix("handle_") in called, name
            if name.startswith("auth_"):
                assert name.removeprefix("auth_").isupper(), name
    assert "def handle_exception" in source


def test_inbound_mail_to_an_alias_reaches_its_owner(live: RunningServer, store: MailStore) -> None:
    marie = live.core.directory.get("marie.dupont")
    with _smtp(live) as client:
        client.sendmail(
            "alice@outside.example", ["Secretariat.Lettres@example.org"], _message("alias-1")
        )
    assert len(wait_for(lambda: [m for m in _inbox(store, marie) if b"alias-1" in m])) == 1


def test_submission_may_send_as_an_own_alias(live: RunningServer, store: MailStore) -> None:
    paul = live.core.directory.get("paul.roux")
    with _submission(live) as client:
        client.login("marie.dupont", PASSWORD)
        refused = client.sendmail(
            "secretariat.lettres@example.org",
            ["paul.roux@example.org"],
            _message("as-alias", sender="Secretariat <secretariat.lettres@example.org>"),
        )
    assert refused == {}
    assert wait_for(lambda: [m for m in _inbox(store, paul) if b"as-alias" in m])


def _plain(authzid: str, authcid: str, secret: str) -> str:
    import base64

    return base64.b64encode(f"{authzid}\0{authcid}\0{secret}".encode()).decode()


def test_portal_credential_submits_for_the_user_and_sender_checks_apply_to_that_user(
    live: RunningServer, store: MailStore
) -> None:
    from groupware.core.auth import PORTAL_IDENTITY, portal_password

    secret = portal_password(live.config.read_secret())
    paul = live.core.directory.get("paul.roux")
    with _submission(live) as client:
        code, _text = client.docmd(
            "AUTH", "PLAIN " + _plain("marie.dupont", PORTAL_IDENTITY, secret)
        )
        assert code == 235
        code, text = client.mail("paul.roux@example.org")  # not Marie's address
        assert code == 553
        client.rset()
        refused = client.sendmail(
            "marie.dupont@example.org",
            ["paul.roux@example.org"],
            _message("via-portal", sender="marie.dupont@example.org"),
        )
    assert refused == {}
    assert wait_for(lambda: [m for m in _inbox(store, paul) if b"via-portal" in m])
    events = [r for r in live.core.audit.recent(50) if r.detail == "acting_for"]
    assert any(r.actor == PORTAL_IDENTITY and r.subject == "marie.dupont" for r in events)


@pytest.mark.parametrize(
    ("authcid", "secret_of"),
    [("groupware-portal", "wrong"), ("paul.roux", "user")],
    ids=["wrong-portal-secret", "a-user-acting-for-another"],
)
def test_authorization_identity_is_refused_for_anyone_but_the_portal(
    live: RunningServer, authcid: str, secret_of: str
) -> None:
    secret = PASSWORD if secret_of == "user" else "not-the-portal-secret"
    with _submission(live) as client:
        code, text = client.docmd("AUTH", "PLAIN " + _plain("marie.dupont", authcid, secret))
    assert code == 535
    assert text.startswith(b"5.7.8")
