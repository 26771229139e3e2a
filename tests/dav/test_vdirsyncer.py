"""Two-way sync with the ``vdirsyncer`` CLI between the server and local folders."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import caldav
import pytest

from tests.dav.accounts import Account, import_accounts
from tests.dav.webdav import DavHttp, contact_vcf, event_ics
from tests.support.servers import RunningServer

pytestmark = pytest.mark.interop

VDIRSYNCER = Path(sys.executable).parent / "vdirsyncer"


@pytest.fixture(scope="module")
def accounts(dav_server: RunningServer) -> list[Account]:
    return import_accounts(dav_server.core, ("Sophie", "Garnier"), ("Yanis", "Roussel"))


def write_config(tmp_path: Path, server: RunningServer, account: Account) -> Path:
    """A vdirsyncer config syncing the default calendar and address book of ``account``."""
    config = tmp_path / "vdirsyncer.conf"

    def remote(kind: str) -> str:
        return (
            f'type = "{kind}"\nurl = "{server.dav_url}"\n'
            f'username = "{account.login}"\npassword = "{account.password}"\n'
        )

    config.write_text(
        f'[general]\nstatus_path = "{tmp_path / "status"}/"\n\n'
        '[pair calendar]\na = "local_calendar"\nb = "server_calendar"\n'
        'collections = ["calendar"]\n\n'
        f'[storage local_calendar]\ntype = "filesystem"\npath = "{tmp_path / "calendars"}/"\n'
        'fileext = ".ics"\n\n'
        f"[storage server_calendar]\n{remote('caldav')}\n"
        '[pair contacts]\na = "local_contacts"\nb = "server_contacts"\n'
        'collections = ["contacts"]\n\n'
        f'[storage local_contacts]\ntype = "filesystem"\npath = "{tmp_path / "contacts"}/"\n'
        'fileext = ".vcf"\n\n'
        f"[storage server_contacts]\n{remote('carddav')}\n",
        encoding="utf-8",
    )
    return config


def vdirsyncer(config: Path, *args: str) -> str:
    """Run the CLI; "y" answers its offers to create the missing local folders."""
    done = subprocess.run(
        [str(VDIRSYNCER), "--config", str(config), *args],
        input="y\n" * 4,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "error" not in output.lower(), output
    return output


def local_items(folder: Path) -> dict[str, str]:
    """``{UID: file text}`` of a vdirsyncer filesystem collection."""
    found = {}
    for path in folder.iterdir():
        text = path.read_text(encoding="utf-8")
        uid = next(line[4:] for line in text.splitlines() if line.startswith("UID:"))
        found[uid] = text
    return found


def local_file(folder: Path, uid: str) -> Path:
    for path in folder.iterdir():
        if f"UID:{uid}" in path.read_text(encoding="utf-8").splitlines():
            return path
    raise AssertionError(f"no local file holds UID {uid}")


def replace_file(path: Path, text: str) -> None:
    """Write through a new file (new inode), so vdirsyncer's mtime+inode etag changes."""
    scratch = path.with_name(path.name + ".tmp")
    scratch.write_text(text, encoding="utf-8", newline="")
    os.replace(scratch, path)


def test_calendar_two_way_sync_carries_creations_edits_and_deletions(
    tmp_path: Path, dav_server: RunningServer, accounts: list[Account]
) -> None:
    account = accounts[0]
    config = write_config(tmp_path, dav_server, account)
    vdirsyncer(config, "discover", "calendar")
    vdirsyncer(config, "sync", "calendar")
    folder = tmp_path / "calendars" / "calendar"
    assert local_items(folder) == {}

    with caldav.DAVClient(
        url=dav_server.dav_url, username=account.login, password=account.password, timeout=5
    ) as client:
        calendar = client.calendar(url=f"{dav_server.dav_url}{account.login}/calendar/")
        local_uid, server_uid = f"local-{uuid.uuid4()}", f"server-{uuid.uuid4()}"
        replace_file(folder / f"{local_uid}.ics", event_ics(local_uid, "Made locally"))
        calendar.add_event(
            uid=server_uid,
            summary="Made on the server",
            dtstart=datetime(2030, 9, 1, 8, tzinfo=UTC),
            dtend=datetime(2030, 9, 1, 9, tzinfo=UTC),
        )

        vdirsyncer(config, "sync", "calendar")

        assert str(calendar.event_by_uid(local_uid).icalendar_component["summary"]) == (
            "Made locally"
        )
        assert "SUMMARY:Made on the server" in local_items(folder)[server_uid]

        # Edit each item on the side it did not come from.
        on_server = calendar.event_by_uid(local_uid)
        on_server.icalendar_component["summary"] = "Edited on the server"
        on_server.save()
        server_file = local_file(folder, server_uid)
        replace_file(
            server_file,
            server_file.read_text(encoding="utf-8").replace(
                "SUMMARY:Made on the server", "SUMMARY:Edited locally"
            ),
        )

        vdirsyncer(config, "sync", "calendar")

        assert "SUMMARY:Edited on the server" in local_items(folder)[local_uid]
        assert str(calendar.event_by_uid(server_uid).icalendar_component["summary"]) == (
            "Edited locally"
        )

        # Delete each item on the side it did not come from.
        calendar.event_by_uid(server_uid).delete()
        local_file(folder, local_uid).unlink()

        vdirsyncer(config, "sync", "calendar")

        assert local_items(folder) == {}
        assert calendar.events() == []


def test_contacts_sync_carries_a_server_card_down_and_a_local_edit_back(
    tmp_path: Path, dav_server: RunningServer, accounts: list[Account]
) -> None:
    account = accounts[1]
    dav = DavHttp(dav_server.http_url, account.credentials)
    book = f"/dav/{account.login}/contacts/"
    config = write_config(tmp_path, dav_server, account)
    vdirsyncer(config, "discover", "contacts")
    folder = tmp_path / "contacts" / "contacts"
    server_uid, local_uid = str(uuid.uuid4()), str(uuid.uuid4())
    put = dav.put(f"{book}{server_uid}.vcf", contact_vcf(server_uid, "Anne Fabre"), "text/vcard")
    assert put.status == 201

    vdirsyncer(config, "sync", "contacts")

    assert "FN:Anne Fabre" in local_items(folder)[server_uid]

    card = local_file(folder, server_uid)
    replace_file(
        card, card.read_text(encoding="utf-8").replace("FN:Anne Fabre", "FN:Anne Fabre-Vidal")
    )
    replace_file(folder / f"{local_uid}.vcf", contact_vcf(local_uid, "Rémi Vidal"))

    vdirsyncer(config, "sync", "contacts")

    assert "FN:Anne Fabre-Vidal" in dav.request("GET", f"{book}{server_uid}.vcf").text
    hrefs = dav.etags(book)
    assert len(hrefs) == 2
    local_href = next(href for href in hrefs if not href.endswith(f"{server_uid}.vcf"))
    assert "FN:Rémi Vidal" in dav.request("GET", local_href).text
