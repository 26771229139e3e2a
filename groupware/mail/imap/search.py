# SPDX-License-Identifier: GPL-3.0-or-later
"""SEARCH evaluation over the mail index (RFC 3501 §6.4.4, RFC 7162 §3.1.5).

Flags, dates, sizes, UIDs and mod-sequences are answered from the index. FROM, TO,
CC, BCC and SUBJECT match the decoded envelope (case-insensitive substring, no file
read). BODY and TEXT use the full-text index (words matched by prefix, accents
folded, as Dovecot's FTS does). Any other HEADER reads just the header block of the
candidate messages. Blocking: the session runs it in a worker thread.

A search first narrows the mailbox in SQL: a key that needs the full-text index or a
header substring yields a *prefilter* (``mail.store.Prefilter``) that every match
satisfies, so that a rare word costs a few rows instead of the whole mailbox. Only
the columns the key needs are read; the exact test then runs on what is left.
"""

from __future__ import annotations

import bisect
import datetime
import email.utils
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from groupware.mail import mime, text
from groupware.mail.imap import search_keys as sk
from groupware.mail.store import (
    AllOf,
    AnyOf,
    BlobIn,
    HeaderContains,
    IndexRow,
    MailStore,
    Prefilter,
)

_ENVELOPE_HEADERS = {"from", "to", "cc", "bcc", "subject"}
# A full-text match of more blobs than this does not narrow a search usefully (and
# would make a long IN list): the key is then tested on every message.
MAX_PREFILTER_BLOBS: Final = 500


@dataclass(slots=True)
class Candidate:
    """One message as the search sees it."""

    seq: int
    info: IndexRow
    _envelope: dict[str, Any] | None = field(default=None, repr=False)
    _structure: mime.Part | None = field(default=None, repr=False)

    @property
    def structure(self) -> mime.Part:
        """The parsed MIME structure (read only when the key needs it)."""
        if self._structure is None:
            self._structure = mime.part_from_json_text(self.info.structure or "")
        return self._structure

    @property
    def envelope(self) -> dict[str, Any]:
        """The decoded envelope (read only when the key needs it)."""
        if self._envelope is None:
            self._envelope = json.loads(self.info.envelope) if self.info.envelope else {}
        return self._envelope


def key_fields(key: sk.SearchKey) -> set[str]:
    """The index fields (``mail.store.IndexRow``) that testing ``key`` reads."""
    if isinstance(key, sk.AndKey):
        return set().union(*(key_fields(part) for part in key.keys))
    if isinstance(key, sk.OrKey):
        return key_fields(key.left) | key_fields(key.right)
    if isinstance(key, sk.NotKey):
        return key_fields(key.key)
    if isinstance(key, sk.FlagKey):
        return set() if key.flag.lower() == "\\recent" else {"flags"}
    if isinstance(key, sk.SizeKey):
        return {"size"}
    if isinstance(key, sk.DateKey):
        return {"internal_date"} if key.field is sk.DateField.INTERNAL else {"envelope"}
    if isinstance(key, sk.ModSeqKey):
        return {"modseq"}
    if isinstance(key, sk.TextKey):
        return {"envelope"}
    if isinstance(key, sk.HeaderKey):
        if key.name.lower() in _ENVELOPE_HEADERS and key.value:
            return {"envelope"}
        return {"blob_path", "structure"}
    return set()


class Searcher:
    """Evaluates a search key for the messages of one selected mailbox."""

    def __init__(
        self,
        store: MailStore,
        mailbox_id: int,
        uids: Sequence[int],
        *,
        saved: list[int] | None = None,
        recent_uids: frozenset[int] = frozenset(),
    ) -> None:
        """A searcher over the session's view.

        Args:
            store: the mail store.
            mailbox_id: the selected mailbox.
            uids: the UIDs the client knows, ascending (sequence number = index + 1).
            saved: the SEARCHRES result, as UIDs.
            recent_uids: the messages with \\Recent in this session.
        """
        self._store = store
        self._mailbox_id = mailbox_id
        self._uids = uids
        self._largest_seq = len(uids)
        self._largest_uid = uids[-1] if uids else 0
        self._saved = saved or []
        self._recent = recent_uids
        self._fts_cache: dict[tuple[str | None, str], set[int]] = {}

    def run(self, key: sk.SearchKey, fields: Iterable[str] = ()) -> list[Candidate]:
        """The messages matching ``key``, in sequence order.

        Args:
            key: the search key.
            fields: index fields the caller needs besides (SORT's keys).
        """
        wanted = key_fields(key) | set(fields) | {"modseq"}
        rows = self._store.rows(self._mailbox_id, None, wanted, self.prefilter(key))
        test = self._compile(key)
        found = []
        uids = self._uids
        for row in rows:
            # Only the messages of the view: not yet announced ones have no number.
            index = bisect.bisect_left(uids, row.uid)
            if index < len(uids) and uids[index] == row.uid:
                candidate = Candidate(seq=index + 1, info=row)
                if test(candidate):
                    found.append(candidate)
        return found

    def prefilter(self, key: sk.SearchKey) -> Prefilter | None:
        """A condition every match of ``key`` satisfies, or None when none narrows."""
        if isinstance(key, sk.TextKey):
            matches = self._fts(None, key.value)
            if len(matches) > MAX_PREFILTER_BLOBS:
                return None
            return AnyOf((BlobIn(frozenset(matches)), HeaderContains(key.value)))
        if isinstance(key, sk.BodyKey):
            matches = self._fts("body", key.value)
            return BlobIn(frozenset(matches)) if len(matches) <= MAX_PREFILTER_BLOBS else None
        if isinstance(key, sk.HeaderKey):
            if key.name.lower() in _ENVELOPE_HEADERS and key.value:
                return HeaderContains(key.value)
            return None
        if isinstance(key, sk.AndKey):
            parts = [found for part in key.keys if (found := self.prefilter(part)) is not None]
            if not parts:
                return None
            return parts[0] if len(parts) == 1 else AllOf(tuple(parts))
        if isinstance(key, sk.OrKey):
            left, right = self.prefilter(key.left), self.prefilter(key.right)
            return None if left is None or right is None else AnyOf((left, right))
        return None

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
                moment = c.info.internal_date
                return moment.date() if moment is not None else None
            # RFC 3501: SENT* compare the Date: header "disregarding time and timezone",
            # so the day as written in the header, not the UTC day the index keeps.
            return _written_day(c.envelope.get("date"))

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
        if name == "content-type" and needle:
            return lambda c: _content_type_contains(c, needle)

        def test(c: Candidate) -> bool:
            structure = c.structure
            block = store.files.read_range(c.info.blob_path, 0, structure.header_end)
            headers = mime.parse_headers(block)
            values = headers.get_all(name) or []
            if not needle:
                return bool(values)
            return any(needle in text.decode_words(str(v)).lower() for v in values)

        return test


def _content_type_contains(c: Candidate, needle: str) -> bool:
    """``HEADER Content-Type needle`` from the indexed structure, without reading the file.

    The structure keeps the field parsed: ``type/subtype`` and its parameters, which
    are rendered back as ``type/subtype; name=value`` and, since senders write both,
    ``type/subtype; name="value"`` (the field unfolded, comments dropped). A message
    without the field is ``text/plain``, its RFC 2045 §5.2 default. Webmails ask this
    field for "has an attachment" (``multipart/mixed``, ``application/``) over whole
    folders: reading and parsing every header block took seconds for 10,000
    messages, this takes a JSON parse each.
    """
    part = c.structure
    kind = f"{part.maintype}/{part.subtype}"
    bare = "".join(f"; {name}={value}" for name, value in part.params)
    quoted = "".join(f'; {name}="{value}"' for name, value in part.params)
    return needle in f"{kind}{bare}".lower() or needle in f"{kind}{quoted}".lower()


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
    envelope = c.envelope
    needle = value.lower()
    fields: Iterable[str] = (name,) if name else text.SEARCH_HEADER_FIELDS
    return any(needle in text.envelope_field_text(envelope, field).lower() for field in fields)
