"""Radicale's remembered helpers answer exactly as Radicale's own."""

from __future__ import annotations

import pytest
from radicale import pathutils, xmlutils

from groupware.dav.radicale_memo import (
    REMEMBERED_PATHS_COUNT,
    REMEMBERED_TAGS_COUNT,
    remember_pure_helpers,
)

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
TAGS = ("D:getetag", "C:calendar-data", "CS:getctag", "{DAV:}href", "{urn:x}y")
BAD_TAGS = ("getetag", "X:unknown", "D:", "{}x", "{DAV:}")


def test_the_memos_answer_as_radicale_and_are_bounded() -> None:
    remember_pure_helpers()
    remember_pure_helpers()  # once per process: not a memo of a memo
    for memo, size, inputs in (
        (pathutils.sanitize_path, REMEMBERED_PATHS_COUNT, PATHS),
        (xmlutils.make_clark, REMEMBERED_TAGS_COUNT, TAGS),
    ):
        original = memo.__wrapped__  # type: ignore[attr-defined]
        assert not hasattr(original, "cache_info")
        for text in inputs:
            assert memo(text) == original(text), text
            assert memo(text) == original(text), text  # from the memo this time
        assert memo.cache_info().maxsize == size  # type: ignore[attr-defined]
        assert memo.cache_info().hits >= len(inputs)  # type: ignore[attr-defined]


@pytest.mark.parametrize("tag", BAD_TAGS)
def test_a_bad_tag_name_is_still_refused_every_time(tag: str) -> None:
    remember_pure_helpers()
    for _ in range(2):
        with pytest.raises(ValueError):  # noqa: PT011 - Radicale says it in several ways
            xmlutils.make_clark(tag)
