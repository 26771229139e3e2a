"""Addresses from people's names: folding, joining, collisions, length."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from groupware.core.names import (
    MAX_LOCAL_PART,
    ascii_fold,
    base_local_part,
    group_slug,
    name_part,
    unique_local_part,
)

NAME_PART = re.compile(r"([a-z0-9]+(-[a-z0-9]+)*)?")
LOCAL_PART = re.compile(r"[a-z0-9-]+\.[a-z0-9-]+")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Marie", "marie"),
        ("Hélène", "helene"),
        ("François", "francois"),
        ("Jean Pierre", "jean-pierre"),
        ("Jean-Pierre", "jean-pierre"),
        ("N'Diaye", "ndiaye"),
        ("de La Fontaine", "de-la-fontaine"),
        ("Zoë", "zoe"),
        ("Maël", "mael"),
        ("Nguyễn Thị", "nguyen-thi"),
    ],
)
def test_name_part_follows_the_french_convention(text: str, expected: str) -> None:
    assert name_part(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Œuvray", "oeuvray"),
        ("cœur", "coeur"),
        ("Lætitia", "laetitia"),
        ("Æsa", "aesa"),
        ("Strauß", "strauss"),
        ("Søren", "soren"),
        ("Łukasz", "lukasz"),
    ],
)
def test_ligatures_and_undecomposable_letters_are_spelled_out(text: str, expected: str) -> None:
    assert name_part(text) == expected


@pytest.mark.parametrize("text", ["O’Connor", "O'Connor", "OʼConnor", "O`Connor", "O´Connor"])
def test_every_kind_of_apostrophe_is_dropped(text: str) -> None:
    assert name_part(text) == "oconnor"


@pytest.mark.parametrize(
    "text",
    [
        "Jean  Pierre",
        "Jean - Pierre",
        "Jean--Pierre",
        "  Jean\tPierre  ",
        "-Jean-Pierre-",
        "Jean–Pierre",  # en dash
        "Jean—Pierre",  # em dash
        "Jean_Pierre",
        "Jean.Pierre",
    ],
)
def test_runs_of_blanks_and_hyphens_become_one_hyphen(text: str) -> None:
    assert name_part(text) == "jean-pierre"


def test_digits_are_kept() -> None:
    assert name_part("Louis 14") == "louis-14"
    assert name_part("Dupont2") == "dupont2"


def test_non_latin_letters_are_dropped() -> None:
    assert name_part("Владимир") == ""
    assert name_part("Anne Владимир") == "anne"
    assert name_part("Li 李") == "li"
    assert name_part("Ана-Marie") == "marie"


def test_ascii_fold_lowercases_and_strips_accents_only() -> None:
    assert ascii_fold("ÉÇÀÔŒ d'Été") == "ecaooe d'ete"


def test_base_local_part_joins_first_and_last_name_with_a_dot() -> None:
    assert base_local_part("Jean Pierre", "de La Fontaine") == "jean-pierre.de-la-fontaine"
    assert base_local_part("Aïssatou", "N'Diaye") == "aissatou.ndiaye"


@pytest.mark.parametrize(("first", "last"), [("", "Dupont"), ("Marie", ""), ("李", "Dupont")])
def test_base_local_part_is_empty_when_a_half_has_no_usable_letter(first: str, last: str) -> None:
    assert base_local_part(first, last) == ""


@pytest.mark.parametrize(
    ("first_chars", "last_chars"), [(80, 3), (59, 1), (60, 1), (10, 80), (40, 40), (90, 90)]
)
def test_long_names_are_cut_but_keep_the_dot_and_room_for_a_number(
    first_chars: int, last_chars: int
) -> None:
    local = base_local_part("a" * first_chars, "b" * last_chars)
    assert LOCAL_PART.fullmatch(local)
    assert len(local) <= MAX_LOCAL_PART - 3
    assert len(unique_local_part(local, lambda cand: not cand.endswith("99"))) <= MAX_LOCAL_PART


def test_short_names_are_not_cut() -> None:
    first = "a" * 30
    last = "b" * 30
    assert base_local_part(first, last) == f"{first}.{last}"


def test_unique_local_part_keeps_a_free_base() -> None:
    assert unique_local_part("marie.dupont", lambda _cand: False) == "marie.dupont"


def test_unique_local_part_numbers_collisions_from_two() -> None:
    taken: set[str] = set()
    given_out = []
    for _ in range(4):
        local = unique_local_part("marie.dupont", taken.__contains__)
        taken.add(local)
        given_out.append(local)
    assert given_out == ["marie.dupont", "marie.dupont2", "marie.dupont3", "marie.dupont4"]


def test_unique_local_part_skips_numbers_already_taken() -> None:
    taken = {"marie.dupont", "marie.dupont2", "marie.dupont3"}
    assert unique_local_part("marie.dupont", taken.__contains__) == "marie.dupont4"


def test_unique_local_part_fills_the_first_free_number() -> None:
    # marie.dupont2 left (its address is kept elsewhere, so "taken" says so);
    # a gap in the numbers is used only if is_taken says it is free.
    taken = {"marie.dupont", "marie.dupont3"}
    assert unique_local_part("marie.dupont", taken.__contains__) == "marie.dupont2"


def test_group_slug_joins_usable_parts() -> None:
    assert group_slug("Lycée Joffre", "Lettres") == "lycee-joffre.lettres"
    assert group_slug("Lycée Joffre", "李") == "lycee-joffre"
    assert group_slug("Chef d'établissement") == "chef-detablissement"


@given(st.text())
def test_name_part_output_is_always_lowercase_words_joined_by_hyphens(text: str) -> None:
    assert NAME_PART.fullmatch(name_part(text))


@given(st.text(), st.text())
def test_base_local_part_is_empty_or_a_well_formed_local_part(first: str, last: str) -> None:
    local = base_local_part(first, last)
    assert local == "" or (LOCAL_PART.fullmatch(local) and len(local) <= 61)
    assert (local == "") == (not name_part(first) or not name_part(last))


@given(
    st.text(alphabet=st.characters(codec="latin-1"), min_size=1),
    st.text(alphabet=st.characters(codec="latin-1"), min_size=1),
)
def test_base_local_part_of_latin_names_is_well_formed(first: str, last: str) -> None:
    local = base_local_part(first, last)
    assert local == "" or (LOCAL_PART.fullmatch(local) and len(local) <= 61)
