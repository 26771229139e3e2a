"""``groupware dav import-radicale PATH`` and ``groupware dav export DEST``, end to end.

A Radicale file store (as Radicale 3.9 lays it out) is imported with the command; a
server on the SQL store then answers every href with the ETag Radicale itself gives
the same files (so clients download nothing again), a broken file is reported and
skipped, a second import changes nothing, and the export writes the items back as
plain files, under their hrefs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from groupware.core.services import Core
from tests.dav.accounts import Account, import_accounts
from tests.dav.webdav import DavHttp
from tests.support.servers import make_config, running_server
from tests.test_cli import run_cli

EVENTS = {
    # A client's href, not derived from the UID: import must keep it.
    "0b6e-conseil.ics": "DTSTART:20300310T100000Z\r\nDTEND:20300310T110000Z\r\nSUMMARY:Conseil",
    "cours.ics": "DTSTART:20300105T080000Z\r\nDTEND:20300105T090000Z\r\nRRULE:FREQ=WEEKLY"
    "\r\nSUMMARY:Cours",
}
CARDS = {"ines.vcf": "Inès Lefèvre", "marc.vcf": "Marc Dupont"}


def _write_file_store(root: Path, login: str) -> None:
    home = root / "collection-root" / login
    calendar, book = home / "calendar", home / "contacts"
    for folder, props in (
        (calendar, {"tag": "VCALENDAR", "D:displayname": "Agenda importé"}),
        (book, {"tag": "VADDRESSBOOK", "D:displayname": "Carnet importé"}),
    ):
        folder.mkdir(parents=True)
        (folder / ".Radicale.props").write_text(json.dumps(props), encoding="utf-8")
    for href, body in EVENTS.items():
        text = (
            "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//tests//EN\nBEGIN:VEVENT\n"
            f"UID:{href}-uid\nDTSTAMP:20300101T000000Z\n{body}\nEND:VEVENT\nEND:VCALENDAR\n"
        )
        (calendar / href).write_text(text, encoding="utf-8")
    (calendar / "broken.ics").write_text("BEGIN:VCALENDAR\nthis is not iCalendar\n")
    for href, name in CARDS.items():
        text = f"BEGIN:VCARD\nVERSION:3.0\nUID:{href}\nFN:{name}\nN:{name};;;;\nEND:VCARD\n"
        (book / href).write_text(text, encoding="utf-8")


@pytest.fixture(scope="module")
def migrated(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, Account, Path]:
    """``(data folder, account, Radicale folder)`` after one import of the file store."""
    root = tmp_path_factory.mktemp("dav-migration")
    config = make_config(root)
    core = Core.open(config)
    try:
        (account,) = import_accounts(core, ("Inès", "Lefèvre"))
    finally:
        core.close()
    files = root / "radicale"
    _write_file_store(files, account.login)

    result = run_cli("dav", "import-radicale", files, data=config.data_dir)

    assert result.returncode == 1, (result.stdout, result.stderr)  # one file refused
    assert "3 collections, 4 items imported." in result.stdout
    assert f"rejected {account.login}/calendar/broken.ics" in result.stdout
    return config.data_dir, account, files


def _etags(data_dir: Path, account: Account, **dav_settings: str) -> dict[str, str]:
    config = make_config(data_dir.parent, dav=dav_settings)
    with running_server(config) as live:
        dav = DavHttp(live.http_url, account.credentials)
        found: dict[str, str] = {}
        for name in ("calendar", "contacts"):
            path = f"/dav/{account.login}/{name}/"
            found.update(dav.etags(path))
            assert dav.propfind(path, ["d:displayname"]).status == 207
        return found


def test_imported_items_keep_their_hrefs_and_the_etags_radicale_gives_them(
    migrated: tuple[Path, Account, Path],
) -> None:
    data_dir, account, files = migrated

    ours = _etags(data_dir, account)
    theirs = _etags(data_dir, account, storage="files", storage_folder=str(files))

    expected = {f"/dav/{account.login}/calendar/{href}" for href in EVENTS}
    expected |= {f"/dav/{account.login}/contacts/{href}" for href in CARDS}
    assert set(ours) == expected
    assert {href: etag for href, etag in theirs.items() if href in expected} == ours


def test_a_second_import_changes_nothing(migrated: tuple[Path, Account, Path]) -> None:
    data_dir, account, files = migrated
    before = _etags(data_dir, account)

    result = run_cli("dav", "import-radicale", files, data=data_dir)

    # (The file-store server made the department's agenda there meanwhile: 5 collections.)
    assert " collections, 4 items imported." in result.stdout
    assert _etags(data_dir, account) == before


def test_export_writes_every_item_as_a_file_named_by_its_href(
    migrated: tuple[Path, Account, Path], tmp_path: Path
) -> None:
    data_dir, account, _files = migrated
    destination = tmp_path / "export"

    result = run_cli("dav", "export", destination, data=data_dir)

    assert result.returncode == 0, result.stderr
    home = destination / account.login
    assert sorted(p.name for p in (home / "calendar").iterdir()) == sorted(
        [".Radicale.props", *EVENTS]
    )
    assert "SUMMARY:Conseil" in (home / "calendar" / "0b6e-conseil.ics").read_text()
    assert "FN:Marc Dupont" in (home / "contacts" / "marc.vcf").read_text()
    props = json.loads((home / "contacts" / ".Radicale.props").read_text())
    assert props["tag"] == "VADDRESSBOOK"


def test_export_refuses_a_folder_that_is_not_empty(
    migrated: tuple[Path, Account, Path], tmp_path: Path
) -> None:
    (tmp_path / "keep.txt").write_text("mine")

    result = run_cli("dav", "export", tmp_path, data=migrated[0])

    assert result.returncode == 1
    assert "is not empty" in result.stderr
    assert (tmp_path / "keep.txt").read_text() == "mine"
