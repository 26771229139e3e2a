"""A throwaway Debian Dovecot on loopback, for interoperability tests and the IMAP bench.

Dovecot is the reference the webmail must also work with, unchanged: the same
implicit TLS with a verified certificate, the same SASL PLAIN login with an
authorization identity for a master user (Dovecot's ``master = yes`` passdb).
It runs in the foreground under a folder of its own, as the current user (or,
when the tests run as root, as Debian's ``dovecot``/``dovenull`` accounts, since
Dovecot starts neither its login nor its mail processes as root).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

#: Debian's binary; the tests that need it are skipped where the package is missing.
DOVECOT_BINARY: Final = "/usr/sbin/dovecot"
START_SECONDS: Final = 20.0

_CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:{base}/mail/%u
mail_fsync = {fsync}
passdb {{
  driver = passwd-file
  master = yes
  args = scheme=PLAIN {base}/masters
  pass = yes
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {base}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={base}/home/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Drafts {{
    special_use = \\Drafts
    auto = subscribe
  }}
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Archive {{
    special_use = \\Archive
    auto = subscribe
  }}
  mailbox Junk {{
    special_use = \\Junk
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = subscribe
  }}
}}
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = {tls_port}
  }}
}}
service anvil {{
  chroot =
}}
first_valid_uid = {uid}
last_valid_uid = {uid}
default_login_user = {login_user}
default_internal_user = {user}
"""


@dataclass(frozen=True, slots=True)
class RunningDovecot:
    """Where the Dovecot listens, and the CA its certificate is issued by (with TLS)."""

    host: str
    port: int
    is_tls: bool
    ca_file: Path | None
    base: Path

    @property
    def address(self) -> str:
        """``host:port``, as ``webmail.imap_server`` takes it."""
        return f"{self.host}:{self.port}"

    def log_text(self) -> str:
        """Dovecot's log so far (for assertion messages)."""
        path = self.base / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


def is_available() -> bool:
    """Whether Debian's ``dovecot-imapd`` is installed here."""
    return Path(shutil.which("dovecot") or DOVECOT_BINARY).exists()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _accounts(base: Path) -> tuple[str, str, int, int]:
    """The accounts Dovecot's processes run as: ours, or Debian's when we are root."""
    if os.getuid() != 0:
        user = pwd.getpwuid(os.getuid()).pw_name
        return user, user, os.getuid(), os.getgid()
    account = pwd.getpwnam("dovecot")
    base.chmod(0o755)
    for sub in ("mail", "home"):
        os.chown(base / sub, account.pw_uid, account.pw_gid)
    return "dovecot", "dovenull", account.pw_uid, account.pw_gid


def _write_tls(base: Path, config: str) -> tuple[str, Path]:
    import trustme

    authority = trustme.CA()
    issued = authority.issue_cert("127.0.0.1", "localhost")
    issued.cert_chain_pems[0].write_to_path(str(base / "cert.pem"))
    issued.private_key_pem.write_to_path(str(base / "key.pem"))
    ca_file = base / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    tls = f"ssl = required\nssl_cert = <{base}/cert.pem\nssl_key = <{base}/key.pem"
    return config.replace("ssl = no", tls), ca_file


def _wait_until_listening(process: subprocess.Popen[bytes], port: int, base: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while True:
        if process.poll() is not None:
            log = (base / "dovecot.log").read_text(errors="replace")
            raise RuntimeError(f"dovecot exited with {process.returncode}: {log}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextmanager
def running_dovecot(
    users: Mapping[str, str],
    *,
    masters: Mapping[str, str] | None = None,
    tls: bool = True,
    fsync: str = "optimized",
) -> Iterator[RunningDovecot]:
    """A Dovecot with these users (login → password) and master users, until the exit."""
    port = _free_port()
    base = Path(tempfile.mkdtemp(prefix="groupware-dovecot-"))
    try:
        for sub in ("run", "state", "mail", "home"):
            (base / sub).mkdir()
        (base / "users").write_text("".join(f"{u}:{{PLAIN}}{p}\n" for u, p in users.items()))
        (base / "masters").write_text(
            "".join(f"{u}:{{PLAIN}}{p}\n" for u, p in (masters or {}).items())
        )
        user, login_user, uid, gid = _accounts(base)
        config = _CONFIG.format(
            base=base,
            uid=uid,
            gid=gid,
            port=0 if tls else port,
            tls_port=port if tls else 0,
            user=user,
            login_user=login_user,
            fsync=fsync,
        )
        ca_file = None
        if tls:
            config, ca_file = _write_tls(base, config)
        (base / "dovecot.conf").write_text(config)
        binary = shutil.which("dovecot") or DOVECOT_BINARY
        process = subprocess.Popen([binary, "-F", "-c", str(base / "dovecot.conf")])
        try:
            _wait_until_listening(process, port, base)
            yield RunningDovecot("127.0.0.1", port, tls, ca_file, base)
        finally:
            process.terminate()
            process.wait(timeout=30)
    finally:
        shutil.rmtree(base, ignore_errors=True)
