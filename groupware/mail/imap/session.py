# SPDX-License-Identifier: GPL-3.0-or-later
"""The IMAP session: states, and one handler per command (RFC 3501 §3, §6).

States: not authenticated → authenticated → selected → logout. Every handler answers
through ``send``; blocking work (index, files, argon2) runs in worker threads so the
event loop never waits on it. Errors become tagged NO/BAD responses here, the one
place where IMAP replies are made; nothing a client sends can end the session except
LOGOUT, a timeout or an unrecoverable stream.

Extensions: LITERAL+, SASL-IR, ID, ENABLE, IDLE, NAMESPACE, UIDPLUS, MOVE, UNSELECT,
CHILDREN, SPECIAL-USE, LIST-EXTENDED, LIST-STATUS, ESEARCH, SEARCHRES, CONDSTORE,
QRESYNC, SORT, QUOTA, UTF8=ACCEPT, BINARY.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import bisect
import logging
import re
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from groupware.core.auth import APP_PASSWORD_MESSAGE, Authenticator, AuthResult, Outcome
from groupware.core.directory import Directory, Person
from groupware.errors import ConflictError, NotFoundError
from groupware.mail import text
from groupware.mail.imap import commands as c
from groupware.mail.imap import fetch as fetch_data
from groupware.mail.imap import wire
from groupware.mail.imap.fetch_attributes import (
    BinarySection,
    BodySection,
    FetchItem,
    Section,
    SectionText,
)
from groupware.mail.imap.search import Candidate, Searcher
from groupware.mail.imap.selected import SelectedMailbox, Update
from groupware.mail.imap.sequences import SequenceSet
from groupware.mail.store import (
    DELIMITER,
    Changes,
    IndexRow,
    Mailbox,
    MailboxNameError,
    MailboxView,
    MailStore,
    QuotaExceededError,
)

log = logging.getLogger(__name__)

Send = Callable[[bytes], Awaitable[None]]

BASE_CAPABILITIES: Final = ("IMAP4rev1", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE")
AUTHENTICATED_CAPABILITIES: Final = (
    *("IMAP4rev1", "LITERAL+", "ID", "ENABLE", "IDLE", "NAMESPACE", "UIDPLUS", "MOVE"),
    *("UNSELECT", "CHILDREN", "SPECIAL-USE", "LIST-EXTENDED", "LIST-STATUS", "ESEARCH"),
    *("SEARCHRES", "CONDSTORE", "QRESYNC", "SORT", "QUOTA", "QUOTA=RES-STORAGE"),
    *("UTF8=ACCEPT", "BINARY"),
)
PERMANENT_FLAGS: Final = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "\\*")
_SYSTEM_ORDER: Final = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
# Commands during which EXPUNGE responses must not be sent (RFC 3501 §7.4.1).
_NO_EXPUNGE: Final = (c.Fetch, c.Store, c.Search, c.Sort)
# Messages per FETCH batch: rows are read per batch (see _fetch_batch).
_BATCH_FROM_INDEX: Final = 2000
_BATCH_READING_FILES: Final = 100


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


class CommandError(Exception):
    """Answer the command with ``status [code] text``."""

    def __init__(self, status: str, message: str, code: str | wire.ResponseCode | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def _no(message: str, code: str | wire.ResponseCode | None = None) -> CommandError:
    return CommandError("NO", message, code)


def _bad(message: str, code: str | None = None) -> CommandError:
    return CommandError("BAD", message, code)


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

    # --- helpers -------------------------------------------------------------------

    async def _run(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
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

    def _mailbox_text(self, name: str) -> bytes:
        return wire.mailbox(name, utf8=self.utf8)

    async def _tagged(self, tag: str, status: str, message: str, code: Any = None) -> None:
        await self.send(wire.tagged(tag, status, message, code, utf8=self.utf8))

    # --- dispatch ------------------------------------------------------------------

    async def execute(self, command: c.Command) -> None:
        """Run one command and answer it (tagged response last)."""
        handler = getattr(self, f"do_{type(command).__name__.lower()}", None)
        try:
            try:
                if handler is None:
                    raise _bad(f"{command.name} is not supported")
                self._check_state(command)
                await handler(command)
            except NotFoundError as error:
                # A mailbox deleted by another session between lookup and use.
                raise _no("No such mailbox", "NONEXISTENT") from error
            except QuotaExceededError as error:
                raise _no("Quota exceeded", "OVERQUOTA") from error
        except CommandError as error:
            if self.selected is not None and not isinstance(command, _NO_EXPUNGE):
                await self.refresh(allow_expunge=True)
            await self._tagged(command.tag, error.status, error.message, error.code)
        except Exception:  # noqa: BLE001 - boundary: one command must not end the session
            log.exception("imap.command.failed command=%s", command.name)
            await self._tagged(command.tag, "NO", "Internal error, try again later", "SERVERBUG")

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
            c.Fetch,
            c.Store,
            c.Copy,
            c.Move,
        )
        if isinstance(command, any_state):
            return
        if isinstance(command, not_authenticated):
            if self.person is not None:
                raise _bad("Already authenticated")
            return
        if self.person is None:
            raise _bad("Authenticate first")
        if isinstance(command, selected_only) and self.selected is None:
            raise _bad("No mailbox selected")

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
                await self._send_update(self.selected.apply(changes, allow_expunge=expunge))
        await self._tagged(tag, "OK", message, code)

    # --- any state -----------------------------------------------------------------

    async def do_capability(self, command: c.Capability) -> None:
        await self.send(wire.untagged(b"CAPABILITY " + " ".join(self.capabilities()).encode()))
        await self.finish(command.tag, "CAPABILITY completed")

    async def do_noop(self, command: c.Noop) -> None:
        await self.finish(command.tag, "NOOP completed")

    async def do_logout(self, command: c.Logout) -> None:
        await self.send(wire.untagged_status("BYE", "Logging out"))
        await self._tagged(command.tag, "OK", "LOGOUT completed")
        self.logged_out = True

    async def do_id(self, command: c.Id) -> None:
        if command.params:
            log.info("imap.id client=%s params=%s", self.client, dict(command.params))
        info = [
            wire.string("name"),
            wire.string("groupware"),
            wire.string("vendor"),
            wire.string("groupware"),
        ]
        await self.send(wire.untagged(b"ID " + wire.paren_list(info)))
        await self.finish(command.tag, "ID completed")

    async def do_enable(self, command: c.Enable) -> None:
        if self.person is None:
            raise _bad("Authenticate first")
        enabled = []
        for capability in command.capabilities:
            name = capability.upper()
            if name == "CONDSTORE" and not self.condstore:
                self.condstore = True
                enabled.append(name)
            elif name == "QRESYNC" and not self.qresync:
                self.qresync = self.condstore = True
                enabled.append(name)
            elif name in ("UTF8=ACCEPT", "IMAP4REV2") and name == "UTF8=ACCEPT" and not self.utf8:
                self.utf8 = True
                enabled.append(name)
        await self.send(wire.untagged(("ENABLED " + " ".join(enabled)).strip().encode()))
        await self.finish(command.tag, "ENABLE completed")

    # --- not authenticated ---------------------------------------------------------

    async def do_login(self, command: c.Login) -> None:
        if not self.is_tls and self.context.has_tls:
            raise _no("Use STARTTLS before logging in", "PRIVACYREQUIRED")
        result = await self._run(
            self.context.authenticator.authenticate,
            command.userid,
            command.password,
            protocol="imap",
            client=self.client,
        )
        await self._login_result(command.tag, result)

    async def authenticate_plain(self, tag: str, response: bytes) -> None:
        """Finish AUTHENTICATE PLAIN with the client's decoded response (RFC 4616)."""
        parts = response.split(b"\x00")
        if len(parts) != 3:
            await self._tagged(tag, "BAD", "Malformed PLAIN response")
            return
        authzid, authcid, password = (part.decode("utf-8", "replace") for part in parts)
        authenticator = self.context.authenticator
        if authzid and authzid.lower() != authcid.lower():
            result = await self._run(
                authenticator.authenticate_for,
                authcid,
                password,
                authzid,
                protocol="imap",
                client=self.client,
            )
        else:
            result = await self._run(
                authenticator.authenticate, authcid, password, protocol="imap", client=self.client
            )
        await self._login_result(tag, result)

    @staticmethod
    def decode_sasl(line: bytes) -> bytes | None:
        """A base64 SASL response line; None when malformed. ``*`` cancels (empty)."""
        try:
            return base64.b64decode(line.strip(), validate=True)
        except (binascii.Error, ValueError):
            return None

    async def _login_result(self, tag: str, result: AuthResult) -> None:
        if result.outcome is Outcome.THROTTLED:
            await self._tagged(tag, "NO", "Too many failed logins, try again later", "UNAVAILABLE")
            return
        if result.outcome is Outcome.MUST_CHANGE_PASSWORD:
            await self._tagged(
                tag,
                "NO",
                "Your password must be changed first: sign in to the web portal",
                "CONTACTADMIN",
            )
            return
        if result.outcome is Outcome.DISABLED:
            await self._tagged(tag, "NO", "This account is disabled", "CONTACTADMIN")
            return
        if result.outcome is Outcome.APP_PASSWORD_REQUIRED:
            # RFC 5530: the credentials are right but not enough here.
            await self._tagged(tag, "NO", APP_PASSWORD_MESSAGE, "AUTHORIZATIONFAILED")
            return
        if not result.is_ok or result.person is None:
            await self._tagged(tag, "NO", "Wrong login or password", "AUTHENTICATIONFAILED")
            return
        self.person = self.context.persons.share(result.person)
        await self._run(self.store.ensure_mailboxes, result.person)
        code = wire.ResponseCode("CAPABILITY", " ".join(self.capabilities()).encode())
        await self._tagged(tag, "OK", "Logged in", code)

    # --- authenticated: mailboxes ------------------------------------------------------

    def _person(self) -> Person:
        assert self.person is not None
        return self.person

    async def _mailbox(self, name: str) -> Mailbox:
        found = await self._run(self.store.find_mailbox, self._person().id, name)
        if found is None:
            raise _no(f"No such mailbox: {name}", "NONEXISTENT")
        return found

    async def do_select(self, command: c.Select | c.Examine) -> None:
        read_only = isinstance(command, c.Examine)
        if self.selected is not None:
            # RFC 7162 §3.2.11: mark where the old mailbox's responses end.
            self.selected = None
            await self.send(wire.untagged_status("OK", "Previous mailbox closed", "CLOSED"))
        may_open = command.qresync is None or self.qresync
        # The mailbox, then (uid, flags, recent) of every message with \Recent taken,
        # in one worker call; the mod-sequence is read before the messages (MailboxView).
        found, view = await self._run(
            _select_view,
            self.store,
            self._person().id,
            command.mailbox,
            take_recent=not read_only,
            may_open=may_open,
        )
        if found is None:
            raise _no(f"No such mailbox: {command.mailbox}", "NONEXISTENT")
        if command.condstore:
            self.condstore = True
        if not may_open:
            raise _bad("Enable QRESYNC first")
        if view is None:
            raise _no(f"No such mailbox: {command.mailbox}", "NONEXISTENT")
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
            wire.untagged_status(
                "OK", "Flags allowed", wire.ResponseCode("PERMANENTFLAGS", permanent)
            ),
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
        await self.send(b"".join(lines))
        self.selected = selected
        if command.qresync is not None:
            await self._qresync(selected, command.qresync)
        code = "READ-ONLY" if read_only else "READ-WRITE"
        await self._tagged(command.tag, "OK", f"{command.name} completed", code)

    do_examine = do_select

    async def _qresync(self, selected: SelectedMailbox, params: c.QresyncParams) -> None:
        """RFC 7162 §3.2.5: VANISHED (EARLIER) and changed flags since the client's modseq."""
        if params.uid_validity != selected.uidvalidity:
            return
        largest = selected.largest_uid or 1
        known = params.known_uids
        expunged = await self._run(
            self.store.expunged_since, selected.mailbox_id, params.known_modseq
        )
        if known is not None:
            expunged = [
                uid
                for uid in expunged
                if known.contains(uid, max(largest, max(expunged, default=1)))
            ]
        if expunged:
            await self.send(
                wire.untagged(
                    b"VANISHED (EARLIER) " + str(SequenceSet.from_numbers(expunged)).encode()
                )
            )
        rows = await self._run(
            self.store.rows, selected.mailbox_id, selected.uids[:], ("flags", "modseq")
        )
        for row in rows:
            seq = selected.seq_of(row.uid)
            # Changes after the view's modseq are the next refresh's to announce.
            if (
                seq is not None
                and params.known_modseq < row.modseq <= selected.modseq
                and (known is None or known.contains(row.uid, largest))
            ):
                await self.send(self._flags_response(seq, row, with_uid=True, with_modseq=True))

    async def do_create(self, command: c.Create) -> None:
        special = command.special_use[0] if command.special_use else ""
        if len(command.special_use) > 1:
            raise _no("One special use per mailbox", "USEATTR")
        try:
            await self._run(
                self.store.create_mailbox,
                self._person().id,
                command.mailbox.rstrip(DELIMITER),
                special,
            )
        except ConflictError as error:
            raise _no(str(error), "ALREADYEXISTS") from error
        except MailboxNameError as error:
            raise _no(str(error), "CANNOT" if not special else "USEATTR") from error
        await self.finish(command.tag, "CREATE completed")

    async def do_delete(self, command: c.Delete) -> None:
        mailbox = await self._mailbox(command.mailbox)
        if self.selected is not None and self.selected.mailbox_id == mailbox.id:
            self.selected = None
        try:
            await self._run(self.store.delete_mailbox, self._person().id, mailbox.name)
        except MailboxNameError as error:
            raise _no(str(error), "CANNOT") from error
        await self.finish(command.tag, "DELETE completed")

    async def do_rename(self, command: c.Rename) -> None:
        await self._mailbox(command.old)
        try:
            await self._run(self.store.rename_mailbox, self._person().id, command.old, command.new)
        except ConflictError as error:
            raise _no(str(error), "ALREADYEXISTS") from error
        except MailboxNameError as error:
            raise _no(str(error), "CANNOT") from error
        await self.finish(command.tag, "RENAME completed")

    async def do_subscribe(self, command: c.Subscribe) -> None:
        await self._mailbox(command.mailbox)
        await self._run(self.store.set_subscribed, self._person().id, command.mailbox, True)
        await self.finish(command.tag, "SUBSCRIBE completed")

    async def do_unsubscribe(self, command: c.Unsubscribe) -> None:
        try:
            await self._run(self.store.set_subscribed, self._person().id, command.mailbox, False)
        except NotFoundError as error:
            raise _no(str(error), "NONEXISTENT") from error
        await self.finish(command.tag, "UNSUBSCRIBE completed")

    async def do_namespace(self, command: c.Namespace) -> None:
        await self.send(wire.untagged(b'NAMESPACE (("" "/")) NIL NIL'))
        await self.finish(command.tag, "NAMESPACE completed")

    async def do_list(self, command: c.List) -> None:
        options = command.selection_options
        returns = command.return_options
        if command.patterns == ("",):
            await self.send(wire.untagged(b'LIST (\\Noselect) "/" ""'))
            await self.finish(command.tag, "LIST completed")
            return
        mailboxes = await self._run(self.store.list_mailboxes, self._person().id)
        names = {m.name for m in mailboxes}
        patterns = [
            _wildcard(_canonical_pattern(command.reference + pattern))
            for pattern in command.patterns
        ]
        subscribed_below = {
            m.name.rsplit(DELIMITER, depth)[0]
            for m in mailboxes
            if m.is_subscribed
            for depth in range(1, m.name.count(DELIMITER) + 1)
        }
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
            line = (
                b"LIST " + wire.flag_list(attributes) + b' "/" ' + self._mailbox_text(mailbox.name)
            )
            if child_info:
                line += b' ("CHILDINFO" ("SUBSCRIBED"))'
            await self.send(wire.untagged(line))
            if returns.status:
                await self.send(await self._status_line(mailbox, returns.status))
        await self.finish(command.tag, "LIST completed")

    async def do_lsub(self, command: c.Lsub) -> None:
        mailboxes = await self._run(self.store.list_mailboxes, self._person().id)
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
                    + self._mailbox_text(mailbox.name)
                )
                await self.send(wire.untagged(line))
        await self.finish(command.tag, "LSUB completed")

    async def _status_line(self, mailbox: Mailbox, items: tuple[c.StatusItem, ...]) -> bytes:
        counts = await self._run(self.store.counts, mailbox.id)
        fresh = await self._run(self.store.mailbox_by_id, mailbox.id)
        mailbox = fresh or mailbox
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
        return wire.untagged(b"STATUS " + self._mailbox_text(mailbox.name) + b" (" + pairs + b")")

    async def do_status(self, command: c.Status) -> None:
        mailbox = await self._mailbox(command.mailbox)
        await self.send(await self._status_line(mailbox, command.items))
        await self.finish(command.tag, "STATUS completed")

    async def do_append(self, command: c.Append) -> None:
        selected = self.selected
        # The lookups, every message and the refresh after them in one worker call:
        # an APPEND is mostly fsync, not thread hops.
        outcome = await self._run(
            _append_messages,
            self.store,
            self._person(),
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
            raise _no(f"No such mailbox: {command.mailbox}", "TRYCREATE")
        if outcome.failure == "empty":
            raise _no("Empty message")
        if outcome.failure == "quota":
            raise _no("Quota exceeded", "OVERQUOTA")
        if selected is not None and outcome.changes is not None:
            # finish()'s refresh, already read by the worker.
            await self._send_update(selected.apply(outcome.changes, allow_expunge=True))
        code = wire.ResponseCode(
            "APPENDUID",
            b"%d " % outcome.uidvalidity + str(SequenceSet.from_numbers(outcome.uids)).encode(),
        )
        await self._tagged(command.tag, "OK", "APPEND completed", code)

    # --- quota ---------------------------------------------------------------------

    async def _quota_line(self) -> bytes:
        person = await self._run(self.context.directory.by_id, self._person().id)
        used, _count = await self._run(self.store.usage, self._person().id)
        limit = (person or self._person()).quota_bytes
        return wire.untagged(b'QUOTA "" (STORAGE %d %d)' % (-(-used // 1024), limit // 1024))

    async def do_getquotaroot(self, command: c.GetQuotaRoot) -> None:
        await self._mailbox(command.mailbox)
        await self.send(wire.untagged(b"QUOTAROOT " + self._mailbox_text(command.mailbox) + b' ""'))
        await self.send(await self._quota_line())
        await self.finish(command.tag, "GETQUOTAROOT completed")

    async def do_getquota(self, command: c.GetQuota) -> None:
        if command.root != "":
            raise _no("No such quota root", "NONEXISTENT")
        await self.send(await self._quota_line())
        await self.finish(command.tag, "GETQUOTA completed")

    async def do_setquota(self, command: c.SetQuota) -> None:
        raise _no("Quotas are set by the administrators", "NOPERM")

    # --- selected ------------------------------------------------------------------

    def _selected(self) -> SelectedMailbox:
        assert self.selected is not None
        return self.selected

    async def refresh(self, *, allow_expunge: bool) -> None:
        """Tell the client what changed in the selected mailbox since it last heard."""
        selected = self._selected()
        changes = await self._run(RefreshFrom.of(selected).read, self.store)
        update = selected.apply(changes, allow_expunge=allow_expunge)
        await self._send_update(update)

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
        return self._update_lines(self._selected().apply(changes, allow_expunge=True))

    async def _send_update(self, update: Update) -> None:
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
            self._flags_response(
                seq,
                message,
                with_uid=self.condstore or self.qresync,
                with_modseq=self.condstore,
            )
            for seq, message in update.flag_changes
        )
        return b"".join(lines)

    def _flags_response(
        self, seq: int, message: IndexRow, *, with_uid: bool, with_modseq: bool
    ) -> bytes:
        flags = fetch_data.ordered_flags(message.flags)
        if message.uid in self._selected().recent:
            flags.append("\\Recent")
        items = [b"FLAGS " + wire.flag_list(flags)]
        if with_uid:
            items.append(b"UID %d" % message.uid)
        if with_modseq:
            items.append(b"MODSEQ (%d)" % message.modseq)
        return wire.untagged(b"%d FETCH (" % seq + b" ".join(items) + b")")

    def _resolve(self, sequence_set: SequenceSet, *, uid: bool) -> list[tuple[int, int]]:
        """``[(seq, uid)]`` named by a set; UID sets skip UIDs that do not exist."""
        selected = self._selected()
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
            raise _bad("The mailbox is empty")
        # RFC 3501 §9 (seq-number): a number past the last message is a client error;
        # intervals() would silently clamp it.
        if any(
            number is not None and number > selected.count
            for bounds in sequence_set.ranges
            for number in bounds
        ):
            raise _bad("Invalid message sequence number")
        found = []
        for low, high in sequence_set.intervals(selected.count):
            found.extend(zip(range(low, high + 1), selected.uids[low - 1 : high], strict=True))
        return found

    async def do_check(self, command: c.Check) -> None:
        await self.finish(command.tag, "CHECK completed")

    async def do_close(self, command: c.Close) -> None:
        selected = self._selected()
        self.selected = None
        if not selected.is_read_only:
            await self._run(self.store.expunge, selected.mailbox_id, None)
        await self._tagged(command.tag, "OK", "CLOSE completed")

    async def do_unselect(self, command: c.Unselect) -> None:
        self.selected = None
        await self._tagged(command.tag, "OK", "UNSELECT completed")

    async def do_expunge(self, command: c.Expunge) -> None:
        selected = self._selected()
        if selected.is_read_only:
            raise _no("Mailbox is read-only", "READ-ONLY")
        uids = None
        if command.uid_set is not None:
            uids = [u for _s, u in self._resolve(command.uid_set, uid=True)]
        await self._run(self.store.expunge, selected.mailbox_id, uids)
        await self.finish(command.tag, "EXPUNGE completed")

    # --- search and sort -------------------------------------------------------------

    async def _search(
        self, key: Any, fields: Iterable[str] = ()
    ) -> tuple[list[Candidate], Changes]:
        """The matches, and the refresh that ends the command (one worker call)."""
        selected = self._selected()
        searcher = Searcher(
            self.store,
            selected.mailbox_id,
            # A copy of the view: the worker thread reads it while the loop runs on.
            selected.uids[:],
            saved=selected.saved,
            recent_uids=selected.recent,
        )
        then = RefreshFrom.of(selected)

        def search() -> tuple[list[Candidate], Changes]:
            return searcher.run(key, fields), then.read(self.store)

        return await self._run(search)

    async def _search_answer(
        self, command: c.Search | c.Sort, found: list[Candidate], verb: str
    ) -> None:
        numbers = [m.info.uid if command.uid else m.seq for m in found]
        options = command.return_options
        if options is None:
            line = verb.encode() + b"".join(b" %d" % n for n in numbers)
            if self.condstore and found and _uses_modseq(command.key):
                line += b" (MODSEQ %d)" % max(m.info.modseq for m in found)
            await self.send(wire.untagged(line))
            return
        is_saved = c.SearchReturn.SAVE in options
        if is_saved:
            self._selected().saved = [m.info.uid for m in found]
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
        if self.condstore and found and _uses_modseq(command.key):
            parts.append(b"MODSEQ %d" % max(m.info.modseq for m in found))
        await self.send(wire.untagged(b"ESEARCH " + b" ".join(parts)))

    async def do_search(self, command: c.Search) -> None:
        found, changes = await self._search(command.key)
        await self._search_answer(command, found, "SEARCH")
        await self.finish(command.tag, "SEARCH completed", expunge=False, changes=changes)

    async def do_sort(self, command: c.Sort) -> None:
        fields = {name for criterion in command.criteria for name in _SORT_FIELDS[criterion.key]}
        found, changes = await self._search(command.key, fields)
        found = await self._run(_sorted, found, command.criteria)
        await self._search_answer(command, found, "SORT")
        await self.finish(command.tag, "SORT completed", expunge=False, changes=changes)

    # --- fetch ---------------------------------------------------------------------

    async def do_fetch(self, command: c.Fetch) -> None:
        selected = self._selected()
        targets = self._resolve(command.sequence_set, uid=command.uid)
        if command.vanished and not (
            command.uid and self.qresync and command.changed_since is not None
        ):
            raise _bad("VANISHED needs UID FETCH with CHANGEDSINCE after ENABLE QRESYNC")
        if command.changed_since is not None:
            self.condstore = True
        if command.vanished and command.changed_since is not None:
            expunged = await self._run(
                self.store.expunged_since, selected.mailbox_id, command.changed_since
            )
            wanted = command.sequence_set.intervals(max([selected.largest_uid, *expunged, 1]))
            gone = [u for u in expunged if any(lo <= u <= hi for lo, hi in wanted)]
            if gone:
                await self.send(
                    wire.untagged(
                        b"VANISHED (EARLIER) " + str(SequenceSet.from_numbers(gone)).encode()
                    )
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
            with_modseq=self.condstore or command.changed_since is not None,
            flags_changed=sets_seen,
            utf8=self.utf8,
        )
        fields = plan.fields()
        if command.changed_since is not None:
            fields.add("modseq")
        mailbox_id = selected.mailbox_id
        rows: dict[int, IndexRow] | None = None
        if sets_seen:
            # \Seen set on all of them first, under one MODSEQ, then reported as FLAGS.
            uids = [u for _s, u in targets]
            rows = await self._run(_fetch_rows, self.store, mailbox_id, uids, plan, fields)
            unseen = [u for u in uids if u in rows and "\\Seen" not in rows[u].flags]
            if unseen:
                changed, _failed = await self._run(
                    self.store.store_flags, mailbox_id, unseen, "add", ["\\Seen"]
                )
                # Reported in this FETCH's FLAGS: not again after it.
                selected.note_reported(changed)
                fresh = await self._run(self.store.rows, mailbox_id, unseen, ("flags", "modseq"))
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
            chunk, position, error, changes = await self._run(
                _fetch_batch,
                self.store,
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
                await self.send(chunk)
            if error is not None:
                raise CommandError(error.status, error.message, error.code)
        await self.finish(command.tag, "FETCH completed", expunge=False, changes=changes)

    # --- store, copy, move -----------------------------------------------------------

    async def do_store(self, command: c.Store) -> None:
        selected = self._selected()
        if selected.is_read_only:
            raise _no("Mailbox is read-only", "READ-ONLY")
        targets = self._resolve(command.sequence_set, uid=command.uid)
        if command.unchanged_since is not None:
            self.condstore = True
        uids = [u for _s, u in targets]
        changed, failed, rows, changes = await self._run(
            _store_then,
            self.store,
            selected.mailbox_id,
            uids,
            command,
            not command.silent or self.condstore,
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
                        self._flags_response(
                            seq, info, with_uid=command.uid, with_modseq=self.condstore
                        )
                    )
            if lines:
                await self.send(b"".join(lines))
        code = None
        if failed:
            numbers = failed if command.uid else [s for s, u in targets if u in set(failed)]
            code = wire.ResponseCode("MODIFIED", str(SequenceSet.from_numbers(numbers)).encode())
        # Our own changes are known to the client (reported above, or assumed with
        # .SILENT): the next refresh must not repeat them. The view's modseq stays put,
        # or other sessions' changes below our new modseq would be skipped.
        selected.note_reported(changed)
        await self.finish(command.tag, "STORE completed", code, expunge=False, changes=changes)

    async def _target(self, name: str) -> Mailbox:
        found = await self._run(self.store.find_mailbox, self._person().id, name)
        if found is None:
            raise _no(f"No such mailbox: {name}", "TRYCREATE")
        return found

    async def do_copy(self, command: c.Copy) -> None:
        selected = self._selected()
        targets = self._resolve(command.sequence_set, uid=command.uid)
        target = await self._target(command.mailbox)
        try:
            uidvalidity, pairs = await self._run(
                self.store.copy, selected.mailbox_id, [u for _s, u in targets], target.id
            )
        except QuotaExceededError as error:
            raise _no("Quota exceeded", "OVERQUOTA") from error
        code = _copyuid(uidvalidity, pairs)
        await self.finish(command.tag, "COPY completed", code)

    async def do_move(self, command: c.Move) -> None:
        selected = self._selected()
        if selected.is_read_only:
            raise _no("Mailbox is read-only", "READ-ONLY")
        targets = self._resolve(command.sequence_set, uid=command.uid)
        target = await self._target(command.mailbox)
        try:
            uidvalidity, pairs = await self._run(
                self.store.move, selected.mailbox_id, [u for _s, u in targets], target.id
            )
        except QuotaExceededError as error:
            raise _no("Quota exceeded", "OVERQUOTA") from error
        code = _copyuid(uidvalidity, pairs)
        if code is not None:
            await self.send(wire.untagged_status("OK", "Moved", code))
        await self.finish(command.tag, "MOVE completed")


@dataclass(frozen=True, slots=True)
class RefreshFrom:
    """Where a selected view stands, for a refresh computed in a worker thread."""

    mailbox_id: int
    modseq: int
    largest_uid: int
    take_recent: bool
    announced: Mapping[int, int]  # the view's ``reported``, read by the worker only

    @classmethod
    def of(cls, selected: SelectedMailbox) -> RefreshFrom:
        return cls(
            selected.mailbox_id,
            selected.modseq,
            selected.largest_uid,
            not selected.is_read_only,
            selected.reported,
        )

    @property
    def key(self) -> tuple[int, int, int, bool]:
        """Views with equal keys and nothing ``announced`` get the same changes."""
        return (self.mailbox_id, self.modseq, self.largest_uid, self.take_recent)

    def read(self, store: MailStore, also_announced: Mapping[int, int] | None = None) -> Changes:
        """The changes to fold into the view (blocking); ``also_announced`` the command's."""
        announced = {**self.announced, **also_announced} if also_announced else self.announced
        return store.changed_flags(
            self.mailbox_id,
            self.modseq,
            take_recent_after=self.largest_uid if self.take_recent else None,
            announced=announced,
        )


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


def _copyuid(uidvalidity: int, pairs: list[tuple[int, int]]) -> wire.ResponseCode | None:
    if not pairs:
        return None
    # Both sides ascend together (sources in UID order, targets allocated in order), so
    # ranges keep the pairing (RFC 4315 §3) and a large MOVE gets a short answer.
    source = str(SequenceSet.from_numbers([old for old, _new in pairs]))
    target = str(SequenceSet.from_numbers([new for _old, new in pairs]))
    return wire.ResponseCode("COPYUID", f"{uidvalidity} {source} {target}".encode())


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


__all__ = [
    "CommandError",
    "ImapContext",
    "ImapSession",
    "Section",
    "SectionText",
    "RefreshFrom",
    "SharedPersons",
]
