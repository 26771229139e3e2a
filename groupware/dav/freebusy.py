# SPDX-License-Identifier: GPL-3.0-or-later
"""A person's free/busy time across all their calendars, for colleagues they allow.

``GET /dav/~freebusy/<address>.ifb`` (the "Internet free/busy" URL that Outlook and
Thunderbird can be given, e.g. ``https://host/dav/~freebusy/%NAME%@%SERVER%.ifb``)
answers one VFREEBUSY (RFC 5545 §3.6.4) merging the busy periods of every calendar
of that person the viewer may see free/busy of (``core.sharing``: the owner's
choice, or a grant). Busy periods only: no summary, place or attendee ever leaves.
The window is ``?start=YYYYMMDD&end=YYYYMMDD`` (at most a year), by default a week
back to eight weeks ahead.

The same rules answer the standard ``free-busy-query`` REPORT on each calendar
(Radicale, with the ``f`` permission of ``dav.rights``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import parse_qs

from radicale import storage as radicale_storage
from radicale.app import report as radicale_report

from groupware.core.directory import Directory, Person
from groupware.core.sharing import CollectionRef, Level, Sharing
from groupware.dav.storage import Storage

log = logging.getLogger(__name__)

PREFIX: Final = "~freebusy"
_SUFFIXES: Final = (".ifb", ".vfb")
_DEFAULT_BACK: Final = timedelta(days=7)
_DEFAULT_AHEAD: Final = timedelta(weeks=8)
_LONGEST: Final = timedelta(days=366)
_MAX_OCCURRENCES: Final = 10_000


@dataclass(frozen=True, slots=True)
class Answer:
    """The HTTP answer: status line, content type, body."""

    status: str
    content_type: str
    body: bytes


def is_freebusy_path(path: str) -> bool:
    parts = [part for part in path.split("/") if part]
    return len(parts) == 2 and parts[0] == PREFIX


class FreeBusy:
    """Builds free/busy answers from the DAV storage."""

    def __init__(self, storage: Storage, directory: Directory, sharing: Sharing) -> None:
        self._storage = storage
        self._directory = directory
        self._sharing = sharing

    def answer(
        self, viewer: Person, path: str, query: str, *, now: datetime | None = None
    ) -> Answer:
        """The answer to ``GET /~freebusy/<address>.ifb?query``."""
        name = [part for part in path.split("/") if part][1]
        for suffix in _SUFFIXES:
            if name.endswith(suffix):
                name = name[: -len(suffix)]
        window = _window(query, now or datetime.now(UTC))
        if window is None:
            return _text(
                "400 Bad Request",
                "start and end must be dates (YYYYMMDD), end after start, a year at most.",
            )
        owner = self._directory.find(name)
        view = self._sharing.view(viewer)
        if owner is None or not owner.is_active:
            return _text("404 Not Found", "No such person.")
        calendars = [
            entry
            for entry in self._own_calendars(owner.login)
            if (view.level(CollectionRef(owner.login, entry.path.split("/")[-1])) or 0)
            >= Level.FREEBUSY
        ]
        if not calendars:
            # The same answer whether the person exists or hides: nothing to learn.
            return _text("404 Not Found", "No such person.")
        start, end = window
        periods = []
        with self._storage.acquire_lock("r", viewer.login):
            for calendar in calendars:
                for entry in calendar.get_all():
                    try:
                        periods += radicale_report.freebusy_periods(
                            entry, start, end, _MAX_OCCURRENCES
                        )
                    except (ValueError, RuntimeError) as exc:  # one bad event: skip it
                        log.warning("dav.freebusy.skipped href=%s reason=%s", entry.href, exc)
        body = radicale_report.render_freebusy(periods, start, end)
        return Answer("200 OK", "text/calendar; charset=utf-8", body.encode())

    def _own_calendars(self, login: str) -> list[radicale_storage.BaseCollection]:
        found = []
        with self._storage.acquire_lock("r", login):
            for entry in self._storage.inner.discover(f"/{login}/", depth="1"):
                if (
                    isinstance(entry, radicale_storage.BaseCollection)
                    and entry.path.count("/") == 1
                    and entry.get_meta("tag") == "VCALENDAR"
                ):
                    found.append(entry)
        return found


def _window(query: str, now: datetime) -> tuple[datetime, datetime] | None:
    values = parse_qs(query)
    try:
        start = _date(values.get("start"), now - _DEFAULT_BACK)
        end = _date(values.get("end"), now + _DEFAULT_AHEAD)
    except ValueError:
        return None
    if end <= start or end - start > _LONGEST:
        return None
    return start, end


def _date(found: list[str] | None, default: datetime) -> datetime:
    if not found:
        return default.replace(hour=0, minute=0, second=0, microsecond=0)
    return datetime.strptime(found[0], "%Y%m%d").replace(tzinfo=UTC)


def _text(status: str, message: str) -> Answer:
    return Answer(status, "text/plain; charset=utf-8", (message + "\n").encode())
