# SPDX-License-Identifier: GPL-3.0-or-later
"""Contacts as the portal sees them: vCards read with ``vobject``, written as clients expect.

Framework-free. vCard 3.0 (RFC 2426) and 4.0 (RFC 6350) are both read; a new card
is written as 3.0, what every CardDAV client reads, and an edited card keeps its
version and every property the form does not show (photos, extra addresses,
client-specific ``X-`` properties), so an edit in the browser loses nothing a
phone wrote.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import vobject

from groupware.web.dav_client import Resource

NEW_VERSION: Final = "3.0"
PRODID: Final = "-//groupware//portal contacts//EN"


@dataclass(frozen=True, slots=True)
class Contact:
    """The fields the contact pages show."""

    uid: str
    full_name: str
    given_name: str = ""
    family_name: str = ""
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    organization: str = ""
    title: str = ""
    note: str = ""
    path: str = ""  # the resource under /dav, "" for a new card
    etag: str = ""

    @property
    def haystack(self) -> str:
        """What a search looks in, casefolded."""
        parts = (self.full_name, *self.emails, *self.phones, self.organization, self.title)
        return " ".join(parts).casefold()


def read(resource: Resource) -> Contact | None:
    """A card's fields, or ``None`` when it is not a readable vCard."""
    try:
        card = vobject.readOne(resource.text)
    except (vobject.base.ParseError, ValueError, IndexError):
        return None
    return _contact(card, resource.path, resource.etag)


def _contact(card: vobject.base.Component, path: str, etag: str) -> Contact:
    name = card.contents.get("n", [None])[0]
    given = family = ""
    if name is not None and hasattr(name.value, "given"):
        given, family = _text(name.value.given), _text(name.value.family)
    org_line = card.contents.get("org", [None])[0]
    organization = ""
    if org_line is not None:
        value = org_line.value
        organization = " ; ".join(value) if isinstance(value, list) else str(value)
    full_name = _value(card, "fn") or " ".join(filter(None, (given, family)))
    return Contact(
        uid=_value(card, "uid"),
        full_name=full_name,
        given_name=given,
        family_name=family,
        emails=tuple(str(line.value) for line in card.contents.get("email", [])),
        phones=tuple(str(line.value).removeprefix("tel:") for line in card.contents.get("tel", [])),
        organization=organization,
        title=_value(card, "title"),
        note=_value(card, "note"),
        path=path,
        etag=etag,
    )


def _text(value: object) -> str:
    return " ".join(value) if isinstance(value, list) else str(value or "")


def _value(card: vobject.base.Component, name: str) -> str:
    line = card.contents.get(name, [None])[0]
    return str(line.value) if line is not None else ""


def read_all(resources: Iterable[Resource]) -> list[Contact]:
    """Every readable card, sorted by name."""
    found = [c for c in (read(r) for r in resources) if c is not None]
    return sorted(found, key=lambda c: (c.family_name or c.full_name).casefold())


def search(contacts: Iterable[Contact], text: str) -> list[Contact]:
    """The contacts whose name, address, phone or organisation contain every word."""
    words = text.casefold().split()
    return [c for c in contacts if all(word in c.haystack for word in words)]


def new_uid() -> str:
    """A fresh UID for a card."""
    return str(uuid.uuid4())


def write(contact: Contact, original: str = "") -> str:
    """The vCard text of ``contact``: ``original`` updated (its version kept), or a new 3.0.

    Only what changed is rewritten: an unchanged phone keeps its TYPE, an unchanged
    organisation its units.
    """
    if original:
        card = vobject.readOne(original)
        before = _contact(card, "", "")
    else:
        card = vobject.vCard()
        card.add("version").value = NEW_VERSION
        card.add("prodid").value = PRODID
        card.add("uid").value = contact.uid
        before = Contact(uid=contact.uid, full_name="")
    is_v4 = _value(card, "version").startswith("4")
    if (contact.full_name, contact.given_name, contact.family_name) != (
        before.full_name,
        before.given_name,
        before.family_name,
    ):
        _replace(card, "fn", [contact.full_name])
        card.contents.pop("n", None)
        card.add("n").value = vobject.vcard.Name(
            family=contact.family_name, given=contact.given_name
        )
    if contact.emails != before.emails:
        for line in _replace(card, "email", contact.emails):
            if not is_v4:
                line.type_param = "INTERNET"
    if contact.phones != before.phones:
        _replace(card, "tel", contact.phones)
    if contact.organization != before.organization:
        _replace(card, "org", [[contact.organization]] if contact.organization else [])
    for name in ("title", "note"):
        if getattr(contact, name) != getattr(before, name):
            _replace(card, name, [getattr(contact, name)] if getattr(contact, name) else [])
    return str(card.serialize())


def _replace(card: vobject.base.Component, name: str, values: Iterable[object]) -> list[object]:
    card.contents.pop(name, None)
    lines = []
    for value in values:
        line = card.add(name)
        line.value = value
        lines.append(line)
    return lines
