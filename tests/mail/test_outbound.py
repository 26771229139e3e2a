"""The outbound queue against a real aiosmtpd sink standing in for the remote server."""

from __future__ import annotations

import asyncio
import email
import json
import smtplib
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dkim
import pytest
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from groupware.config import Config
from groupware.core.account_notices import NEVER_ASKS_FOR_PASSWORD
from groupware.core.directory import Person
from groupware.core.events import EventBus
from groupware.errors import ConfigError
from groupware.mail.dkim import dkim_public_record, ensure_dkim_key
from groupware.mail.dns_records import dns_records
from groupware.mail.outbound_queue import OutboundEntry, OutboundQueue, RecipientState
from groupware.mail.store import INBOX, MailStore
from groupware.mail.transport import (
    DeliveryError,
    Disposition,
    DnsNameNotFoundError,
    DnsTemporaryError,
    Transport,
    host_addresses,
    mx_hosts,
)
from tests.support.servers import RunningServer, add_user, make_config, running_server
from tests.support.waiting import wait_for

PASSWORD = "une phrase de passe solide"
SMARTHOST_PASSWORD = "le mot de passe du relais"


# --- the remote side -------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    is_tls: bool


@dataclass
class SinkHandler:
    """Records what it is sent; can answer 451 for a while, or 550 for some addresses.

    Its ``handle_*`` names are aiosmtpd's hook names (hence ``noqa: N802``).
    """

    temporary_failures: int = 0
    refused: set[str] = field(default_factory=set)
    messages: list[Received] = field(default_factory=list)
    mail_froms: list[str] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802
        with self.lock:
            self.mail_froms.append(address)
            if self.temporary_failures > 0:
                self.temporary_failures -= 1
                return "451 4.3.0 Try again later"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address.lower() in self.refused:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        with self.lock:
            self.messages.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    envelope.original_content,
                    session.ssl is not None,
                )
            )
        return "250 2.0.0 OK queued"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword) and auth_data.password.decode() == (
            SMARTHOST_PASSWORD
        ):
            self.logins.append(auth_data.login.decode())
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


@dataclass
class Sink:
    handler: SinkHandler
    port: int


@contextmanager
def smtp_sink(tls: ssl.SSLContext | None = None, auth: bool = False) -> Iterator[Sink]:
    """aiosmtpd on 127.0.0.1:0 in a loop of its own thread (no Controller: port 0)."""
    handler = SinkHandler()
    loop = asyncio.new_event_loop()
    connections: list[SMTP] = []

    def factory() -> SMTP:
        protocol = SMTP(
            handler,
            hostname="sink.test",
            tls_context=tls,
            authenticator=handler.authenticate if auth else None,
            auth_required=auth,
        )
        connections.append(protocol)
        return protocol

    server = loop.run_until_complete(loop.create_server(factory, "127.0.0.1", 0))
    port = server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, name="smtp-sink", daemon=True)
    thread.start()
    try:
        yield Sink(handler, port)
    finally:

        async def stop() -> None:
            server.close()
            await server.wait_closed()
            # Connections outlive their server: let each finish closing (a TLS one
            # exchanges close_notify), else cut it, so no socket is left open.
            for _tick in range(100):
                if all(c.transport is None for c in connections):
                    break
                await asyncio.sleep(0.01)
            for connection in connections:
                if connection.transport is not None:
                    connection.transport.abort()
            await asyncio.sleep(0)

        asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()


def _server_tls(config: Config) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.path(config.tls.cert_file), config.path(config.tls.key_file))
    return context


# --- our side --------------------------------------------------------------------


def _config(tmp_path: Path, sink: Sink, **outbound: Any) -> Config:
    settings = {
        "smarthost": "127.0.0.1",
        "smarthost_port": sink.port,
        "smarthost_tls": "none",
        "retry_initial_seconds": 0.1,
        "retry_max_seconds": 0.2,
        "timeout_seconds": 5.0,
    }
    settings.update(outbound)
    return make_config(tmp_path, outbound=settings)


@contextmanager
def _serve(config: Config) -> Iterator[RunningServer]:
    with running_server(config, only=frozenset({"smtp"})) as live:
        if live.core.directory.find("marie.dupont") is None:
            add_user(live.core, "Marie", "Dupont", password=PASSWORD)
            add_user(live.core, "Paul", "Roux", password=PASSWORD)
        yield live


def _submit(live: RunningServer, recipients: list[str], subject: str) -> None:
    host, port = live.addresses["submission"]
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP(host, port, timeout=5) as client:
        client.ehlo("laptop")
        client.starttls(context=context)
        client.ehlo("laptop")
        client.login("marie.dupont", PASSWORD)
        refused = client.sendmail(
            "marie.dupont@example.org",
            recipients,
            "From: Marie Dupont <marie.dupont@example.org>\r\n"
            f"To: {', '.join(recipients)}\r\n"
            f"Subject: {subject}\r\n"
            "Message-ID: <" + subject + "@example.org>\r\n"
            "\r\n"
            "Bonjour,\r\n.leading dot survives\r\n",
        )
    assert refused == {}


def _inbox(live: RunningServer, person: Person) -> list[bytes]:
    store = MailStore(live.core.engine, live.config.data_dir / "mail", EventBus())
    mailbox = store.find_mailbox(person.id, INBOX)
    if mailbox is None:
        return []
    return [store.files.read(m.blob_path) for m in store.messages(mailbox.id)]


def _reports(live: RunningServer, action: str) -> list[email.message.Message]:
    marie = live.core.directory.get("marie.dupont")
    found = []
    for raw in _inbox(live, marie):
        message = email.message_from_bytes(raw)
        if message.get_content_type() != "multipart/report":
            continue
        status = next(
            p for p in message.walk() if p.get_content_type() == "message/delivery-status"
        )
        text = str(status.get_payload(0)) + "".join(str(p) for p in status.get_payload()[1:])
        if f"Action: {action}" in text:
            found.append(message)
    return found


def _status_text(report: email.message.Message) -> str:
    part = next(p for p in report.walk() if p.get_content_type() == "message/delivery-status")
    return "\n".join(str(block) for block in part.get_payload())


def _outbound_files(config: Config) -> list[str]:
    return sorted(p.name for p in (config.data_dir / "spool" / "outbound").iterdir())


def _incoming_files(config: Config) -> list[str]:
    return sorted(p.name for p in (config.data_dir / "spool" / "incoming").iterdir())


def _dkim_dns(config: Config):
    record = dkim_public_record(config).encode()

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"mail._domainkey.example.org."
        return record

    return dnsfunc


# --- through the running server --------------------------------------------------


def test_remote_recipient_gets_the_message_once_with_a_dkim_signature_that_verifies(
    tmp_path: Path,
) -> None:
    with smtp_sink() as sink, _serve(_config(tmp_path, sink)) as live:
        _submit(live, ["friend@elsewhere.example"], "remote-1")
        [received] = wait_for(lambda: sink.handler.messages)
        wait_for(lambda: not _outbound_files(live.config))
        records = live.core.audit.recent(subject="friend@elsewhere.example")
    assert received.mail_from == "marie.dupont@example.org"
    assert received.rcpt_tos == ["friend@elsewhere.example"]
    assert received.data.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;")
    assert b"d=example.org" in received.data
    assert b"s=mail" in received.data
    assert b"\r\nReceived: from laptop" in received.data
    assert b"Return-Path:" not in received.data
    assert b"\r\n.leading dot survives\r\n" in received.data
    assert dkim.verify(received.data, dnsfunc=_dkim_dns(live.config))
    assert not dkim.verify(
        received.data.replace(b"Subject: remote-1", b"Subject: remote-2"),
        dnsfunc=_dkim_dns(live.config),
    )
    assert len(sink.handler.messages) == 1
    assert [r.event for r in records] == ["mail.sent"]
    assert records[0].actor == "marie.dupont"
    assert records[0].client == "127.0.0.1"


def test_temporary_failure_is_retried_after_backoff_then_sent_once(tmp_path: Path) -> None:
    with smtp_sink() as sink, _serve(_config(tmp_path, sink)) as live:
        sink.handler.temporary_failures = 2
        _submit(live, ["friend@elsewhere.example"], "retry-1")
        [received] = wait_for(lambda: sink.handler.messages)
        wait_for(lambda: not _outbound_files(live.config))
        assert _reports(live, "failed") == []
        assert _reports(live, "delayed") == []
    assert len(sink.handler.mail_froms) == 3  # two 451s, then the transaction that worked
    assert b"Subject: retry-1" in received.data


def test_permanent_failure_of_one_recipient_sends_a_dsn_to_the_sender(tmp_path: Path) -> None:
    with smtp_sink() as sink, _serve(_config(tmp_path, sink)) as live:
        sink.handler.refused = {"nobody@elsewhere.example"}
        _submit(live, ["friend@elsewhere.example", "nobody@elsewhere.example"], "perm-1")
        [received] = wait_for(lambda: sink.handler.messages)
        [report] = wait_for(lambda: _reports(live, "failed"))
        wait_for(lambda: not _outbound_files(live.config))
        failures = [r.event for r in live.core.audit.recent(subject="nobody@elsewhere.example")]
    assert received.rcpt_tos == ["friend@elsewhere.example"]
    assert report["To"] == "<marie.dupont@example.org>"
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    status = _status_text(report)
    assert "Final-Recipient: rfc822; nobody@elsewhere.example" in status
    assert "Status: 5.1.1" in status
    assert "Diagnostic-Code: smtp; 550 5.1.1 No such user here" in status
    assert "Remote-MTA: dns; 127.0.0.1" in status
    assert "friend@elsewhere.example" not in status
    assert "Subject: perm-1" in report.as_string()  # the original header is returned
    assert failures == ["mail.failed"]
    # Like every mail the system sends: the IT department never asks for a password.
    readable = next(part for part in report.walk() if part.get_content_type() == "text/plain")
    text = readable.get_payload(decode=True).decode().replace("\r\n", "\n")
    assert NEVER_ASKS_FOR_PASSWORD in text


def test_message_still_undelivered_after_give_up_seconds_is_returned_as_failed(
    tmp_path: Path,
) -> None:
    with smtp_sink() as sink:
        config = _config(tmp_path, sink, give_up_seconds=0.6)
        with _serve(config) as live:
            sink.handler.temporary_failures = 10**6
            _submit(live, ["friend@elsewhere.example"], "expire-1")
            [report] = wait_for(lambda: _reports(live, "failed"), timeout_seconds=10)
            wait_for(lambda: not _outbound_files(live.config))
    status = _status_text(report)
    assert "Final-Recipient: rfc822; friend@elsewhere.example" in status
    assert "Status: 4.3.0" in status  # the last problem met (RFC 3463 §3.5, X.4.7 note)
    assert "gave up after" in status
    assert sink.handler.messages == []
    assert len(sink.handler.mail_froms) >= 2


def test_delay_warning_is_sent_once_and_the_message_still_goes_out(tmp_path: Path) -> None:
    with smtp_sink() as sink:
        config = _config(tmp_path, sink, delay_warning_seconds=0.3)
        with _serve(config) as live:
            sink.handler.temporary_failures = 10**6
            _submit(live, ["friend@elsewhere.example"], "delay-1")
            [warning] = wait_for(lambda: _reports(live, "delayed"), timeout_seconds=10)
            with sink.handler.lock:
                sink.handler.temporary_failures = 0
            [received] = wait_for(lambda: sink.handler.messages)
            wait_for(lambda: not _outbound_files(live.config))
            assert len(_reports(live, "delayed")) == 1
            assert _reports(live, "failed") == []
    status = _status_text(warning)
    assert "Action: delayed" in status
    assert "Will-Retry-Until:" in status
    assert "Status: 4.3.0" in status
    assert warning["Subject"].startswith("Delayed Mail")
    assert received.rcpt_tos == ["friend@elsewhere.example"]


def test_queued_message_survives_a_restart_and_is_sent_once(tmp_path: Path) -> None:
    with smtp_sink() as sink:
        config = _config(tmp_path, sink)
        with _serve(config) as live:
            sink.handler.temporary_failures = 10**6
            _submit(live, ["friend@elsewhere.example"], "restart-1")

            def state() -> dict[str, Any] | None:
                names = [n for n in _outbound_files(config) if n.endswith(".json")]
                if not names:
                    return None
                found = json.loads((config.data_dir / "spool" / "outbound" / names[0]).read_text())
                return found if found["attempts"] >= 1 else None

            saved = wait_for(state)
        assert _incoming_files(config) == []
        assert saved["recipients"][0]["address"] == "friend@elsewhere.example"
        assert saved["recipients"][0]["state"] == "pending"
        assert saved["recipients"][0]["status"] == "4.3.0"
        assert sink.handler.messages == []
        with sink.handler.lock:
            sink.handler.temporary_failures = 0
        with _serve(config):  # a new server over the same data folder
            [received] = wait_for(lambda: sink.handler.messages)
            wait_for(lambda: not _outbound_files(config))
    assert b"Subject: restart-1" in received.data
    assert len(sink.handler.messages) == 1


def test_mixed_local_and_remote_recipients_are_each_served_and_the_spool_emptied(
    tmp_path: Path,
) -> None:
    with smtp_sink() as sink, _serve(_config(tmp_path, sink)) as live:
        paul = live.core.directory.get("paul.roux")
        _submit(live, ["paul.roux@example.org", "friend@elsewhere.example"], "mixed-1")
        [received] = wait_for(lambda: sink.handler.messages)
        [local] = wait_for(lambda: [m for m in _inbox(live, paul) if b"mixed-1" in m])
        wait_for(lambda: not _outbound_files(live.config))
        assert _incoming_files(live.config) == []
    assert received.rcpt_tos == ["friend@elsewhere.example"]
    assert local.startswith(b"Return-Path: <marie.dupont@example.org>\r\n")
    assert b"DKIM-Signature" not in local  # the local copy is not the outbound one


def test_bounce_to_a_remote_sender_goes_out_with_null_sender_and_is_never_bounced(
    tmp_path: Path,
) -> None:
    with smtp_sink() as sink, _serve(_config(tmp_path, sink)) as live:
        live.core.directory.set_quota("paul.roux", 10, actor="test")
        sink.handler.refused = {"alice@outside.example"}
        host, port = live.addresses["smtp"]
        with smtplib.SMTP(host, port, timeout=5) as client:
            client.ehlo("outside.example")
            refused = client.sendmail(
                "alice@outside.example",
                ["paul.roux@example.org"],
                "From: alice@outside.example\r\nSubject: too-big\r\n\r\n" + "x" * 200 + "\r\n",
            )
        assert refused == {}
        wait_for(lambda: sink.handler.mail_froms)
        wait_for(lambda: not _outbound_files(live.config) and not _incoming_files(live.config))
        events = [r.event for r in live.core.audit.recent(subject="alice@outside.example")]
    assert sink.handler.mail_froms == ["<>"]  # MAIL FROM:<>, once, and nothing after its 550
    assert sink.handler.messages == []
    assert events == ["mail.failed"]


def test_bounce_to_a_remote_sender_is_signed_and_reports_the_local_failure(
    tmp_path: Path,
) -> None:
    with smtp_sink() as sink, _serve(_config(tmp_path, sink)) as live:
        live.core.directory.set_quota("paul.roux", 10, actor="test")
        host, port = live.addresses["smtp"]
        with smtplib.SMTP(host, port, timeout=5) as client:
            client.sendmail(
                "alice@outside.example",
                ["paul.roux@example.org"],
                "From: alice@outside.example\r\nSubject: too-big\r\n\r\n" + "x" * 200 + "\r\n",
            )
        [bounce] = wait_for(lambda: sink.handler.messages)
        assert dkim.verify(bounce.data, dnsfunc=_dkim_dns(live.config))
    assert bounce.mail_from == "<>"
    assert bounce.rcpt_tos == ["alice@outside.example"]
    assert b"Status: 5.2.2" in bounce.data
    assert b"Final-Recipient: rfc822; paul.roux@example.org" in bounce.data


def test_smarthost_with_starttls_and_auth(tmp_path: Path) -> None:
    config = make_config(tmp_path)  # the data folder's own certificate serves the sink
    (config.data_dir / "smarthost.password").write_text(SMARTHOST_PASSWORD + "\n")
    with smtp_sink(tls=_server_tls(config), auth=True) as sink:
        config = _config(
            tmp_path,
            sink,
            smarthost_tls="starttls",
            smarthost_verify_certificate=False,
            smarthost_username="relay-user",
            smarthost_password_file="smarthost.password",
        )
        with _serve(config) as live:
            _submit(live, ["friend@elsewhere.example"], "relay-1")
            [received] = wait_for(lambda: sink.handler.messages)
    assert received.is_tls
    assert sink.handler.logins == ["relay-user"]


def test_smarthost_credentials_and_tls_mode_are_checked_fail_closed(tmp_path: Path) -> None:
    config = make_config(
        tmp_path,
        outbound={"smarthost_username": "relay-user", "smarthost_password_file": "missing"},
    )
    with pytest.raises(ConfigError, match=r"outbound\.smarthost_password_file"):
        config.read_smarthost_password()
    with pytest.raises(ConfigError, match=r"outbound: smarthost_username needs"):
        make_config(tmp_path, outbound={"smarthost_username": "relay-user"})
    with pytest.raises(ConfigError, match=r"outbound: smarthost_tls"):
        make_config(tmp_path, outbound={"smarthost_tls": "ssl"})
    with pytest.raises(ConfigError, match=r"needs smarthost_tls starttls or implicit"):
        make_config(
            tmp_path,
            outbound={
                "smarthost_username": "relay-user",
                "smarthost_password_file": "smarthost.password",
                "smarthost_tls": "none",
            },
        )


# --- direct MX delivery, DNS and the published records -----------------------------


class StaticResolver:
    """A fixed DNS: ``{(name, type): [records]}``; names absent from it do not exist."""

    def __init__(
        self, records: dict[tuple[str, str], list[str]], broken: frozenset[str] = frozenset()
    ):
        self.records = records
        self.broken = broken
        self.names = {name for name, _type in records}

    async def resolve(self, name: str, rdtype: str) -> list[str]:
        if name in self.broken:
            raise DnsTemporaryError(name)
        if name not in self.names:
            raise DnsNameNotFoundError(name)
        return list(self.records.get((name, rdtype), []))


def _run(coroutine):
    return asyncio.run(coroutine)


def test_mx_lookup_orders_by_preference_and_falls_back_to_the_domains_address() -> None:
    resolver = StaticResolver(
        {
            ("with-mx.example", "MX"): ["20 backup.with-mx.example.", "10 MX1.with-mx.example."],
            ("no-mx.example", "A"): ["192.0.2.7"],
            ("no-mx.example", "AAAA"): ["2001:db8::7"],
            ("null-mx.example", "MX"): ["0 ."],
            ("no-host.example", "TXT"): ["v=spf1 -all"],
            ("mx1.with-mx.example", "A"): ["192.0.2.1"],
        },
        broken=frozenset({"broken.example"}),
    )
    assert _run(mx_hosts(resolver, "with-mx.example")) == [
        "mx1.with-mx.example",
        "backup.with-mx.example",
    ]
    # RFC 5321 §5.1: no MX record, but an address: the domain is its own mail host.
    assert _run(mx_hosts(resolver, "no-mx.example")) == ["no-mx.example"]
    assert _run(host_addresses(resolver, "no-mx.example")) == ["192.0.2.7", "2001:db8::7"]
    assert _run(host_addresses(resolver, "127.0.0.1")) == ["127.0.0.1"]
    for domain, status in (
        ("null-mx.example", "5.1.10"),
        ("no-host.example", "5.1.2"),
        ("missing.example", "5.1.2"),
        ("broken.example", "4.4.3"),
    ):
        with pytest.raises(DeliveryError) as info:
            _run(mx_hosts(resolver, domain))
        assert info.value.status == status, domain


def test_direct_mx_delivery_uses_the_resolver_and_opportunistic_starttls(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    with smtp_sink(tls=_server_tls(config)) as sink:
        config = make_config(tmp_path, outbound={"mx_port": sink.port, "timeout_seconds": 5.0})
        sink.handler.refused = {"gone@remote.example"}
        resolver = StaticResolver(
            {
                ("remote.example", "MX"): ["10 dead.remote.example.", "20 mx.remote.example."],
                ("dead.remote.example", "A"): [],  # no address: skipped
                ("mx.remote.example", "A"): ["127.0.0.1"],
                ("nowhere.example", "TXT"): [],
            }
        )
        transport = Transport(config, resolver, "mail.example.org", "")
        outcomes = _run(
            transport.send(
                "marie.dupont@example.org",
                ["bob@remote.example", "gone@remote.example", "x@nowhere.example"],
                b"From: marie.dupont@example.org\r\nSubject: direct\r\n\r\nhi\r\n",
            )
        )
    by_rcpt = {o.recipient: o for o in outcomes}
    assert by_rcpt["bob@remote.example"].disposition is Disposition.SENT
    assert by_rcpt["bob@remote.example"].mx == "mx.remote.example"
    assert by_rcpt["gone@remote.example"].disposition is Disposition.PERMANENT
    assert by_rcpt["gone@remote.example"].status == "5.1.1"
    assert by_rcpt["x@nowhere.example"].disposition is Disposition.PERMANENT
    assert by_rcpt["x@nowhere.example"].status == "5.1.2"
    [received] = sink.handler.messages
    assert received.is_tls
    assert received.rcpt_tos == ["bob@remote.example"]


def test_connection_refused_is_a_temporary_failure(tmp_path: Path) -> None:
    with smtp_sink() as sink:
        port = sink.port
    # The sink is closed: nothing listens on its port any more.
    config = make_config(tmp_path, outbound={"mx_port": port, "timeout_seconds": 2.0})
    resolver = StaticResolver({("remote.example", "A"): ["127.0.0.1"]})
    transport = Transport(config, resolver, "mail.example.org", "")
    [outcome] = _run(transport.send("a@example.org", ["b@remote.example"], b"Subject: x\r\n\r\n"))
    assert outcome.disposition is Disposition.TEMPORARY
    assert outcome.status.startswith("4.")


def test_dns_records_list_what_to_publish(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    # init made a key; take it away and leave what a crash during init would.
    (config.data_dir / "dkim" / "mail.key").unlink()
    (config.data_dir / "dkim" / ".mail.key.tmp").write_bytes(b"half a key: a crash at init")
    key = ensure_dkim_key(config)
    assert key == config.data_dir / "dkim" / "mail.key"
    assert key.stat().st_mode & 0o777 == 0o600
    pem = key.read_bytes()
    assert pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert ensure_dkim_key(config) == key
    assert key.read_bytes() == pem  # never replaced: its public half may be in the DNS
    records = {(r.name, r.type): r for r in dns_records(config)}
    assert records[("example.org.", "MX")].value == "10 mail.example.org."
    assert records[("example.org.", "TXT")].value == "v=spf1 mx -all"
    assert (
        records[("_dmarc.example.org.", "TXT")].value
        == "v=DMARC1; p=quarantine; rua=mailto:postmaster@example.org"
    )
    dkim_record = records[("mail._domainkey.example.org.", "TXT")]
    assert dkim_record.value.startswith("v=DKIM1; k=rsa; p=MIIBIjAN")
    assert dkim_record.value == dkim_public_record(config)
    zone = dkim_record.zone_line()
    assert zone.startswith('mail._domainkey.example.org.\t3600\tIN\tTXT\t"v=DKIM1;')
    assert all(len(chunk) <= 255 for chunk in zone.split("\t")[-1].strip('"').split('" "'))
    assert records[("_submission._tcp.example.org.", "SRV")].value == "0 1 587 mail.example.org."
    assert records[("_submissions._tcp.example.org.", "SRV")].value == "0 1 465 mail.example.org."
    assert records[("_imap._tcp.example.org.", "SRV")].value == "0 1 143 mail.example.org."
    assert records[("_imaps._tcp.example.org.", "SRV")].value == "0 1 993 mail.example.org."
    assert records[("autoconfig.example.org.", "CNAME")].value == "mail.example.org."
    assert len(records) == 9


def test_dns_records_without_a_dkim_key_say_how_to_make_one(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    (config.data_dir / "dkim" / "mail.key").unlink()
    with pytest.raises(ConfigError, match=r"outbound\.dkim_key_file: cannot read"):
        dns_records(config)


def test_queue_recovery_drops_half_written_files_and_keeps_every_entry(tmp_path: Path) -> None:
    queue = OutboundQueue(tmp_path)
    entry = OutboundEntry(
        queue_id="a1",
        mail_from="marie.dupont@example.org",
        recipients=[RecipientState("bob@remote.example")],
        created_at=1.0,
        next_attempt_at=2.0,
    )
    assert queue.add(entry, b"Subject: x\r\n\r\nhi\r\n")
    assert not queue.add(entry, b"a second hand-off writes nothing")
    (queue.folder / "b2.eml").write_bytes(b"message whose state never got written")
    (queue.folder / ".c3.json.tmp").write_bytes(b"{")
    [found] = queue.recover()
    assert found == entry
    assert sorted(p.name for p in queue.folder.iterdir()) == ["a1.eml", "a1.json"]
    assert queue.data("a1") == b"Subject: x\r\n\r\nhi\r\n"
    queue.remove("a1")
    assert queue.recover() == []
    assert list(queue.folder.iterdir()) == []
