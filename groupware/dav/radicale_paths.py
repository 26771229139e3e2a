# SPDX-License-Identifier: GPL-3.0-or-later
"""Radicale's path sanitizing, remembered.

Radicale sanitizes the same collection path about eight times for every item it
answers about (``Item.__init__``, ``strip_path``, ``unstrip_path`` and
``make_href`` check it again, mostly in asserts): 80,000 calls, each a loop of
``posixpath.join``, for one Depth-1 PROPFIND of a 10,000-event calendar, about a
third of that request's time. ``pathutils.sanitize_path`` is a pure function of
its one string, so remembering its recent answers changes no answer, and every
caller in Radicale looks it up on the module at call time, so replacing it there
reaches them all.
"""

from __future__ import annotations

import functools
from typing import Final

from radicale import pathutils

#: Distinct paths remembered: a listing repeats one collection path, plus its items'.
REMEMBERED_PATHS_COUNT: Final = 16_384


def remember_sanitized_paths() -> None:
    """Replace Radicale's ``sanitize_path`` by a bounded memo of it (once per process)."""
    current = pathutils.sanitize_path
    if hasattr(current, "cache_info"):
        return
    # Radicale seam: a module attribute is the only hook; the function stays Radicale's.
    pathutils.sanitize_path = functools.lru_cache(maxsize=REMEMBERED_PATHS_COUNT)(current)  # type: ignore[assignment]
