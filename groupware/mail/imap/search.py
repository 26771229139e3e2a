# SPDX-License-Identifier: GPL-3.0-or-later
"""SEARCH evaluation over the mail index (RFC 3501 §6.4.4, RFC 7162 §3.1.5).

Flags, dates, sizes, UIDs and mod-sequences are answered from the index. FROM, TO,
CC, BCC and SUBJECT match the decoded envelope (case-insensitive substring, no file
read). BODY and TEXT use the full-text index (words matched by prefix, accents
folded, as Dovecot's FTS does). Any other HEADER reads just the header block of the
candidate messages. Blocking: the session runs it in a worker thread.
"""

from __future__ import annotations

import datetime
import email.utils
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from groupware.mail import mime, text
from groupware.mail.imap import search_keys as sk
from groupware.mail.store import MailStore, MessageInfo

_ENVELOPE_HEADERS = {"from", "to", "cc", "bcc", "subject"}


@dataclass(slots=True)
class Candidate:
    """One message as the search sees it."""

    seq: int
    info: MessageInfo
    meta: dict[str, Any]


class Searcher:
    """Evaluates a search key for the messages of one selected mailbox."""

    def __init__(
        self,
        store: MailStore,
        candidates: list[Candidate],
        *,
        largest_seq: int,
        largest_uid: int,
        saved: list[int] | None = None,
        recent_uids: frozenset[int] = frozenset(),
    ) -> None:
        self._store = store
        self._candidates = candidates
        self._largest_seq = largest_seq
        self._largest_uid = largest_uid
        self._saved = saved or []
        self._recent = recent_uids
        self._fts_cache: dict[tuple[str | None, str], set[int]] = {}

    def run(self, key: sk.SearchKey) -> list[Candidate]:
        """The candidates matching ``key``, in sequence order."""
        test = self._compile(key)
        return [candidate for candidate in self._candidates if test(candidate)]

    def _fts(self, field: str | None, value: str) -> set[int]:
        cache_key = (field, value)
        if cache_key not in self._fts_cache:
            self._fts_cache[cache_key] = self._store.search_text(field, value)
        return self._fts_cache[cache_key]

    def _compile(self, key: sk.SearchKey) -> Callable[[Candidate], bool]:  # noqa: C901, PLR0911
        if isinstance(key, sk.AllKey):
            return lambda c: True
        if isinstance(key, sk.AndKey):
            tests = [self._compile(part) for part in key.keys]
            return lambda c: all(test(c) for test in tests)
        if isinstance(key, sk.OrKey):
            left, right = self._compile(key.left), self._compile(key.right)
            return lambda c: left(c) or right(c)
        if isinstance(key, sk.NotKey):
            inner = self._compile(key.key)
            return lambda c: not inner(c)
        if isinstance(key, sk.FlagKey):
            return self._flag_test(key)
        if isinstance(key, sk.SizeKey):
            if key.relation is sk.SizeRelation.LARGER:
                return lambda c: c.info.size > key.size
            return lambda c: c.info.size < key.size
        if isinstance(key, sk.DateKey):
            return self._date_test(key)
        if isinstance(key, sk.SequenceKey):
            if _is_saved(key.sequence_set):
                saved_uids = set(self._saved)
                return lambda c: c.info.uid in saved_uids
            numbers = set(key.sequence_set.resolve(self._largest_seq))
            return lambda c: c.seq in numbers
        if isinstance(key, sk.UidKey):
            if _is_saved(key.sequence_set):
                saved_uids = set(self._saved)
                return lambda c: c.info.uid in saved_uids
            largest = self._largest_uid
            intervals = key.sequence_set.intervals(largest) if largest else ()
            return lambda c: any(low <= c.info.uid <= high for low, high in intervals)
        if isinstance(key, sk.ModSeqKey):
            return lambda c: c.info.modseq >= key.modseq
        if isinstance(key, sk.BodyKey):
            found = self._fts("body", key.value)
            return lambda c: c.info.blob_id in found
        if isinstance(key, sk.TextKey):
            found = self._fts(None, key.value)
            return lambda c: c.info.blob_id in found or _envelope_contains(c, None, key.value)
        if isinstance(key, sk.HeaderKey):
            return self._header_test(key)
        raise TypeError(f"unknown search key {key!r}")  # our bug: the parser made it

    def _flag_test(self, key: sk.FlagKey) -> Callable[[Candidate], bool]:
        flag = key.flag
        if flag.lower() == "\\recent":
            recent = self._recent
            return lambda c: (c.info.uid in recent) == key.is_set
        canonical = {
            f.lower(): f for f in ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")
        }
        flag = canonical.get(flag.lower(), flag)
        return lambda c: (flag in c.info.flags) == key.is_set

    def _date_test(self, key: sk.DateKey) -> Callable[[Candidate], bool]:
        def day_of(c: Candidate) -> datetime.date | None:
            if key.field is sk.DateField.INTERNAL:
                return c.info.internal_date.date()
            # RFC 3501: SENT* compare the Date: header "disregarding time and timezone",
            # so the day as written in the header, not the UTC day the index keeps.
            return _written_day((c.meta.get("envelope") or {}).get("date"))

        relation = key.relation

        def test(c: Candidate) -> bool:
            day = day_of(c)
            if day is None:
                return False
            if relation is sk.DateRelation.BEFORE:
                return day < key.date
            if relation is sk.DateRelation.ON:
                return day == key.date
            return day >= key.date

        return test

    def _header_test(self, key: sk.HeaderKey) -> Callable[[Candidate], bool]:
        name = key.name.lower()
        if name in _ENVELOPE_HEADERS and key.value:
            return lambda c: _envelope_contains(c, name, key.value)
        needle = key.value.lower()
        store = self._store

        def test(c: Candidate) -> bool:
            structure = mime.part_from_json_text(c.meta["structure"])
            block = store.files.read_range(c.info.blob_path, 0, structure.header_end)
            headers = mime.parse_headers(block)
            values = headers.get_all(name) or []
            if not needle:
                return bool(values)
            return any(needle in text.decode_words(str(v)).lower() for v in values)

        return test


def _written_day(value: str | None) -> datetime.date | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).date()
    except (TypeError, ValueError, IndexError):
        return None


def _is_saved(sequence_set: Any) -> bool:
    return bool(sequence_set.is_saved)


def _envelope_contains(c: Candidate, name: str | None, value: str) -> bool:
    envelope = c.meta.get("envelope") or {}
    needle = value.lower()
    fields: Iterable[str] = (name,) if name else ("subject", "from", "to", "cc", "bcc")
    for field in fields:
        if field == "subject":
            haystack = text.decode_words(envelope.get("subject"))
        else:
            haystack = " ".join(
                " ".join(
                    part
                    for part in (
                        text.decode_words(address[0]) if address[0] else "",
                        f"{address[2]}@{address[3]}" if address[2] and address[3] else "",
                    )
                    if part
                )
                for address in envelope.get(field) or []
            )
        if needle in haystack.lower():
            return True
    return False
