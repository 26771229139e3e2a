# SPDX-License-Identifier: GPL-3.0-or-later
"""Importing ``.ics`` and ``.vcf`` files: one DAV resource per UID, in a background job.

Framework-free. A calendar file is split by UID (RFC 4791 §4.1: one resource holds
one UID, its master and its overrides together), each part with the VTIMEZONEs it
uses; a vCard file card by card. Each part is PUT through the DAV front as the
person with ``If-None-Match: *``, so an import never overwrites an existing item (it
is reported as skipped, with the reason). Large files run in a thread; the page
polls the job's progress and shows its report. The job's state is a database row
(``core.import_jobs``), so a poll answered by another process finds it.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

import icalendar
import vobject

from groupware.core.import_jobs import ImportJob, ImportJobStore, Progress
from groupware.web.dav_client import ChangedElsewhereError, DavClient, DavClientError

log = logging.getLogger(__name__)

CALENDAR_TYPE: Final = "text/calendar; charset=utf-8"
VCARD_TYPE: Final = "text/vcard; charset=utf-8"
#: How often at most a running import writes its progress (it always writes its end).
PROGRESS_WRITE_SECONDS: Final = 0.5
ZONE_MARGIN: Final = timedelta(days=366)
_SAFE_NAME: Final = re.compile(r"[^A-Za-z0-9._-]")
_COMPONENTS: Final = ("VEVENT", "VTODO", "VJOURNAL")


@dataclass(frozen=True, slots=True)
class Part:
    """One resource to write: its UID, its name in the collection, its text."""

    uid: str
    name: str
    text: str


def resource_name(uid: str, suffix: str) -> str:
    """A safe resource name for ``uid`` (a hash when the UID has unusual characters)."""
    cleaned = _SAFE_NAME.sub("", uid)
    if cleaned != uid or not cleaned or len(cleaned) > 120:
        cleaned = hashlib.sha256(uid.encode()).hexdigest()[:40]
    return cleaned + suffix


def split_calendar(data: bytes) -> list[Part]:
    """The resources of an ``.ics`` file, one per UID.

    Raises:
        ValueError: the file is not iCalendar.
    """
    calendars = icalendar.Calendar.from_ical(data.decode("utf-8-sig"), multiple=True)
    zones: dict[str, icalendar.Component | None] = {}
    groups: dict[str, list[icalendar.Component]] = {}
    for calendar in calendars:
        for zone in calendar.walk("VTIMEZONE"):
            zones[str(zone.get("tzid"))] = zone
        for component in calendar.subcomponents:
            if component.name in _COMPONENTS:
                uid = str(component.get("uid") or "")
                if not uid:
                    uid = secrets.token_hex(16)
                    component.add("uid", uid)
                groups.setdefault(uid, []).append(component)
    first = _first_day([c for group in groups.values() for c in group])
    parts = []
    for uid, components in groups.items():
        calendar = icalendar.Calendar()
        calendar.add("prodid", "-//groupware//portal import//EN")
        calendar.add("version", "2.0")
        used = {tzid for c in components for prop in c.values() if (tzid := _tzid(prop))}
        for tzid in sorted(used):
            vtimezone = _zone(zones, tzid, first)
            if vtimezone is not None:
                calendar.add_component(vtimezone)
        for component in components:
            calendar.add_component(component)
        parts.append(Part(uid, resource_name(uid, ".ics"), calendar.to_ical().decode("utf-8")))
    return parts


def _first_day(components: list[icalendar.Component]) -> date:
    """A day before everything in the file: its zones need no older transitions."""
    days = []
    for component in components:
        start = component.get("dtstart")
        if start is not None and isinstance(start.dt, date):
            days.append(start.dt.date() if isinstance(start.dt, datetime) else start.dt)
    if not days:
        return icalendar.Timezone.DEFAULT_FIRST_DATE
    return max(icalendar.Timezone.DEFAULT_FIRST_DATE, min(days) - ZONE_MARGIN)


def _zone(
    zones: dict[str, icalendar.Component | None], tzid: str, first: date
) -> icalendar.Component | None:
    """The VTIMEZONE for ``tzid``: the file's, else made once from the IANA database.

    Files often say ``TZID=Europe/Paris`` without defining it (RFC 5545 §3.6.5 asks
    for the VTIMEZONE). Without one, the DAV storage (vobject, on every PUT) builds it
    by probing the zone hour by hour over years: a quarter of a second per event, nine
    tenths of a whole import. The one made here starts at ``first`` (since 1970 it is
    a hundred transitions more to write and parse per event). A TZID that is no IANA
    zone stays as the file wrote it.
    """
    if tzid not in zones:
        try:
            zones[tzid] = icalendar.Timezone.from_tzid(tzid, first_date=first)
        except ValueError:
            zones[tzid] = None
    return zones[tzid]


def _tzid(prop: object) -> str | None:
    params = getattr(prop, "params", None)
    return str(params["TZID"]) if params is not None and "TZID" in params else None


def split_cards(data: bytes) -> list[Part]:
    """The cards of a ``.vcf`` file (vCard 3.0 or 4.0), each as it was written.

    Raises:
        ValueError: the file is not vCard.
    """
    parts = []
    try:
        for card in vobject.readComponents(data.decode("utf-8-sig")):
            if card.name != "VCARD":
                continue
            uid_line = card.contents.get("uid", [None])[0]
            uid = str(uid_line.value) if uid_line is not None else ""
            if not uid:
                uid = secrets.token_hex(16)
                card.add("uid").value = uid
            parts.append(Part(uid, resource_name(uid, ".vcf"), str(card.serialize())))
    except vobject.base.ParseError as exc:
        raise ValueError(str(exc)) from exc
    return parts


def _put(dav: DavClient, path: str, text: str, content_type: str) -> str | None:
    """``None`` when written, else the reason it was not (a key the page translates)."""
    try:
        dav.put(path, text, content_type, etag=None)
    except ChangedElsewhereError:
        return "exists"
    except DavClientError as exc:
        return "too_large" if exc.status == 413 else "refused"
    return None


class ImportJobs:
    """Starts imports in a thread of this process; their state is the database's.

    The thread writes its progress to the job's row (``core.import_jobs``) at most
    every :data:`PROGRESS_WRITE_SECONDS`, and at the end: a 10,000-card import makes
    a few dozen small commits, not one per card. Any process answers the page.
    """

    def __init__(self, store: ImportJobStore, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._clock = clock

    def start(
        self, dav: DavClient, collection_path: str, parts: list[Part], content_type: str
    ) -> ImportJob:
        """Begin writing ``parts`` in a background thread; returns the job to poll."""
        job = self._store.create(dav.person.login, len(parts))
        thread = threading.Thread(
            target=self._run,
            args=(job, dav, collection_path, parts, content_type),
            name=f"import-{job.id}",
            daemon=True,
        )
        thread.start()
        return job

    def get(self, job_id: str, login: str) -> ImportJob | None:
        """The job, if it is this person's."""
        return self._store.get(job_id, login)

    def _run(
        self,
        job: ImportJob,
        dav: DavClient,
        collection_path: str,
        parts: list[Part],
        content_type: str,
    ) -> None:
        """Write every part, saving progress now and then (the body of the thread)."""
        progress = Progress()
        started = last_write = self._clock()
        failed = False
        try:
            for part in parts:
                progress.record(
                    part.uid, _put(dav, collection_path + part.name, part.text, content_type)
                )
                if self._clock() - last_write >= PROGRESS_WRITE_SECONDS:
                    self._store.save(job.id, progress)
                    last_write = self._clock()
        except Exception:  # noqa: BLE001 - boundary: the job thread reports, never dies silently
            log.exception("web.import.failed user=%s job=%s", job.login, job.id)
            failed = True
        self._finish(job, progress, failed=failed, seconds=self._clock() - started)

    def _finish(self, job: ImportJob, progress: Progress, *, failed: bool, seconds: float) -> None:
        try:
            self._store.save(job.id, progress, is_finished=True, failed=failed)
        except Exception:  # noqa: BLE001 - boundary: unsaved, the job reads as interrupted
            log.exception("web.import.unsaved user=%s job=%s", job.login, job.id)
            return
        log.info(
            "web.import.finished user=%s job=%s imported=%s skipped=%s seconds=%.1f",
            job.login,
            job.id,
            progress.imported,
            progress.skipped_count,
            seconds,
        )
