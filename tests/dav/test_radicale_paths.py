"""Radicale's remembered path sanitizing answers exactly as Radicale's own."""

from __future__ import annotations

from radicale import pathutils

from groupware.dav.radicale_paths import REMEMBERED_PATHS_COUNT, remember_sanitized_paths

PATHS = (
    "",
    "/",
    "//",
    "alice.martin",
    "/alice.martin/calendar/",
    "/alice.martin//calendar",
    "/alice.martin/./calendar/../contacts/",
    "/../../etc/passwd",
    "/alice.martin/.Radicale.props",
    "/alice.martin/calendar/événement 1.ics",
    "/alice.martin/bob.durand~calendar/",
    "\\..\\x",
)


def test_the_memo_answers_as_radicale_and_is_bounded() -> None:
    remember_sanitized_paths()
    remember_sanitized_paths()  # once per process: not a memo of a memo
    memo = pathutils.sanitize_path
    original = memo.__wrapped__  # type: ignore[attr-defined]

    assert not hasattr(original, "cache_info")
    for path in PATHS:
        assert memo(path) == original(path), path
        assert memo(path) == original(path), path  # from the memo this time
    assert memo.cache_info().maxsize == REMEMBERED_PATHS_COUNT  # type: ignore[attr-defined]
    assert memo.cache_info().hits >= len(PATHS)  # type: ignore[attr-defined]
