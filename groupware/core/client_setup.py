# SPDX-License-Identifier: GPL-3.0-or-later
"""What mail, calendar and contacts clients need to set themselves up.

- Thunderbird autoconfig (``config-v1.1.xml``, the format Thunderbird and many
  clients fetch from ``autoconfig.<domain>`` and ``/.well-known/autoconfig``);
- an Apple configuration profile (``.mobileconfig``, Apple's "Configuration Profile
  Reference") for IMAP and SMTP, CalDAV and CardDAV, with an app password;
- the host names and ports clients are given.

Public ports are the standard ones (RFC 8314: 993 and 465 with implicit TLS first,
143 and 587 with STARTTLS): the listen addresses of the configuration are often
loopback ports behind a port mapping, as for the DNS records (``groupware dns``).
"""

from __future__ import annotations

import plistlib
import uuid
import xml.etree.ElementTree as ET
from typing import Final
from urllib.parse import urlsplit

from groupware.config import Config

IMAPS_PORT: Final = 993
IMAP_PORT: Final = 143
SUBMISSIONS_PORT: Final = 465
SUBMISSION_PORT: Final = 587
_PROFILE_NAMESPACE: Final = uuid.UUID("0f6f5d0e-8d0a-4d55-a0f4-0b7a3f6c9e21")


def mail_host(config: Config) -> str:
    """The host name mail clients connect to (``smtp.hostname`` or ``mail.<domain>``)."""
    return (config.smtp.hostname or f"mail.{config.server.domain}").lower().rstrip(".")


def autoconfig_xml(config: Config) -> bytes:
    """Thunderbird's ``clientConfig`` for the domain (IMAP and SMTP, TLS first)."""
    domain = config.server.domain
    host = mail_host(config)
    root = ET.Element("clientConfig", version="1.1")
    provider = ET.SubElement(root, "emailProvider", id=domain)
    ET.SubElement(provider, "domain").text = domain
    ET.SubElement(provider, "displayName").text = config.server.institution_name
    ET.SubElement(provider, "displayShortName").text = config.server.institution_name
    for port, socket in ((IMAPS_PORT, "SSL"), (IMAP_PORT, "STARTTLS")):
        _server(provider, "incomingServer", "imap", host, port, socket)
    for port, socket in ((SUBMISSIONS_PORT, "SSL"), (SUBMISSION_PORT, "STARTTLS")):
        _server(provider, "outgoingServer", "smtp", host, port, socket)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _server(parent: ET.Element, tag: str, kind: str, host: str, port: int, socket: str) -> None:
    server = ET.SubElement(parent, tag, type=kind)
    ET.SubElement(server, "hostname").text = host
    ET.SubElement(server, "port").text = str(port)
    ET.SubElement(server, "socketType").text = socket
    # The address, whatever its spelling, is what every protocol accepts as login.
    ET.SubElement(server, "username").text = "%EMAILADDRESS%"
    ET.SubElement(server, "authentication").text = "password-cleartext"


def mobileconfig(
    config: Config,
    *,
    email: str,
    display_name: str,
    login: str,
    password: str,
    scope: str,
    portal_url: str,
    device: str,
) -> bytes:
    """An Apple profile for ``scope`` (mail, dav or all), holding the app password."""
    host = mail_host(config)
    portal = urlsplit(portal_url)
    use_tls = portal.scheme == "https"
    portal_port = portal.port or (443 if use_tls else 80)
    ident = f"{login}.{device}"
    payloads = []
    if scope in ("mail", "all"):
        payloads.append(
            {
                "PayloadType": "com.apple.mail.managed",
                "PayloadVersion": 1,
                "PayloadIdentifier": f"groupware.mail.{ident}",
                "PayloadUUID": _uuid("mail", ident),
                "PayloadDisplayName": email,
                "EmailAccountType": "EmailTypeIMAP",
                "EmailAccountDescription": config.server.institution_name,
                "EmailAccountName": display_name,
                "EmailAddress": email,
                "IncomingMailServerHostName": host,
                "IncomingMailServerPortNumber": IMAPS_PORT,
                "IncomingMailServerUseSSL": True,
                "IncomingMailServerAuthentication": "EmailAuthPassword",
                "IncomingMailServerUsername": email,
                "IncomingPassword": password,
                "OutgoingMailServerHostName": host,
                "OutgoingMailServerPortNumber": SUBMISSIONS_PORT,
                "OutgoingMailServerUseSSL": True,
                "OutgoingMailServerAuthentication": "EmailAuthPassword",
                "OutgoingMailServerUsername": email,
                "OutgoingPassword": password,
            }
        )
    if scope in ("dav", "all"):
        for kind in ("caldav", "carddav"):
            prefix = "CalDAV" if kind == "caldav" else "CardDAV"
            payloads.append(
                {
                    "PayloadType": f"com.apple.{kind}.account",
                    "PayloadVersion": 1,
                    "PayloadIdentifier": f"groupware.{kind}.{ident}",
                    "PayloadUUID": _uuid(kind, ident),
                    "PayloadDisplayName": f"{prefix} — {config.server.institution_name}",
                    f"{prefix}AccountDescription": config.server.institution_name,
                    f"{prefix}HostName": portal.hostname or "",
                    f"{prefix}Port": portal_port,
                    f"{prefix}UseSSL": use_tls,
                    f"{prefix}PrincipalURL": f"{portal_url.rstrip('/')}/dav/{login}/",
                    f"{prefix}Username": login,
                    f"{prefix}Password": password,
                }
            )
    profile = {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"groupware.profile.{ident}",
        "PayloadUUID": _uuid("profile", ident),
        "PayloadDisplayName": f"{config.server.institution_name} — {device}",
        "PayloadDescription": f"{email}",
        "PayloadOrganization": config.server.institution_name,
        "PayloadRemovalDisallowed": False,
        "PayloadContent": payloads,
    }
    return plistlib.dumps(profile, fmt=plistlib.FMT_XML)


def davx5_url(login: str, portal_url: str) -> str:
    """A ``caldav(s)://`` link DAVx⁵ opens with the base URL and login filled in."""
    parts = urlsplit(portal_url)
    scheme = "caldavs" if parts.scheme == "https" else "caldav"
    return f"{scheme}://{login}@{parts.netloc}/dav/"


def _uuid(kind: str, ident: str) -> str:
    return str(uuid.uuid5(_PROFILE_NAMESPACE, f"{kind}:{ident}")).upper()
