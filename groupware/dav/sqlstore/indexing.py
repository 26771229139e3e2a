# SPDX-License-Identifier: GPL-3.0-or-later
"""What the store indexes of an item: time ranges (RFC 4791 §9.9) and vCard texts.

The ranges are the ones Radicale's own time-range matching visits
(``radicale.item.filter.visit_time_ranges``), so that an overlap found in the index
is exactly a match Radicale would find. Recurrences are expanded up to a horizon
(``HORIZON_SECONDS`` after indexing, at most ``MAX_RANGES_PER_ITEM`` ranges; an item
without RRULE or RDATE is indexed in full wherever it lies);
``indexed_until`` records up to where the ranges are complete, and a query reaching
past it falls back to Radicale's exact check for that item.

The texts are the vCard values Radicale's ``text_match`` compares (RFC 6352 §10.5.4),
computed the same way (``str()`` of structured values, lists spread, lower-cased).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from radicale import item as radicale_item
from radicale.item import filter as radicale_filter

TIMESTAMP_MIN: Final = radicale_filter.TIMESTAMP_MIN
TIMESTAMP_MAX: Final = radicale_filter.TIMESTAMP_MAX
#: How far after indexing recurrences are expanded (a school's planning horizon).
HORIZON_SECONDS: Final = 3 * 366 * 24 * 3600
#: A daily rule over four years; longer expansions stop here.
MAX_RANGES_PER_ITEM: Final = 1500
#: Ranges longer than this are looked up apart (see ``schema.dav_item_ranges``).
LONG_RANGE_SECONDS: Final = 32 * 24 * 3600
#: vCard properties an addressbook-query text-match is answered from the index for.
TEXT_PROPS: Final = ("fn", "n", "nickname", "email", "tel", "org", "title")
#: Components whose ranges come in start order (VTODO ranges need not).
_ORDERED_COMPONENTS: Final = ("VEVENT", "VJOURNAL")


#: ``(ranges, indexed_until, is_infinite)`` of one calendar item (``expand_ranges``).
Expansion = tuple[tuple[tuple[int, int], ...], int, bool]


@dataclass(frozen=True, slots=True)
class ItemIndex:
    """The indexed form of one item, ready to be written."""

    uid: str
    etag: str
    name: str
    component: str
    text: str
    start_ts: int
    end_ts: int
    indexed_until: int
    is_infinite: bool
    ranges: tuple[tuple[int, int], ...]
    texts: tuple[tuple[str, str], ...]


def index_item(
    item: radicale_item.Item, *, now_ts: float | None = None, expansion: Expansion | None = None
) -> ItemIndex:
    """Everything the store keeps about ``item`` (parses it once if need be).

    ``expansion``: the item's ``expand_item``, when the caller made it already.
    """
    text = item.serialize()
    component = item.component_name
    ranges: tuple[tuple[int, int], ...] = ()
    indexed_until = TIMESTAMP_MIN
    is_infinite = False
    texts: tuple[tuple[str, str], ...] = ()
    vobject_item = item.vobject_item
    if item.name == "VCALENDAR" and component:
        if expansion is None:
            expansion = expand_item(vobject_item, component, now_ts=now_ts)
        ranges, indexed_until, is_infinite = expansion
    elif item.name == "VCARD":
        texts = card_texts(vobject_item)
    start_ts, end_ts = item.time_range
    return ItemIndex(
        uid=item.uid,
        etag=item.etag,
        name=item.name,
        component=component,
        text=text,
        start_ts=start_ts,
        end_ts=end_ts,
        indexed_until=indexed_until,
        is_infinite=is_infinite,
        ranges=ranges,
        texts=texts,
    )


def expand_item(vobject_item: Any, component: str, *, now_ts: float | None = None) -> Expansion:
    """The ranges of a calendar item up to the horizon from ``now_ts`` (default: now)."""
    horizon = int(now_ts if now_ts is not None else time.time()) + HORIZON_SECONDS
    return expand_ranges(vobject_item, component, horizon)


def enclosing_range(expansion: Expansion) -> tuple[int, int] | None:
    """Radicale's ``find_time_range`` of the item, when ``expansion`` holds every range.

    That is when nothing was left past the horizon and no rule is infinite (Radicale
    then stops at the first infinite rule with an open end): the enclosing range is
    the first start and the last end of the ranges, or everything when there are
    none, as ``find_time_range`` makes it from the same visit. ``None`` otherwise
    (and for an item Radicale could not visit), for ``find_time_range`` to compute.
    """
    ranges, indexed_until, is_infinite = expansion
    if indexed_until != TIMESTAMP_MAX or is_infinite:
        return None
    if not ranges:
        return TIMESTAMP_MIN, TIMESTAMP_MAX
    return min(start for start, _end in ranges), max(end for _start, end in ranges)


def expand_ranges(
    vobject_item: Any,  # vobject component (untyped library)
    component: str,
    horizon_ts: int,
) -> tuple[tuple[tuple[int, int], ...], int, bool]:
    """``(ranges, indexed_until, is_infinite)`` of ``component`` in ``vobject_item``.

    Every range starting before ``indexed_until`` is in ``ranges``. An item Radicale
    cannot visit (no DTSTART, broken recurrence) gets no ranges and
    ``indexed_until = TIMESTAMP_MIN``, so that queries always hand it to Radicale.
    """
    recurs = _has_rrule(vobject_item, component)
    if recurs and component not in _ORDERED_COMPONENTS:
        # Recurring VTODO ranges are not in start order: no safe cut-off point.
        return (), TIMESTAMP_MIN, True
    if not recurs:
        horizon_ts = TIMESTAMP_MAX  # one range (and its overrides): index it wherever it is
    found: list[tuple[int, int]] = []
    indexed_until = TIMESTAMP_MAX
    is_infinite = False

    def range_fn(range_start: datetime, range_end: datetime, is_recurrence: bool) -> bool:
        nonlocal indexed_until
        start = math.floor(range_start.timestamp())
        if not is_recurrence and (
            start >= horizon_ts or (recurs and len(found) >= MAX_RANGES_PER_ITEM)
        ):
            indexed_until = min(start, horizon_ts)
            return True
        found.append((start, math.ceil(range_end.timestamp())))
        return False

    def infinity_fn(_start: datetime) -> bool:
        nonlocal is_infinite
        is_infinite = True
        return False  # go on expanding, up to the horizon

    try:
        radicale_filter.visit_time_ranges(vobject_item, component, range_fn, infinity_fn)
    except (ValueError, AttributeError, TypeError, OverflowError):
        return (), TIMESTAMP_MIN, False
    return tuple(found), indexed_until, is_infinite


def _has_rrule(vobject_item: Any, component: str) -> bool:
    children = getattr(vobject_item, f"{component.lower()}_list", [])
    return any("rrule" in child.contents or "rdate" in child.contents for child in children)


def card_texts(vobject_item: Any) -> tuple[tuple[str, str], ...]:
    """``(prop, lower-cased value)`` pairs, as ``radicale.item.filter.text_match`` sees them."""
    found: list[tuple[str, str]] = []
    for prop in TEXT_PROPS:
        for child in getattr(vobject_item, f"{prop}_list", []):
            values = child.value if type(child.value) is list else [child.value]
            for value in values:
                found.append((prop, (value if isinstance(value, str) else str(value)).lower()))
    return tuple(found)
