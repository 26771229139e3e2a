# SPDX-License-Identifier: GPL-3.0-or-later
"""What a REPORT's filters ask of the index (RFC 4791 §9.7, RFC 6352 §10.5).

Two analyses, both conservative: the candidates they describe include every item
Radicale's own filter would match, and ``is_exact`` is true only when the index
answers exactly what ``radicale.item.filter`` would (then Radicale skips its check).

- calendars: Radicale's ``simplify_prefilters`` gives the component and the time range
  every match must overlap (``TimePlan``);
- address books: each ``CR:filter`` made only of ``prop-filter``s of case-insensitive
  ``text-match``es on indexed properties is answered from ``dav_item_texts``
  (``CardFilterPlan``); anything else asks for every item, checked by Radicale.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # noqa: S405 - parses nothing, reads parsed elements
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from radicale import xmlutils
from radicale.item import filter as radicale_filter

from groupware.dav.sqlstore.indexing import TEXT_PROPS

MATCH_TYPES: Final = ("equals", "contains", "starts-with", "ends-with")
_TEXT_MATCH: Final = xmlutils.make_clark("CR:text-match")
_PROP_FILTER: Final = xmlutils.make_clark("CR:prop-filter")
_CARD_FILTER: Final = xmlutils.make_clark("CR:filter")


@dataclass(frozen=True, slots=True)
class TimePlan:
    """Items of ``component`` (any when ``None``) overlapping ``[start, end)``."""

    component: str | None
    start: int
    end: int
    is_simple: bool  # the filters say no more than this

    @property
    def is_unbounded(self) -> bool:
        """No time range to look up."""
        return self.start <= radicale_filter.TIMESTAMP_MIN and (
            self.end >= radicale_filter.TIMESTAMP_MAX
        )


def time_plan(filters: Iterable[ET.Element], collection_tag: str) -> TimePlan:
    """The component and time range every item matching ``filters`` has."""
    component, start, end, is_simple = radicale_filter.simplify_prefilters(filters, collection_tag)
    return TimePlan(component, start, end, is_simple)


@dataclass(frozen=True, slots=True)
class TextTest:
    """One ``text-match`` on one indexed property, lower-cased."""

    prop: str
    match_type: str
    text: str

    def like_pattern(self) -> str:
        """The SQL ``LIKE`` pattern (escape character ``\\``) of this test."""
        escaped = self.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        if self.match_type == "starts-with":
            return escaped + "%"
        if self.match_type == "ends-with":
            return "%" + escaped
        return "%" + escaped + "%"


@dataclass(frozen=True, slots=True)
class PropTest:
    """A ``prop-filter``: its text tests, any or all of which must hold."""

    tests: tuple[TextTest, ...]
    is_anyof: bool


@dataclass(frozen=True, slots=True)
class CardFilterPlan:
    """One ``CR:filter``; ``props`` is ``None`` when the index cannot answer it."""

    props: tuple[PropTest, ...] | None
    is_anyof: bool


def card_plans(filters: Iterable[ET.Element]) -> list[CardFilterPlan]:
    """One plan per ``CR:filter`` (all of which an item must match)."""
    plans = []
    for filter_ in filters:
        if filter_.tag != _CARD_FILTER:
            plans.append(CardFilterPlan(None, is_anyof=True))
            continue
        props = [_prop_test(child) for child in filter_]
        known = None if not props or any(p is None for p in props) else props
        test = filter_.get("test", "anyof")
        plans.append(
            CardFilterPlan(
                None if known is None or test not in ("anyof", "allof") else tuple(known),  # type: ignore[arg-type]
                is_anyof=test == "anyof",
            )
        )
    return plans


def _prop_test(prop_filter: ET.Element) -> PropTest | None:
    name = prop_filter.get("name", "").lower()
    if prop_filter.tag != _PROP_FILTER or name not in TEXT_PROPS or len(prop_filter) == 0:
        return None
    tests = []
    for child in prop_filter:
        if child.tag != _TEXT_MATCH:
            return None
        match_type = child.get("match-type", "contains")
        if (
            child.get("collation") == "i;octet"
            or child.get("negate-condition") == "yes"
            or match_type not in MATCH_TYPES
        ):
            return None
        tests.append(TextTest(name, match_type, next(child.itertext(), "").lower()))
    return PropTest(tuple(tests), is_anyof=prop_filter.get("test", "anyof") == "anyof")
