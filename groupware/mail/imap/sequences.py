# SPDX-License-Identifier: GPL-3.0-or-later
"""Sequence sets: which messages a command names (RFC 3501 §9 ``sequence-set``, RFC 5182).

A set is a list of numbers and ranges, ``*`` standing for the largest number in use
(RFC 3501 §6.4.8: ``559:*`` always includes the last message, even when 559 is above
it) and ``$`` standing alone for the result saved by ``SEARCH RETURN (SAVE)`` (RFC 5182).
Ranges may be written backwards (``5:2`` is ``2:5``). Numbers are 32-bit
(``nz-number``, 1..4294967295).

Resolving against a mailbox never builds a list of every number in a range, so a
client asking for ``UID FETCH 1:4294967295`` costs what the mailbox holds, not 4
billion integers.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

from groupware.errors import GroupwareError

MAX_NUMBER: Final = 4_294_967_295
_NUMBER: Final = re.compile(r"[1-9][0-9]{0,9}|\*")

# One bound of a range: a number, or None for "*".
Bound = int | None


class SequenceSetError(GroupwareError, ValueError):
    """Text that is not a valid sequence set."""


@dataclass(frozen=True, slots=True)
class ResolvedSet:
    """A sequence set bound to a mailbox: merged, sorted, inclusive intervals.

    Iterating yields every number in ascending order; ``in`` and ``len`` work without
    listing them.
    """

    intervals: tuple[tuple[int, int], ...]

    def __contains__(self, number: object) -> bool:
        """Whether ``number`` falls in one of the intervals."""
        if not isinstance(number, int):
            return False
        index = bisect.bisect_right(self.intervals, (number, MAX_NUMBER + 1)) - 1
        return index >= 0 and self.intervals[index][0] <= number <= self.intervals[index][1]

    def __iter__(self) -> Iterator[int]:
        """Every number, ascending."""
        for low, high in self.intervals:
            yield from range(low, high + 1)

    def __len__(self) -> int:
        """How many numbers the set holds."""
        return sum(high - low + 1 for low, high in self.intervals)

    def __bool__(self) -> bool:
        """Whether the set holds any number."""
        return bool(self.intervals)


@dataclass(frozen=True, slots=True)
class SequenceSet:
    """A parsed ``sequence-set``.

    Attributes:
        ranges: ``(first, last)`` pairs as written; a single number ``n`` is ``(n, n)``
            and ``None`` stands for ``*``.
        is_saved: the set is ``$`` (RFC 5182); ``ranges`` is then empty and the session
            substitutes the saved search result.
    """

    ranges: tuple[tuple[Bound, Bound], ...] = ()
    is_saved: bool = False

    @classmethod
    def parse(cls, text: str) -> SequenceSet:
        """Parse ``1,3:5,7:*`` or ``$``.

        Raises:
            SequenceSetError: ``text`` is empty, has a zero, an empty element, a number
                above 4294967295 or any other malformation.
        """
        if text == "$":
            return cls(is_saved=True)
        if not text:
            raise SequenceSetError("empty sequence set")
        ranges: list[tuple[Bound, Bound]] = []
        for element in text.split(","):
            first, colon, last = element.partition(":")
            low = _bound(first, text)
            high = _bound(last, text) if colon else low
            ranges.append((low, high))
        return cls(tuple(ranges))

    @classmethod
    def from_numbers(cls, numbers: Iterable[int]) -> SequenceSet:
        """The shortest set naming exactly ``numbers`` (for ESEARCH, VANISHED, COPYUID).

        Raises:
            SequenceSetError: a number is outside 1..4294967295.
        """
        ranges: list[tuple[Bound, Bound]] = []
        for number in sorted(set(numbers)):
            if not 1 <= number <= MAX_NUMBER:
                raise SequenceSetError(f"number out of range: {number}")
            if ranges and ranges[-1][1] == number - 1:
                ranges[-1] = (ranges[-1][0], number)
            else:
                ranges.append((number, number))
        return cls(tuple(ranges))

    @property
    def has_star(self) -> bool:
        """Whether ``*`` appears (QRESYNC known-uids must not contain it)."""
        return any(low is None or high is None for low, high in self.ranges)

    def intervals(self, largest: int) -> tuple[tuple[int, int], ...]:
        """Merged, sorted intervals within ``1..largest``.

        Args:
            largest: the number ``*`` stands for: the message count for sequence
                numbers, the highest UID in use for UIDs; 0 for an empty mailbox.

        Raises:
            ValueError: the set is ``$``; substitute the saved result first.
        """
        if self.is_saved:
            raise ValueError("'$' must be replaced by the saved search result")
        spans: list[tuple[int, int]] = []
        for first, last in self.ranges:
            low = largest if first is None else first
            high = largest if last is None else last
            low, high = min(low, high), min(max(low, high), largest)
            low = max(low, 1)
            if low <= high:
                spans.append((low, high))
        spans.sort()
        merged: list[tuple[int, int]] = []
        for low, high in spans:
            if merged and low <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], high))
            else:
                merged.append((low, high))
        return tuple(merged)

    def resolve(self, largest: int) -> ResolvedSet:
        """The set bound to a mailbox whose highest number is ``largest``.

        Raises:
            ValueError: the set is ``$``.
        """
        return ResolvedSet(self.intervals(largest))

    def contains(self, number: int, largest: int) -> bool:
        """Whether ``number`` is in the set when ``*`` is ``largest``.

        Raises:
            ValueError: the set is ``$``.
        """
        return number in self.resolve(largest)

    def __str__(self) -> str:
        """The set as IMAP writes it, e.g. ``1:3,5,7:*``."""
        if self.is_saved:
            return "$"
        parts = []
        for first, last in self.ranges:
            low = "*" if first is None else str(first)
            high = "*" if last is None else str(last)
            parts.append(low if first == last else f"{low}:{high}")
        return ",".join(parts)


def _bound(text: str, whole: str) -> Bound:
    if not _NUMBER.fullmatch(text):
        raise SequenceSetError(f"invalid sequence set {whole[:40]!r}")
    if text == "*":
        return None
    number = int(text)
    if number > MAX_NUMBER:
        raise SequenceSetError(f"number too large in sequence set {whole[:40]!r}")
    return number
