# SPDX-License-Identifier: GPL-3.0-or-later
"""``groupware shares`` and ``groupware collections``: the ACL and group collections.

A collection is named by its owner (a login, or ``@`` and a group name) and its path
segment under the owner's home (``calendar`` for the default calendar). Every change
is audited by ``core.sharing``, as the portal's are.
"""

from __future__ import annotations

import click

from groupware.cli_support import Context, actor, out, pass_context, print_columns
from groupware.core.sharing import GRANTABLE, CollectionRef, Level, is_group_principal
from groupware.dav.collections import Collections
from groupware.dav.service import DavService
from groupware.errors import GroupwareError

_LEVELS = click.Choice([level.label for level in GRANTABLE])
_owner = click.option("--owner", required=True, help="LOGIN or @GROUP owning the collection.")
_collection = click.option(
    "--collection", required=True, help="The collection's name under the owner (e.g. calendar)."
)
_to = click.option("--to", "grantee", required=True, help="LOGIN or @GROUP given access.")


def _dav(context: Context) -> Collections:
    return DavService(context.core()).collections


def _existing(context: Context, owner: str, name: str) -> CollectionRef:
    """The collection named on the command line, which must exist."""
    core = context.core()
    ref = CollectionRef(core.sharing.principal(owner), name.strip())
    dav = _dav(context)
    if not is_group_principal(ref.owner):
        dav.ensure_defaults(core.directory.get(ref.owner))  # the defaults exist from now on
    dav.get(ref)
    return ref


@click.group()
def shares() -> None:
    """Who may read or change calendars and address books."""


@shares.command("add")
@_owner
@_collection
@_to
@click.option("--level", required=True, type=_LEVELS, help="read, write or manage.")
@pass_context
def shares_add(context: Context, owner: str, collection: str, grantee: str, level: str) -> None:
    """Give a person or a group access to a collection (or change their level)."""
    ref = _existing(context, owner, collection)
    done = context.core().sharing.grant(ref, grantee, Level.parse(level), actor=actor())
    out.print(f"Shared {ref.key} with {done.grantee} ({done.level.label}).", markup=False)


@shares.command("list")
@click.option("--owner", default=None, help="Only the collections of LOGIN or @GROUP.")
@pass_context
def shares_list(context: Context, owner: str | None) -> None:
    """Every grant, or those on the collections of one owner."""
    sharing = context.core().sharing
    grants = sharing.grants(owner=sharing.principal(owner) if owner else None)
    print_columns(
        ("owner", "collection", "to", "level", "by", "since"),
        [
            (
                grant.collection.owner,
                grant.collection.name,
                grant.grantee,
                grant.level.label,
                grant.created_by,
                grant.created_at.strftime("%Y-%m-%d %H:%M"),
            )
            for grant in grants
        ],
    )


@shares.command("remove")
@_owner
@_collection
@_to
@click.option("--level", default=None, type=_LEVELS, help="Only if the grant is at this level.")
@pass_context
def shares_remove(
    context: Context, owner: str, collection: str, grantee: str, level: str | None
) -> None:
    """Withdraw a person's or a group's access to a collection."""
    sharing = context.core().sharing
    ref = CollectionRef(sharing.principal(owner), collection.strip())
    target = sharing.principal(grantee)
    if level is not None:
        found = [g for g in sharing.grants(collection=ref) if g.grantee == target]
        if found and found[0].level.label != level:
            raise GroupwareError(
                f"{target} has {found[0].level.label} on {ref.key}, not {level}: nothing removed"
            )
    sharing.revoke(ref, target, actor=actor())
    out.print(f"Removed the access of {target} to {ref.key}.", markup=False)


@click.group()
def collections() -> None:
    """Calendars and address books, of people and of groups (department agendas)."""


@collections.command("add")
@_owner
@click.option("--name", required=True, help="Path segment: lowercase letters, digits, . - _")
@click.option("--kind", type=click.Choice(["calendar", "addressbook"]), default="calendar")
@click.option("--display-name", default="", help="Name people see.")
@click.option("--color", default="", help="Calendar colour, e.g. #2a6ebb.")
@pass_context
def collections_add(
    context: Context, owner: str, name: str, kind: str, display_name: str, color: str
) -> None:
    """Make a calendar or address book, e.g. for a group: --owner @lycee-joffre.lettres."""
    info = _dav(context).create(owner, name, kind, display_name, color=color)
    context.core().audit.record(
        "dav.collection_created", actor=actor(), subject=f"{info.owner}/{info.name}", detail=kind
    )
    out.print(f"Created {info.owner}/{info.name} ({info.display_name}).", markup=False)


@collections.command("list")
@_owner
@pass_context
def collections_list(context: Context, owner: str) -> None:
    """The calendars and address books of LOGIN or @GROUP, with their grants."""
    core = context.core()
    principal = core.sharing.principal(owner)
    dav = _dav(context)
    if not is_group_principal(principal):
        dav.ensure_defaults(core.directory.get(principal))
    rows = []
    for info in dav.owned_by(principal):
        assert info.collection is not None
        grants = core.sharing.grants(collection=info.collection)
        rows.append((info.name, info.kind, str(len(grants)), info.display_name))
    print_columns(("name", "kind", "grants", "display name"), rows)
