# SPDX-License-Identifier: GPL-3.0-or-later
"""Selected-state commands that change the mailbox (RFC 3501 §6.4, RFC 6851, RFC 4315).

CHECK, CLOSE, UNSELECT, EXPUNGE (UID EXPUNGE), STORE (with UNCHANGEDSINCE, RFC 7162),
COPY and MOVE with COPYUID. Split out of ``imap.session``: each handler is a function
taking the session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from groupware.mail.imap import commands as c
from groupware.mail.imap import wire
from groupware.mail.imap.command_error import no
from groupware.mail.imap.refresh import RefreshFrom
from groupware.mail.imap.sequences import SequenceSet
from groupware.mail.store import Changes, IndexRow, Mailbox, MailStore, QuotaExceededError

if TYPE_CHECKING:
    from groupware.mail.imap.session import ImapSession


async def do_check(session: ImapSession, command: c.Check) -> None:
    await session.finish(command.tag, "CHECK completed")


async def do_close(session: ImapSession, command: c.Close) -> None:
    selected = session.require_selected()
    session.selected = None
    if not selected.is_read_only:
        await session.run(session.store.expunge, selected.mailbox_id, None)
    await session.tagged(command.tag, "OK", "CLOSE completed")


async def do_unselect(session: ImapSession, command: c.Unselect) -> None:
    session.selected = None
    await session.tagged(command.tag, "OK", "UNSELECT completed")


async def do_expunge(session: ImapSession, command: c.Expunge) -> None:
    selected = session.require_selected()
    if selected.is_read_only:
        raise no("Mailbox is read-only", "READ-ONLY")
    uids = None
    if command.uid_set is not None:
        uids = [u for _s, u in session.resolve(command.uid_set, uid=True)]
    await session.run(session.store.expunge, selected.mailbox_id, uids)
    await session.finish(command.tag, "EXPUNGE completed")


async def do_store(session: ImapSession, command: c.Store) -> None:
    selected = session.require_selected()
    if selected.is_read_only:
        raise no("Mailbox is read-only", "READ-ONLY")
    targets = session.resolve(command.sequence_set, uid=command.uid)
    if command.unchanged_since is not None:
        session.condstore = True
    uids = [u for _s, u in targets]
    changed, failed, rows, changes = await session.run(
        _store_then,
        session.store,
        selected.mailbox_id,
        uids,
        command,
        not command.silent or session.condstore,
        RefreshFrom.of(selected),
    )
    if rows is not None:
        infos = {row.uid: row for row in rows}
        changed_uids = {uid for uid, _f, _m in changed}
        failed_set = set(failed)
        lines = []
        for seq, uid in targets:
            info = infos.get(uid)
            if info is None or uid in failed_set:
                continue
            if command.silent and uid not in changed_uids:
                continue
            if command.silent:
                # CONDSTORE (RFC 7162 §3.1.3): .SILENT still reports the new MODSEQ.
                items = [b"MODSEQ (%d)" % info.modseq]
                if command.uid:
                    items.insert(0, b"UID %d" % uid)
                lines.append(b"* %d FETCH (" % seq + b" ".join(items) + b")\r\n")
            else:
                lines.append(
                    session.flags_response(
                        seq, info, with_uid=command.uid, with_modseq=session.condstore
                    )
                )
        if lines:
            await session.send(b"".join(lines))
    code = None
    if failed:
        numbers = failed if command.uid else [s for s, u in targets if u in set(failed)]
        code = wire.ResponseCode("MODIFIED", str(SequenceSet.from_numbers(numbers)).encode())
    # Our own changes are known to the client (reported above, or assumed with
    # .SILENT): the next refresh must not repeat them. The view's modseq stays put,
    # or other sessions' changes below our new modseq would be skipped.
    selected.note_reported(changed)
    await session.finish(command.tag, "STORE completed", code, expunge=False, changes=changes)


async def _target(session: ImapSession, name: str) -> Mailbox:
    found = await session.run(session.store.find_mailbox, session.require_person().id, name)
    if found is None:
        raise no(f"No such mailbox: {name}", "TRYCREATE")
    return found


async def do_copy(session: ImapSession, command: c.Copy) -> None:
    selected = session.require_selected()
    targets = session.resolve(command.sequence_set, uid=command.uid)
    target = await _target(session, command.mailbox)
    try:
        uidvalidity, pairs = await session.run(
            session.store.copy, selected.mailbox_id, [u for _s, u in targets], target.id
        )
    except QuotaExceededError as error:
        raise no("Quota exceeded", "OVERQUOTA") from error
    code = _copyuid(uidvalidity, pairs)
    await session.finish(command.tag, "COPY completed", code)


async def do_move(session: ImapSession, command: c.Move) -> None:
    selected = session.require_selected()
    if selected.is_read_only:
        raise no("Mailbox is read-only", "READ-ONLY")
    targets = session.resolve(command.sequence_set, uid=command.uid)
    target = await _target(session, command.mailbox)
    try:
        uidvalidity, pairs = await session.run(
            session.store.move, selected.mailbox_id, [u for _s, u in targets], target.id
        )
    except QuotaExceededError as error:
        raise no("Quota exceeded", "OVERQUOTA") from error
    code = _copyuid(uidvalidity, pairs)
    if code is not None:
        await session.send(wire.untagged_status("OK", "Moved", code))
    await session.finish(command.tag, "MOVE completed")


def _store_then(
    store: MailStore,
    mailbox_id: int,
    uids: list[int],
    command: c.Store,
    with_rows: bool,
    then: RefreshFrom,
) -> tuple[list[tuple[int, frozenset[str], int]], list[int], list[IndexRow] | None, Changes]:
    """STORE's work, blocking: the change, the rows to answer with, the refresh after."""
    changed, failed = store.store_flags(
        mailbox_id, uids, command.mode.value, command.flags, command.unchanged_since
    )
    rows = store.rows(mailbox_id, uids, ("flags", "modseq")) if with_rows else None
    announced = {uid: modseq for uid, _flags, modseq in changed}
    return changed, failed, rows, then.read(store, announced)


def _copyuid(uidvalidity: int, pairs: list[tuple[int, int]]) -> wire.ResponseCode | None:
    if not pairs:
        return None
    # Both sides ascend together (sources in UID order, targets allocated in order), so
    # ranges keep the pairing (RFC 4315 §3) and a large MOVE gets a short answer.
    source = str(SequenceSet.from_numbers([old for old, _new in pairs]))
    target = str(SequenceSet.from_numbers([new for _old, new in pairs]))
    return wire.ResponseCode("COPYUID", f"{uidvalidity} {source} {target}".encode())
