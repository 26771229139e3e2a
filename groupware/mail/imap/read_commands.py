# SPDX-License-Identifier: GPL-3.0-or-later
"""Selected-state commands that read the mailbox: FETCH, SEARCH, SORT and THREAD.

FETCH (RFC 3501 §6.4.5, BINARY, CHANGEDSINCE/VANISHED of RFC 7162) in batches
rendered by ``imap.fetch``; SEARCH (ESEARCH, SEARCHRES) through ``imap.search``; SORT
(RFC 5256, DISPLAYFROM/DISPLAYTO of RFC 5957); THREAD (RFC 5256, ``imap.threads``).
Split out of ``imap.session``: each handler is a function taking the session.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

from groupware.mail import mime, text
from groupware.mail.imap import commands as c
from groupware.mail.imap import fetch as fetch_data
from groupware.mail.imap import threads, wire
from groupware.mail.imap.command_error import CommandError, bad
from groupware.mail.imap.fetch_attributes import BinarySection, BodySection, FetchItem
from groupware.mail.imap.refresh import RefreshFrom
from groupware.mail.imap.search import Candidate, Searcher
from groupware.mail.imap.sequences import SequenceSet
from groupware.mail.store import Changes, IndexRow, MailStore

if TYPE_CHECKING:
    from groupware.mail.imap.session import ImapSession


# Messages per FETCH batch: rows are read per batch (see _fetch_batch).
_BATCH_FROM_INDEX: Final = 2000
_BATCH_READING_FILES: Final = 100
# THREAD=REFERENCES reads this much of an old message's file for its References field.
_THREAD_HEAD_BYTES: Final = 4096


async def _search(session, key: Any, fields: Iterable[str] = ()) -> tuple[list[Candidate], Changes]:
    """The matches, and the refresh that ends the command (one worker call)."""
    selected = session.require_selected()
    searcher = Searcher(
        session.store,
        selected.mailbox_id,
        # A copy of the view: the worker thread reads it while the loop runs on.
        selected.uids[:],
        saved=selected.saved,
        recent_uids=selected.recent,
    )
    then = RefreshFrom.of(selected)

    def search() -> tuple[list[Candidate], Changes]:
        return searcher.run(key, fields), then.read(session.store)

    return await session.run(search)


async def _search_answer(
    session, command: c.Search | c.Sort, found: list[Candidate], verb: str
) -> None:
    numbers = [m.info.uid if command.uid else m.seq for m in found]
    options = command.return_options
    if options is None:
        line = verb.encode() + b"".join(b" %d" % n for n in numbers)
        if session.condstore and found and _uses_modseq(command.key):
            line += b" (MODSEQ %d)" % max(m.info.modseq for m in found)
        await session.send(wire.untagged(line))
        return
    is_saved = c.SearchReturn.SAVE in options
    if is_saved:
        session.require_selected().saved = [m.info.uid for m in found]
    wanted = set(options) - {c.SearchReturn.SAVE}
    if is_saved and not wanted:
        return  # RFC 5182 §2.1: RETURN (SAVE) alone gives no ESEARCH response
    wanted = wanted or {c.SearchReturn.ALL}
    parts = [b'(TAG "' + command.tag.encode() + b'")']
    if command.uid:
        parts.append(b"UID")
    if numbers:
        if c.SearchReturn.MIN in wanted:
            parts.append(b"MIN %d" % min(numbers))
        if c.SearchReturn.MAX in wanted:
            parts.append(b"MAX %d" % max(numbers))
        if c.SearchReturn.ALL in wanted:
            ordered = numbers if verb == "SORT" else sorted(numbers)
            parts.append(b"ALL " + str(SequenceSet.from_numbers(ordered)).encode())
    if c.SearchReturn.COUNT in wanted:
        parts.append(b"COUNT %d" % len(numbers))
    if session.condstore and found and _uses_modseq(command.key):
        parts.append(b"MODSEQ %d" % max(m.info.modseq for m in found))
    await session.send(wire.untagged(b"ESEARCH " + b" ".join(parts)))


async def do_search(session: ImapSession, command: c.Search) -> None:
    found, changes = await _search(session, command.key)
    await _search_answer(session, command, found, "SEARCH")
    await session.finish(command.tag, "SEARCH completed", expunge=False, changes=changes)


async def do_sort(session: ImapSession, command: c.Sort) -> None:
    fields = {name for criterion in command.criteria for name in _SORT_FIELDS[criterion.key]}
    found, changes = await _search(session, command.key, fields)
    found = await session.run(_sorted, found, command.criteria)
    await _search_answer(session, command, found, "SORT")
    await session.finish(command.tag, "SORT completed", expunge=False, changes=changes)


async def do_thread(session: ImapSession, command: c.Thread) -> None:
    fields = {"sent_date", "internal_date", "subject_sort"}
    if command.algorithm is threads.ThreadAlgorithm.REFERENCES:
        fields |= {"envelope", "message_id", "thread_refs", "blob_path", "structure"}
    found, changes = await _search(session, command.key, fields)
    items = await session.run(_thread_items, session.store, found, command)
    roots = threads.thread(command.algorithm, items)
    line = b"THREAD"
    if roots:
        line += b" " + threads.render(roots)
    await session.send(wire.untagged(line))
    await session.finish(command.tag, "THREAD completed", expunge=False, changes=changes)


def _thread_items(
    store: MailStore, found: list[Candidate], command: c.Thread
) -> list[threads.ThreadItem]:
    """What threading needs of each match, from the index (ORDEREDSUBJECT: sort keys only)."""
    with_references = command.algorithm is threads.ThreadAlgorithm.REFERENCES
    items = []
    for m in found:
        number = m.info.uid if command.uid else m.seq
        date = m.info.sent_date or m.info.internal_date
        subject = m.info.subject_sort.casefold()
        if not with_references:
            items.append(threads.ThreadItem(number, m.seq, date, subject))
            continue
        refs = m.info.thread_refs
        parents = threads.message_ids(refs) if refs is not None else _parents_from_file(store, m)
        ids = threads.message_ids(m.info.message_id)
        raw_subject = text.decode_words(m.envelope.get("subject") or "")
        items.append(
            threads.ThreadItem(
                number,
                m.seq,
                date,
                subject,
                is_reply=threads.is_reply_subject(raw_subject),
                message_id=ids[0] if ids else "",
                references=parents,
            )
        )
    return items


def _parents_from_file(store: MailStore, m: Candidate) -> tuple[str, ...]:
    """References (else In-Reply-To) of a message indexed before ``thread_refs`` existed.

    The first few kilobytes of the file nearly always hold the header block; a longer
    one is read to its end as the structure records it.
    """
    head = store.files.read_range(m.info.blob_path, 0, _THREAD_HEAD_BYTES)
    end = head.find(b"\r\n\r\n")
    if end >= 0:
        head = head[: end + 2]
    else:
        structure = mime.part_from_json_text(m.info.structure or "")
        head = store.files.read_range(m.info.blob_path, 0, structure.header_end)
    return threads.parent_ids(threads.references_field(head), m.envelope.get("in-reply-to"))


async def do_fetch(session: ImapSession, command: c.Fetch) -> None:
    selected = session.require_selected()
    targets = session.resolve(command.sequence_set, uid=command.uid)
    if command.vanished and not (
        command.uid and session.qresync and command.changed_since is not None
    ):
        raise bad("VANISHED needs UID FETCH with CHANGEDSINCE after ENABLE QRESYNC")
    if command.changed_since is not None:
        session.condstore = True
    if command.vanished and command.changed_since is not None:
        expunged = await session.run(
            session.store.expunged_since, selected.mailbox_id, command.changed_since
        )
        wanted = command.sequence_set.intervals(max([selected.largest_uid, *expunged, 1]))
        gone = [u for u in expunged if any(lo <= u <= hi for lo, hi in wanted)]
        if gone:
            await session.send(
                wire.untagged(b"VANISHED (EARLIER) " + str(SequenceSet.from_numbers(gone)).encode())
            )
    attributes = command.attributes
    sets_seen = not selected.is_read_only and any(
        (isinstance(a, BodySection | BinarySection) and not a.peek)
        or a in (FetchItem.RFC822, FetchItem.RFC822_TEXT)
        for a in attributes
    )
    plan = fetch_data.FetchPlan(
        attributes=attributes,
        with_uid=command.uid,
        with_modseq=session.condstore or command.changed_since is not None,
        flags_changed=sets_seen,
        utf8=session.utf8,
    )
    fields = plan.fields()
    if command.changed_since is not None:
        fields.add("modseq")
    mailbox_id = selected.mailbox_id
    rows: dict[int, IndexRow] | None = None
    if sets_seen:
        # \Seen set on all of them first, under one MODSEQ, then reported as FLAGS.
        uids = [u for _s, u in targets]
        rows = await session.run(_fetch_rows, session.store, mailbox_id, uids, plan, fields)
        unseen = [u for u in uids if u in rows and "\\Seen" not in rows[u].flags]
        if unseen:
            changed, _failed = await session.run(
                session.store.store_flags, mailbox_id, unseen, "add", ["\\Seen"]
            )
            # Reported in this FETCH's FLAGS: not again after it.
            selected.note_reported(changed)
            fresh = await session.run(session.store.rows, mailbox_id, unseen, ("flags", "modseq"))
            for row in fresh:
                rows[row.uid].flags = row.flags
                rows[row.uid].modseq = row.modseq
        if command.changed_since is not None:
            since = command.changed_since
            rows = {uid: row for uid, row in rows.items() if row.modseq > since}
    position = 0
    changes = None
    while position < len(targets):
        # A worker reads a batch's rows and files and assembles its responses; one
        # write each. Rows are read per batch: a whole mailbox's are never all held.
        chunk, position, error, changes = await session.run(
            _fetch_batch,
            session.store,
            mailbox_id,
            targets,
            position,
            rows,
            plan,
            fields,
            command.changed_since,
            selected.recent,
            RefreshFrom.of(selected),
        )
        if chunk:
            await session.send(chunk)
        if error is not None:
            raise CommandError(error.status, error.message, error.code)
    await session.finish(command.tag, "FETCH completed", expunge=False, changes=changes)


def _fetch_batch(
    store: MailStore,
    mailbox_id: int,
    targets: Sequence[tuple[int, int]],
    start: int,
    rows: dict[int, IndexRow] | None,
    plan: fetch_data.FetchPlan,
    fields: set[str],
    changed_since: int | None,
    recent: Collection[int],
    then: RefreshFrom,
) -> tuple[bytes, int, fetch_data.FetchError | None, Changes | None]:
    """The responses from ``targets[start]`` on (see ``fetch.render``); blocking.

    Without ``rows``, the rows of the next few messages are read here (and those not
    changed since ``changed_since`` left out): many when only index data is sent, few
    when files are read, since a batch may stop at its byte limit. After the last
    batch, the refresh that ends the command is read too (``then``).
    """
    if rows is not None:
        chunk, position, error = fetch_data.render(
            targets, start, rows, plan, store.files.read, recent
        )
    else:
        count = _BATCH_READING_FILES if "blob_path" in fields else _BATCH_FROM_INDEX
        window = targets[start : start + count]
        rows = _fetch_rows(store, mailbox_id, [uid for _seq, uid in window], plan, fields)
        if changed_since is not None:
            rows = {uid: row for uid, row in rows.items() if row.modseq > changed_since}
        chunk, used, error = fetch_data.render(window, 0, rows, plan, store.files.read, recent)
        position = start + used
    done = error is None and position >= len(targets)
    return chunk, position, error, then.read(store) if done else None


def _fetch_rows(
    store: MailStore,
    mailbox_id: int,
    uids: list[int],
    plan: fetch_data.FetchPlan,
    fields: set[str],
) -> dict[int, IndexRow]:
    """The index rows a FETCH renders, JSON added where pre-rendered bytes will not do."""
    rows = {row.uid: row for row in store.rows(mailbox_id, uids, fields)}
    lacking = plan.missing(rows.values())
    if lacking:
        extra = set().union(*lacking.values())
        for row in store.rows(mailbox_id, list(lacking), extra):
            if row.uid in rows:
                rows[row.uid].envelope = row.envelope or rows[row.uid].envelope
                rows[row.uid].structure = row.structure or rows[row.uid].structure
    return rows


def _sorted(found: list[Candidate], criteria: tuple[c.SortCriterion, ...]) -> list[Candidate]:
    """RFC 5256 order: stable sorts from the last criterion, ties left in sequence order."""
    ordered = list(found)
    for criterion in reversed(criteria):
        ordered.sort(key=_sort_key(criterion.key), reverse=criterion.reverse)
    return ordered


def _uses_modseq(key: Any) -> bool:
    from groupware.mail.imap import search_keys as sk

    if isinstance(key, sk.ModSeqKey):
        return True
    if isinstance(key, sk.AndKey):
        return any(_uses_modseq(k) for k in key.keys)
    if isinstance(key, sk.OrKey):
        return _uses_modseq(key.left) or _uses_modseq(key.right)
    if isinstance(key, sk.NotKey):
        return _uses_modseq(key.key)
    return False


def _display(addresses: list[list[Any]] | None) -> str:
    for name, _route, mailbox, host in addresses or []:
        if mailbox:
            return (text.decode_words(name) if name else f"{mailbox}@{host}").lower()
    return ""


_SORT_FIELDS: Final = {
    c.SortKey.ARRIVAL: ("internal_date",),
    c.SortKey.DATE: ("sent_date", "internal_date"),
    c.SortKey.SIZE: ("size",),
    c.SortKey.SUBJECT: ("subject_sort",),
    c.SortKey.FROM: ("from_sort",),
    c.SortKey.TO: ("to_sort",),
    c.SortKey.CC: ("cc_sort",),
    c.SortKey.DISPLAYFROM: ("envelope",),
    c.SortKey.DISPLAYTO: ("envelope",),
}


def _sort_key(key: c.SortKey) -> Callable[[Candidate], Any]:
    """RFC 5256 §3 (and RFC 5957 DISPLAYFROM/DISPLAYTO) sort keys."""
    if key is c.SortKey.ARRIVAL:
        return lambda m: m.info.internal_date
    if key is c.SortKey.DATE:
        return lambda m: m.info.sent_date or m.info.internal_date
    if key is c.SortKey.SIZE:
        return lambda m: m.info.size
    if key is c.SortKey.SUBJECT:
        return lambda m: m.info.subject_sort.casefold()
    if key is c.SortKey.FROM:
        return lambda m: m.info.from_sort
    if key is c.SortKey.TO:
        return lambda m: m.info.to_sort
    if key is c.SortKey.CC:
        return lambda m: m.info.cc_sort
    if key is c.SortKey.DISPLAYFROM:
        return lambda m: _display(m.envelope.get("from"))
    return lambda m: _display(m.envelope.get("to"))
