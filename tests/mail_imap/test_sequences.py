"""Sequence sets: parsing, '*', '$', resolution without listing every number."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from groupware.mail.imap.sequences import MAX_NUMBER, SequenceSet, SequenceSetError


@pytest.mark.parametrize(
    ("text", "largest", "expected"),
    [
        ("1", 10, [1]),
        ("2,4:7,9,12:*", 15, [2, 4, 5, 6, 7, 9, 12, 13, 14, 15]),
        ("5:2", 10, [2, 3, 4, 5]),
        ("*", 7, [7]),
        ("*:4", 6, [4, 5, 6]),
        ("559:*", 3, [3]),  # RFC 3501 §6.4.8: always includes the last message
        ("1:*", 0, []),  # empty mailbox
        ("3:5,4:8,1", 6, [1, 3, 4, 5, 6]),
        ("20:30", 10, []),
    ],
)
def test_resolve(text: str, largest: int, expected: list[int]) -> None:
    resolved = SequenceSet.parse(text).resolve(largest)
    assert list(resolved) == expected
    assert len(resolved) == len(expected)
    for number in range(0, largest + 3):
        assert (number in resolved) == (number in expected)
        assert SequenceSet.parse(text).contains(number, largest) == (number in expected)


def test_huge_uid_range_is_not_listed() -> None:
    resolved = SequenceSet.parse("1:4294967295").resolve(MAX_NUMBER)
    assert len(resolved) == MAX_NUMBER
    assert 123456789 in resolved
    assert resolved.intervals == ((1, MAX_NUMBER),)


@pytest.mark.parametrize(
    "bad", ["", "0", "1:", ":1", "1,", ",1", "1::2", "01", "4294967296", "1:0", "a", "$,1", "**"]
)
def test_malformed_sets_are_refused(bad: str) -> None:
    with pytest.raises(SequenceSetError):
        SequenceSet.parse(bad)


def test_saved_result() -> None:
    saved = SequenceSet.parse("$")
    assert saved.is_saved
    assert str(saved) == "$"
    with pytest.raises(ValueError, match="saved"):
        saved.resolve(10)


def test_render_and_from_numbers() -> None:
    assert str(SequenceSet.parse("1:3,5,7:*,*")) == "1:3,5,7:*,*"
    assert str(SequenceSet.from_numbers([9, 1, 2, 3, 5, 8])) == "1:3,5,8:9"
    assert SequenceSet.parse("1:*").has_star
    assert not SequenceSet.parse("1:5").has_star


@given(st.sets(st.integers(min_value=1, max_value=500)), st.integers(min_value=0, max_value=600))
def test_from_numbers_round_trips(numbers: set[int], largest: int) -> None:
    built = SequenceSet.from_numbers(numbers)
    reparsed = SequenceSet.parse(str(built)) if numbers else built
    assert set(reparsed.resolve(largest)) == {n for n in numbers if n <= largest}
