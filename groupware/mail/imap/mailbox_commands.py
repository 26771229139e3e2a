# SPDX-License-Identifier: GPL-3.0-or-later
"""Authenticated-state commands: mailboxes and quota (RFC 3501 §6.3, RFC 9208).

SELECT/EXAMINE (with CONDSTORE and QRESYNC, RFC 7162), CREATE, DELETE, RENAME,
SUBSCRIBE, UNSUBSCRIBE, NAMESPACE, LIST (LIST-EXTENDED, LIST-STATUS), LSUB, STATUS,
APPEND (MULTIAPPEND, UIDPLUS) and GETQUOTA/GETQUOTAROOT/SETQUOTA. Split out of
``imap.session``: each handler is a function taking the session.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from groupware.core.directory import Person
from groupware.errors import ConflictError, NotFoundError
from groupware.mail.imap import commands as c
from groupware.mail.imap import wire
from groupware.mail.imap.command_error import bad, no
from groupware.mail.imap.refresh import RefreshFrom
from groupware.mail.imap.selected import SelectedMailbox
from groupware.mail.imap.sequences import SequenceSet
from groupware.mail.store import (
    DELIMITER,
    Changes,
    Mailbox,
    MailboxNameError,
    MailboxView,
    MailStore,
    QuotaExceededError,
)

if TYPE_CHECKING:
    from groupware.mail.imap.session import ImapSession


PERMANENT_FLAGS: Final = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "\\*")
_SYSTEM_ORDER: Final = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")


def _wildcard(pattern: str) -> re.Pattern[str]:
    """RFC 3501 §6.3.8: ``*`` matches anything, ``%`` anything but the delimiter."""
    out = []
    for ch in pattern:
        if ch == "*":
            out.append(".*")
        elif ch == "%":
            out.append(f"[^{re.escape(DELIMITER)}]*")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def _canonical_pattern(pattern: str) -> str:
    """A LIST pattern with a leading ``INBOX`` in upper case: INBOX is case-insensitive."""
    head, rest = pattern[:5], pattern[5:]
    if head.upper() == "INBOX" and (not rest or rest[0] in (DELIMITER, "*", "%")):
        return "INBOX" + rest
    return pattern


async def do_select(session: ImapSession, command: c.Select | c.Examine) -> None:
    read_only = isinstance(command, c.Examine)
    if session.selected is not None:
        # RFC 7162 §3.2.11: mark where the old mailbox's responses end.
        session.selected = None
        await session.send(wire.untagged_status("OK", "Previous mailbox closed", "CLOSED"))
    may_open = command.qresync is None or session.qresync
    # The mailbox, then (uid, flags, recent) of every message with \Recent taken,
    # in one worker call; the mod-sequence is read before the messages (MailboxView).
    found, view = await session.run(
        _select_view,
        session.store,
        session.require_person().id,
        command.mailbox,
        take_recent=not read_only,
        may_open=may_open,
    )
    if found is None:
        raise no(f"No such mailbox: {command.mailbox}", "NONEXISTENT")
    if command.condstore:
        session.condstore = True
    if not may_open:
        raise bad("Enable QRESYNC first")
    if view is None:
        raise no(f"No such mailbox: {command.mailbox}", "NONEXISTENT")
    mailbox = view.mailbox
    selected = SelectedMailbox.of(mailbox, is_read_only=read_only)
    selected.uids.extend(view.uids)
    selected.modseq = view.known_modseq
    if view.recent:
        selected.recent = view.recent
    keywords = sorted(view.keywords)
    permanent = wire.flag_list([] if read_only else [*PERMANENT_FLAGS[:-1], *keywords, "\\*"])
    lines = [
        wire.untagged(b"FLAGS " + wire.flag_list([*_SYSTEM_ORDER, *keywords])),
        wire.untagged_status("OK", "Flags allowed", wire.ResponseCode("PERMANENTFLAGS", permanent)),
        wire.untagged(b"%d EXISTS" % len(view.uids)),
        wire.untagged(b"%d RECENT" % len(view.recent)),
    ]
    if view.first_unseen is not None:
        lines.append(
            wire.untagged_status(
                "OK", "First unseen", wire.ResponseCode("UNSEEN", b"%d" % view.first_unseen)
            )
        )
    lines += [
        wire.untagged_status(
            "OK", "UIDs valid", wire.ResponseCode("UIDVALIDITY", b"%d" % mailbox.uidvalidity)
        ),
        wire.untagged_status(
            "OK", "Predicted next UID", wire.ResponseCode("UIDNEXT", b"%d" % mailbox.uid_next)
        ),
        wire.untagged_status(
            "OK", "Highest", wire.ResponseCode("HIGHESTMODSEQ", b"%d" % view.known_modseq)
        ),
    ]
    await session.send(b"".join(lines))
    session.selected = selected
    if command.qresync is not None:
        await _qresync(session, selected, command.qresync)
    code = "READ-ONLY" if read_only else "READ-WRITE"
    await session.tagged(command.tag, "OK", f"{command.name} completed", code)


async def _qresync(
    session: ImapSession, selected: SelectedMailbox, params: c.QresyncParams
) -> None:
    """RFC 7162 §3.2.5: VANISHED (EARLIER) and changed flags since the client's modseq."""
    if params.uid_validity != selected.uidvalidity:
        return
    largest = selected.largest_uid or 1
    known = params.known_uids
    expunged = await session.run(
        session.store.expunged_since, selected.mailbox_id, params.known_modseq
    )
    if known is not None:
        expunged = [
            uid for uid in expunged if known.contains(uid, max(largest, max(expunged, default=1)))
        ]
    if expunged:
        await session.send(
            wire.untagged(b"VANISHED (EARLIER) " + str(SequenceSet.from_numbers(expunged)).encode())
        )
    rows = await session.run(
        session.store.rows, selected.mailbox_id, selected.uids[:], ("flags", "modseq")
    )
    for row in rows:
        seq = selected.seq_of(row.uid)
        # Changes after the view's modseq are the next refresh's to announce.
        if (
            seq is not None
            and params.known_modseq < row.modseq <= selected.modseq
            and (known is None or known.contains(row.uid, largest))
        ):
            await session.send(session.flags_response(seq, row, with_uid=True, with_modseq=True))


async def do_create(session: ImapSession, command: c.Create) -> None:
    special = command.special_use[0] if command.special_use else ""
    if len(command.special_use) > 1:
        raise no("One special use per mailbox", "USEATTR")
    try:
        await session.run(
            session.store.create_mailbox,
            session.require_person().id,
            command.mailbox.rstrip(DELIMITER),
            special,
        )
    except ConflictError as error:
        raise no(str(error), "ALREADYEXISTS") from error
    except MailboxNameError as error:
        raise no(str(error), "CANNOT" if not special else "USEATTR") from error
    await session.finish(command.tag, "CREATE completed")


async def do_delete(session: ImapSession, command: c.Delete) -> None:
    mailbox = await _mailbox(session, command.mailbox)
    if session.selected is not None and session.selected.mailbox_id == mailbox.id:
        session.selected = None
    try:
        await session.run(session.store.delete_mailbox, session.require_person().id, mailbox.name)
    except MailboxNameError as error:
        raise no(str(error), "CANNOT") from error
    await session.finish(command.tag, "DELETE completed")


async def do_rename(session: ImapSession, command: c.Rename) -> None:
    await _mailbox(session, command.old)
    try:
        await session.run(
            session.store.rename_mailbox, session.require_person().id, command.old, command.new
        )
    except ConflictError as error:
        raise no(str(error), "ALREADYEXISTS") from error
    except MailboxNameError as error:
        raise no(str(error), "CANNOT") from error
    await session.finish(command.tag, "RENAME completed")


async def do_subscribe(session: ImapSession, command: c.Subscribe) -> None:
    await _mailbox(session, command.mailbox)
    await session.run(
        session.store.set_subscribed, session.require_person().id, command.mailbox, True
    )
    await session.finish(command.tag, "SUBSCRIBE completed")


async def do_unsubscribe(session: ImapSession, command: c.Unsubscribe) -> None:
    try:
        await session.run(
            session.store.set_subscribed, session.require_person().id, command.mailbox, False
        )
    except NotFoundError as error:
        raise no(str(error), "NONEXISTENT") from error
    await session.finish(command.tag, "UNSUBSCRIBE completed")


async def do_namespace(session: ImapSession, command: c.Namespace) -> None:
    await session.send(wire.untagged(b'NAMESPACE (("" "/")) NIL NIL'))
    await session.finish(command.tag, "NAMESPACE completed")


async def do_list(session: ImapSession, command: c.List) -> None:
    options = command.selection_options
    returns = command.return_options
    if command.patterns == ("",):
        await session.send(wire.untagged(b'LIST (\\Noselect) "/" ""'))
        await session.finish(command.tag, "LIST completed")
        return
    mailboxes = await session.run(session.store.list_mailboxes, session.require_person().id)
    names = {m.name for m in mailboxes}
    patterns = [
        _wildcard(_canonical_pattern(command.reference + pattern)) for pattern in command.patterns
    ]
    subscribed_below = {
        m.name.rsplit(DELIMITER, depth)[0]
        for m in mailboxes
        if m.is_subscribed
        for depth in range(1, m.name.count(DELIMITER) + 1)
    }
    listed: list[tuple[Mailbox, bytes]] = []
    for mailbox in mailboxes:
        if not any(p.match(mailbox.name) for p in patterns):
            continue
        # RFC 5258 §3.5: with RECURSIVEMATCH, a parent whose descendants meet
        # SUBSCRIBED is listed too, with CHILDINFO, even when it does not itself.
        child_info = (
            options.subscribed and options.recursive_match and mailbox.name in subscribed_below
        )
        if options.subscribed and not mailbox.is_subscribed and not child_info:
            continue
        if options.special_use and not mailbox.special_use:
            continue
        has_children = any(n.startswith(mailbox.name + DELIMITER) for n in names)
        attributes = ["\\HasChildren" if has_children else "\\HasNoChildren"]
        if mailbox.special_use:
            attributes.append(mailbox.special_use)
        if (options.subscribed or returns.subscribed) and mailbox.is_subscribed:
            attributes.append("\\Subscribed")
        line = b"LIST " + wire.flag_list(attributes) + b' "/" ' + session.mailbox_text(mailbox.name)
        if child_info:
            line += b' ("CHILDINFO" ("SUBSCRIBED"))'
        listed.append((mailbox, wire.untagged(line)))
    # Every STATUS counted in one worker call (RFC 5819: each right after its LIST).
    lines = await _status_lines(session, [m for m, _ in listed], returns.status)
    for mailbox, line in listed:
        await session.send(line)
        if mailbox.id in lines:
            await session.send(lines[mailbox.id])
    await session.finish(command.tag, "LIST completed")


async def do_lsub(session: ImapSession, command: c.Lsub) -> None:
    mailboxes = await session.run(session.store.list_mailboxes, session.require_person().id)
    pattern = _wildcard(_canonical_pattern(command.reference + command.pattern))
    names = {m.name for m in mailboxes}
    for mailbox in mailboxes:
        if mailbox.is_subscribed and pattern.match(mailbox.name):
            has_children = any(n.startswith(mailbox.name + DELIMITER) for n in names)
            attributes = ["\\HasChildren" if has_children else "\\HasNoChildren"]
            line = (
                b"LSUB "
                + wire.flag_list(attributes)
                + b' "/" '
                + session.mailbox_text(mailbox.name)
            )
            await session.send(wire.untagged(line))
    await session.finish(command.tag, "LSUB completed")


async def _status_lines(
    session: ImapSession, mailboxes: list[Mailbox], items: tuple[c.StatusItem, ...] | None
) -> dict[int, bytes]:
    """The STATUS responses of ``mailboxes`` (none without ``items``), by mailbox id."""
    if not items or not mailboxes:
        return {}
    with_recent = c.StatusItem.RECENT in items
    found = await session.run(
        session.store.statuses, [m.id for m in mailboxes], with_recent=with_recent
    )
    lines: dict[int, bytes] = {}
    for mailbox_id, (mailbox, counts) in found.items():
        values = {
            c.StatusItem.MESSAGES: counts["messages"],
            c.StatusItem.RECENT: counts["recent"],
            c.StatusItem.UIDNEXT: mailbox.uid_next,
            c.StatusItem.UIDVALIDITY: mailbox.uidvalidity,
            c.StatusItem.UNSEEN: counts["unseen"],
            c.StatusItem.HIGHESTMODSEQ: mailbox.highest_modseq,
            c.StatusItem.SIZE: counts["size"],
            c.StatusItem.DELETED: counts["deleted"],
        }
        pairs = b" ".join(item.value.encode() + b" %d" % values[item] for item in items)
        name = session.mailbox_text(mailbox.name)
        lines[mailbox_id] = wire.untagged(b"STATUS " + name + b" (" + pairs + b")")
    return lines


async def do_status(session: ImapSession, command: c.Status) -> None:
    mailbox = await _mailbox(session, command.mailbox)
    lines = await _status_lines(session, [mailbox], command.items)
    if mailbox.id not in lines:  # deleted since it was looked up
        raise no(f"no mailbox {command.mailbox}", "NONEXISTENT")
    await session.send(lines[mailbox.id])
    await session.finish(command.tag, "STATUS completed")


async def do_append(session: ImapSession, command: c.Append) -> None:
    selected = session.selected
    # The lookups, every message and the refresh after them in one worker call:
    # an APPEND is mostly fsync, not thread hops.
    outcome = await session.run(
        _append_messages,
        session.store,
        session.require_person(),
        command.mailbox,
        command.messages,
        None if selected is None else RefreshFrom.of(selected),
    )
    if (
        selected is not None
        and not selected.is_read_only
        and outcome.mailbox_id == selected.mailbox_id
    ):
        # Stored with \Recent already this session's (see MailStore.append).
        selected.add_recent(outcome.uids)
    if not outcome.has_mailbox:
        raise no(f"No such mailbox: {command.mailbox}", "TRYCREATE")
    if outcome.failure == "empty":
        raise no("Empty message")
    if outcome.failure == "quota":
        raise no("Quota exceeded", "OVERQUOTA")
    if selected is not None and outcome.changes is not None:
        # finish()'s refresh, already read by the worker.
        await session.send_update(selected.apply(outcome.changes, allow_expunge=True))
    code = wire.ResponseCode(
        "APPENDUID",
        b"%d " % outcome.uidvalidity + str(SequenceSet.from_numbers(outcome.uids)).encode(),
    )
    await session.tagged(command.tag, "OK", "APPEND completed", code)


async def _quota_line(session: ImapSession) -> bytes:
    person = await session.run(session.context.directory.by_id, session.require_person().id)
    used, _count = await session.run(session.store.usage, session.require_person().id)
    limit = (person or session.require_person()).quota_bytes
    return wire.untagged(b'QUOTA "" (STORAGE %d %d)' % (-(-used // 1024), limit // 1024))


async def do_getquotaroot(session: ImapSession, command: c.GetQuotaRoot) -> None:
    await _mailbox(session, command.mailbox)
    await session.send(
        wire.untagged(b"QUOTAROOT " + session.mailbox_text(command.mailbox) + b' ""')
    )
    await session.send(await _quota_line(session))
    await session.finish(command.tag, "GETQUOTAROOT completed")


async def do_getquota(session: ImapSession, command: c.GetQuota) -> None:
    if command.root != "":
        raise no("No such quota root", "NONEXISTENT")
    await session.send(await _quota_line(session))
    await session.finish(command.tag, "GETQUOTA completed")


async def do_setquota(session: ImapSession, command: c.SetQuota) -> None:
    raise no("Quotas are set by the administrators", "NOPERM")


async def _mailbox(session: ImapSession, name: str) -> Mailbox:
    found = await session.run(session.store.find_mailbox, session.require_person().id, name)
    if found is None:
        raise no(f"No such mailbox: {name}", "NONEXISTENT")
    return found


@dataclass(frozen=True, slots=True)
class _Appended:
    has_mailbox: bool  # False: no such mailbox, nothing stored
    mailbox_id: int
    uidvalidity: int
    uids: list[int]
    failure: str | None  # "empty" or "quota": the messages before it are stored
    changes: Changes | None = None  # the refresh after a successful APPEND


def _append_messages(
    store: MailStore,
    person: Person,
    mailbox_name: str,
    messages: Sequence[c.AppendMessage],
    refresh: RefreshFrom | None,
) -> _Appended:
    """APPEND's work, blocking: each message (the store reads the quota), then the refresh."""
    if not messages or not messages[0].data:
        # Nothing to store, but a missing mailbox is still the first thing to say.
        if store.find_mailbox(person.id, mailbox_name) is None:
            return _Appended(False, 0, 0, [], None)
        return _Appended(True, 0, 0, [], "empty")
    uids: list[int] = []
    mailbox_id = uidvalidity = 0
    for message in messages:
        if not message.data:
            return _Appended(True, mailbox_id, uidvalidity, uids, "empty")
        try:
            result = store.append(
                person,
                mailbox_name,
                message.data,
                message.flags,
                message.internal_date,
                recent_taken_in=refresh.mailbox_id if refresh and refresh.take_recent else None,
            )
        except NotFoundError:
            if uids:
                raise  # deleted by another session meanwhile: NONEXISTENT
            return _Appended(False, 0, 0, [], None)
        except QuotaExceededError:
            return _Appended(True, mailbox_id, uidvalidity, uids, "quota")
        uids.append(result.uid)
        mailbox_id, uidvalidity = result.mailbox_id, result.uidvalidity
    changes = None if refresh is None else refresh.read(store)
    return _Appended(True, mailbox_id, uidvalidity, uids, None, changes)


def _select_view(
    store: MailStore, person_id: int, name: str, *, take_recent: bool, may_open: bool
) -> tuple[Mailbox | None, MailboxView | None]:
    """SELECT's reads, blocking: the mailbox by name, then its view if ``may_open``."""
    found = store.find_mailbox(person_id, name)
    if found is None or not may_open:
        return found, None
    return found, store.view(found.id, take_recent=take_recent)
