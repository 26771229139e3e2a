"""Real IMAP clients against the real server over TLS: mbsync (Debian isync) and
offlineimap sync a mailbox both ways (messages, folders, flags, deletions) and a
further sync changes nothing.

Both are Debian packages (``isync``, ``offlineimap3``) that ``scripts/test`` and
``.ci/run`` install; these tests do not skip when they are missing.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from groupware.core.directory import Person
from tests.mail.imap_support import (
    PASSWORD,
    cert_path,
    imap_server,
    logged_in,
    new_user,
    simple_message,
)
from tests.support.servers import RunningServer

SYNC_TIMEOUT_SECONDS = 60
_local_names = itertools.count(1)

ServerState = dict[str, list[tuple[int, str, tuple[bytes, ...], str]]]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with imap_server(tmp_path_factory, "imap-clients") as server:
        yield server


# --- both sides ------------------------------------------------------------------------


def _subject(data: bytes) -> str:
    match = re.search(rb"^Subject: (.*?)\r?$", data, re.M)
    assert match, data[:200]
    return match.group(1).decode()


def _seed(live: RunningServer, person: Person) -> None:
    with logged_in(live, person) as client:
        client.append("INBOX", simple_message("un"), flags=[b"\\Seen"])
        client.append("INBOX", simple_message("deux"))
        client.append("INBOX", simple_message("trois"))
        client.create_folder("Projets")
        client.append("Projets", simple_message("quatre"))


def _server_state(live: RunningServer, person: Person) -> ServerState:
    """Every folder: (UID, subject, flags without \\Recent, body digest), read-only."""
    state: ServerState = {}
    with logged_in(live, person) as client:
        for _flags, _delimiter, name in client.list_folders():
            client.select_folder(name, readonly=True)
            messages = client.search()
            fetched = client.fetch(messages, ["FLAGS", "BODY.PEEK[]"]) if messages else {}
            state[name] = sorted(
                (
                    uid,
                    _subject(data[b"BODY[]"]),
                    tuple(sorted(f for f in data[b"FLAGS"] if f != b"\\Recent")),
                    hashlib.sha256(data[b"BODY[]"]).hexdigest(),
                )
                for uid, data in fetched.items()
            )
    return state


def _server_view(state: ServerState) -> dict[str, dict[str, tuple[bytes, ...]]]:
    return {name: {s: flags for _uid, s, flags, _d in items} for name, items in state.items()}


def _change_server(live: RunningServer, person: Person) -> None:
    with logged_in(live, person) as client:
        client.append("INBOX", simple_message("du serveur"))
        client.select_folder("INBOX")
        un = client.search(["SUBJECT", "un"])
        client.add_flags(un, [b"\\Answered"])
        client.select_folder("Projets")
        client.delete_messages(client.search())
        client.expunge()
        client.create_folder("Serveur")
        client.append("Serveur", simple_message("dossier du serveur"))


# --- the Maildir side ---------------------------------------------------------------------


def _maildir_files(folder: Path) -> list[Path]:
    return sorted(p for sub in ("cur", "new") for p in (folder / sub).glob("*") if p.is_file())


def _local_view(root: Path) -> dict[str, dict[str, str]]:
    """Folder → subject → Maildir flags (the letters after ``:2,``)."""
    view = {}
    for folder in sorted(p for p in root.iterdir() if (p / "cur").is_dir()):
        view[folder.name] = {
            _subject(path.read_bytes()): path.name.partition(":2,")[2]
            for path in _maildir_files(folder)
        }
    return view


def _local_state(root: Path) -> list[tuple[str, str]]:
    """Every message file's path and digest: a sync that changes nothing keeps it."""
    return sorted(
        (str(path.relative_to(root)), hashlib.sha256(path.read_bytes()).hexdigest())
        for folder in root.iterdir()
        if (folder / "cur").is_dir()
        for path in _maildir_files(folder)
    )


def _make_folder(folder: Path) -> None:
    for sub in ("cur", "new", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)


def _add_local(folder: Path, subject: str) -> None:
    name = f"1700000000.{next(_local_names)}_test.localhost"
    temporary = folder / "tmp" / name
    temporary.write_bytes(simple_message(subject).replace(b"\r\n", b"\n"))
    temporary.rename(folder / "new" / name)


def _find_local(folder: Path, subject: str) -> Path:
    found = [p for p in _maildir_files(folder) if _subject(p.read_bytes()) == subject]
    assert len(found) == 1, (folder, subject, found)
    return found[0]


def _set_local_flags(folder: Path, subject: str, flags: str) -> None:
    path = _find_local(folder, subject)
    base = path.name.partition(":2,")[0]
    path.rename(folder / "cur" / f"{base}:2,{''.join(sorted(flags))}")


def _change_local(root: Path) -> None:
    inbox = root / "INBOX"
    _add_local(inbox, "du poste")
    _set_local_flags(inbox, "deux", "FS")
    _find_local(inbox, "trois").unlink()
    _make_folder(root / "Local")
    _add_local(root / "Local", "dossier du poste")


def _check_after_changes(server: ServerState, local: dict[str, dict[str, str]]) -> None:
    view = _server_view(server)
    assert view["INBOX"] == {
        "un": (b"\\Answered", b"\\Seen"),
        "deux": (b"\\Flagged", b"\\Seen"),
        "du poste": (),
        "du serveur": (),
    }
    assert view["Projets"] == {}
    assert view["Local"] == {"dossier du poste": ()}
    assert view["Serveur"] == {"dossier du serveur": ()}
    assert local["INBOX"] == {"un": "RS", "deux": "FS", "du poste": "", "du serveur": ""}
    assert local["Projets"] == {}
    assert local["Local"] == {"dossier du poste": ""}
    assert local["Serveur"] == {"dossier du serveur": ""}


def _run(command: list[str]) -> str:
    result = subprocess.run(  # noqa: S603 - fixed argument list
        command, capture_output=True, text=True, timeout=SYNC_TIMEOUT_SECONDS, check=False
    )
    assert result.returncode == 0, (command, result.stdout[-4000:], result.stderr[-4000:])
    return result.stdout + result.stderr


def _scenario(live: RunningServer, person: Person, root: Path, sync: Callable[[], str]) -> None:
    _seed(live, person)
    sync()
    first = _local_view(root)
    assert first["INBOX"] == {"un": "S", "deux": "", "trois": ""}
    assert first["Projets"] == {"quatre": ""}
    assert {"Corbeille", "Brouillons", "Archives"} <= set(first)

    _change_local(root)
    _change_server(live, person)
    sync()
    server = _server_state(live, person)
    local = _local_state(root)
    _check_after_changes(server, _local_view(root))

    output = sync()
    assert _server_state(live, person) == server, output
    assert _local_state(root) == local, output


# --- the clients ------------------------------------------------------------------------


def test_mbsync_syncs_both_ways_and_then_changes_nothing(
    live: RunningServer, tmp_path: Path
) -> None:
    person = new_user(live)
    host, port = live.addresses["imaps"]
    root = tmp_path / "mail"
    root.mkdir()
    config = tmp_path / "mbsyncrc"
    config.write_text(
        f"""IMAPAccount groupware
Host {host}
Port {port}
User {person.login}
Pass "{PASSWORD}"
SSLType IMAPS
CertificateFile {cert_path(live)}
AuthMechs PLAIN

IMAPStore remote
Account groupware

MaildirStore local
Path {root}/
Inbox {root}/INBOX
SubFolders Verbatim

Channel both
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
Sync All
SyncState *
"""
    )
    _scenario(live, person, root, lambda: _run(["mbsync", "-c", str(config), "-a"]))


def test_offlineimap_syncs_both_ways_and_then_changes_nothing(
    live: RunningServer, tmp_path: Path
) -> None:
    person = new_user(live)
    _host, port = live.addresses["imaps"]
    root = tmp_path / "mail"
    root.mkdir()
    config = tmp_path / "offlineimaprc"
    # "localhost": offlineimap's own certificate name check knows no IP addresses; the
    # certificate names localhost, which resolves to 127.0.0.1 where the server listens.
    config.write_text(
        f"""[general]
accounts = groupware
metadata = {tmp_path}/offlineimap-state

[Account groupware]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {root}

[Repository remote]
type = IMAP
remotehost = localhost
remoteport = {port}
remoteuser = {person.login}
remotepass = {PASSWORD}
ssl = yes
sslcacertfile = {cert_path(live)}
"""
    )
    _scenario(
        live,
        person,
        root,
        lambda: _run(["offlineimap", "-c", str(config), "-o", "-u", "basic"]),
    )
