"""A web session's folder tree, kept a while, against the real IMAP server.

The first page reads the whole tree (one LIST with the STATUS of every folder); the
next pages within ``TREE_MAX_AGE_SECONDS`` send one STATUS of the folder they show,
whose counts are then exact; other folders' counts are the kept ones until the tree
is older than that, or until the session changes something (``forget``). Commands
are counted on the wire.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from groupware.web.mail_folders import find_folder
from groupware.web.mail_tree_memo import TREE_MAX_AGE_SECONDS, TreeMemo
from tests.mail.imap_support import imap_server, logged_in, new_user
from tests.support.servers import RunningServer
from tests.web.test_mail_threads import sent_commands

MESSAGE = b"Subject: Bonjour\r\n\r\nTexte\r\n"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with imap_server(tmp_path_factory, "webmail-tree-memo") as server:
        yield server


def _counts(tree: list, name: str) -> tuple[int, int]:
    folder = find_folder(tree, name)
    return folder.total, folder.unseen


def test_the_open_folder_is_exact_on_every_page_and_the_tree_is_read_once(
    live: RunningServer,
) -> None:
    person = new_user(live, language="en")
    clock = Clock()
    memo = TreeMemo(clock=clock)
    with logged_in(live, person) as portal, logged_in(live, person) as phone:
        commands = sent_commands(portal)
        first = memo.tree(portal, "INBOX")
        assert commands == ["LIST"]
        assert _counts(first, "INBOX") == (0, 0)
        phone.append("INBOX", MESSAGE)  # arrives while the person looks
        phone.append("Sent", MESSAGE, flags=[b"\\Seen"])
        commands.clear()
        clock.now += TREE_MAX_AGE_SECONDS / 2
        second = memo.tree(portal, "INBOX")
        assert commands == ["STATUS"]
        assert _counts(second, "INBOX") == (1, 1)  # the open folder: as it is now
        assert _counts(second, "Sent") == (0, 0)  # another: as kept
        assert [f.name for f in second] == [f.name for f in first]
        commands.clear()
        sent_page = memo.tree(portal, "Sent")  # opening it asks it
        assert commands == ["STATUS"]
        assert _counts(sent_page, "Sent") == (1, 0)
        assert _counts(sent_page, "INBOX") == (1, 1)  # kept from the page before
        commands.clear()
        clock.now += TREE_MAX_AGE_SECONDS
        assert _counts(memo.tree(portal, "Sent"), "Sent") == (1, 0)
        assert commands == ["LIST"]  # too old: read in full again


def test_a_change_of_the_session_or_an_unknown_folder_reads_the_whole_tree(
    live: RunningServer,
) -> None:
    person = new_user(live, language="en")
    memo = TreeMemo(clock=Clock())
    with logged_in(live, person) as portal, logged_in(live, person) as phone:
        commands = sent_commands(portal)
        memo.tree(portal, "INBOX")
        phone.append("Trash", MESSAGE)
        memo.forget(portal)  # what the webmail does around every POST
        commands.clear()
        assert _counts(memo.tree(portal, "INBOX"), "Trash") == (1, 1)
        assert commands == ["LIST"]
        phone.create_folder("Projets")  # made by another client: not in the kept tree
        commands.clear()
        tree = memo.tree(portal, "Projets")
        assert commands == ["LIST"]
        assert find_folder(tree, "Projets").is_selectable
        commands.clear()
        memo.tree(portal, "Nowhere")  # unknown everywhere: the full tree says so
        assert commands == ["LIST"]


def test_each_connection_has_its_own_tree(live: RunningServer) -> None:
    first, second = new_user(live), new_user(live)
    memo = TreeMemo(clock=Clock())
    with logged_in(live, first) as one, logged_in(live, second) as other:
        memo.tree(one, "INBOX")
        commands = sent_commands(other)
        memo.tree(other, "INBOX")
        assert commands == ["LIST"]
