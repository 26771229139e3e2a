"""``groupware shares`` and ``groupware collections`` as an administrator runs them."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from groupware.core.db import audit_log
from groupware.core.sharing import CollectionRef, Level

# The fixtures ``data`` and ``staffed`` come from tests/test_cli.py.
from tests.test_cli import assert_usage_error, assert_user_error, data, open_core, run_cli, staffed  # noqa: F401

DEPARTMENT = "@lycee-joffre.lettres"


def test_shares_add_list_and_remove_with_the_issue_options(staffed: Path) -> None:  # noqa: F811
    added = run_cli(
        "shares", "add", "--owner", "marie.dupont", "--collection", "calendar",
        "--to", "aissatou.ndiaye", "--level", "read", data=staffed,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "Shared marie.dupont/calendar with aissatou.ndiaye (read)."
    group = run_cli(
        "shares", "add", "--owner", "marie.dupont", "--collection", "contacts",
        "--to", "@lycee-joffre", "--level", "write", data=staffed,
    )  # fmt: skip
    assert group.returncode == 0, group.stderr

    listed = run_cli("shares", "list", "--owner", "marie.dupont", data=staffed)

    assert listed.returncode == 0, listed.stderr
    rows = [line.split()[:4] for line in listed.stdout.splitlines()]
    assert rows == [
        ["owner", "collection", "to", "level"],
        ["marie.dupont", "calendar", "aissatou.ndiaye", "read"],
        ["marie.dupont", "contacts", "@lycee-joffre", "write"],
    ]
    removed = run_cli(
        "shares", "remove", "--owner", "marie.dupont", "--collection", "calendar",
        "--to", "aissatou.ndiaye", data=staffed,
    )  # fmt: skip
    assert removed.returncode == 0, removed.stderr
    with open_core(staffed) as core, core.engine.connect() as conn:
        grants = core.sharing.grants()
        query = select(audit_log.c.event).where(audit_log.c.event.like("dav.%"))
        events = [row.event for row in conn.execute(query)]
    assert [(g.collection, g.grantee, g.level) for g in grants] == [
        (CollectionRef("marie.dupont", "contacts"), "@lycee-joffre", Level.WRITE)
    ]
    assert events == ["dav.share_granted", "dav.share_granted", "dav.share_revoked"]


def test_shares_add_refuses_what_cannot_be_shared(staffed: Path) -> None:  # noqa: F811
    def add(*options: str) -> object:
        return run_cli("shares", "add", *options, data=staffed)

    base = ["--owner", "marie.dupont", "--collection", "calendar"]
    assert_user_error(add(*base, "--to", "personne", "--level", "read"), "no such person")
    assert_user_error(add(*base, "--to", "@nulle-part", "--level", "read"), "no such group")
    assert_user_error(add(*base, "--to", "marie.dupont", "--level", "read"), "owns")
    assert_user_error(
        add("--owner", "marie.dupont", "--collection", "nope", "--to", "aissatou.ndiaye",
            "--level", "read"),
        "no such collection: marie.dupont/nope",
    )  # fmt: skip
    assert_usage_error(add(*base, "--to", "aissatou.ndiaye", "--level", "owner"), "--level")
    assert_user_error(
        run_cli(
            "shares", "remove", *base, "--to", "aissatou.ndiaye", data=staffed
        ),
        "no such share",
    )  # fmt: skip


def test_group_collections_are_made_listed_and_shared(staffed: Path) -> None:  # noqa: F811
    made = run_cli(
        "collections", "add", "--owner", DEPARTMENT, "--name", "conseil",
        "--display-name", "Conseil pédagogique", data=staffed,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    shared = run_cli(
        "shares", "add", "--owner", DEPARTMENT, "--collection", "conseil",
        "--to", "aissatou.ndiaye", "--level", "manage", data=staffed,
    )  # fmt: skip
    assert shared.returncode == 0, shared.stderr

    listed = run_cli("collections", "list", "--owner", DEPARTMENT, data=staffed)

    assert listed.returncode == 0, listed.stderr
    assert [line.split()[:3] for line in listed.stdout.splitlines()[1:]] == [
        ["conseil", "calendar", "1"]
    ]
    again = run_cli("collections", "add", "--owner", DEPARTMENT, "--name", "conseil", data=staffed)
    assert_user_error(again, "exists already")
    bad = run_cli("collections", "add", "--owner", DEPARTMENT, "--name", "a~b", data=staffed)
    assert_user_error(bad, "invalid collection name")
