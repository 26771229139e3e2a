# SPDX-License-Identifier: GPL-3.0-or-later
"""Two pure helpers of Radicale, remembered: path sanitizing and XML tag names.

Radicale sanitizes the same collection path about eight times for every item it
answers about (``Item.__init__``, ``strip_path``, ``unstrip_path`` and
``make_href`` check it again, mostly in asserts), and turns the same few
``D:getetag``-style names into Clark notation some twenty times per item: for one
Depth-1 PROPFIND of a 10,000-event calendar, 80,000 ``posixpath.join`` loops and
230,000 string splits, about 40 % of its time. Both functions are pure (one string
in, one string out, or the same ``ValueError``), so remembering their recent
answers changes no answer; and every caller in Radicale looks them up on their
module at call time, so replacing them there reaches them all.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import ModuleType
from typing import Final

from radicale import pathutils, xmlutils

#: Distinct paths remembered: a listing repeats one collection path, plus its items'.
REMEMBERED_PATHS_COUNT: Final = 16_384
#: Distinct tag names remembered: clients ask for a few dozen properties.
REMEMBERED_TAGS_COUNT: Final = 1_024


def remember_pure_helpers() -> None:
    """Replace Radicale's two helpers by bounded memos of themselves (once per process)."""
    _remember(pathutils, "sanitize_path", REMEMBERED_PATHS_COUNT)
    _remember(xmlutils, "make_clark", REMEMBERED_TAGS_COUNT)


def _remember(module: ModuleType, name: str, size: int) -> None:
    current: Callable[[str], str] = getattr(module, name)
    if hasattr(current, "cache_info"):
        return
    # Radicale seam: a module attribute is the only hook; the function stays Radicale's.
    setattr(module, name, functools.lru_cache(maxsize=size)(current))
