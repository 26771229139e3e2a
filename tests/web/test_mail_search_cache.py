"""Search pages remembered while the folder's CONDSTORE state is the same (real IMAP).

The same search of one folder again sends nothing once the page's STATUS says the
folder is as it was; an arrival or a flag change elsewhere moves the state, and the
search is asked again, with the new answer. Commands are counted on the wire.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from groupware.web.mail_folders import counted_status, find_folder, folder_tree
from groupware.web.mail_search import SearchCache, SearchQuery, searched_page
from tests.mail.imap_support import imap_server, logged_in, new_user
from tests.support.servers import RunningServer
from tests.web.test_mail_threads import sent_commands


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with imap_server(tmp_path_factory, "webmail-search-cache") as server:
        yield server


def _message(subject: str) -> bytes:
    return f"Subject: {subject}\r\nFrom: a@example.org\r\n\r\nTexte kermesse\r\n".encode()


def test_the_same_search_is_answered_again_until_the_folder_changes(
    live: RunningServer,
) -> None:
    person = new_user(live)
    cache = SearchCache()
    unread = SearchQuery(text="kermesse", is_unread=True)
    with logged_in(live, person) as portal, logged_in(live, person) as phone:
        for number in range(3):
            phone.append("INBOX", _message(f"Fête {number}"))

        def page() -> list[str]:
            inbox = find_folder(folder_tree(portal), "INBOX")
            fresh = dataclasses.replace(inbox, state=counted_status(portal, "INBOX")[2])
            commands.clear()
            found = searched_page(
                portal,
                fresh,
                unread,
                login=person.login,
                sort="date",
                is_reverse=True,
                page=1,
                per_page=50,
                cache=cache,
            )
            return sorted(f.summary.subject for f in found.found)

        commands = sent_commands(portal)
        assert page() == ["Fête 0", "Fête 1", "Fête 2"]
        assert "SORT" in commands
        assert page() == ["Fête 0", "Fête 1", "Fête 2"]
        assert commands == []  # remembered: nothing sent
        phone.select_folder("INBOX")
        phone.add_flags(phone.search("ALL")[:1], [b"\\Seen"])  # read on the phone
        assert page() == ["Fête 1", "Fête 2"]
        assert "SORT" in commands
        phone.append("INBOX", _message("Fête 3"))
        assert page() == ["Fête 1", "Fête 2", "Fête 3"]
