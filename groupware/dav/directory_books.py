# SPDX-License-Identifier: GPL-3.0-or-later
"""The directory address books (GAL): every active person, read-only, made on the fly.

``/~directory/all/`` lists the whole directory; ``/~directory/<school>/`` (the school
group's name, e.g. ``lycee-joffre``) one school. Cards are written from the directory's
rows at each request, never stored; sync tokens are the directory's change-log
revisions (``core.directory_log``), so a phone's sync costs the changes since its
last one: a new person appears, a disabled or departed one is reported gone
(RFC 6578 §3.5: as a 404 member), whatever the size of the directory.

Cards are vCard 3.0 (RFC 2426), what every CardDAV client reads: FN, N, EMAIL,
ORG (school; department), TITLE (role) and CATEGORIES (discipline).
"""

from __future__ import annotations

import hashlib
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Final

from radicale import item as radicale_item
from radicale import storage, xmlutils

from groupware.core.directory import Directory, Person
from groupware.core.directory_log import DirectoryLog

ROOT: Final = "~directory"
ALL: Final = "all"
_SYNC_PREFIX: Final = "urn:groupware:directory-sync:"
_UID_NAMESPACE: Final = uuid.UUID("5b0c3c8e-1f7e-4a52-9d7e-6a1e0b7f2d10")
_CARD_SUFFIX: Final = ".vcf"
_EPOCH: Final = datetime(2020, 1, 1, tzinfo=UTC)
_NAMES: Final = {
    "fr": ("Annuaire", "Toutes les personnes de l'annuaire", "Annuaire de l'établissement"),
    "en": ("Directory", "Everyone in the directory", "School directory"),
}


@dataclass(frozen=True, slots=True)
class Card:
    """A person's directory card, rendered once per change of theirs."""

    login: str
    school: str
    text: str
    etag: str
    uid: str
    last_modified: str
    haystack: str  # the searchable fields, casefolded
    order: tuple[str, str, str]  # last name, first name, login


class _Snapshot:
    """Every active person's card at one revision of the directory."""

    def __init__(self, revision: int, cards: dict[str, Card]) -> None:
        self.revision = revision
        self.cards = cards
        self._ordered: dict[str | None, list[Card]] = {}

    def ordered(self, school: str | None) -> list[Card]:
        """The cards of a book (all, or one school's), by name."""
        found = self._ordered.get(school)
        if found is None:
            cards = self.cards.values()
            chosen = cards if school is None else [c for c in cards if c.school == school]
            found = self._ordered[school] = sorted(chosen, key=lambda card: card.order)
        return found


class DirectoryBooks:
    """Finds the books and builds their collections, from a card cache kept in step.

    The cache holds every active person's rendered card. Each request reads the
    directory's revision (one row); when it moved, only the people changed since
    are read again (``core.directory_log``), so a listing of 50,000 cards costs the
    answer's size, not 50,000 rows read and rendered.
    """

    def __init__(
        self, directory: Directory, log: DirectoryLog, *, institution: str, language: str
    ) -> None:
        self.directory = directory
        self.log = log
        self.institution = institution
        self.names = _NAMES.get(language, _NAMES["en"])
        self._snapshot: _Snapshot | None = None
        self._lock = threading.Lock()

    def snapshot(self) -> _Snapshot:
        """The cards as of now (refreshed from the change log if the directory moved)."""
        with self._lock:
            current = self._snapshot
            revision = self.log.revision()
            if current is not None and current.revision == revision:
                return current
            if current is None:
                people = self.directory.list_persons(active_only=True)
                cards = {p.login: _card(p) for p in people}
            else:
                changes = self.log.changed_since(current.revision)
                revision = changes.revision
                cards = dict(current.cards)
                for person in self.directory.persons_by_ids(changes.person_ids):
                    cards.pop(person.login, None)
                    if person.is_active:
                        cards[person.login] = _card(person)
            self._snapshot = _Snapshot(revision, cards)
            return self._snapshot

    def schools(self) -> dict[str, str]:
        """``{book name: school}``: each school's group name and the school's own name."""
        return {
            group.name: group.school
            for group in self.directory.groups_of_kind("school")
            if group.school
        }

    def book_of_school(self, school: str) -> str | None:
        """The book name of ``school``, if the school has a group."""
        for name, found in self.schools().items():
            if found == school:
                return name
        return None

    def discover(self, parts: list[str], depth: str) -> Iterator[storage.BaseCollection]:
        """The collection at ``/~directory/...`` (``parts`` after the root), children too."""
        if not parts:
            yield _BooksRoot()
            if depth != "0":
                yield self.book(ALL)  # type: ignore[misc]
                for name in sorted(self.schools()):
                    yield self.book(name)  # type: ignore[misc]
            return
        if len(parts) == 1:
            book = self.book(parts[0])
            if book is not None:
                yield book
                if depth != "0":
                    yield from book.get_all()  # type: ignore[misc]
            return
        if len(parts) == 2:
            book = self.book(parts[0])
            if book is not None:
                for _href, found in book.get_multi([parts[1]]):
                    if found is not None:
                        yield found  # type: ignore[misc]

    def book(self, name: str) -> DirectoryBook | None:
        """The book called ``name`` (``all`` or a school's), or ``None``."""
        if name == ALL:
            return DirectoryBook(self, name, None, f"{self.names[0]} — {self.institution}")
        school = self.schools().get(name)
        if school is None:
            return None
        return DirectoryBook(self, name, school, f"{self.names[0]} — {school}")


class _BooksRoot(storage.BaseCollection):
    """``/~directory/``: holds the books, like a principal holds collections."""

    @property
    def path(self) -> str:
        return ROOT

    @property
    def owner(self) -> str:
        return ""

    def get_meta(self, key: str | None = None) -> Mapping[str, str] | str | None:  # type: ignore[override]
        return {} if key is None else None

    def get_multi(self, hrefs: Iterable[str]) -> Iterable[tuple[str, None]]:
        return [(href, None) for href in hrefs]

    def get_all(self) -> Iterable[radicale_item.Item]:
        return []

    @property
    def last_modified(self) -> str:
        return format_datetime(_EPOCH, usegmt=True)

    @property
    def etag(self) -> str:
        return '"directory-root"'


class DirectoryBook(storage.BaseCollection):
    """One directory address book: read-only, cards built from the directory rows."""

    def __init__(
        self, books: DirectoryBooks, name: str, school: str | None, display_name: str
    ) -> None:
        self._books = books
        self._name = name
        self.school = school
        self._display_name = display_name

    @property
    def path(self) -> str:
        return f"{ROOT}/{self._name}"

    @property
    def owner(self) -> str:
        return ""

    def get_meta(self, key: str | None = None) -> Mapping[str, str] | str | None:  # type: ignore[override]
        names = self._books.names
        meta = {
            "tag": "VADDRESSBOOK",
            "D:displayname": self._display_name,
            "CR:addressbook-description": names[1] if self.school is None else names[2],
        }
        return meta if key is None else meta.get(key)

    def set_meta(self, props: Mapping[str, str]) -> None:
        raise PermissionError("the directory address book is read-only")

    @property
    def etag(self) -> str:
        revision = self._books.log.revision(self.school)
        digest = hashlib.sha256(f"{self.path}:{revision}".encode()).hexdigest()[:32]
        return f'"{digest}"'

    @property
    def last_modified(self) -> str:
        newest = self._books.directory.newest_update(school=self.school) or _EPOCH
        return format_datetime(_utc(newest), usegmt=True)

    def sync(self, old_token: str = "") -> tuple[str, Iterable[str]]:
        """The token for now and the cards changed since ``old_token`` (all without one)."""
        if not old_token:
            revision = self._books.log.revision(self.school)
            return _SYNC_PREFIX + str(revision), (
                card.login + _CARD_SUFFIX for card in self._cards()
            )
        if not old_token.startswith(_SYNC_PREFIX):
            raise ValueError(f"not a directory sync token: {old_token!r}")
        try:
            since = int(old_token[len(_SYNC_PREFIX) :])
        except ValueError:
            raise ValueError(f"malformed directory sync token: {old_token!r}") from None
        if since < 0 or since > self._books.log.revision(self.school):
            raise ValueError(f"unknown directory sync token: {old_token!r}")
        changes = self._books.log.changed_since(since, self.school)
        people = self._books.directory.persons_by_ids(changes.person_ids)
        return _SYNC_PREFIX + str(changes.revision), sorted(p.login + _CARD_SUFFIX for p in people)

    def get_multi(self, hrefs: Iterable[str]) -> Iterable[tuple[str, radicale_item.Item | None]]:
        cards = self._books.snapshot().cards
        found = []
        for href in hrefs:
            card = cards.get(_login_of(href))
            shown = card is not None and (self.school is None or card.school == self.school)
            found.append((href, self._item(card) if shown else None))  # type: ignore[arg-type]
        return found

    def get_all(self) -> Iterable[radicale_item.Item]:
        return [self._item(card) for card in self._cards()]

    def get_filtered(
        self, filters: Iterable[ET.Element]
    ) -> Iterable[tuple[radicale_item.Item, bool]]:
        """Cards that may match; Radicale then applies ``filters`` exactly to each."""
        needles = _text_needles(list(filters))
        for card in self._cards():
            if needles is None or any(n in card.haystack for n in needles):
                yield self._item(card), False

    def has_uid(self, uid: str) -> bool:
        return False

    def upload(self, href: str, item: radicale_item.Item) -> tuple[radicale_item.Item, None]:
        raise PermissionError("the directory address book is read-only")

    def delete(self, href: str | None = None) -> None:
        raise PermissionError("the directory address book is read-only")

    def _cards(self) -> list[Card]:
        return self._books.snapshot().ordered(self.school)

    def _item(self, card: Card) -> radicale_item.Item:
        return radicale_item.Item(
            collection=self,
            href=card.login + _CARD_SUFFIX,
            text=card.text,
            etag=card.etag,
            uid=card.uid,
            name="VCARD",
            component_name="VCARD",
            last_modified=card.last_modified,
        )


def _card(person: Person) -> Card:
    text = vcard(person)
    return Card(
        login=person.login,
        school=person.school,
        text=text,
        etag=radicale_item.get_etag(text),
        uid=card_uid(person),
        last_modified=format_datetime(_utc(person.updated_at), usegmt=True),
        haystack=_haystack(person),
        order=(person.last_name, person.first_name, person.login),
    )


def card_uid(person: Person) -> str:
    """A stable UID: the same card in every book and across renames."""
    return f"urn:uuid:{uuid.uuid5(_UID_NAMESPACE, person.numen_hmac)}"


def vcard(person: Person) -> str:
    """The person's directory card, vCard 3.0 with CRLF line ends and folded lines."""
    department = person.discipline or person.service
    lines = [
        "BEGIN:VCARD",
        "VERSION:3.0",
        "PRODID:-//groupware//directory//EN",
        f"UID:{card_uid(person)}",
        f"FN:{_escape(person.display_name)}",
        f"N:{_escape(person.last_name)};{_escape(person.first_name)};;;",
        f"EMAIL;TYPE=INTERNET,WORK,PREF:{_escape(person.email)}",
    ]
    if person.school or department:
        lines.append(f"ORG:{_escape(person.school)};{_escape(department)}")
    if person.role:
        lines.append(f"TITLE:{_escape(person.role)}")
    if person.discipline:
        lines.append(f"CATEGORIES:{_escape(person.discipline)}")
    lines.append(f"REV:{_utc(person.updated_at).strftime('%Y%m%dT%H%M%SZ')}")
    lines.append("END:VCARD")
    return "".join(_fold(line) + "\r\n" for line in lines)


def _escape(value: str) -> str:
    """RFC 2426 §4 text escaping (and no line break can end a property early)."""
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def _fold(line: str, limit: int = 75) -> str:
    """Fold at ``limit`` octets, never inside a UTF-8 sequence (RFC 6350 §3.2)."""
    encoded = line.encode()
    if len(encoded) <= limit:
        return line
    pieces: list[str] = []
    start = 0
    width = limit
    while start < len(encoded):
        end = min(start + width, len(encoded))
        while end < len(encoded) and (encoded[end] & 0xC0) == 0x80:
            end -= 1
        pieces.append(encoded[start:end].decode())
        start = end
        width = limit - 1  # continuation lines begin with a space
    return "\r\n ".join(pieces)


def _login_of(href: str) -> str:
    name = href.rsplit("/", 1)[-1]
    return name[: -len(_CARD_SUFFIX)] if name.endswith(_CARD_SUFFIX) else ""


def _haystack(person: Person) -> str:
    return "\n".join(
        (
            person.display_name,
            person.first_name,
            person.last_name,
            person.email,
            person.school,
            person.role,
            person.discipline,
            person.service,
        )
    ).casefold()


def _text_needles(filters: list[ET.Element]) -> list[str] | None:
    """The texts one of which every match must contain, or ``None`` when unsure.

    Only filters made of plain (non-negated) text matches narrow the cards: the
    usual "find by name or address" queries. Anything else goes to Radicale whole.
    """
    needles: list[str] = []
    prop_filter = xmlutils.make_clark("CR:prop-filter")
    text_match = xmlutils.make_clark("CR:text-match")
    for filter_ in filters:
        prop_filters = list(filter_)
        if not prop_filters:
            return None
        for element in prop_filters:
            if element.tag != prop_filter or not len(element):
                return None
            for child in element:
                if child.tag != text_match or child.get("negate-condition") == "yes":
                    return None
                if not (child.text or "").strip():
                    return None
                needles.append(child.text.strip().casefold())  # type: ignore[union-attr]
    return needles or None


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
