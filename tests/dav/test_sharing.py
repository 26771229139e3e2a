"""Sharing as clients see it: the ``caldav`` library and ``vdirsyncer`` as sharees.

A shared calendar or address book appears in the sharee's own home (where DAVx5,
iOS and Thunderbird look), named with its owner; read-only shares are refused
writes and say so in ``current-user-privilege-set``; revoking or leaving a group
takes the collection away on the next request.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import caldav
import pytest
from caldav.lib import error as caldav_error

from groupware.core.sharing import CollectionRef, Level
from tests.dav.accounts import Account, import_accounts
from tests.dav.webdav import (
    DAV,
    NS,
    DavHttp,
    contact_vcf,
    event_ics,
    xml_headers,
)
from tests.support.servers import RunningServer

VDIRSYNCER = Path(sys.executable).parent / "vdirsyncer"
DEPARTMENT = "@lycee-joffre.lettres"


@pytest.fixture(scope="module")
def people(dav_server: RunningServer) -> dict[str, Account]:
    owner, reader, writer, member = import_accounts(
        dav_server.core,
        ("Alice", "Lefort"),
        ("Bruno", "Leroy"),
        ("Claire", "Morel"),
        ("Denis", "Petit"),
    )
    return {"owner": owner, "reader": reader, "writer": writer, "member": member}


def client_of(server: RunningServer, account: Account) -> caldav.DAVClient:
    return caldav.DAVClient(
        url=server.dav_url, username=account.login, password=account.password, timeout=5
    )


def raw(server: RunningServer, account: Account) -> DavHttp:
    return DavHttp(server.http_url, account.credentials)


def grant(server: RunningServer, owner: str, name: str, to: str, level: Level) -> CollectionRef:
    ref = CollectionRef(owner, name)
    server.core.sharing.grant(ref, to, level, actor="test")
    return ref


def calendar_urls(client: caldav.DAVClient) -> dict[str, str]:
    """``{url path: display name}`` of the calendars a client finds in its home."""
    return {
        str(calendar.url.path): calendar.get_display_name()
        for calendar in client.principal().calendars()
    }


def add_event(client: caldav.DAVClient, url: str, summary: str) -> str:
    uid = f"share-{uuid.uuid4()}"
    client.calendar(url=url).add_event(
        uid=uid,
        summary=summary,
        dtstart=datetime(2031, 3, 4, 9, tzinfo=UTC),
        dtend=datetime(2031, 3, 4, 10, tzinfo=UTC),
    )
    return uid


def summaries(client: caldav.DAVClient, url: str) -> set[str]:
    return {
        str(event.icalendar_component["SUMMARY"]) for event in client.calendar(url=url).events()
    }


def privileges(dav: DavHttp, path: str) -> set[str]:
    reply = dav.propfind(path, ["d:current-user-privilege-set"])
    (props,) = reply.multistatus().values()
    found = props[f"{{{DAV}}}current-user-privilege-set"]
    return {child.tag.split("}")[1] for child in found.findall("d:privilege/*", NS)}


# --- a shared personal calendar -------------------------------------------------------


def test_read_sharee_finds_the_calendar_in_their_home_named_with_its_owner(
    dav_server: RunningServer, people: dict[str, Account]
) -> None:
    owner, reader = people["owner"], people["reader"]
    with client_of(dav_server, owner) as alice:
        add_event(alice, f"{dav_server.dav_url}{owner.login}/calendar/", "Conseil de classe")
    grant(dav_server, owner.login, "calendar", reader.login, Level.READ)

    with client_of(dav_server, reader) as bruno:
        found = calendar_urls(bruno)
        mount = f"/dav/{reader.login}/{owner.login}~calendar/"
        assert found[mount] == "Agenda personnel (Alice Lefort)"
        assert "Conseil de classe" in summaries(bruno, f"{dav_server.http_url}{mount}")


def test_read_sharee_is_told_read_only_and_refused_writes(
    dav_server: RunningServer, people: dict[str, Account]
) -> None:
    owner, reader = people["owner"], people["reader"]
    grant(dav_server, owner.login, "calendar", reader.login, Level.READ)
    dav = raw(dav_server, reader)
    mount = f"/dav/{reader.login}/{owner.login}~calendar/"

    assert "write-content" not in privileges(dav, mount)
    assert "read" in privileges(dav, mount)
    for path in (mount, f"/dav/{owner.login}/calendar/"):
        uid = f"forbidden-{uuid.uuid4()}"
        reply = dav.put(f"{path}{uid}.ics", event_ics(uid, "Intrus"), "text/calendar")
        assert reply.status == 403, reply.text
    with client_of(dav_server, reader) as bruno, pytest.raises(caldav_error.AuthorizationError):
        add_event(bruno, f"{dav_server.http_url}{mount}", "Intrus")
    with client_of(dav_server, owner) as alice:
        assert "Intrus" not in summaries(alice, f"{dav_server.dav_url}{owner.login}/calendar/")


def test_write_sharee_adds_an_event_the_owner_sees(
    dav_server: RunningServer, people: dict[str, Account]
) -> None:
    owner, writer = people["owner"], people["writer"]
    grant(dav_server, owner.login, "calendar", writer.login, Level.WRITE)
    mount = f"{dav_server.http_url}/dav/{writer.login}/{owner.login}~calendar/"

    assert "write-content" in privileges(raw(dav_server, writer), mount[len(dav_server.http_url) :])
    with client_of(dav_server, writer) as claire:
        add_event(claire, mount, "Sortie au théâtre")
    with client_of(dav_server, owner) as alice:
        assert "Sortie au théâtre" in summaries(
            alice, f"{dav_server.dav_url}{owner.login}/calendar/"
        )


def test_revoking_removes_the_calendar_on_the_next_request(
    dav_server: RunningServer, people: dict[str, Account]
) -> None:
    owner, reader = people["owner"], people["reader"]
    ref = grant(dav_server, owner.login, "calendar", reader.login, Level.READ)
    mount = f"/dav/{reader.login}/{owner.login}~calendar/"
    with client_of(dav_server, reader) as bruno:
        assert mount in calendar_urls(bruno)

        dav_server.core.sharing.revoke(ref, reader.login, actor="test")

        assert mount not in calendar_urls(bruno)
    dav = raw(dav_server, reader)
    assert dav.propfind(mount, ["d:displayname"]).status in (403, 404)
    assert dav.propfind(f"/dav/{owner.login}/calendar/", ["d:getetag"], "1").status == 403


def test_sharee_colour_and_name_are_their_own(
    dav_server: RunningServer, people: dict[str, Account]
) -> None:
    owner, writer = people["owner"], people["writer"]
    grant(dav_server, owner.login, "calendar", writer.login, Level.WRITE)
    mount = f"/dav/{writer.login}/{owner.login}~calendar/"
    body = (
        f'<?xml version="1.0"?><d:propertyupdate xmlns:d="{DAV}" '
        'xmlns:i="http://apple.com/ns/ical/"><d:set><d:prop>'
        "<d:displayname>Agenda d’Alice</d:displayname>"
        "<i:calendar-color>#ff8800</i:calendar-color></d:prop></d:set></d:propertyupdate>"
    )

    assert raw(dav_server, writer).request("PROPPATCH", mount, body, xml_headers()).status == 207

    mine = raw(dav_server, writer).propfind(mount, ["d:displayname"]).multistatus()
    assert mine[mount][f"{{{DAV}}}displayname"].text == "Agenda d’Alice"
    theirs = raw(dav_server, owner).propfind(f"/dav/{owner.login}/calendar/", ["d:displayname"])
    assert "Agenda personnel" in theirs.text
    assert "Agenda d’Alice" not in theirs.text


# --- department agendas --------------------------------------------------------------


def test_members_see_the_department_agenda_and_a_manager_keeps_it(
    dav_server: RunningServer, people: dict[str, Account]
) -> None:
    member, writer = people["member"], people["writer"]
    agenda_mount = f"/dav/{member.login}/{DEPARTMENT}~agenda/"
    with client_of(dav_server, member) as denis:
        assert calendar_urls(denis)[agenda_mount] == "Agenda — Lettres — Lycée Joffre"
        with pytest.raises(caldav_error.AuthorizationError):
            add_event(denis, f"{dav_server.http_url}{agenda_mount}", "Pas permis")

    # The department's secretary is given manage: she writes, members read.
    grant(dav_server, DEPARTMENT, "agenda", writer.login, Level.MANAGE)
    with client_of(dav_server, writer) as claire:
        add_event(
            claire,
            f"{dav_server.http_url}/dav/{writer.login}/{DEPARTMENT}~agenda/",
            "Réunion de département",
        )
    with client_of(dav_server, member) as denis:
        assert "Réunion de département" in summaries(denis, f"{dav_server.http_url}{agenda_mount}")


def test_a_removed_member_loses_the_department_agenda_at_once(
    dav_server: RunningServer,
) -> None:
    (leaving,) = import_accounts(dav_server.core, ("Eve", "Renard"))
    mount = f"/dav/{leaving.login}/{DEPARTMENT}~agenda/"
    with client_of(dav_server, leaving) as eve:
        assert mount in calendar_urls(eve)

        dav_server.core.directory.remove_member(DEPARTMENT[1:], leaving.login, actor="test")

        assert mount not in calendar_urls(eve)
    reply = raw(dav_server, leaving).propfind(f"/dav/{DEPARTMENT}/agenda/", ["d:getetag"], "1")
    assert reply.status == 403


# --- vdirsyncer as a sharee ----------------------------------------------------------


def vdirsyncer_config(tmp_path: Path, server: RunningServer, account: Account, owner: str) -> Path:
    def remote(kind: str) -> str:
        return (
            f'type = "{kind}"\nurl = "{server.dav_url}"\n'
            f'username = "{account.login}"\npassword = "{account.password}"\n'
        )

    config = tmp_path / "vdirsyncer.conf"
    config.write_text(
        f'[general]\nstatus_path = "{tmp_path / "status"}/"\n\n'
        f'[pair shared_calendar]\na = "local_calendar"\nb = "remote_calendar"\n'
        f'collections = ["{owner}~calendar"]\n\n'
        f'[storage local_calendar]\ntype = "filesystem"\npath = "{tmp_path / "cal"}/"\n'
        'fileext = ".ics"\n\n'
        f"[storage remote_calendar]\n{remote('caldav')}\n"
        f'[pair shared_contacts]\na = "local_contacts"\nb = "remote_contacts"\n'
        f'collections = ["{owner}~contacts"]\n\n'
        f'[storage local_contacts]\ntype = "filesystem"\npath = "{tmp_path / "card"}/"\n'
        'fileext = ".vcf"\n\n'
        f"[storage remote_contacts]\n{remote('carddav')}\n",
        encoding="utf-8",
    )
    return config


def run_vdirsyncer(config: Path, *args: str) -> None:
    done = subprocess.run(
        [str(VDIRSYNCER), "--config", str(config), *args],
        input="y\n" * 4,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.interop
def test_vdirsyncer_syncs_a_shared_calendar_and_address_book(
    dav_server: RunningServer, people: dict[str, Account], tmp_path: Path
) -> None:
    owner, reader = people["owner"], people["reader"]
    uid = f"card-{uuid.uuid4()}"
    reply = raw(dav_server, owner).put(
        f"/dav/{owner.login}/contacts/{uid}.vcf",
        contact_vcf(uid, "Gaston Lagaffe", "gaston@example.org"),
        "text/vcard",
    )
    assert reply.status == 201, reply.text
    with client_of(dav_server, owner) as alice:
        event_uid = add_event(alice, f"{dav_server.dav_url}{owner.login}/calendar/", "Bac blanc")
    grant(dav_server, owner.login, "calendar", reader.login, Level.READ)
    grant(dav_server, owner.login, "contacts", reader.login, Level.READ)
    config = vdirsyncer_config(tmp_path, dav_server, reader, owner.login)

    run_vdirsyncer(config, "discover")
    run_vdirsyncer(config, "sync")

    calendar_files = list((tmp_path / "cal" / f"{owner.login}~calendar").glob("*.ics"))
    assert any(event_uid in f.read_text(encoding="utf-8") for f in calendar_files)
    contact_files = list((tmp_path / "card" / f"{owner.login}~contacts").glob("*.vcf"))
    assert any("Gaston Lagaffe" in f.read_text(encoding="utf-8") for f in contact_files)
    # A second sync finds nothing to do.
    before = {f.name: f.stat().st_mtime_ns for f in calendar_files + contact_files}
    run_vdirsyncer(config, "sync")
    after = {
        f.name: f.stat().st_mtime_ns
        for f in [
            *(tmp_path / "cal" / f"{owner.login}~calendar").glob("*.ics"),
            *(tmp_path / "card" / f"{owner.login}~contacts").glob("*.vcf"),
        ]
    }
    assert after == before
