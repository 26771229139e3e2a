# SPDX-License-Identifier: GPL-3.0-or-later
"""Who may send as which address: the one rule SMTP submission and the webmail share.

A person may put in ``From`` their own address, each alias the directory gave them,
and the address of every hand-made (``custom``) group they belong to. School,
department and role groups lend their address to no one (deny unless a rule allows):
they are lists people write to, not identities. The SMTP submission checks
``From`` against this set; the webmail offers one identity per address in it.
"""

from __future__ import annotations

from typing import Final

from groupware.core.directory import Directory, Person

#: The only group kind whose address its members may send as.
SENDABLE_GROUP_KIND: Final = "custom"


def sendable_addresses(directory: Directory, person: Person) -> list[str]:
    """The addresses ``person`` may send as, lower case: own first, then aliases, then groups."""
    owned = [address.lower() for address in directory.addresses_of(person.id)]
    groups = sorted(
        f"{group.name}@{directory.domain}".lower()
        for group in directory.groups_of(person.id)
        if group.kind == SENDABLE_GROUP_KIND
    )
    found: list[str] = []
    for address in [*owned, *groups]:
        if address not in found:
            found.append(address)
    return found
