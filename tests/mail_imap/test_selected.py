"""A session's view of its selected mailbox: compact while idle, right after changes."""

from __future__ import annotations

from groupware.core.services import Core
from groupware.mail.imap.selected import SelectedMailbox
from groupware.mail.imap.session import SharedPersons
from groupware.mail.store import Changes, IndexRow
from tests.support.servers import add_user


def _view(*uids: int) -> SelectedMailbox:
    selected = SelectedMailbox(mailbox_id=7, uidvalidity=1234, is_read_only=False)
    selected.uids.extend(uids)
    selected.modseq = 10
    return selected


def test_views_keep_uids_in_four_bytes_and_share_their_empty_sets() -> None:
    first, second = _view(1, 2, 3), _view()
    assert first.uids.typecode == "I"
    assert first.uids.itemsize == 4
    assert first.recent is second.recent
    assert first.pending_expunges is second.pending_expunges
    assert first.reported is second.reported
    assert first.saved is None


def test_new_messages_are_exists_and_recent_for_this_session() -> None:
    selected = _view(1, 2)
    update = selected.apply(
        Changes([IndexRow(uid=3, blob_id=30, modseq=11)], [], 11, [3]), allow_expunge=True
    )
    assert (update.exists, update.recent) == (3, 1)
    assert list(selected.uids) == [1, 2, 3]
    assert selected.recent == {3}
    assert selected.modseq == 11


def test_expunges_are_held_back_until_allowed_then_leave_uids_and_recent() -> None:
    selected = _view(1, 2, 3)
    selected.add_recent([3])
    held = selected.apply(Changes([], [2, 3], 12, []), allow_expunge=False)
    assert held.expunged_seqs == []
    assert list(selected.uids) == [1, 2, 3]
    told = selected.apply(Changes([], [], 12, []), allow_expunge=True)
    assert told.expunged_seqs == [3, 2]
    assert told.expunged_uids == [2, 3]
    assert list(selected.uids) == [1]
    assert not selected.recent
    assert not selected.pending_expunges


def test_flag_changes_the_client_was_told_of_are_not_repeated() -> None:
    selected = _view(1, 2)
    selected.note_reported([(1, frozenset({"\\Seen"}), 11)])
    rows = [
        IndexRow(uid=1, blob_id=10, modseq=11, flags=frozenset({"\\Seen"})),
        IndexRow(uid=2, blob_id=20, modseq=12, flags=frozenset({"\\Flagged"})),
    ]
    update = selected.apply(Changes(rows, [], 12, []), allow_expunge=True)
    assert [seq for seq, _row in update.flag_changes] == [2]
    assert not selected.reported


def test_sessions_of_one_person_share_one_person_object(core: Core) -> None:
    person = add_user(core, "Marie", "Dupont", password="une phrase de passe solide")
    again = core.directory.get(person.login)
    assert again is not None
    assert again is not person
    persons = SharedPersons()
    assert persons.share(person) is person
    assert persons.share(again) is person  # equal: the first object is kept
    core.directory.set_language(person.login, "en")
    fresh = core.directory.get(person.login)
    assert fresh is not None
    assert fresh != person
    assert persons.share(fresh) is fresh  # newer data replaces it for later logins
    for held in (person, again, fresh):
        persons.release(held)
    assert persons.share(again) is again  # all released: nothing held any more
