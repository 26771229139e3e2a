"""The webmail preferences store (core.mail_preferences) on a real database."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from groupware.core.db import audit_log
from groupware.core.directory import Person
from groupware.core.mail_preferences import (
    MAX_KEYWORD_CHARS,
    MAX_LABELS_COUNT,
    MAX_SIGNATURE_CHARS,
    MESSAGES_PER_PAGE_CHOICES,
    PALETTE,
    PreferenceError,
    ReadingPane,
    keyword_for,
)
from groupware.core.services import Core
from groupware.errors import NotFoundError
from tests.support.servers import add_user

#: An IMAP atom (RFC 3501 §9 atom-char), no "$" or "\\" prefix.
ATOM = re.compile(r"^[a-z0-9][a-z0-9-]*$")
WCAG_AA_RATIO = 4.5


@pytest.fixture
def person(core: Core) -> Person:
    return add_user(core, "Marie", "Dupont", password="une phrase de passe")


def test_display_defaults_to_the_configured_page_size_and_list_only(
    core: Core, person: Person
) -> None:
    prefs = core.mail_preferences
    display = prefs.display(person)
    assert display.messages_per_page == core.config.webmail.messages_per_page_count
    assert display.reading_pane is ReadingPane.LIST
    prefs.set_display(person, messages_per_page=100, reading_pane=ReadingPane.RIGHT)
    assert prefs.messages_per_page(person) == 100
    assert prefs.display(person).reading_pane is ReadingPane.RIGHT


@pytest.mark.parametrize("count", [0, 3, 24, 51, 201, 10_000, -25])
def test_a_page_size_outside_the_choices_is_refused(core: Core, person: Person, count: int) -> None:
    with pytest.raises(PreferenceError) as refused:
        core.mail_preferences.set_display(
            person, messages_per_page=count, reading_pane=ReadingPane.LIST
        )
    assert (refused.value.field, refused.value.reason) == ("messages_per_page", "not_a_choice")
    assert core.mail_preferences.messages_per_page(person) not in (count,)
    assert set(MESSAGES_PER_PAGE_CHOICES) == {25, 50, 100, 200}


def test_identities_follow_the_addresses_the_person_may_send_as(core: Core, person: Person) -> None:
    directory, prefs = core.directory, core.mail_preferences
    alias = directory.add_alias(person.login, f"m.dupont@{directory.domain}", actor="admin")
    directory.add_group("club-theatre", "Club théâtre", actor="admin")
    directory.add_member("club-theatre", person.login, actor="admin")
    # A school group lends its address to no one.
    directory.add_group("profs-joffre", "Profs", actor="admin", kind="role")
    directory.add_member("profs-joffre", person.login, actor="admin")
    group_address = f"club-theatre@{directory.domain}"

    identities = prefs.identities_for(person)
    assert [i.address for i in identities] == [person.email, alias, group_address]
    assert [i.is_default for i in identities] == [True, False, False]
    assert all(i.display_name == "Marie Dupont" and i.signature == "" for i in identities)

    prefs.set_identity(
        person, group_address, display_name="Club théâtre du lycée", signature="Le club\r\n"
    )
    prefs.set_default_identity(person, group_address)
    default = prefs.default_identity(person)
    assert (default.address, default.display_name) == (group_address, "Club théâtre du lycée")
    assert prefs.signature_for(person, group_address.upper()) == "Le club"

    directory.remove_member("club-theatre", person.login, actor="admin")
    assert [i.address for i in prefs.identities_for(person)] == [person.email, alias]
    assert prefs.identity_for(person, group_address) is None
    assert prefs.signature_for(person, group_address) == ""
    # The default went with it: the primary address is the default again.
    assert prefs.default_identity(person).address == person.email
    with pytest.raises(PreferenceError) as refused:
        prefs.set_identity(person, group_address, display_name="x", signature="")
    assert refused.value.reason == "not_yours"
    with pytest.raises(PreferenceError):
        prefs.set_default_identity(person, f"someone.else@{directory.domain}")


def test_identity_names_and_signatures_are_bounded_plain_text(core: Core, person: Person) -> None:
    prefs = core.mail_preferences
    with pytest.raises(PreferenceError) as long_signature:
        prefs.set_identity(
            person, person.email, display_name="", signature="x" * (MAX_SIGNATURE_CHARS + 1)
        )
    assert long_signature.value.reason == "too_long"
    with pytest.raises(PreferenceError) as control:
        prefs.set_identity(person, person.email, display_name="", signature="a\x1b[31m")
    assert control.value.reason == "invalid"
    changed = prefs.set_identity(
        person,
        person.email,
        display_name="Marie\r\nBcc: everyone@example.org",
        signature="-- \nMarie  \n\n",
    )
    # No line break can reach a header; the signature keeps its "-- " separator.
    assert changed.display_name == "Marie Bcc: everyone@example.org"
    assert changed.signature == "-- \nMarie"
    events = [
        row.event
        for row in _audit(core)
        if row.event.startswith("mail.") and row.subject == person.login
    ]
    assert events == ["mail.identity_changed"]


def _audit(core: Core) -> list:
    with core.engine.connect() as conn:
        return list(conn.execute(select(audit_log).order_by(audit_log.c.id)))


@pytest.mark.parametrize(
    ("name", "taken", "expected"),
    [
        ("Réunion", (), "reunion"),
        ("Conseil de classe 3e", (), "conseil-de-classe-3e"),
        ("$Important", (), "important"),
        ("\\Seen", (), "seen"),
        ("Junk", (), "junk-2"),
        ("会議", (), "label"),
        ("会議", ("label",), "label-2"),
        ("Reunion", ("REUNION", "reunion-2"), "reunion-3"),
        ("a" * 50, ("a" * MAX_KEYWORD_CHARS,), "a" * (MAX_KEYWORD_CHARS - 2) + "-2"),
        ('x (y) {z} % * " ]', (), "x-y-z"),
    ],
)
def test_label_keywords_are_ascii_atoms_unique_per_person(
    name: str, taken: tuple[str, ...], expected: str
) -> None:
    keyword = keyword_for(name, taken)
    assert keyword == expected
    assert ATOM.match(keyword)
    assert len(keyword) <= MAX_KEYWORD_CHARS


def test_labels_are_created_renamed_recoloured_and_deleted(core: Core, person: Person) -> None:
    prefs = core.mail_preferences
    other = add_user(core, "Paul", "Rousseau", password="une phrase de passe")
    first = prefs.create_label(person, "Réunion", "red")
    with pytest.raises(PreferenceError) as duplicate:
        prefs.create_label(person, "RÉUNION", "blue")
    assert duplicate.value.reason == "taken"
    # Same slug, different name: a new keyword.
    again = prefs.create_label(person, "Reunion!", "green")
    assert (first.keyword, again.keyword) == ("reunion", "reunion-2")
    # Keywords are per person.
    assert prefs.create_label(other, "Réunion", "teal").keyword == "reunion"
    shown = prefs.create_label(person, "会議", "grey")
    assert (shown.keyword, shown.name) == ("label", "会議")

    renamed = prefs.change_label(person, "reunion", name="Réunions parents", colour="purple")
    assert (renamed.keyword, renamed.name, renamed.colour) == (
        "reunion",
        "Réunions parents",
        "purple",
    )
    assert [lb.name for lb in prefs.labels(person)] == ["Reunion!", "Réunions parents", "会議"]
    with pytest.raises(PreferenceError):
        prefs.change_label(person, "reunion", name="reunion!", colour="red")
    with pytest.raises(PreferenceError) as colour:
        prefs.create_label(person, "Autre", "#ff0000")
    assert colour.value.field == "colour"
    with pytest.raises(PreferenceError) as empty:
        prefs.create_label(person, "   ", "red")
    assert empty.value.reason == "empty"

    assert prefs.delete_label(person, "REUNION").name == "Réunions parents"
    with pytest.raises(NotFoundError):
        prefs.delete_label(person, "reunion")
    assert [lb.keyword for lb in prefs.labels(person)] == ["reunion-2", "label"]
    assert [lb.keyword for lb in prefs.labels(other)] == ["reunion"]


def test_a_person_has_a_bounded_number_of_labels(core: Core, person: Person) -> None:
    prefs = core.mail_preferences
    for number in range(MAX_LABELS_COUNT):
        prefs.create_label(person, f"Label {number}", "blue")
    with pytest.raises(PreferenceError) as full:
        prefs.create_label(person, "One more", "blue")
    assert full.value.reason == "full"


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


@pytest.mark.parametrize("name", sorted(PALETTE))
def test_every_palette_colour_carries_white_text_at_wcag_aa(name: str) -> None:
    ratio = (1.0 + 0.05) / (_luminance(PALETTE[name]) + 0.05)
    assert ratio >= WCAG_AA_RATIO, f"{name}: {ratio:.2f}"
