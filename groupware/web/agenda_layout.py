# SPDX-License-Identifier: GPL-3.0-or-later
"""Where the agenda views put things: periods, the week's time grid, the month grid.

Framework-free and pure, so the placement rules are tested without a browser. The
time grid has one row per quarter of an hour; an event spans the rows of its wall
times that day (an event over midnight shows on each of its days), and events that
overlap share the day's width in lanes, side by side. Classes carry the placement
(``rs-<row>``, ``re-<row>``, ``lane-<n>``, ``lanes-<n>``) because the pages' CSP
allows no inline style.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Final

from groupware.web.agenda_data import Occurrence

VIEWS: Final = ("day", "week", "month", "list")
SLOT_MINUTES: Final = 15
SLOTS_PER_DAY: Final = 24 * 60 // SLOT_MINUTES
MAX_LANES: Final = 6
LIST_DAYS: Final = 30
MONTH_CELLS: Final = 42  # six weeks of seven days
#: Colours given to calendars that have none of their own, or the same as another.
PALETTE: Final = (
    "#2a6ebb",
    "#c0392b",
    "#1e8449",
    "#8e44ad",
    "#d35400",
    "#117a8b",
    "#b7950b",
    "#6d4c41",
    "#c2185b",
    "#34495e",
)


@dataclass(frozen=True, slots=True)
class Period:
    """The days a view shows, ``[start, end)``, and its neighbours."""

    view: str
    anchor: date
    start: date
    end: date
    previous: date
    following: date

    @property
    def days(self) -> list[date]:
        """Every day of the period."""
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days)]


@dataclass(frozen=True, slots=True)
class Placed:
    """A timed occurrence in one day column of the grid."""

    occurrence: Occurrence
    first_row: int  # 1-based grid line
    last_row: int  # exclusive grid line
    lane: int  # 1-based
    lanes: int
    starts_before: bool
    ends_after: bool


@dataclass(frozen=True, slots=True)
class DayColumn:
    """One day of the day or week view."""

    day: date
    all_day: list[Occurrence]
    timed: list[Placed]


def period(view: str, anchor: date) -> Period:
    """The period of ``view`` around ``anchor`` (weeks start on Monday)."""
    if view == "day":
        return Period(
            view,
            anchor,
            anchor,
            anchor + timedelta(days=1),
            anchor - timedelta(days=1),
            anchor + timedelta(days=1),
        )
    if view == "week":
        start = anchor - timedelta(days=anchor.weekday())
        return Period(
            view,
            anchor,
            start,
            start + timedelta(days=7),
            anchor - timedelta(days=7),
            anchor + timedelta(days=7),
        )
    if view == "month":
        first = anchor.replace(day=1)
        start = first - timedelta(days=first.weekday())
        return Period(
            view,
            anchor,
            start,
            start + timedelta(days=MONTH_CELLS),
            _add_months(first, -1),
            _add_months(first, 1),
        )
    if view == "list":
        return Period(
            view,
            anchor,
            anchor,
            anchor + timedelta(days=LIST_DAYS),
            anchor - timedelta(days=LIST_DAYS),
            anchor + timedelta(days=LIST_DAYS),
        )
    raise ValueError(f"unknown view {view!r}")


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def columns(days: Sequence[date], found: Sequence[Occurrence]) -> list[DayColumn]:
    """The day columns of the day or week view."""
    result = []
    for day in days:
        all_day = [o for o in found if o.is_all_day and day in o.days]
        timed = [o for o in found if not o.is_all_day and day in o.days]
        result.append(DayColumn(day, all_day, _lanes(day, timed)))
    return result


def _rows(day: date, occurrence: Occurrence) -> tuple[int, int, bool, bool]:
    midnight = datetime.combine(day, time(), occurrence.start.tzinfo)
    # Wall-clock minutes: the grid shows the times people read on a clock.
    start_minutes = (
        occurrence.start.replace(tzinfo=None) - midnight.replace(tzinfo=None)
    ).total_seconds() / 60
    end_minutes = (
        occurrence.end.replace(tzinfo=None) - midnight.replace(tzinfo=None)
    ).total_seconds() / 60
    starts_before = start_minutes < 0
    ends_after = end_minutes > 24 * 60
    first = int(max(0, start_minutes) // SLOT_MINUTES)
    last = -int(-min(24 * 60, end_minutes) // SLOT_MINUTES)
    last = min(SLOTS_PER_DAY, max(first + 1, last))
    return first + 1, last + 1, starts_before, ends_after


def _lanes(day: date, timed: Sequence[Occurrence]) -> list[Placed]:
    """Overlapping events side by side: greedy lanes within each cluster of overlaps."""
    rows = sorted(((_rows(day, o), o) for o in timed), key=lambda item: (item[0][0], -item[0][1]))
    placed: list[Placed] = []
    cluster: list[tuple[tuple[int, int, bool, bool], Occurrence, int]] = []
    cluster_end = 0
    lane_ends: list[int] = []

    def flush() -> None:
        lanes = min(MAX_LANES, max((lane for _r, _o, lane in cluster), default=0))
        for (first, last, before, after), occurrence, lane in cluster:
            placed.append(
                Placed(occurrence, first, last, min(lane, MAX_LANES), lanes, before, after)
            )
        cluster.clear()
        lane_ends.clear()

    for row, occurrence in rows:
        first, last = row[0], row[1]
        if cluster and first >= cluster_end:
            flush()
            cluster_end = 0
        for index, lane_end in enumerate(lane_ends):
            if lane_end <= first:
                lane_ends[index] = last
                lane = index + 1
                break
        else:
            lane_ends.append(last)
            lane = len(lane_ends)
        cluster.append((row, occurrence, lane))
        cluster_end = max(cluster_end, last)
    if cluster:
        flush()
    return placed


def month_weeks(
    p: Period, found: Sequence[Occurrence]
) -> list[list[tuple[date, list[Occurrence]]]]:
    """The month grid: six weeks of ``(day, occurrences that day)``."""
    days = p.days
    cells = [(day, [o for o in found if day in o.days]) for day in days]
    return [cells[n : n + 7] for n in range(0, len(cells), 7)]


def list_days(p: Period, found: Sequence[Occurrence]) -> list[tuple[date, list[Occurrence]]]:
    """The agenda list: the days that have something, each with its occurrences."""
    result = []
    for day in p.days:
        that_day = [o for o in found if day in o.days]
        if that_day:
            result.append((day, that_day))
    return result


def colours(segments: Sequence[tuple[str, str]]) -> dict[str, str]:
    """A distinct colour per calendar: its own, unless another shown one has it already."""
    taken: set[str] = set()
    result = {}
    spare = iter(PALETTE * 4)
    for segment, colour in segments:
        chosen = colour.lower() if colour else ""
        if not chosen or chosen in taken:
            chosen = next((c for c in spare if c not in taken), PALETTE[0])
        taken.add(chosen)
        result[segment] = chosen
    return result
