# SPDX-License-Identifier: GPL-3.0-or-later
"""Addresses and group names from people's and schools' names.

French institutions write ``prenom.nom``: lowercase ASCII, accents dropped
(é→e, ç→c, œ→oe), words joined by hyphens (``Jean Pierre`` → ``jean-pierre``,
``de La Fontaine`` → ``de-la-fontaine``), apostrophes dropped
(``N'Diaye`` → ``ndiaye``). Collisions get a digit: ``marie.dupont``,
``marie.dupont2``, ...
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Final

# Letters that Unicode does not decompose into an ASCII base letter.
_LIGATURES: Final = str.maketrans(
    {
        "œ": "oe",
        "Œ": "oe",
        "æ": "ae",
        "Æ": "ae",
        "ß": "ss",
        "ø": "o",
        "Ø": "o",
        "đ": "d",
        "Đ": "d",
        "ł": "l",
        "Ł": "l",
        "ı": "i",
    }
)
_APOSTROPHES: Final = re.compile(r"['’ʼ`´]")
_SEPARATORS: Final = re.compile(r"[\s\-‐‑–—_.]+")
_NOT_ALLOWED: Final = re.compile(r"[^a-z0-9-]")
_HYPHENS: Final = re.compile(r"-{2,}")
MAX_LOCAL_PART: Final = 64


def ascii_fold(text: str) -> str:
    """Lowercase ASCII version of ``text``: accents and ligatures resolved."""
    text = text.translate(_LIGATURES)
    if text.isascii():  # most names and schools: nothing to decompose
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


def name_part(text: str) -> str:
    """One half of an address: ``"Jean Pierre"`` → ``"jean-pierre"``.

    Returns an empty string when nothing usable is left (the caller rejects it).
    """
    # Apostrophes go first: NFKD turns the acute accent "´" into a space.
    folded = ascii_fold(_APOSTROPHES.sub("", text))
    folded = _SEPARATORS.sub("-", folded)
    folded = _NOT_ALLOWED.sub("", folded)
    return _HYPHENS.sub("-", folded).strip("-")


def base_local_part(first_name: str, last_name: str) -> str:
    """``prenom.nom`` before collision handling, or ``""`` when a half is empty."""
    first, last = name_part(first_name), name_part(last_name)
    if not first or not last:
        return ""
    # Leave room for a collision number within RFC 5321's 64 octets; a very long
    # first name is shortened too, so that the dot and some of the last name stay.
    halves_chars = MAX_LOCAL_PART - 3 - 1
    first = first[: halves_chars - min(len(last), halves_chars // 2)].rstrip("-")
    return f"{first}.{last}"[: MAX_LOCAL_PART - 3].rstrip("-")


def unique_local_part(base: str, is_taken: Callable[[str], bool]) -> str:
    """``base``, else ``base2``, ``base3``... whichever ``is_taken`` says is free."""
    if not is_taken(base):
        return base
    number = 2
    while is_taken(f"{base}{number}"):
        number += 1
    return f"{base}{number}"


def group_slug(*parts: str) -> str:
    """A stable group name: ``("Lycée Joffre", "Lettres")`` → ``lycee-joffre.lettres``."""
    return ".".join(slug for slug in map(name_part, parts) if slug)
