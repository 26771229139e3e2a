"""The ``groupware`` command, run as a real subprocess: init, serve, users, groups."""

from __future__ import annotations

import email.policy
import fcntl
import gc
import os
import queue
import re
import select
import signal
import socket
import ssl
import subprocess
import sys
import termios
import threading
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from email import message_from_bytes
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select as sql_select

from groupware.config import LISTEN_ENV_ALIASES, SECTIONS, load_config
from groupware.core.db import audit_log
from groupware.core.events import EventBus
from groupware.core.hr_import import HrImport
from groupware.core.passwords import is_valid_numen
from groupware.core.services import Core
from groupware.datadir import init_data_dir
from groupware.mail.spool import Spool
from groupware.mail.store import INBOX, MailStore

DOMAIN = "ac-test.fr"
# Cheap argon2, for speed (DESIGN.md §9).
FAST_HASHING = {
    "GROUPWARE_AUTH__ARGON2_TIME_COST": "1",
    "GROUPWARE_AUTH__ARGON2_MEMORY_KIB": "64",
    "GROUPWARE_AUTH__ARGON2_PARALLELISM": "1",
}
HEADER = "numen;nom;prenom;date_naissance;fonction;etablissement;discipline;service"
STAFF = (
    "1000000001AAA;Dupont;Marie;14/03/1978;Enseignant;Lycée Joffre;Lettres;",
    "1000000002AAA;Dupont;Marie;1985-11-02;Enseignant;Collège Les Garrigues;Mathématiques;",
    "1000000003AAA;N'Diaye;Aïssatou;09/01/1990;Enseignant;Lycée Joffre;Lettres;",
    "1000000004AAA;Martin;Jean Pierre;21/06/1969;Chef d'établissement;Lycée Joffre;;Direction",
)
#: Every listener on a port the system picks (never a fixed port in tests).
PORT_ZERO = dict.fromkeys(LISTEN_ENV_ALIASES, "127.0.0.1:0")
GOOD_PASSWORD = "Velo-Rouge-Montagne-42"
TIMEOUT_SECONDS = 60


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a CLI run: ours, minus any GROUPWARE_* of the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GROUPWARE_")}
    env.update(FAST_HASHING)
    env.update(extra)
    return env


def run_cli(
    *args: str | Path, data: Path | None = None, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m groupware [--data DATA] ARGS`` with ``stdin`` as its standard input."""
    command = [sys.executable, "-m", "groupware"]
    if data is not None:
        command += ["--data", str(data)]
    return subprocess.run(
        [*command, *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        env=cli_env() if env is None else env,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )


def assert_user_error(
    result: subprocess.CompletedProcess[str], pattern: str, *, after_logs: bool = False
) -> None:
    """Exit 1, one ``error: ...`` line on stderr matching ``pattern``, no traceback.

    With ``after_logs``, log lines of the start-up may come before the error line.
    """
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    if after_logs:
        lines = lines[-1:]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert re.search(pattern, lines[0]), lines[0]


def assert_usage_error(result: subprocess.CompletedProcess[str], pattern: str) -> None:
    """Exit 2 with click's usage text."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert "Usage: " in result.stderr
    assert re.search(pattern, result.stderr), result.stderr


@contextmanager
def open_core(data: Path) -> Iterator[Core]:
    """The data folder's core, in this process, to look at what the CLI did."""
    core = Core.open(load_config(data, env={}))
    try:
        yield core
    finally:
        core.close()


def staff_file(tmp_path: Path, *lines: str, name: str = "staff.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join((HEADER, *lines, "")).encode())
    return path


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """An empty data folder (made in-process: ``init`` itself is tested below)."""
    folder = tmp_path / "data"
    init_data_dir(folder, domain=DOMAIN)
    return folder


@pytest.fixture
def staffed(data: Path, tmp_path: Path) -> Path:
    """A data folder holding the four people of ``STAFF``."""
    with open_core(data) as core:
        report = HrImport(core.directory).run(
            staff_file(tmp_path, *STAFF, name="setup.csv").read_bytes(), actor="test"
        )
    assert len(report.created) == len(STAFF)
    return data


def tree(folder: Path) -> dict[str, tuple[bytes | None, int]]:
    """Every path under ``folder`` with its content and modification time."""
    return {
        str(path.relative_to(folder)): (
            None if path.is_dir() else path.read_bytes(),
            path.stat().st_mtime_ns,
        )
        for path in sorted(folder.rglob("*"))
    }


# --- init ---------------------------------------------------------------------------


def test_init_creates_config_database_secret_certificate_and_stores(tmp_path: Path) -> None:
    folder = tmp_path / "new"

    result = run_cli("init", folder, "--domain", DOMAIN)

    assert result.returncode == 0, result.stderr
    assert f"groupware --data {folder} serve" in result.stdout
    for name in ("groupware.toml", "groupware.db", "secret.key", "tls/cert.pem", "tls/key.pem"):
        assert (folder / name).is_file(), name
    for name in ("dav", "mail", "spool"):
        assert (folder / name).is_dir(), name
    assert (folder / "secret.key").stat().st_mode & 0o777 == 0o600
    assert (folder / "tls/key.pem").stat().st_mode & 0o777 == 0o600
    assert folder.stat().st_mode & 0o077 == 0
    assert len((folder / "secret.key").read_bytes().strip()) >= 32


def test_init_certificate_and_key_load_and_name_the_domain(tmp_path: Path) -> None:
    folder = tmp_path / "new"
    assert run_cli("init", folder, "--domain", DOMAIN).returncode == 0

    cert = x509.load_pem_x509_certificate((folder / "tls/cert.pem").read_bytes())
    key = serialization.load_pem_private_key((folder / "tls/key.pem").read_bytes(), None)

    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert DOMAIN in names.get_values_for_type(x509.DNSName)
    assert cert.subject == cert.issuer
    raw = serialization.PublicFormat.SubjectPublicKeyInfo
    pem = serialization.Encoding.PEM
    assert key.public_key().public_bytes(pem, raw) == cert.public_key().public_bytes(pem, raw)


def test_init_config_lists_every_key_of_every_section_with_its_default(tmp_path: Path) -> None:
    folder = tmp_path / "new"
    assert run_cli("init", folder, "--domain", DOMAIN).returncode == 0
    text = (folder / "groupware.toml").read_text(encoding="utf-8")

    document = tomllib.loads(text)

    assert set(document) == set(SECTIONS)
    lines = text.splitlines()
    for section, cls in SECTIONS.items():
        assert set(document[section]) == {f.name for f in fields(cls)}, section
    for number, line in enumerate(lines):
        if re.match(r"^[a-z_]+ = ", line):
            assert lines[number - 1].startswith("# default: "), line
            assert re.match(r"^# \w.{3,}", lines[number - 2]), line
    assert document["server"]["domain"] == DOMAIN
    config = load_config(folder, env={})
    assert config.server.domain == DOMAIN
    assert config.http == SECTIONS["http"]()
    assert config.auth == SECTIONS["auth"]()


def test_second_init_of_the_same_folder_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "new"
    assert run_cli("init", folder, "--domain", DOMAIN).returncode == 0
    before = tree(folder)

    result = run_cli("init", folder, "--domain", "other.fr")

    assert_user_error(result, r"already exists and is not empty: refusing to overwrite it")
    assert str(folder) in result.stderr
    assert tree(folder) == before


def test_init_refuses_a_folder_holding_anything(tmp_path: Path) -> None:
    folder = tmp_path / "busy"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")

    assert_user_error(run_cli("init", folder), r"refusing to overwrite")
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


def test_init_refuses_a_domain_that_is_not_a_domain_name(tmp_path: Path) -> None:
    result = run_cli("init", tmp_path / "new", "--domain", "not a domain")

    assert_user_error(result, r"--domain: not a domain name")
    assert not (tmp_path / "new").exists()


def test_init_where_no_folder_can_be_made_fails_without_traceback(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")

    assert_user_error(run_cli("init", blocker / "data"), r"Not a directory")


def test_init_demo_prints_about_thirty_logins_with_their_numens(tmp_path: Path) -> None:
    folder = tmp_path / "demo"

    result = run_cli("init", folder, "--domain", DOMAIN, "--demo")

    assert result.returncode == 0, result.stderr
    pairs = re.findall(r"([a-z0-9-]+\.[a-z0-9-]+)\s+\W\s+([0-9A-Z]{13})\b", result.stdout)
    assert 25 <= len(pairs) <= 40
    assert len({login for login, _numen in pairs}) == len(pairs)
    with open_core(folder) as core:
        assert core.directory.count_persons() == len(pairs)
        for login, numen in pairs:
            assert is_valid_numen(numen)
            person = core.directory.by_numen(numen)
            assert person is not None
            assert person.login == login
            assert person.email == f"{login}@{DOMAIN}"
        schools = {
            group.name for group, _n in core.directory.list_groups() if group.kind == "school"
        }
        assert len(schools) >= 2
        assert any(person.is_admin for person in core.directory.list_persons())


# --- users import ---------------------------------------------------------------------


def report_numbers(stdout: str) -> dict[str, int]:
    return {
        key: int(value)
        for key, value in re.findall(
            r"(lines read|created|updated|unchanged|disabled|rejected)\W+(\d+)", stdout
        )
    }


def test_users_import_reports_counts_and_rejected_lines_then_is_idempotent(
    data: Path, tmp_path: Path
) -> None:
    csv_file = staff_file(
        tmp_path,
        *STAFF,
        "1000000005aaa;Roux;Léa;21/06/1969;Enseignant;Lycée Joffre;Lettres;",
        "1000000006AAA;Roux;Léa;31/02/1980;Enseignant;Lycée Joffre;Lettres;",
    )

    first = run_cli("users", "import", csv_file, data=data)

    assert first.returncode == 0, first.stderr
    assert report_numbers(first.stdout) == {
        "lines read": 6,
        "created": 4,
        "updated": 0,
        "unchanged": 0,
        "disabled": 0,
        "rejected": 2,
    }
    assert re.search(r"^rejected line 6: invalid NUMEN '1000000005aaa'", first.stdout, re.M)
    assert re.search(r"^rejected line 7: invalid date '31/02/1980'", first.stdout, re.M)
    assert re.search(r"Importing.*4/4", first.stderr)

    second = run_cli("users", "import", csv_file, data=data)

    assert second.returncode == 0, second.stderr
    numbers = report_numbers(second.stdout)
    assert (numbers["created"], numbers["updated"], numbers["unchanged"]) == (0, 0, 4)
    with open_core(data) as core:
        logins = sorted(person.login for person in core.directory.list_persons())
    assert logins == ["aissatou.ndiaye", "jean-pierre.martin", "marie.dupont", "marie.dupont2"]


def test_users_import_disable_missing(staffed: Path, tmp_path: Path) -> None:
    csv_file = staff_file(tmp_path, *STAFF[:3])

    result = run_cli("users", "import", csv_file, "--disable-missing", data=staffed)

    assert result.returncode == 0, result.stderr
    assert report_numbers(result.stdout)["disabled"] == 1
    with open_core(staffed) as core:
        assert not core.directory.get("jean-pierre.martin").is_active


def test_users_import_refuses_a_file_without_a_required_column(
    staffed: Path, tmp_path: Path
) -> None:
    csv_file = tmp_path / "bad.csv"
    csv_file.write_text("numen;nom;prenom;date_naissance;etablissement\n", encoding="utf-8")

    assert_user_error(
        run_cli("users", "import", csv_file, data=staffed),
        r"line 1: missing column\(s\) fonction",
    )


def test_users_import_refuses_a_file_that_is_not_utf8(data: Path, tmp_path: Path) -> None:
    csv_file = tmp_path / "latin1.csv"
    csv_file.write_bytes(("\n".join((HEADER, *STAFF)) + "\n").encode("latin-1"))

    assert_user_error(run_cli("users", "import", csv_file, data=data), r"line 2: .*not UTF-8")
    with open_core(data) as core:
        assert core.directory.count_persons() == 0


def test_users_import_of_a_missing_file_is_a_usage_error(data: Path, tmp_path: Path) -> None:
    assert_usage_error(
        run_cli("users", "import", tmp_path / "nowhere.csv", data=data), r"does not exist"
    )


# --- users passwd -----------------------------------------------------------------------


def test_users_passwd_reads_stdin_clears_must_change_and_is_audited(staffed: Path) -> None:
    result = run_cli(
        "users", "passwd", "Marie.Dupont@AC-TEST.fr", data=staffed, stdin=GOOD_PASSWORD + "\n"
    )

    assert result.returncode == 0, result.stderr
    assert "Password set for marie.dupont." in result.stdout
    with open_core(staffed) as core:
        person = core.directory.get("marie.dupont")
        assert not person.must_change_password
        assert person.password_hash is not None
        assert core.directory.hasher.verify(person.password_hash, GOOD_PASSWORD)
        assert GOOD_PASSWORD not in person.password_hash
        with core.engine.connect() as conn:
            rows = conn.execute(
                sql_select(audit_log.c.actor, audit_log.c.detail).where(
                    audit_log.c.event == "password.set", audit_log.c.subject == "marie.dupont"
                )
            ).all()
        assert len(rows) == 1
        assert rows[0].actor.startswith("cli:")
        assert GOOD_PASSWORD not in rows[0].detail


@pytest.mark.parametrize("stdin", ["\n", "", "\r\n"], ids=["empty-line", "eof", "crlf"])
def test_users_passwd_refuses_an_empty_password_and_changes_nothing(
    staffed: Path, stdin: str
) -> None:
    result = run_cli("users", "passwd", "marie.dupont", data=staffed, stdin=stdin)

    assert_user_error(result, r"empty password: nothing changed")
    with open_core(staffed) as core:
        person = core.directory.get("marie.dupont")
        assert person.must_change_password
        assert person.password_hash is None


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short-9", r"at least 12 characters"),
        ("Marie-Velo-Rouge-42", r"must not contain your first or last name"),
        ("Velo-Rouge-14031978", r"must not contain your birth date"),
        ("x1000000001AAAxyz", r"must not contain your NUMEN"),
    ],
)
def test_users_passwd_refuses_a_password_breaking_the_policy(
    staffed: Path, password: str, message: str
) -> None:
    result = run_cli("users", "passwd", "marie.dupont", data=staffed, stdin=password + "\n")

    assert_user_error(result, message)
    with open_core(staffed) as core:
        assert core.directory.get("marie.dupont").password_hash is None


def test_users_passwd_of_an_unknown_login_fails(staffed: Path) -> None:
    result = run_cli("users", "passwd", "nobody", data=staffed, stdin=GOOD_PASSWORD + "\n")

    assert_user_error(result, r"no such person: nobody")


def _make_controlling_terminal() -> None:
    # Runs in the child after setsid(): standard input (the pty) becomes its terminal.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _read_until(fd: int, pattern: bytes, deadline: float) -> bytes:
    seen = b""
    while not re.search(pattern, seen):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"timed out waiting for {pattern!r}; got {seen!r}"
        ready, _w, _x = select.select([fd], [], [], remaining)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    return seen


def test_users_passwd_on_a_terminal_prompts_without_echo(staffed: Path) -> None:
    controller, terminal = os.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "groupware", "--data", str(staffed)]
            + ["users", "passwd", "marie.dupont"],
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
            env=cli_env(),
            start_new_session=True,
            preexec_fn=_make_controlling_terminal,
        )
        os.close(terminal)
        deadline = time.monotonic() + TIMEOUT_SECONDS
        prompt = _read_until(controller, rb"New password for marie\.dupont: ", deadline)
        os.write(controller, GOOD_PASSWORD.encode() + b"\n")
        rest = _read_until(controller, rb"Password set for marie\.dupont\.", deadline)
        assert process.wait(timeout=TIMEOUT_SECONDS) == 0
    finally:
        os.close(controller)
    assert GOOD_PASSWORD.encode() not in prompt + rest
    with open_core(staffed) as core:
        person = core.directory.get("marie.dupont")
        assert person.password_hash is not None
        assert core.directory.hasher.verify(person.password_hash, GOOD_PASSWORD)


# --- users add, list, show, disable, enable, set-quota, reset ---------------------------


def test_users_add_creates_an_account_with_the_conventional_address(data: Path) -> None:
    result = run_cli(
        "users",
        "add",
        "--numen",
        "1000000009AAA",
        "--first-name",
        "Hélène",
        "--last-name",
        "de La Fontaine",
        "--birth-date",
        "14/03/1978",
        "--role",
        "Enseignant",
        "--school",
        "Lycée Joffre",
        "--discipline",
        "Lettres",
        "--service",
        "Lettres",
        data=data,
    )

    assert result.returncode == 0, result.stderr
    assert "Created helene.de-la-fontaine <helene.de-la-fontaine@ac-test.fr>" in result.stdout
    with open_core(data) as core:
        person = core.directory.get("helene.de-la-fontaine")
        assert person.must_change_password
        assert not person.is_admin
        groups = {g.name for g in core.directory.groups_of(person.id)}
    assert groups == {"lycee-joffre", "lycee-joffre.lettres", "enseignant"}


def test_users_add_admin_and_namesake(staffed: Path) -> None:
    result = run_cli(
        "users",
        "add",
        "--numen",
        "1000000009AAA",
        "--first-name",
        "Marie",
        "--last-name",
        "Dupont",
        "--admin",
        data=staffed,
    )

    assert result.returncode == 0, result.stderr
    assert "Created marie.dupont3 " in result.stdout
    with open_core(staffed) as core:
        assert core.directory.get("marie.dupont3").is_admin


@pytest.mark.parametrize(
    ("numen", "first_name", "message"),
    [
        ("1000000001AAA", "Paul", r"a person with this NUMEN already exists"),
        ("1000000001aaa", "Paul", r"NUMEN must be 13 digits or uppercase letters"),
        ("1000000009AAA", "李", r"first and last name must contain letters or digits"),
    ],
)
def test_users_add_refuses_bad_input(
    staffed: Path, numen: str, first_name: str, message: str
) -> None:
    result = run_cli(
        "users",
        "add",
        "--numen",
        numen,
        "--first-name",
        first_name,
        "--last-name",
        "Rousseau",
        data=staffed,
    )

    assert_user_error(result, message)


def test_users_add_refuses_a_bad_birth_date_and_missing_options(data: Path) -> None:
    bad_date = run_cli(
        "users",
        "add",
        "--numen",
        "1000000009AAA",
        "--first-name",
        "Paul",
        "--last-name",
        "Rousseau",
        "--birth-date",
        "31/02/1980",
        data=data,
    )
    missing = run_cli("users", "add", "--numen", "1000000009AAA", data=data)

    assert_usage_error(bad_date, r"invalid date '31/02/1980'")
    assert_usage_error(missing, r"Missing option '--first-name'")


def test_users_list_prints_one_whole_line_per_person_with_the_address(
    staffed: Path, tmp_path: Path
) -> None:
    long_school = "Lycée professionnel régional Jean-Baptiste de La Salle [site annexe]"
    long_line = (
        "1000000005AAA;de La Rochefoucauld-Montbazon;Jean-Baptiste Marie Alexandre;"
        f"01/01/1970;Professeur de lycée professionnel;{long_school};;"
    )
    with open_core(staffed) as core:
        HrImport(core.directory).run(
            staff_file(tmp_path, *STAFF, long_line).read_bytes(), actor="test"
        )

    result = run_cli("users", "list", data=staffed)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].split() == ["identifier", "address", "name", "role", "school", "status"]
    assert len(lines) == 1 + 5
    by_login = {line.split()[0]: line for line in lines[1:]}
    assert set(by_login) == {
        "aissatou.ndiaye",
        "jean-pierre.martin",
        "marie.dupont",
        "marie.dupont2",
        "jean-baptiste-marie-alexandre.de-la-rochefoucauld-montbazon",
    }
    for login, line in by_login.items():
        assert line.split()[1] == f"{login}@{DOMAIN}"
        assert line.rstrip().endswith("must-change-password")
    long_one = by_login["jean-baptiste-marie-alexandre.de-la-rochefoucauld-montbazon"]
    assert long_school in long_one
    assert "Jean-Baptiste Marie Alexandre de La Rochefoucauld-Montbazon" in long_one
    assert "…" not in result.stdout


def test_users_list_filters_by_school_and_activity(staffed: Path) -> None:
    assert run_cli("users", "disable", "marie.dupont", data=staffed).returncode == 0

    joffre = run_cli("users", "list", "--school", "Lycée Joffre", data=staffed)
    active = run_cli("users", "list", "--active-only", data=staffed)

    joffre_logins = [line.split()[0] for line in joffre.stdout.splitlines()[1:]]
    assert joffre_logins == ["marie.dupont", "jean-pierre.martin", "aissatou.ndiaye"]
    assert "disabled" in joffre.stdout
    active_logins = {line.split()[0] for line in active.stdout.splitlines()[1:]}
    assert active_logins == {"aissatou.ndiaye", "jean-pierre.martin", "marie.dupont2"}


def test_users_show_prints_the_account_but_never_the_numen(staffed: Path) -> None:
    result = run_cli("users", "show", "JEAN-PIERRE.MARTIN", data=staffed)

    assert result.returncode == 0, result.stderr
    assert re.search(r"address\s+jean-pierre\.martin@ac-test\.fr", result.stdout)
    assert re.search(r"name\s+Jean Pierre Martin", result.stdout)
    assert re.search(r"birth date\s+1969-06-21", result.stdout)
    assert re.search(r"role\s+Chef d'établissement", result.stdout)
    assert re.search(r"service\s+Direction", result.stdout)
    assert re.search(r"status\s+must-change-password", result.stdout)
    assert re.search(r"quota\s+30\.0 GiB", result.stdout)
    assert "lycee-joffre.direction" in result.stdout
    assert "1000000004AAA" not in result.stdout


def test_users_show_of_an_unknown_login_fails(staffed: Path) -> None:
    assert_user_error(run_cli("users", "show", "nobody", data=staffed), r"no such person: nobody")


def test_users_disable_then_enable(staffed: Path) -> None:
    with open_core(staffed) as core:
        version = core.directory.get("marie.dupont2").credential_version

    disabled = run_cli("users", "disable", "marie.dupont2", data=staffed)
    shown = run_cli("users", "show", "marie.dupont2", data=staffed)

    assert disabled.returncode == 0, disabled.stderr
    assert "Disabled marie.dupont2." in disabled.stdout
    assert re.search(r"status\s+disabled", shown.stdout)
    with open_core(staffed) as core:
        person = core.directory.get("marie.dupont2")
        assert not person.is_active
        assert person.credential_version > version

    enabled = run_cli("users", "enable", "marie.dupont2", data=staffed)

    assert enabled.returncode == 0, enabled.stderr
    assert "Enabled marie.dupont2." in enabled.stdout
    with open_core(staffed) as core:
        assert core.directory.get("marie.dupont2").is_active
        events = [record.event for record in core.audit.recent(subject="marie.dupont2")]
    assert events[:2] == ["account.enabled", "account.disabled"]


@pytest.mark.parametrize(
    ("size", "expected_bytes", "shown"),
    [
        ("30G", 30 * 1024**3, "30.0 GiB"),
        ("500M", 500 * 1024**2, "500.0 MiB"),
        ("1.5GiB", 3 * 512 * 1024**2, "1.5 GiB"),
        ("123456", 123456, "120.6 KiB"),
        ("0", 0, "0 B"),
    ],
)
def test_users_set_quota_accepts_units_and_bytes(
    staffed: Path, size: str, expected_bytes: int, shown: str
) -> None:
    result = run_cli("users", "set-quota", "marie.dupont", size, data=staffed)

    assert result.returncode == 0, result.stderr
    assert f"Quota of marie.dupont: {shown}." in result.stdout
    with open_core(staffed) as core:
        assert core.directory.get("marie.dupont").quota_bytes == expected_bytes


@pytest.mark.parametrize("size", ["lots", "-5G", "30X", "G", ""])
def test_users_set_quota_refuses_a_bad_size_and_changes_nothing(staffed: Path, size: str) -> None:
    # "--": otherwise click reads "-5G" as an option (refused too, less clearly).
    result = run_cli("users", "set-quota", "marie.dupont", "--", size, data=staffed)

    assert_usage_error(result, r"is not a size")
    with open_core(staffed) as core:
        assert core.directory.get("marie.dupont").quota_bytes == 30 * 1024**3


def test_users_set_quota_of_an_unknown_login_fails(staffed: Path) -> None:
    assert_user_error(
        run_cli("users", "set-quota", "nobody", "1G", data=staffed), r"no such person: nobody"
    )


def test_users_reset_prints_a_temporary_password_that_must_be_changed(staffed: Path) -> None:
    assert (
        run_cli(
            "users", "passwd", "aissatou.ndiaye", data=staffed, stdin=GOOD_PASSWORD + "\n"
        ).returncode
        == 0
    )

    result = run_cli("users", "reset", "aissatou.ndiaye", data=staffed)

    assert result.returncode == 0, result.stderr
    match = re.search(r"Temporary password for aissatou\.ndiaye: (\S+)", result.stdout)
    assert match is not None
    temporary = match.group(1)
    assert len(temporary) >= 12
    with open_core(staffed) as core:
        person = core.directory.get("aissatou.ndiaye")
        assert person.must_change_password
        assert person.password_hash is not None
        assert core.directory.hasher.verify(person.password_hash, temporary)
        assert not core.directory.hasher.verify(person.password_hash, GOOD_PASSWORD)
        record = core.audit.recent(subject="aissatou.ndiaye", event_prefix="password.")[0]
        store = MailStore(core.engine, staffed / "mail", EventBus())
        inbox = store.find_mailbox(person.id, INBOX)
        assert inbox is not None
        notices = [store.files.read(m.blob_path) for m in store.messages(inbox.id)]
    assert (record.event, record.detail) == ("password.set", "must_change")
    assert temporary not in record.detail
    [notice] = notices
    text = message_from_bytes(notice, policy=email.policy.default).get_body().get_content()  # type: ignore[union-attr]
    assert "par un administrateur" in text
    assert "The IT department never asks for your password by mail." in text
    assert temporary not in text
    assert f"A notice was mailed to {person.email}." in result.stdout
    assert list(Spool(staffed / "spool").pending()) == []


# --- groups ---------------------------------------------------------------------------


def test_groups_list_shows_the_import_groups_with_member_counts(staffed: Path) -> None:
    result = run_cli("groups", "list", data=staffed)

    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:]}
    assert rows["lycee-joffre"][1:3] == ["school", "3"]
    assert rows["lycee-joffre.lettres"][1:3] == ["department", "2"]
    assert "Lettres — Lycée Joffre" in result.stdout
    assert rows["enseignant"][1:3] == ["role", "3"]
    assert rows["college-les-garrigues.mathematiques"][1:3] == ["department", "1"]


def test_groups_add_members_add_member_remove_member(staffed: Path) -> None:
    created = run_cli(
        "groups", "add", "projet-erasmus", "--display-name", "Projet Erasmus", data=staffed
    )
    added = run_cli("groups", "add-member", "projet-erasmus", "Marie.Dupont2", data=staffed)
    also = run_cli(
        "groups", "add-member", "projet-erasmus", f"aissatou.ndiaye@{DOMAIN}", data=staffed
    )
    members = run_cli("groups", "members", "projet-erasmus", data=staffed)
    listed = run_cli("groups", "list", data=staffed)

    assert created.returncode == 0, created.stderr
    assert "Created group projet-erasmus." in created.stdout
    assert "Added marie.dupont2 to projet-erasmus." in added.stdout
    assert also.returncode == 0, also.stderr
    assert members.stdout.splitlines() == [
        f"marie.dupont2\tmarie.dupont2@{DOMAIN}\tMarie Dupont",
        f"aissatou.ndiaye\taissatou.ndiaye@{DOMAIN}\tAïssatou N'Diaye",
    ]
    erasmus = next(line for line in listed.stdout.splitlines() if line.startswith("projet-erasmus"))
    assert erasmus.split()[1:3] == ["custom", "2"]
    assert erasmus.endswith("Projet Erasmus")

    removed = run_cli("groups", "remove-member", "projet-erasmus", "marie.dupont2", data=staffed)

    assert removed.returncode == 0, removed.stderr
    assert "Removed marie.dupont2 from projet-erasmus." in removed.stdout
    after = run_cli("groups", "members", "projet-erasmus", data=staffed)
    assert after.stdout.splitlines() == [
        f"aissatou.ndiaye\taissatou.ndiaye@{DOMAIN}\tAïssatou N'Diaye"
    ]
    with open_core(staffed) as core:
        events = [r.event for r in core.audit.recent(subject="projet-erasmus")]
    assert events == [
        "group.member_removed",
        "group.member_added",
        "group.member_added",
        "group.created",
    ]


def test_groups_members_of_an_empty_group_prints_nothing(staffed: Path) -> None:
    assert run_cli("groups", "add", "vide", data=staffed).returncode == 0

    result = run_cli("groups", "members", "vide", data=staffed)

    assert (result.returncode, result.stdout) == (0, "")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("groups", "add", "lycee-joffre"), r"group lycee-joffre already exists"),
        (("groups", "add", "Bad Name!"), r"invalid group name 'bad name!'"),
        (("groups", "members", "nowhere"), r"no such group: nowhere"),
        (("groups", "add-member", "nowhere", "marie.dupont"), r"no such group: nowhere"),
        (("groups", "add-member", "lycee-joffre", "nobody"), r"no such person: nobody"),
        (
            ("groups", "add-member", "lycee-joffre", "marie.dupont"),
            r"marie\.dupont is already a member of lycee-joffre",
        ),
        (
            ("groups", "remove-member", "lycee-joffre", "marie.dupont2"),
            r"no such membership: marie\.dupont2 in lycee-joffre",
        ),
        (("groups", "remove-member", "lycee-joffre", "nobody"), r"no such person: nobody"),
        (("users", "disable", "nobody@ac-test.fr"), r"no such person: nobody@ac-test\.fr"),
        (("users", "enable", "marie.dupont@elsewhere.fr"), r"no such person"),
        (("users", "reset", "nobody"), r"no such person: nobody"),
    ],
)
def test_user_mistakes_give_one_error_line_and_exit_1(
    staffed: Path, args: tuple[str, ...], message: str
) -> None:
    assert_user_error(run_cli(*args, data=staffed), message)


# --- command line and data folder ------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("users", "list", "--bogus"), r"No such option '--bogus'"),
        (("--bogus", "users", "list"), r"No such option '--bogus'"),
        (("users", "frobnicate"), r"No such command 'frobnicate'"),
        (("serve", "--port", "80"), r"No such option '--port'"),
        (("users", "show"), r"Missing argument 'LOGIN'"),
    ],
)
def test_unknown_options_and_commands_exit_2_with_usage(
    staffed: Path, args: tuple[str, ...], message: str
) -> None:
    assert_usage_error(run_cli(*args, data=staffed), message)


def test_groupware_data_environment_variable_replaces_data_option(staffed: Path) -> None:
    result = run_cli("users", "list", env=cli_env(GROUPWARE_DATA=str(staffed)))

    assert result.returncode == 0, result.stderr
    assert f"marie.dupont@{DOMAIN}" in result.stdout


def test_data_option_wins_over_the_environment_variable(staffed: Path, tmp_path: Path) -> None:
    result = run_cli(
        "--data", staffed, "users", "list", env=cli_env(GROUPWARE_DATA=str(tmp_path / "nowhere"))
    )

    assert result.returncode == 0, result.stderr
    assert f"marie.dupont@{DOMAIN}" in result.stdout


def test_without_a_data_folder_commands_explain_what_to_do() -> None:
    assert_user_error(
        run_cli("users", "list"), r"no data folder: pass --data DIR or set GROUPWARE_DATA"
    )


def test_a_data_folder_that_does_not_exist_points_to_init(tmp_path: Path) -> None:
    result = run_cli("users", "list", data=tmp_path / "nowhere")

    assert_user_error(result, r"groupware\.toml not found: create the data folder with")
    assert "groupware init" in result.stderr


# --- configuration errors ----------------------------------------------------------------


def edit_config(data: Path, old: str, new: str) -> Path:
    path = data / "groupware.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize("command", [("serve",), ("users", "list")], ids=["serve", "users"])
@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "threads_count = 16",
            "threads_count = 16\nthreads = 4",
            r"http\.threads: unknown key \(file {file}\)",
        ),
        (
            "threads_count = 16",
            'threads_count = "many"',
            r"http\.threads_count: expected int, got 'many' \(file {file}\)",
        ),
        ("[logging]", "[logs]", r"logs: unknown section \(file {file}\)"),
        ("threads_count = 16", "threads_count = ", r"{file}: not valid TOML"),
    ],
    ids=["unknown-key", "wrong-type", "unknown-section", "not-toml"],
)
def test_bad_config_file_stops_startup_naming_key_and_file(
    staffed: Path, command: tuple[str, ...], old: str, new: str, message: str
) -> None:
    path = edit_config(staffed, old, new)

    result = run_cli(*command, data=staffed)

    assert_user_error(result, message.format(file=re.escape(str(path))))


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "GROUPWARE_AUTH__MAX_FAILURES_COUNT",
            "lots",
            r"auth\.max_failures_count: expected int, got 'lots' "
            r"\(env GROUPWARE_AUTH__MAX_FAILURES_COUNT\)",
        ),
        (
            "GROUPWARE_HTTP_LISTEN",
            "localhost",
            r"http\.listen: expected host:port, got 'localhost' \(env GROUPWARE_HTTP_LISTEN\)",
        ),
        (
            "GROUPWARE_HTTP__COLOUR",
            "blue",
            r"http\.colour: unknown key \(env GROUPWARE_HTTP__COLOUR\)",
        ),
        ("GROUPWARE_WEB__THEME", "dark", r"web: unknown section \(env GROUPWARE_WEB__THEME\)"),
    ],
)
def test_bad_environment_variable_stops_serve_naming_it(
    staffed: Path, name: str, value: str, message: str
) -> None:
    result = run_cli("serve", data=staffed, env=cli_env(**{**PORT_ZERO, name: value}))

    assert_user_error(result, message)


# --- serve ------------------------------------------------------------------------------


class LineReader:
    """Collects a process's stderr lines in a thread, so the test can wait with a deadline."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert process.stderr is not None
        self._stream = process.stderr
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        for line in self._stream:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, pattern: str, deadline: float) -> re.Match[str]:
        """The first new line matching ``pattern``, before ``deadline``."""
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no line matching {pattern!r} in {self.lines}"
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            assert line is not None, f"process ended; no {pattern!r} in {self.lines}"
            self.lines.append(line)
            match = re.search(pattern, line)
            if match:
                return match

    def rest(self) -> list[str]:
        """Every line up to the end of the stream (call after the process ended)."""
        self._thread.join(timeout=TIMEOUT_SECONDS)
        while not self._queue.empty():
            line = self._queue.get_nowait()
            if line is not None:
                self.lines.append(line)
        return self.lines


@contextmanager
def serving(
    data: Path, *args: str, **env: str
) -> Iterator[tuple[subprocess.Popen[str], LineReader]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "groupware", "--data", str(data), "serve", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(**env),
    )
    try:
        yield process, LineReader(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=TIMEOUT_SECONDS)
        if process.stderr is not None:
            process.stderr.close()


def test_serve_logs_real_listener_addresses_answers_and_stops_on_sigterm(staffed: Path) -> None:
    with serving(staffed, **PORT_ZERO) as (process, reader):
        deadline = time.monotonic() + 30
        listeners: dict[str, int] = {}
        while True:
            match = reader.wait_for(
                r"listener\.started service=(\S+) address=127\.0\.0\.1:(\d+)"
                r"|groupware\.started services=(\S+)",
                deadline,
            )
            if match.group(3) is not None:
                break
            assert match.group(1) not in listeners
            listeners[match.group(1)] = int(match.group(2))

        assert {"http", "https"} <= set(listeners)
        assert all(port > 0 for port in listeners.values())
        assert len(set(listeners.values())) == len(listeners)
        for port in listeners.values():  # each logged address is live
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        with urllib.request.urlopen(f"http://127.0.0.1:{listeners['http']}/login", timeout=5) as r:
            assert r.status == 200
            assert b"<form" in r.read()
        context = ssl.create_default_context(cafile=str(staffed / "tls/cert.pem"))
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # a self-signed leaf
        with urllib.request.urlopen(
            f"https://127.0.0.1:{listeners['https']}/login", timeout=5, context=context
        ) as r:
            assert r.status == 200

        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        assert time.monotonic() - started < 15
        lines = reader.rest()

    assert sum("listener.started" in line for line in lines) == len(listeners)
    assert any("groupware.stopped" in line for line in lines)
    assert not any("Traceback" in line for line in lines)


def serve_until_started(data: Path, *args: str) -> list[str]:
    """Run ``serve ARGS`` until it has started, stop it with SIGTERM, return its log."""
    with serving(data, *args, **PORT_ZERO) as (process, reader):
        reader.wait_for(r"groupware\.started services=", time.monotonic() + 30)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        return reader.rest()


def test_serve_only_http_starts_only_the_http_listeners(staffed: Path) -> None:
    lines = serve_until_started(staffed, "--only", "http")

    services = re.findall(r"listener\.started service=(\S+)", "".join(lines))
    assert sorted(services) == ["http", "https"]
    assert any("groupware.started services=http " in line for line in lines)


def test_serve_only_smtp_starts_no_http_or_imap_listener(staffed: Path) -> None:
    lines = serve_until_started(staffed, "--only", "smtp")

    services = re.findall(r"listener\.started service=(\S+)", "".join(lines))
    assert "smtp" in services
    assert not [name for name in services if name.startswith(("http", "imap"))]


def test_serve_listener_in_use_is_refused_naming_the_key(staffed: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        result = run_cli(
            "serve",
            data=staffed,
            env=cli_env(**{**PORT_ZERO, "GROUPWARE_HTTP_LISTEN": f"127.0.0.1:{port}"}),
        )

    assert_user_error(
        result, rf"http\.listen: cannot listen on 127\.0\.0\.1:{port}", after_logs=True
    )


@pytest.mark.parametrize(
    ("only", "message"),
    [
        ("pop3", r"--only: unknown service\(s\) pop3"),
        ("http,pop3,smtp", r"--only: unknown service\(s\) pop3"),
    ],
)
def test_serve_only_unknown_service_fails_clearly(staffed: Path, only: str, message: str) -> None:
    result = run_cli("serve", "--only", only, data=staffed, env=cli_env(**PORT_ZERO))

    assert_user_error(result, message)
    assert "listener.started" not in result.stderr


def test_init_makes_a_dkim_key_and_dns_prints_the_records_to_publish(tmp_path: Path) -> None:
    folder = tmp_path / "new"
    assert run_cli("init", folder, "--domain", DOMAIN).returncode == 0
    key = folder / "dkim" / "mail.key"
    assert key.stat().st_mode & 0o777 == 0o600

    result = run_cli("dns", data=folder)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    kinds = [line.split()[3] for line in lines]
    assert kinds == ["MX", "TXT", "TXT", "TXT", "SRV", "SRV", "SRV", "SRV", "CNAME"]
    assert f"mail._domainkey.{DOMAIN}." in result.stdout
    assert '"v=spf1 mx -all"' in result.stdout
    assert f"_dmarc.{DOMAIN}." in result.stdout
    # The DKIM record carries the public half of the key made at init.
    from cryptography.hazmat.primitives import serialization

    private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    import base64

    dkim_line = next(line for line in lines if "_domainkey" in line)
    assert base64.b64encode(public).decode() in dkim_line.replace('" "', "")


def test_users_add_alias_gives_an_address_that_is_never_given_twice(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    assert run_cli("init", folder, "--domain", DOMAIN).returncode == 0
    assert (
        run_cli(
            "users",
            "add",
            "--numen",
            "12E0000000AAA",
            "--first-name",
            "Marie",
            "--last-name",
            "Dupont",
            "--school",
            "Lycée Joffre",
            data=folder,
        ).returncode
        == 0
    )
    result = run_cli("users", "add-alias", "marie.dupont", f"direction@{DOMAIN}", data=folder)
    assert result.returncode == 0, result.stderr
    shown = run_cli("users", "show", "marie.dupont", data=folder)
    assert f"direction@{DOMAIN}" in shown.stdout
    assert_user_error(
        run_cli("users", "add-alias", "marie.dupont", f"direction@{DOMAIN}", data=folder),
        "already given",
    )
    assert_user_error(
        run_cli("users", "add-alias", "marie.dupont", "direction@elsewhere.example", data=folder),
        f"@{DOMAIN}",
    )


def test_serve_freezes_what_lives_until_exit() -> None:
    """What exists when the services are up is out of the cycle collector's sight."""
    from groupware.cli import freeze_startup_objects

    try:
        freeze_startup_objects({})
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
