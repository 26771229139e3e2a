# SPDX-License-Identifier: GPL-3.0-or-later
"""``groupware init``: a new data folder with config, secret, TLS and stores.

The folder holds everything an embedded installation needs: ``groupware.toml``
(every key documented with its default), ``secret.key``, ``tls/cert.pem`` and
``tls/key.pem`` (self-signed, made with ``cryptography``), the DKIM signing key
(``dkim/mail.key``), the SQLite database and one folder per store.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from groupware.config import CONFIG_FILE_NAME, ServerConfig, load_config, render_toml
from groupware.core.db import make_engine
from groupware.errors import ConfigError
from groupware.mail.dkim import ensure_dkim_key

STORE_FOLDERS: Final = ("dav", "mail", "spool", "tls")


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def make_self_signed(domain: str, cert_path: Path, key_path: Path, days: int = 825) -> None:
    """A self-signed ECDSA certificate for ``domain``, ``mail.domain``, localhost."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    now = datetime.datetime.now(datetime.UTC)
    alt_names: list[x509.GeneralName] = [
        x509.DNSName(domain),
        x509.DNSName(f"mail.{domain}"),
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write_private(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def init_data_dir(data_dir: Path, *, domain: str, institution: str | None = None) -> None:
    """Create a data folder; refuse if the folder exists and is not empty.

    Raises:
        ConfigError: the folder exists, or the domain is not a domain name.
    """
    try:
        ServerConfig(domain=domain)
    except ValueError as exc:
        raise ConfigError(f"--domain: {exc}") from exc
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise ConfigError(f"{data_dir} already exists and is not empty: refusing to overwrite it")
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    for folder in STORE_FOLDERS:
        (data_dir / folder).mkdir(mode=0o700)
    values: dict[str, dict[str, object]] = {"server": {"domain": domain}}
    if institution:
        values["server"]["institution_name"] = institution
    (data_dir / CONFIG_FILE_NAME).write_text(render_toml(values), encoding="utf-8")
    _write_private(data_dir / "secret.key", secrets.token_urlsafe(48).encode() + b"\n")
    make_self_signed(domain, data_dir / "tls" / "cert.pem", data_dir / "tls" / "key.pem")
    config = load_config(data_dir, env={})
    ensure_dkim_key(config)
    make_engine(config.database_url).dispose()
