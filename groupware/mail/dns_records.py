# SPDX-License-Identifier: GPL-3.0-or-later
"""The DNS records an installation needs, for ``groupware --data DIR dns`` to print.

MX (RFC 5321 §5), SPF (RFC 7208), DKIM (RFC 6376 §3.6), DMARC (RFC 7489), client
set-up SRV records (RFC 6186 and RFC 8314 §5.1) and the ``autoconfig`` name that
Thunderbird asks for. SRV records give the standard public ports (587, 465, 143,
993): the listen addresses in the configuration are often loopback ports behind a
proxy or a port mapping, so they say nothing about what clients reach.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from groupware.config import Config
from groupware.core import client_setup
from groupware.mail.dkim import dkim_public_record

TTL_SECONDS: Final = 3600
_TXT_CHUNK: Final = 255  # longest character-string in a TXT record (RFC 1035 §3.3)


@dataclass(frozen=True, slots=True)
class DnsRecord:
    """One record to publish."""

    name: str  # fully qualified, with the trailing dot
    type: str  # MX, TXT, SRV, CNAME
    value: str  # as a DNS control panel wants it (TXT unquoted, in one piece)
    purpose: str  # one line for the person adding it

    def zone_line(self, ttl_seconds: int = TTL_SECONDS) -> str:
        """The record in zone-file form (TXT values quoted, split in 255-byte strings)."""
        value = self.value
        if self.type == "TXT":
            chunks = [value[i : i + _TXT_CHUNK] for i in range(0, len(value), _TXT_CHUNK)]
            value = " ".join('"' + chunk.replace('"', '\\"') + '"' for chunk in chunks or [""])
        return f"{self.name}\t{ttl_seconds}\tIN\t{self.type}\t{value}"


def _fqdn(name: str) -> str:
    return name.rstrip(".") + "."


def dns_records(config: Config) -> list[DnsRecord]:
    """Every record to add to the zone of ``server.domain``.

    Args:
        config: the configuration; the DKIM key must exist (``groupware init``
            makes it, see ``mail.dkim.ensure_dkim_key``).

    Returns:
        MX, SPF, DKIM, DMARC, the four SRV records and the autoconfig CNAME, in
        that order.

    Raises:
        ConfigError: the DKIM key is missing or unreadable.
    """
    domain = config.server.domain.lower()
    mail_host = _fqdn(client_setup.mail_host(config))
    portal_host = urlsplit(config.server.public_url).hostname if config.server.public_url else None
    selector = config.outbound.dkim_selector
    records = [
        DnsRecord(_fqdn(domain), "MX", f"10 {mail_host}", "mail for the domain comes here"),
        DnsRecord(
            _fqdn(domain),
            "TXT",
            "v=spf1 mx -all",
            "SPF: only the MX hosts send for the domain"
            + (
                f" (add the smarthost {config.outbound.smarthost})"
                if config.outbound.smarthost
                else ""
            ),
        ),
        DnsRecord(
            _fqdn(f"{selector}._domainkey.{domain}"),
            "TXT",
            dkim_public_record(config),
            "DKIM public key: receivers check our signatures with it",
        ),
        DnsRecord(
            _fqdn(f"_dmarc.{domain}"),
            "TXT",
            f"v=DMARC1; p=quarantine; rua=mailto:postmaster@{domain}",
            "DMARC: unsigned or misaligned mail claiming the domain is quarantined",
        ),
    ]
    for service, port, what in (
        ("_submission._tcp", 587, "mail submission with STARTTLS"),
        ("_submissions._tcp", 465, "mail submission with implicit TLS"),
        ("_imap._tcp", 143, "IMAP with STARTTLS"),
        ("_imaps._tcp", 993, "IMAP with implicit TLS"),
    ):
        records.append(
            DnsRecord(
                _fqdn(f"{service}.{domain}"),
                "SRV",
                f"0 1 {port} {mail_host}",
                f"client set-up: {what}",
            )
        )
    records.append(
        DnsRecord(
            _fqdn(f"autoconfig.{domain}"),
            "CNAME",
            _fqdn(portal_host) if portal_host else mail_host,
            "Thunderbird autoconfig: autoconfig.<domain> reaches the portal",
        )
    )
    return records
