# SPDX-License-Identifier: GPL-3.0-or-later
"""The IMAP session: states, and one handler per command (RFC 3501 §3, §6).

States: not authenticated → authenticated → selected → logout. Every handler answers
through ``send``; blocking work (index, files, argon2) runs in worker threads so the
event loop never waits on it. Errors become tagged NO/BAD responses here, the one
place where IMAP replies are made; nothing a client sends can end the session except
LOGOUT, a timeout or an unrecoverable stream.

Extensions: LITERAL+, SASL-IR, ID, ENABLE, IDLE, NAMESPACE, UIDPLUS, MOVE, UNSELECT,
CHILDREN, SPECIAL-USE, LIST-EXTENDED, LIST-STATUS, ESEARCH, SEARCHRES, CONDSTORE,
QRESYNC, SORT, THREAD, QUOTA, UTF8=ACCEPT, BINARY.

The commands are split by state into ``auth_commands``, ``mailbox_commands``,
``selected_commands`` and ``read_commands`` (functions taking the session, found
through :data:`HANDLERS`); this module keeps the session's state and what every
command uses: dispatch, the state check, the tagged answer, the refresh of the
selected mailbox and sequence-set resolution.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import bisect
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from groupware.core.auth import Authenticator
from groupware.core.directory import Directory, Person
from groupware.errors import NotFoundError
from groupware.mail.imap import (
    auth_commands,
    mailbox_commands,
    read_commands,
    selected_commands,
    wire,
)
from groupware.mail.imap import commands as c
from groupware.mail.imap import fetch as fetch_data
from groupware.mail.imap.command_error import CommandError, bad, no
from groupware.mail.imap.fetch_attributes import Section, SectionText
from groupware.mail.imap.refresh import RefreshFrom
from groupware.mail.imap.selected import SelectedMailbox, Update
from groupware.mail.imap.sequences import SequenceSet
from groupware.mail.store import Changes, IndexRow, MailStore, QuotaExceededError

log = logging.getLogger(__name__)

Send = Callable[[bytes], Awaitable[None]]

BASE_CAPABILITIES: Final = ("IMAP4rev1", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE")
AUTHENTICATED_CAPABILITIES: Final = (
    *("IMAP4rev1", "LITERAL+", "ID", "ENABLE", "IDLE", "NAMESPACE", "UIDPLUS", "MOVE"),
    *("UNSELECT", "CHILDREN", "SPECIAL-USE", "LIST-EXTENDED", "LIST-STATUS", "ESEARCH"),
    *("SEARCHRES", "CONDSTORE", "QRESYNC", "SORT", "QUOTA", "QUOTA=RES-STORAGE"),
    *("UTF8=ACCEPT", "BINARY", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES"),
)
# Commands during which EXPUNGE responses must not be sent (RFC 3501 §7.4.1).
_NO_EXPUNGE: Final = (c.Fetch, c.Store, c.Search, c.Sort, c.Thread)


class SharedPersons:
    """One :class:`Person` object for all the sessions of a person.

    Each login reads the person anew; kept by every session, that would be a kilobyte
    per connection (DESIGN.md §10). Sessions take the shared object while it is equal
    to what their login read; a newer one replaces it for the logins after.
    """

    __slots__ = ("_held",)

    def __init__(self) -> None:
        """Nobody logged in yet."""
        self._held: dict[int, tuple[Person, int]] = {}  # id -> (person, sessions)

    def share(self, person: Person) -> Person:
        """The object to keep for ``person``; :meth:`release` it at the end."""
        held = self._held.get(person.id)
        if held is None:
            self._held[person.id] = (person, 1)
            return person
        shared, count = held
        if shared != person:
            shared = person
        self._held[person.id] = (shared, count + 1)
        return shared

    def release(self, person: Person) -> None:
        """A session of ``person`` ended."""
        held = self._held.get(person.id)
        if held is None:
            return
        if held[1] <= 1:
            del self._held[person.id]
        else:
            self._held[person.id] = (held[0], held[1] - 1)


@dataclass(frozen=True, slots=True)
class ImapContext:
    """Shared by every session."""

    store: MailStore
    directory: Directory
    authenticator: Authenticator
    hostname: str
    has_tls: bool
    persons: SharedPersons = field(default_factory=SharedPersons)


class ImapSession:
    """One client connection's IMAP state and command handlers."""

    __slots__ = (
        "client",
        "condstore",
        "context",
        "is_tls",
        "logged_out",
        "person",
        "qresync",
        "selected",
        "send",
        "utf8",
    )

    def __init__(self, context: ImapContext, send: Send, *, client: str, is_tls: bool) -> None:
        self.context = context
        self.send = send
        self.client = client
        self.is_tls = is_tls
        self.person: Person | None = None
        self.selected: SelectedMailbox | None = None
        self.condstore = False
        self.qresync = False
        self.utf8 = False
        self.logged_out = False

    def close(self) -> None:
        """The connection is gone."""
        if self.person is not None:
            self.context.persons.release(self.person)

    async def run(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(function, *args, **kwargs)

    @property
    def store(self) -> MailStore:
        """The mail store."""
        return self.context.store

    def capabilities(self) -> list[str]:
        """What CAPABILITY says in the current state."""
        if self.person is not None:
            return list(AUTHENTICATED_CAPABILITIES)
        caps = list(BASE_CAPABILITIES)
        if not self.is_tls and self.context.has_tls:
            caps += ["STARTTLS", "LOGINDISABLED"]
        else:
            caps.append("AUTH=PLAIN")
        return caps

    def mailbox_text(self, name: str) -> bytes:
        return wire.mailbox(name, utf8=self.utf8)

    async def tagged(self, tag: str, status: str, message: str, code: Any = None) -> None:
        await self.send(wire.tagged(tag, status, message, code, utf8=self.utf8))

    async def execute(self, command: c.Command) -> None:
        """Run one command and answer it (tagged response last)."""
        handler = HANDLERS.get(type(command))
        try:
            try:
                if handler is None:
                    raise bad(f"{command.name} is not supported")
                self._check_state(command)
                await handler(self, command)
            except NotFoundError as error:
                # A mailbox deleted by another session between lookup and use.
                raise no("No such mailbox", "NONEXISTENT") from error
            except QuotaExceededError as error:
                raise no("Quota exceeded", "OVERQUOTA") from error
        except CommandError as error:
            if self.selected is not None and not isinstance(command, _NO_EXPUNGE):
                await self.refresh(allow_expunge=True)
            await self.tagged(command.tag, error.status, error.message, error.code)
        except Exception:  # noqa: BLE001 - boundary: one command must not end the session
            log.exception("imap.command.failed command=%s", command.name)
            await self.tagged(command.tag, "NO", "Internal error, try again later", "SERVERBUG")

    def _check_state(self, command: c.Command) -> None:
        any_state = (c.Capability, c.Noop, c.Logout, c.Id)
        not_authenticated = (c.Starttls, c.Authenticate, c.Login)
        selected_only = (
            c.Check,
            c.Close,
            c.Unselect,
            c.Expunge,
            c.Search,
            c.Sort,
            c.Thread,
            c.Fetch,
            c.Store,
            c.Copy,
            c.Move,
        )
        if isinstance(command, any_state):
            return
        if isinstance(command, not_authenticated):
            if self.person is not None:
                raise bad("Already authenticated")
            return
        if self.person is None:
            raise bad("Authenticate first")
        if isinstance(command, selected_only) and self.selected is None:
            raise bad("No mailbox selected")

    async def finish(
        self,
        tag: str,
        message: str,
        code: Any = None,
        *,
        expunge: bool = True,
        changes: Changes | None = None,
    ) -> None:
        """Send pending updates, then ``tag OK``.

        Args:
            tag: the command's tag.
            message: the text of the OK.
            code: its response code.
            expunge: EXPUNGE responses may be sent (RFC 3501 §7.4.1).
            changes: the refresh, when the command's worker call read it already
                (one thread hop less): see :class:`RefreshFrom`.
        """
        if self.selected is not None:
            if changes is None:
                await self.refresh(allow_expunge=expunge)
            else:
                await self.send_update(self.selected.apply(changes, allow_expunge=expunge))
        await self.tagged(tag, "OK", message, code)

    async def authenticate_plain(self, tag: str, response: bytes) -> None:
        """Finish AUTHENTICATE PLAIN with the client's decoded response (RFC 4616)."""
        await auth_commands.authenticate_plain(self, tag, response)

    @staticmethod
    def decode_sasl(line: bytes) -> bytes | None:
        """A base64 SASL response line; None when malformed. ``*`` cancels (empty)."""
        try:
            return base64.b64decode(line.strip(), validate=True)
        except (binascii.Error, ValueError):
            return None

    def require_person(self) -> Person:
        assert self.person is not None
        return self.person

    def require_selected(self) -> SelectedMailbox:
        assert self.selected is not None
        return self.selected

    async def refresh(self, *, allow_expunge: bool) -> None:
        """Tell the client what changed in the selected mailbox since it last heard."""
        selected = self.require_selected()
        changes = await self.run(RefreshFrom.of(selected).read, self.store)
        update = selected.apply(changes, allow_expunge=allow_expunge)
        await self.send_update(update)

    def refresh_point(self) -> RefreshFrom | None:
        """Where the selected view stands, for a refresh read once for many sessions.

        None without a selected mailbox, or when the view has changes of its own to
        leave out (those are read alone).
        """
        selected = self.selected
        if selected is None or selected.reported:
            return None
        return RefreshFrom.of(selected)

    def apply_refresh(self, changes: Changes) -> bytes:
        """Fold changes read at :meth:`refresh_point` into the view; what to send."""
        return self._update_lines(self.require_selected().apply(changes, allow_expunge=True))

    async def send_update(self, update: Update) -> None:
        lines = self._update_lines(update)
        if lines:
            await self.send(lines)

    def _update_lines(self, update: Update) -> bytes:
        lines: list[bytes] = []
        if update.expunged_uids:
            if self.qresync:
                lines.append(
                    wire.untagged(
                        b"VANISHED " + str(SequenceSet.from_numbers(update.expunged_uids)).encode()
                    )
                )
            else:
                lines.extend(wire.untagged(b"%d EXPUNGE" % seq) for seq in update.expunged_seqs)
        if update.exists is not None:
            lines.append(wire.untagged(b"%d EXISTS" % update.exists))
            lines.append(wire.untagged(b"%d RECENT" % (update.recent or 0)))
        lines.extend(
            self.flags_response(
                seq,
                message,
                with_uid=self.condstore or self.qresync,
                with_modseq=self.condstore,
            )
            for seq, message in update.flag_changes
        )
        return b"".join(lines)

    def flags_response(
        self, seq: int, message: IndexRow, *, with_uid: bool, with_modseq: bool
    ) -> bytes:
        flags = fetch_data.ordered_flags(message.flags)
        if message.uid in self.require_selected().recent:
            flags.append("\\Recent")
        items = [b"FLAGS " + wire.flag_list(flags)]
        if with_uid:
            items.append(b"UID %d" % message.uid)
        if with_modseq:
            items.append(b"MODSEQ (%d)" % message.modseq)
        return wire.untagged(b"%d FETCH (" % seq + b" ".join(items) + b")")

    def resolve(self, sequence_set: SequenceSet, *, uid: bool) -> list[tuple[int, int]]:
        """``[(seq, uid)]`` named by a set; UID sets skip UIDs that do not exist."""
        selected = self.require_selected()
        if sequence_set.is_saved:
            saved = set(selected.saved or ())
            return [(seq, u) for seq, u in enumerate(selected.uids, 1) if u in saved]
        if uid:
            if not selected.count:
                return []
            found: list[tuple[int, int]] = []
            uids = selected.uids
            for low, high in sequence_set.intervals(selected.largest_uid):
                # The view is sorted: each interval is one slice of it.
                first = bisect.bisect_left(uids, low)
                last = bisect.bisect_right(uids, high)
                found.extend(zip(range(first + 1, last + 1), uids[first:last], strict=True))
            return found
        if not selected.count:
            raise bad("The mailbox is empty")
        # RFC 3501 §9 (seq-number): a number past the last message is a client error;
        # intervals() would silently clamp it.
        if any(
            number is not None and number > selected.count
            for bounds in sequence_set.ranges
            for number in bounds
        ):
            raise bad("Invalid message sequence number")
        found = []
        for low, high in sequence_set.intervals(selected.count):
            found.extend(zip(range(low, high + 1), selected.uids[low - 1 : high], strict=True))
        return found


# Command type -> its handler. Each handler takes its own command type, hence ``Any``;
# the three commands the transport handles itself (STARTTLS, AUTHENTICATE, IDLE) have
# none here (``imap.server``), like any command not implemented.
Handler = Callable[[ImapSession, Any], Awaitable[None]]
HANDLERS: Final[Mapping[type[c.Command], Handler]] = {
    c.Capability: auth_commands.do_capability,
    c.Noop: auth_commands.do_noop,
    c.Logout: auth_commands.do_logout,
    c.Id: auth_commands.do_id,
    c.Enable: auth_commands.do_enable,
    c.Login: auth_commands.do_login,
    c.Select: mailbox_commands.do_select,
    c.Examine: mailbox_commands.do_select,
    c.Create: mailbox_commands.do_create,
    c.Delete: mailbox_commands.do_delete,
    c.Rename: mailbox_commands.do_rename,
    c.Subscribe: mailbox_commands.do_subscribe,
    c.Unsubscribe: mailbox_commands.do_unsubscribe,
    c.Namespace: mailbox_commands.do_namespace,
    c.List: mailbox_commands.do_list,
    c.Lsub: mailbox_commands.do_lsub,
    c.Status: mailbox_commands.do_status,
    c.Append: mailbox_commands.do_append,
    c.GetQuotaRoot: mailbox_commands.do_getquotaroot,
    c.GetQuota: mailbox_commands.do_getquota,
    c.SetQuota: mailbox_commands.do_setquota,
    c.Check: selected_commands.do_check,
    c.Close: selected_commands.do_close,
    c.Unselect: selected_commands.do_unselect,
    c.Expunge: selected_commands.do_expunge,
    c.Store: selected_commands.do_store,
    c.Copy: selected_commands.do_copy,
    c.Move: selected_commands.do_move,
    c.Search: read_commands.do_search,
    c.Sort: read_commands.do_sort,
    c.Thread: read_commands.do_thread,
    c.Fetch: read_commands.do_fetch,
}


__all__ = [
    "CommandError",
    "ImapContext",
    "ImapSession",
    "Section",
    "SectionText",
    "RefreshFrom",
    "SharedPersons",
]
