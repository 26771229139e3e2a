"""A request's scope answers each rights question once, and only for that request."""

from __future__ import annotations

from groupware.core.directory_log import DirectoryLog
from groupware.core.services import Core
from groupware.dav.directory_books import DirectoryBooks
from groupware.dav.scope import ScopeSource


def _source(core: Core) -> ScopeSource:
    books = DirectoryBooks(
        core.directory,
        DirectoryLog(core.engine),
        institution=core.config.server.institution_name,
        language=core.config.accounts.default_language,
    )
    return ScopeSource(core.sharing, core.directory, books)


def test_letters_are_found_once_per_request_and_again_in_the_next(core: Core) -> None:
    source = _source(core)
    answers = iter(["rw", "r"])
    asked: list[str] = []

    def find() -> str:
        asked.append("asked")
        return next(answers)

    with source.request() as first:
        assert first.letters("alice", "/bob/calendar/", find) == "rw"
        assert source.current().letters("alice", "/bob/calendar/", find) == "rw"
    with source.request():
        assert source.current().letters("alice", "/bob/calendar/", find) == "r"
    assert len(asked) == 2
