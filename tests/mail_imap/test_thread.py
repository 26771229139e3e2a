"""THREAD (RFC 5256): its grammar, and both algorithms on trees drawn from the RFC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from groupware.mail.imap import commands as c
from groupware.mail.imap.search_keys import AllKey, DateField, DateKey, DateRelation, TextKey
from groupware.mail.imap.threads import (
    ThreadAlgorithm,
    ThreadItem,
    is_reply_subject,
    message_ids,
    ordered_subject,
    references,
    render,
)
from tests.mail_imap.support import parse, rejection

START = datetime(2000, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            b"A283 THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000",
            c.Thread(
                "A283",
                False,
                ThreadAlgorithm.ORDEREDSUBJECT,
                "UTF-8",
                DateKey(DateField.INTERNAL, DateRelation.SINCE, START.date().replace(day=5)),
            ),
        ),
        (
            b'A284 THREAD REFERENCES US-ASCII TEXT "gewp"',
            c.Thread("A284", False, ThreadAlgorithm.REFERENCES, "US-ASCII", TextKey("gewp")),
        ),
        (
            b"A285 uid thread references utf-8 ALL",
            c.Thread("A285", True, ThreadAlgorithm.REFERENCES, "UTF-8", AllKey()),
        ),
    ],
)
def test_thread_grammar(line: bytes, expected: c.Command) -> None:
    assert parse(line) == expected


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"a1 THREAD", "missing"),
        (b"a2 THREAD REFERENCES", "missing"),
        (b"a3 THREAD REFERENCES UTF-8", "missing"),
        (b"a4 THREAD JWZ UTF-8 ALL", "threading algorithm"),
        (b"a5 THREAD (REFERENCES) UTF-8 ALL", "threading algorithm"),
        (b"a6 THREAD REFERENCES UTF-8 FOO", "unknown search key"),
        (b"a7 THREAD REFERENCES UTF-8 ALL extra)", ""),
        (b"a8 THREAD  REFERENCES UTF-8 ALL", ""),
    ],
)
def test_malformed_thread_is_bad(line: bytes, reason: str) -> None:
    rejected = rejection(line)
    assert rejected.status == "BAD"
    assert reason.lower() in rejected.reason.lower()


def test_unknown_charset_is_no_badcharset() -> None:
    rejected = rejection(b"a9 THREAD REFERENCES KOI8-R ALL")
    assert rejected.status == "NO"
    assert rejected.code is not None
    assert rejected.code.startswith("BADCHARSET")


def _item(
    number: int, subject: str, refs: tuple[int, ...] = (), *, hours: int | None = None
) -> ThreadItem:
    return ThreadItem(
        number=number,
        seq=number,
        date=START + timedelta(hours=number if hours is None else hours),
        base_subject=subject,
        is_reply=bool(refs),
        message_id=f"<{number}@example>",
        references=tuple(f"<{r}@example>" for r in refs),
    )


def test_references_gives_the_rfc_example_tree() -> None:
    # RFC 5256 §4: (2)(3 6 (4 23)(44 7 96)), dates in number order.
    items = [
        _item(2, "two"),
        _item(3, "three"),
        _item(6, "three", (3,)),
        _item(4, "three", (3, 6)),
        _item(23, "three", (3, 6, 4)),
        _item(44, "three", (3, 6)),
        _item(7, "three", (3, 6, 44)),
        _item(96, "three", (3, 6, 44, 7)),
    ]
    assert render(references(items)) == b"(2)(3 6 (4 23)(44 7 96))"


def test_references_keeps_a_dummy_root_for_replies_to_a_missing_message() -> None:
    # RFC 5256 §4: ((3)(5)): both reply to a message not in the mailbox.
    items = [_item(3, "a", (1,)), _item(5, "b", (1,))]
    assert render(references(items)) == b"((3)(5))"


def test_references_promotes_the_only_child_of_a_missing_root() -> None:
    assert render(references([_item(4, "a", (1, 2))])) == b"(4)"


def test_references_truncated_references_and_in_reply_order() -> None:
    # 5 arrives before its parent 3 and names only it: still threaded under it.
    items = [_item(5, "x", (3,), hours=9), _item(3, "x", (1,), hours=2), _item(1, "x")]
    assert render(references(items)) == b"(1 3 5)"


def test_references_merges_threads_by_base_subject() -> None:
    # 8 cites nothing known but says Re: the subject of 2: it joins 2's thread.
    items = [_item(2, "menu"), _item(8, "menu", (99,)), _item(9, "other")]
    assert render(references(items)) == b"(2 8)(9)"


def test_references_two_originals_with_one_subject_go_under_a_dummy() -> None:
    items = [_item(1, "menu"), _item(2, "menu")]
    assert render(references(items)) == b"((1)(2))"


def test_references_survives_loops_and_self_references() -> None:
    items = [
        ThreadItem(1, 1, START, "a", False, "<1@x>", ("<2@x>",)),
        ThreadItem(2, 2, START + timedelta(hours=1), "b", True, "<2@x>", ("<1@x>",)),
        ThreadItem(3, 3, START + timedelta(hours=2), "c", False, "<3@x>", ("<3@x>",)),
    ]
    # 1 cites 2 first, so 2 is its parent; 2 citing 1 would close a loop: ignored.
    assert render(references(items)) == b"(2 1)(3)"


def test_references_duplicate_message_ids_are_separate_messages() -> None:
    items = [
        ThreadItem(1, 1, START, "a", False, "<same@x>"),
        ThreadItem(2, 2, START + timedelta(hours=1), "b", False, "<same@x>"),
    ]
    assert render(references(items)) == b"(1)(2)"


def test_equal_dates_are_ordered_by_sequence_number() -> None:
    items = [_item(2, "b", hours=0), _item(1, "a", hours=0)]
    assert render(references(items)) == b"(1)(2)"


def test_ordered_subject_is_flat_under_the_first_message() -> None:
    # RFC 5256 §4's answer shape: (174 (175)(176)) and (194 195).
    items = [
        _item(174, "lunch"),
        _item(176, "lunch", (174,)),
        _item(175, "lunch", (174,)),
        _item(194, "bus"),
        _item(195, "bus"),
        _item(166, "alone"),
    ]
    assert render(ordered_subject(items)) == b"(166)(174 (175)(176))(194 195)"


def test_message_ids_and_reply_subjects() -> None:
    assert message_ids(" <a@b>\r\n <c@d> junk <e f>") == ("<a@b>", "<c@d>")
    assert message_ids(None) == ()
    assert is_reply_subject("Re: menu")
    assert is_reply_subject("[liste] Fwd: menu")
    assert is_reply_subject("menu (fwd)")
    assert not is_reply_subject("Réunion")
