# SPDX-License-Identifier: GPL-3.0-or-later
"""DKIM signing of outbound mail (RFC 6376), with dkimpy.

One RSA key per installation (``outbound.dkim_key_file``, 2048 bits, PEM, mode
0600), made by :func:`ensure_dkim_key` at ``groupware init`` or, failing that, the
first time the mail service starts. Its public half is published as
``<selector>._domainkey.<domain>`` (:func:`dkim_public_record`, listed by
``mail.dns_records``). Messages whose ``From:`` is in our domain (or one of its
subdomains, such as our bounces from ``MAILER-DAEMON@mail.<domain>``, which DMARC's
relaxed alignment accepts) are signed rsa-sha256, relaxed/relaxed.
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Sequence
from email.utils import getaddresses
from pathlib import Path
from typing import Final

import dkim  # type: ignore[import-untyped]  # dkimpy ships no type hints
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from groupware.config import Config
from groupware.errors import ConfigError
from groupware.mail.mime import parse_headers
from groupware.mail.spool import write_durably

log = logging.getLogger(__name__)

KEY_BITS: Final = 2048
#: Signed when present (RFC 6376 §5.4.1's recommendations, minus trace fields).
SIGNED_HEADERS: Final = (
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Reply-To",
    "In-Reply-To",
    "References",
)


def ensure_dkim_key(config: Config) -> Path:
    """Make the DKIM private key if it does not exist yet (blocking).

    The key is 2048-bit RSA, written as PKCS#1 PEM (what dkimpy reads) with mode
    0600, through a temporary file, fsync and rename, so a crash never leaves half
    a key. An existing key is never replaced: its public half may be in the DNS.

    Args:
        config: the configuration (``outbound.dkim_key_file``).

    Returns:
        The key's path.
    """
    path = config.path(config.outbound.dkim_key_file)
    if path.exists():
        return path
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    # Not exclusive: a temporary file left by a crash mid-write is simply replaced.
    write_durably(path.parent, path.name, (pem,), exclusive=False)
    os.chmod(path, 0o600)
    log.warning(
        "dkim.key_created path=%s selector=%s: publish its record (groupware dns)",
        path,
        config.outbound.dkim_selector,
    )
    return path


def _load_private_pem(config: Config) -> bytes:
    path = config.path(config.outbound.dkim_key_file)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"outbound.dkim_key_file: cannot read {path}: {exc.strerror} (made by 'groupware init')"
        ) from exc


def dkim_public_record(config: Config) -> str:
    """The TXT record value for ``<selector>._domainkey.<domain>`` (RFC 6376 §3.6.1).

    Raises:
        ConfigError: the key file is missing, unreadable or not an RSA key.
    """
    try:
        key = serialization.load_pem_private_key(_load_private_pem(config), password=None)
    except ValueError as exc:
        raise ConfigError(f"outbound.dkim_key_file: not a PEM private key: {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError("outbound.dkim_key_file: not an RSA key")
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}"


class DkimSigner:
    """Signs messages from our domain with the installation's key."""

    def __init__(self, domain: str, selector: str, private_pem: bytes) -> None:
        self.domain = domain.lower()
        self.selector = selector
        self._private_pem = private_pem

    @classmethod
    def from_config(cls, config: Config) -> DkimSigner:
        """The signer of this installation, making its key if missing (blocking)."""
        ensure_dkim_key(config)
        return cls(config.server.domain, config.outbound.dkim_selector, _load_private_pem(config))

    def is_ours(self, domain: str) -> bool:
        """Whether ``domain`` is our domain or one of its subdomains."""
        domain = domain.lower().rstrip(".")
        return domain == self.domain or domain.endswith("." + self.domain)

    def sign(self, data: bytes) -> bytes:
        """``data`` with a ``DKIM-Signature:`` prepended when its ``From:`` is ours.

        Other messages are returned unchanged: signing mail we only relay would
        vouch for someone else's domain.
        """
        end = data.find(b"\r\n\r\n")
        headers = parse_headers(data[: end + 2] if end >= 0 else data)
        senders = [address for _name, address in getaddresses(headers.get_all("from", []))]
        if not senders or not all(self.is_ours(a.rpartition("@")[2]) for a in senders):
            return data
        present = {name.lower() for name in headers}
        signed: Sequence[bytes] = [
            name.encode() for name in SIGNED_HEADERS if name.lower() in present
        ]
        try:
            signature: bytes = dkim.sign(
                data,
                self.selector.encode(),
                self.domain.encode(),
                self._private_pem,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=signed,
            )
        except dkim.DKIMException:
            # A message dkimpy cannot parse still goes out, unsigned (and logged).
            log.warning("dkim.sign_failed domain=%s", self.domain)
            return data
        return signature + data
