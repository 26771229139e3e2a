# SPDX-License-Identifier: GPL-3.0-or-later
"""Envelope addresses: syntax, relay tricks, and local recipients.

A local recipient is a person's address (primary or alias) or a group list
(``<group name>@<domain>``), resolved through the directory. Addresses that try to
route elsewhere through a local domain (percent hack ``a%b@local``, bang paths
``b!a@local``, source routes ``@x:a@local``, quoted local parts with ``@``) are not
local; for an unauthenticated client they are relay attempts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from groupware.core.directory import Directory, Group, Person
from groupware.core.send_as import sendable_addresses

_ATEXT: Final = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"  # RFC 5322 §3.2.3
_DOT_ATOM: Final = re.compile(rf"^{_ATEXT}+(\.{_ATEXT}+)*$")
_DOMAIN: Final = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
)


@dataclass(frozen=True, slots=True)
class Address:
    """A parsed envelope address."""

    local: str
    domain: str
    has_routing_tricks: bool

    def __str__(self) -> str:
        return f"{self.local}@{self.domain}"


def parse_address(text: str) -> Address | None:
    """A mailbox as in ``MAIL FROM``/``RCPT TO`` (angle brackets removed), or None if malformed."""
    text = text.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    tricks = False
    if text.startswith("@"):
        # RFC 5321 §4.1.2 source route: obsolete, and a relay trick.
        tricks = True
        _route, sep, text = text.partition(":")
        if not sep:
            return None
    if text.startswith('"'):
        end = text.rfind('"')
        if end <= 0 or end + 1 >= len(text) or text[end + 1] != "@":
            return None
        local, domain = text[: end + 1], text[end + 2 :]
        tricks = True  # quoted local parts can hide another address
    else:
        local, sep, domain = text.rpartition("@")
        if not sep or not _DOT_ATOM.match(local):
            return None
    if not _DOMAIN.match(domain):
        return None
    if any(ch in local for ch in "%!@"):
        tricks = True
    return Address(local, domain.lower(), tricks)


@dataclass(frozen=True, slots=True)
class LocalRecipient:
    """Who a local address reaches."""

    address: str
    persons: tuple[Person, ...]
    group: Group | None = None


class Recipients:
    """Resolves local addresses through the directory."""

    def __init__(self, directory: Directory) -> None:
        self._directory = directory
        self.domains = frozenset({directory.domain})

    def is_local_domain(self, domain: str) -> bool:
        """Whether mail for ``domain`` is ours."""
        return domain.lower() in self.domains

    def resolve(self, address: Address) -> LocalRecipient | None:
        """The active people an address reaches, or None when no one (blocking)."""
        if address.has_routing_tricks or not self.is_local_domain(address.domain):
            return None
        text = f"{address.local.lower()}@{address.domain}"
        person = self._directory.find(text)
        if person is not None:
            return LocalRecipient(text, (person,)) if person.is_active else None
        group = self._directory.find_group(address.local)
        if group is None:
            return None
        members = tuple(p for p in self._directory.members(group.name) if p.is_active)
        return LocalRecipient(text, members, group) if members else None

    def owned_addresses(self, person: Person) -> set[str]:
        """Addresses a person may send as (``core.send_as``: own, aliases, custom groups)."""
        return set(sendable_addresses(self._directory, person))
