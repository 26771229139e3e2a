"""One expansion gives the index's ranges and Radicale's enclosing time range.

The PUT fast path (``dav.put``) stores ``indexing.enclosing_range`` of the index's
expansion as the item's time range instead of running Radicale's
``find_time_range`` (a second expansion). Calendar queries pick their candidates
with it, so it must be the same number: checked here on random events and tasks
(dates or times, UTC, floating or in a time zone, ends or durations or none,
rules by count, until or open-ended, exception and extra dates, a moved
occurrence), after Radicale's own sanitizing, as a PUT does it.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st
from radicale import item as radicale_item

from groupware.dav.sqlstore.indexing import enclosing_range, expand_item
from tests.dav.test_put_fastpath import TIMEZONE

BASE = dt.datetime(2026, 1, 5, 8, 0)


@st.composite
def calendar_objects(draw: st.DrawFn) -> str:
    component = draw(st.sampled_from(["VEVENT", "VEVENT", "VTODO", "VJOURNAL"]))
    start = BASE + dt.timedelta(
        days=draw(st.integers(-400, 2000)), minutes=15 * draw(st.integers(0, 60))
    )
    kind = draw(st.sampled_from(["utc", "floating", "zone", "date"]))

    def stamp(moment: dt.datetime) -> str:
        if kind == "date":
            return f";VALUE=DATE:{moment:%Y%m%d}"
        if kind == "zone":
            return f";TZID=Europe/Paris:{moment:%Y%m%dT%H%M%S}"
        return f":{moment:%Y%m%dT%H%M%S}" + ("Z" if kind == "utc" else "")

    lines = []
    if draw(st.booleans()) or component != "VTODO":
        lines.append("DTSTART" + stamp(start))
    length = dt.timedelta(days=draw(st.integers(0, 3)), hours=draw(st.integers(0, 5)))
    end_kind = draw(st.sampled_from(["end", "duration", "none"]))
    end_name = "DUE" if component == "VTODO" else "DTEND"
    if end_kind == "end" and component != "VJOURNAL" and length:
        lines.append(end_name + stamp(start + length))
    elif end_kind == "duration" and component != "VJOURNAL" and lines:
        lines.append(f"DURATION:P{length.days}DT{length.seconds // 3600}H")
    recurs = bool(lines) and draw(st.booleans())
    if recurs:
        freq = draw(st.sampled_from(["DAILY", "WEEKLY", "MONTHLY", "YEARLY"]))
        rule = f"RRULE:FREQ={freq};INTERVAL={draw(st.integers(1, 3))}"
        limit = draw(st.sampled_from(["count", "until", "none"]))
        if limit == "count":
            rule += f";COUNT={draw(st.integers(1, 40))}"
        elif limit == "until":
            until = start + dt.timedelta(days=draw(st.integers(0, 900)))
            rule += f";UNTIL={until:%Y%m%d}" if kind == "date" else f";UNTIL={until:%Y%m%dT%H%M%S}Z"
        lines.append(rule)
        if draw(st.booleans()):
            lines.append("EXDATE" + stamp(start + dt.timedelta(days=7)))
    if lines and draw(st.booleans()):
        lines.append("RDATE" + stamp(start + dt.timedelta(days=draw(st.integers(1, 60)))))
    body = [f"BEGIN:{component}", "UID:u", "DTSTAMP:20260101T000000Z", *lines, f"END:{component}"]
    if recurs and component == "VEVENT" and draw(st.booleans()):
        moved = start + dt.timedelta(days=draw(st.integers(1, 30)), hours=2)
        body += [
            "BEGIN:VEVENT",
            "UID:u",
            "DTSTAMP:20260101T000000Z",
            "RECURRENCE-ID" + stamp(start + dt.timedelta(days=1)),
            "DTSTART" + stamp(moved),
            "END:VEVENT",
        ]
    head = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN"]
    zone = [TIMEZONE] if kind == "zone" else []
    return "\r\n".join([*head, *zone, *body, "END:VCALENDAR", ""])


@settings(max_examples=300, deadline=None, database=None)
@given(text=calendar_objects())
def test_the_enclosing_range_is_radicale_time_range(text: str) -> None:
    (component,) = radicale_item.read_components(text)
    try:
        radicale_item.check_and_sanitize_items(
            [component], max_vevent_rrule_occurrence=0, is_collection=False, tag="VCALENDAR"
        )
        tag = radicale_item.find_tag(component)
        expected = radicale_item.find_time_range(component, tag)
    except (ValueError, TypeError, AttributeError, OverflowError):
        # Radicale refuses it (the fast path then leaves it to Radicale's 400):
        # the index must not claim a range for it either.
        tag = radicale_item.find_tag(component)
        assert enclosing_range(expand_item(component, tag)) is None
        return

    found = enclosing_range(expand_item(component, tag))

    assert found is None or found == expected, text
