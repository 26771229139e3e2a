# SPDX-License-Identifier: GPL-3.0-or-later
"""The webmail's preferences of each person: display, identities and labels.

Framework-free, read by the webmail's settings page, its folder list and its
compose page:

- display: messages per page (a bounded choice; without one, the configured
  ``webmail.messages_per_page_count``) and the reading pane layout;
- identities: one per address the person may send as (``core.send_as``: own
  address, aliases, custom groups), each with a display name and a plain-text
  signature, one of them the default. Only what the person changed is stored; an
  address they may no longer send as (they left the group) simply stops yielding
  an identity, whatever rows remain;
- labels: IMAP keywords (RFC 3501 §2.3.2) with a name and a colour from a fixed
  palette. The keyword is made once from the name (a lowercase ASCII slug, a valid
  atom, never ``$``-prefixed: that prefix is for registered keywords, RFC 5788) and
  stays when the label is renamed, so messages keep their label. The keywords other
  clients set (``$Important``, Thunderbird's ``$label1``…``$label5``) are shown
  with default names (:data:`STANDARD_LABELS`).
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, Engine, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from groupware.core.audit import Audit
from groupware.core.db import mail_identities, mail_labels, mail_settings, write_transaction
from groupware.core.directory import Directory, Person
from groupware.core.send_as import sendable_addresses
from groupware.errors import GroupwareError, NotFoundError

#: The messages-per-page choices offered (bounded: a page is one FETCH).
MESSAGES_PER_PAGE_CHOICES: Final = (25, 50, 100, 200)
MAX_DISPLAY_NAME_CHARS: Final = 128
MAX_SIGNATURE_CHARS: Final = 2000
MAX_LABEL_NAME_CHARS: Final = 40
MAX_KEYWORD_CHARS: Final = 32
MAX_LABELS_COUNT: Final = 50
SIGNATURE_SEPARATOR: Final = "-- "
#: Label colours: each carries white text at a WCAG contrast of at least 4.5:1.
PALETTE: Final = {
    "red": "#b91c1c",
    "orange": "#b45309",
    "green": "#15803d",
    "teal": "#0f766e",
    "blue": "#1d4ed8",
    "indigo": "#4338ca",
    "purple": "#7e22ce",
    "pink": "#be185d",
    "brown": "#78350f",
    "grey": "#4b5563",
}
DEFAULT_COLOUR: Final = "blue"
#: Keywords other clients set (lower case) → (name key, colour). The web names them.
STANDARD_LABELS: Final = {
    "$important": ("important", "red"),
    "$label1": ("important", "red"),
    "$label2": ("work", "orange"),
    "$label3": ("personal", "green"),
    "$label4": ("todo", "blue"),
    "$label5": ("later", "purple"),
}
#: Keywords clients use for other things: a label's slug must not be one of them.
RESERVED_KEYWORDS: Final = frozenset({"junk", "nonjunk", "notjunk", "forwarded", "phishing"})
#: The slug of a name with no ASCII letter or digit (``会議``).
FALLBACK_KEYWORD: Final = "label"
_NOT_SLUG: Final = re.compile(r"[^a-z0-9]+")
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class ReadingPane(enum.Enum):
    """Where a message opens: on its own page, or in a pane beside or below the list."""

    LIST = "list"
    RIGHT = "right"
    BOTTOM = "bottom"


class PreferenceError(GroupwareError):
    """A preference was refused; ``field`` and ``reason`` say why, for the form."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason  # not_a_choice | too_long | empty | invalid | not_yours | taken | full


@dataclass(frozen=True, slots=True)
class Identity:
    """An address the person may send as, and how they sign with it."""

    address: str
    display_name: str
    signature: str
    is_default: bool


@dataclass(frozen=True, slots=True)
class Label:
    """A label the person defined: its IMAP keyword, name and palette colour."""

    keyword: str
    name: str
    colour: str


@dataclass(frozen=True, slots=True)
class DisplaySettings:
    """How the list shows: page size and reading pane."""

    messages_per_page: int
    reading_pane: ReadingPane


def keyword_for(name: str, taken: Iterable[str] = ()) -> str:
    """The keyword of a new label called ``name``: an ASCII slug not in ``taken``.

    Accents are dropped (``Réunion`` → ``reunion``), anything else not a letter or
    digit becomes ``-``; a name with nothing left gets ``label``. A clash (keywords
    are case-insensitive) adds ``-2``, ``-3``… The result is an IMAP atom.
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = _NOT_SLUG.sub("-", ascii_name.lower()).strip("-")[:MAX_KEYWORD_CHARS].strip("-")
    slug = slug or FALLBACK_KEYWORD
    used = {keyword.lower() for keyword in taken} | RESERVED_KEYWORDS
    candidate, number = slug, 1
    while candidate in used:
        number += 1
        suffix = f"-{number}"
        candidate = slug[: MAX_KEYWORD_CHARS - len(suffix)].rstrip("-") + suffix
    return candidate


def _clean_line(field: str, text: str, max_chars: int, *, required: bool) -> str:
    text = " ".join(text.split())  # one line: no CR/LF into a header
    if _CONTROL.search(text):
        raise PreferenceError(field, "invalid")
    if required and not text:
        raise PreferenceError(field, "empty")
    if len(text) > max_chars:
        raise PreferenceError(field, "too_long")
    return text


def clean_signature(text: str) -> str:
    """A signature as stored: plain text, ``\\n`` line ends, no trailing blanks.

    Raises:
        PreferenceError: too long, or control characters in it.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    # Trailing blanks go, except in the "-- " line that starts a signature (RFC 3676 §4.3).
    lines = [line if line == SIGNATURE_SEPARATOR else line.rstrip() for line in lines]
    cleaned = "\n".join(lines).strip("\n")
    if _CONTROL.search(cleaned.replace("\t", " ")):
        raise PreferenceError("signature", "invalid")
    if len(cleaned) > MAX_SIGNATURE_CHARS:
        raise PreferenceError("signature", "too_long")
    return cleaned


# Read on every page of the webmail (page size, pane, label chips), built once.
_SETTINGS_OF: Final = select(mail_settings).where(
    mail_settings.c.person_id == bindparam("person_id")
)
_LABELS_OF: Final = select(mail_labels.c.keyword, mail_labels.c.name, mail_labels.c.colour).where(
    mail_labels.c.person_id == bindparam("person_id")
)


class MailPreferences:
    """Reads and changes the webmail preferences of people (thread-safe, no state)."""

    def __init__(
        self, engine: Engine, directory: Directory, audit: Audit, *, default_per_page: int
    ) -> None:
        self._engine = engine
        self._directory = directory
        self._audit = audit
        self._default_per_page = default_per_page

    # --- display ---------------------------------------------------------------

    def display(self, person: Person) -> DisplaySettings:
        """The person's page size and reading pane (the defaults where none was chosen)."""
        with self._engine.connect() as conn:
            row = conn.execute(_SETTINGS_OF, {"person_id": person.id}).first()
        per_page = row.messages_per_page if row and row.messages_per_page else None
        pane = row.reading_pane if row and row.reading_pane else ReadingPane.LIST.value
        try:
            reading_pane = ReadingPane(pane)
        except ValueError:
            reading_pane = ReadingPane.LIST
        return DisplaySettings(per_page or self._default_per_page, reading_pane)

    def messages_per_page(self, person: Person) -> int:
        """Messages on one page of the person's folders."""
        return self.display(person).messages_per_page

    def set_display(
        self, person: Person, *, messages_per_page: int, reading_pane: ReadingPane
    ) -> None:
        """Choose the page size and the reading pane.

        Raises:
            PreferenceError: the page size is not one of MESSAGES_PER_PAGE_CHOICES.
        """
        if messages_per_page not in MESSAGES_PER_PAGE_CHOICES:
            raise PreferenceError("messages_per_page", "not_a_choice")
        self._save_settings(
            person, messages_per_page=messages_per_page, reading_pane=reading_pane.value
        )

    def _save_settings(self, person: Person, **values: object) -> None:
        with write_transaction(self._engine) as conn:
            changed = conn.execute(
                update(mail_settings).where(mail_settings.c.person_id == person.id).values(**values)
            )
            if changed.rowcount == 0:
                conn.execute(insert(mail_settings).values(person_id=person.id, **values))

    # --- identities --------------------------------------------------------------

    def identities_for(self, person: Person) -> list[Identity]:
        """One identity per address the person may send as now, primary address first."""
        addresses = sendable_addresses(self._directory, person)
        with self._engine.connect() as conn:
            stored = {
                row.address: row
                for row in conn.execute(
                    select(mail_identities).where(mail_identities.c.person_id == person.id)
                )
            }
            default = conn.execute(
                select(mail_settings.c.default_address).where(
                    mail_settings.c.person_id == person.id
                )
            ).scalar()
        if default not in addresses:
            default = addresses[0] if addresses else None
        found = []
        for address in addresses:
            row = stored.get(address)
            found.append(
                Identity(
                    address=address,
                    display_name=(row.display_name if row else "") or person.display_name,
                    signature=row.signature if row else "",
                    is_default=address == default,
                )
            )
        return found

    def identity_for(self, person: Person, address: str) -> Identity | None:
        """The identity of ``address``, or None if the person may not send as it."""
        wanted = address.strip().lower()
        return next((i for i in self.identities_for(person) if i.address == wanted), None)

    def default_identity(self, person: Person) -> Identity:
        """The identity compose starts with (the primary address unless another was chosen).

        Raises:
            NotFoundError: the person may send as no address at all.
        """
        found = next((i for i in self.identities_for(person) if i.is_default), None)
        if found is None:
            raise NotFoundError("identity", person.login)
        return found

    def signature_for(self, person: Person, address: str) -> str:
        """The signature to add when writing as ``address`` ("" for none or not theirs)."""
        identity = self.identity_for(person, address)
        return identity.signature if identity else ""

    def set_identity(
        self, person: Person, address: str, *, display_name: str, signature: str
    ) -> Identity:
        """Set the display name and signature of one of the person's addresses.

        An empty display name means the person's own name.

        Raises:
            PreferenceError: not an address of theirs, name or signature refused.
        """
        identity = self._own_identity(person, address)
        name = _clean_line("display_name", display_name, MAX_DISPLAY_NAME_CHARS, required=False)
        if name == person.display_name:
            name = ""  # follows the directory if their name changes
        text = clean_signature(signature)
        key = (mail_identities.c.person_id == person.id) & (
            mail_identities.c.address == identity.address
        )
        with write_transaction(self._engine) as conn:
            changed = conn.execute(
                update(mail_identities).where(key).values(display_name=name, signature=text)
            )
            if changed.rowcount == 0:
                conn.execute(
                    insert(mail_identities).values(
                        person_id=person.id,
                        address=identity.address,
                        display_name=name,
                        signature=text,
                    )
                )
        self._audit.record(
            "mail.identity_changed", actor=person.login, subject=person.login, detail=address
        )
        return self._own_identity(person, identity.address)

    def set_default_identity(self, person: Person, address: str) -> None:
        """Make one of the person's addresses the one compose starts with.

        Raises:
            PreferenceError: not an address they may send as.
        """
        identity = self._own_identity(person, address)
        self._save_settings(person, default_address=identity.address)
        self._audit.record(
            "mail.default_identity_changed",
            actor=person.login,
            subject=person.login,
            detail=identity.address,
        )

    def _own_identity(self, person: Person, address: str) -> Identity:
        identity = self.identity_for(person, address)
        if identity is None:
            raise PreferenceError("address", "not_yours")
        return identity

    # --- labels ------------------------------------------------------------------

    def labels(self, person: Person) -> list[Label]:
        """The person's labels, by name."""
        with self._engine.connect() as conn:
            return self._labels(conn, person)

    def _labels(self, conn: Connection, person: Person) -> list[Label]:
        rows = conn.execute(_LABELS_OF, {"person_id": person.id})
        found = [Label(row.keyword, row.name, row.colour) for row in rows]
        return sorted(found, key=lambda label: (label.name.casefold(), label.keyword))

    def label(self, person: Person, keyword: str) -> Label:
        """One of the person's labels, by keyword.

        Raises:
            NotFoundError: they have no such label.
        """
        wanted = keyword.lower()
        found = next((lb for lb in self.labels(person) if lb.keyword == wanted), None)
        if found is None:
            raise NotFoundError("label", keyword)
        return found

    def create_label(self, person: Person, name: str, colour: str) -> Label:
        """A new label; its keyword is made from its name.

        Raises:
            PreferenceError: empty, too long or taken name, unknown colour, too many labels.
        """
        name = _clean_line("name", name, MAX_LABEL_NAME_CHARS, required=True)
        _check_colour(colour)
        for _attempt in range(2):  # a concurrent create may take the same keyword once
            with write_transaction(self._engine) as conn:
                existing = self._labels(conn, person)
                _check_name_free(existing, name)
                if len(existing) >= MAX_LABELS_COUNT:
                    raise PreferenceError("name", "full")
                label = Label(keyword_for(name, (lb.keyword for lb in existing)), name, colour)
                try:
                    conn.execute(
                        insert(mail_labels).values(
                            person_id=person.id, keyword=label.keyword, name=name, colour=colour
                        )
                    )
                except IntegrityError:
                    continue
                return label
        raise PreferenceError("name", "taken")

    def change_label(self, person: Person, keyword: str, *, name: str, colour: str) -> Label:
        """Rename and recolour a label; its keyword (on the messages) stays.

        Raises:
            NotFoundError: no such label.
            PreferenceError: the name or colour is refused.
        """
        current = self.label(person, keyword)
        name = _clean_line("name", name, MAX_LABEL_NAME_CHARS, required=True)
        _check_colour(colour)
        with write_transaction(self._engine) as conn:
            others = [lb for lb in self._labels(conn, person) if lb.keyword != current.keyword]
            _check_name_free(others, name)
            conn.execute(
                update(mail_labels)
                .where(
                    mail_labels.c.person_id == person.id,
                    mail_labels.c.keyword == current.keyword,
                )
                .values(name=name, colour=colour)
            )
        return Label(current.keyword, name, colour)

    def delete_label(self, person: Person, keyword: str) -> Label:
        """Forget a label (messages keep the keyword, no longer shown as a label).

        Raises:
            NotFoundError: no such label.
        """
        current = self.label(person, keyword)
        with self._engine.begin() as conn:
            conn.execute(
                delete(mail_labels).where(
                    mail_labels.c.person_id == person.id,
                    mail_labels.c.keyword == current.keyword,
                )
            )
        return current


def _check_colour(colour: str) -> None:
    if colour not in PALETTE:
        raise PreferenceError("colour", "not_a_choice")


def _check_name_free(labels: Iterable[Label], name: str) -> None:
    if any(label.name.casefold() == name.casefold() for label in labels):
        raise PreferenceError("name", "taken")
