# SPDX-License-Identifier: GPL-3.0-or-later
"""Grammar of each command (RFC 3501 §6 and §9 ``command``; extensions as in ``commands``).

:func:`parse_command` reads one complete command (its lines and literals, as the
framing in :mod:`groupware.mail.imap.parser` collected them) into a command object, or
raises :class:`ImapSyntaxError`. Arguments are separated by exactly one space, as the
RFC says; command names and keywords are case-insensitive.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Final

from groupware.mail.imap import commands as c
from groupware.mail.imap.fetch_grammar import fetch_command, store_command
from groupware.mail.imap.reader import (
    MAX_NUMBER64,
    TAG,
    ImapSyntaxError,
    LiteralData,
    Reader,
    decode_mailbox,
)
from groupware.mail.imap.search_grammar import search_command, sort_command, thread_command
from groupware.mail.imap.sequences import SequenceSet

Handler = Callable[[Reader, str, bool], c.Command]

UID_COMMANDS: Final = frozenset(
    {"COPY", "MOVE", "FETCH", "STORE", "SEARCH", "SORT", "THREAD", "EXPUNGE"}
)
_HEAD: Final = re.compile(rb" (?P<name>[A-Za-z]+)(?: (?P<sub>[A-Za-z]+))?")
_BASE64: Final = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_SPECIAL_USE: Final = MappingProxyType(
    {
        flag.upper(): flag
        for flag in ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")
    }
)


def command_head(line: bytes) -> tuple[str | None, str, str | None]:
    """The tag and command name at the start of a command's first line.

    Used by the framing before the whole command has arrived: to answer with the
    right tag, refuse an unknown command before asking for its literal, and pick the
    literal size limit (APPEND carries messages).

    Returns:
        ``(tag, name, problem)``: the tag or None when unreadable; the upper-cased
        name (``"UID FETCH"`` for UID commands), ``""`` if absent; and why the
        command cannot be valid, or None.
    """
    tag_match = TAG.match(line)
    if tag_match is None:
        return None, "", "empty command line" if not line else "invalid tag"
    tag = tag_match[0].decode("ascii")
    head = _HEAD.match(line, tag_match.end())
    if head is None:
        return tag, "", "missing command"
    name = head["name"].decode("ascii").upper()
    if name == "UID":
        sub = (head["sub"] or b"").decode("ascii").upper()
        if not sub:
            return tag, name, "missing command after UID"
        if sub not in UID_COMMANDS:
            return tag, name, f"UID {sub[:32]} is not a command"
        return tag, f"UID {sub}", None
    return tag, name, None if name in _HANDLERS else f"unknown command {name[:32]}"


def parse_command(
    lines: Sequence[bytes], literals: Sequence[LiteralData], *, utf8_accept: bool
) -> c.Command:
    """Read one command.

    Args:
        lines: the command's lines without line endings; all but the last end with a
            literal header.
        literals: the octets of those literals.
        utf8_accept: UTF8=ACCEPT is enabled (RFC 6855).

    Raises:
        ImapSyntaxError: the command is malformed or unknown.
    """
    if len(lines) == 1 and not lines[0]:
        raise ImapSyntaxError("empty command line")
    reader = Reader(lines, literals, utf8_accept=utf8_accept)
    tag = reader.tag()
    if reader.at_end():
        reader.fail("missing command")
    reader.sp()
    name = reader.keyword("command")
    is_uid = name == "UID"
    if is_uid:
        reader.sp()
        name = reader.keyword("command")
        if name not in UID_COMMANDS:
            reader.fail(f"UID {name[:32]} is not a command")
    handler = _HANDLERS.get(name)
    if handler is None:
        reader.fail(f"unknown command {name[:32]}")
    command = handler(reader, tag, is_uid)
    reader.end()
    return command


def _no_arguments(cls: Callable[[str], c.Command]) -> Handler:
    return lambda reader, tag, _uid: cls(tag)


def _mailbox_only(cls: Callable[[str, str], c.Command]) -> Handler:
    def parse(reader: Reader, tag: str, _uid: bool) -> c.Command:
        reader.sp()
        return cls(tag, reader.mailbox())

    return parse


def _authenticate(reader: Reader, tag: str, _uid: bool) -> c.Command:
    reader.sp()
    mechanism = reader.keyword("SASL mechanism")
    initial: bytes | None = None
    if not reader.at_end():
        reader.sp()
        text = reader.atom("initial response")
        if text == "=":
            initial = b""
        elif not _BASE64.fullmatch(text) or len(text) % 4:
            reader.fail("initial response is not base64")
        else:
            try:
                initial = binascii.a2b_base64(text, strict_mode=True)
            except binascii.Error:
                reader.fail("initial response is not base64")
    return c.Authenticate(tag, mechanism, initial)


def _login(reader: Reader, tag: str, _uid: bool) -> c.Command:
    reader.sp()
    userid = reader.text(reader.astring("user name"), "user name")
    reader.sp()
    password = reader.text(reader.astring("password"), "password")
    return c.Login(tag, userid, password)


def _enable(reader: Reader, tag: str, _uid: bool) -> c.Command:
    names = []
    reader.sp()
    names.append(reader.keyword("capability"))
    while not reader.at_end():
        reader.sp()
        names.append(reader.keyword("capability"))
    return c.Enable(tag, tuple(names))


def _id(reader: Reader, tag: str, _uid: bool) -> c.Command:
    reader.sp()
    if reader.lookahead_keyword() == "NIL":
        reader.keyword("NIL")
        return c.Id(tag, None)
    params: dict[str, str | None] = {}

    def pair() -> None:
        key = reader.text(reader.string("ID field"), "ID field")
        reader.sp()
        value = reader.nstring("ID value")
        params[key] = None if value is None else reader.text(value, "ID value")

    reader.paren_list(pair, empty=True)
    return c.Id(tag, params)


def _select(cls: type[c.Select] | type[c.Examine]) -> Handler:
    def parse(reader: Reader, tag: str, _uid: bool) -> c.Command:
        reader.sp()
        mailbox = reader.mailbox()
        condstore = False
        qresync: c.QresyncParams | None = None
        if not reader.at_end():
            reader.sp()
            seen: set[str] = set()

            def param() -> None:
                nonlocal condstore, qresync
                name = reader.keyword("select parameter")
                if name in seen:
                    reader.fail(f"{name} given twice")
                seen.add(name)
                if name == "CONDSTORE":
                    condstore = True
                elif name == "QRESYNC":
                    reader.sp()
                    qresync = _qresync(reader)
                else:
                    reader.fail(f"unknown select parameter {name[:32]}")

            reader.paren_list(param)
        return cls(tag, mailbox, condstore, qresync)

    return parse


def _qresync(reader: Reader) -> c.QresyncParams:
    reader.expect(b"(", "'(' after QRESYNC")
    uid_validity = reader.number("UIDVALIDITY", minimum=1)
    reader.sp()
    modseq = reader.number("mod-sequence", minimum=1, maximum=MAX_NUMBER64)
    known_uids = None
    match = None
    if reader.skip(b" "):
        if not reader.peek_char(b"("):
            known_uids = reader.sequence_set("known UIDs")
            if known_uids.has_star or known_uids.is_saved:
                reader.fail("known UIDs must not contain '*' or '$'")
            if reader.skip(b" "):
                match = _sequence_match(reader)
        else:
            match = _sequence_match(reader)
    reader.expect(b")", "')' after QRESYNC parameters")
    return c.QresyncParams(uid_validity, modseq, known_uids, match)


def _sequence_match(reader: Reader) -> tuple[SequenceSet, SequenceSet]:
    reader.expect(b"(", "'('")
    sequences = reader.sequence_set("known sequence set")
    reader.sp()
    uids = reader.sequence_set("known UID set")
    reader.expect(b")", "')'")
    return sequences, uids


def _create(reader: Reader, tag: str, _uid: bool) -> c.Command:
    reader.sp()
    mailbox = reader.mailbox()
    uses: list[str] = []
    if not reader.at_end():
        reader.sp()

        def param() -> None:
            if reader.keyword("create parameter") != "USE" or uses:
                reader.fail("unknown or repeated create parameter")
            reader.sp()
            uses.extend(reader.paren_list(lambda: _use_attribute(reader)))

        reader.paren_list(param)
    return c.Create(tag, mailbox, tuple(uses))


def _use_attribute(reader: Reader) -> str:
    reader.expect(b"\\", "a special-use attribute")
    name = "\\" + reader.atom("special-use attribute")
    return _SPECIAL_USE.get(name.upper(), name)


def _rename(reader: Reader, tag: str, _uid: bool) -> c.Command:
    reader.sp()
    old = reader.mailbox()
    reader.sp()
    return c.Rename(tag, old, reader.mailbox())


def _reference(reader: Reader) -> str:
    return decode_mailbox(reader.astring("reference name"), utf8_accept=reader.utf8_accept)


def _list(reader: Reader, tag: str, _uid: bool) -> c.Command:
    reader.sp()
    select = c.ListSelectOptions()
    if reader.peek_char(b"("):
        select = _list_select(reader)
        reader.sp()
    reference = _reference(reader)
    reader.sp()
    if reader.peek_char(b"("):
        patterns = tuple(reader.paren_list(reader.list_mailbox))
    else:
        patterns = (reader.list_mailbox(),)
    returns = c.ListReturnOptions()
    if not reader.at_end():
        reader.sp()
        if reader.keyword("RETURN") != "RETURN":
            reader.fail("expected RETURN")
        reader.sp()
        returns = _list_return(reader)
    return c.List(tag, reference, patterns, select, returns)


def _list_select(reader: Reader) -> c.ListSelectOptions:
    names = reader.paren_list(lambda: reader.keyword("selection option"), empty=True)
    known = {"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"}
    for name in names:
        if name not in known:
            reader.fail(f"unknown selection option {name[:32]}")
    if "RECURSIVEMATCH" in names and not {"SUBSCRIBED", "SPECIAL-USE"} & set(names):
        reader.fail("RECURSIVEMATCH needs another selection option")
    return c.ListSelectOptions(
        subscribed="SUBSCRIBED" in names,
        remote="REMOTE" in names,
        recursive_match="RECURSIVEMATCH" in names,
        special_use="SPECIAL-USE" in names,
    )


def _list_return(reader: Reader) -> c.ListReturnOptions:
    flags: set[str] = set()
    status: tuple[c.StatusItem, ...] | None = None

    def option() -> None:
        nonlocal status
        name = reader.keyword("return option")
        if name == "STATUS" and status is None:
            reader.sp()
            status = _status_items(reader)
        elif name in ("SUBSCRIBED", "CHILDREN", "SPECIAL-USE"):
            flags.add(name)
        else:
            reader.fail(f"unknown or repeated return option {name[:32]}")

    reader.paren_list(option, empty=True)
    return c.ListReturnOptions(
        subscribed="SUBSCRIBED" in flags,
        children="CHILDREN" in flags,
        special_use="SPECIAL-USE" in flags,
        status=status,
    )


def _status_items(reader: Reader) -> tuple[c.StatusItem, ...]:
    def item() -> c.StatusItem:
        name = reader.keyword("status item")
        try:
            return c.StatusItem(name)
        except ValueError:
            reader.fail(f"unknown status item {name[:32]}")

    return tuple(reader.paren_list(item))


def _lsub(reader: Reader, tag: str, _uid: bool) -> c.Command:
    reader.sp()
    reference = _reference(reader)
    reader.sp()
    return c.Lsub(tag, reference, reader.list_mailbox())


def _status(reader: Reader, tag: str, _uid: bool) -> c.Command:
    reader.sp()
    mailbox = reader.mailbox()
    reader.sp()
    return c.Status(tag, mailbox, _status_items(reader))


def _append(reader: Reader, tag: str, _uid: bool) -> c.Command:
    reader.sp()
    mailbox = reader.mailbox()
    messages: list[c.AppendMessage] = []
    while not messages or not reader.at_end():
        reader.sp()
        flags: tuple[str, ...] = ()
        internal_date = None
        if reader.peek_char(b"("):
            flags = reader.flag_list(allow_recent=False)
            reader.sp()
        if reader.peek_char(b'"'):
            internal_date = reader.date_time()
            reader.sp()
        if reader.utf8_accept and reader.lookahead_keyword() == "UTF8":
            # RFC 6855 §4: append-data =/ "UTF8" SP "(" literal8 ")"
            reader.keyword("UTF8")
            reader.sp()
            reader.expect(b"(", "'(' after UTF8")
            literal = reader.literal_data()
            reader.expect(b")", "')'")
            is_binary = True
        else:
            literal = reader.literal_data()
            is_binary = literal.is_binary
        messages.append(c.AppendMessage(flags, internal_date, literal.data, is_binary))
    return c.Append(tag, mailbox, tuple(messages))


def _expunge(reader: Reader, tag: str, uid: bool) -> c.Command:
    if not uid:
        return c.Expunge(tag)
    reader.sp()
    return c.Expunge(tag, reader.sequence_set())


def _copy_or_move(cls: type[c.Copy] | type[c.Move]) -> Handler:
    def parse(reader: Reader, tag: str, uid: bool) -> c.Command:
        reader.sp()
        sequence_set = reader.sequence_set()
        reader.sp()
        return cls(tag, uid, sequence_set, reader.mailbox())

    return parse


def _quota_root(reader: Reader) -> str:
    return reader.text(reader.astring("quota root"), "quota root")


def _getquota(reader: Reader, tag: str, _uid: bool) -> c.Command:
    reader.sp()
    return c.GetQuota(tag, _quota_root(reader))


def _setquota(reader: Reader, tag: str, _uid: bool) -> c.Command:
    reader.sp()
    root = _quota_root(reader)
    reader.sp()

    def limit() -> tuple[str, int]:
        resource = reader.keyword("resource name")
        reader.sp()
        return resource, reader.number("resource limit", maximum=MAX_NUMBER64)

    return c.SetQuota(tag, root, tuple(reader.paren_list(limit, empty=True)))


_HANDLERS: Final[Mapping[str, Handler]] = MappingProxyType(
    {
        "CAPABILITY": _no_arguments(c.Capability),
        "NOOP": _no_arguments(c.Noop),
        "LOGOUT": _no_arguments(c.Logout),
        "STARTTLS": _no_arguments(c.Starttls),
        "AUTHENTICATE": _authenticate,
        "LOGIN": _login,
        "ENABLE": _enable,
        "ID": _id,
        "SELECT": _select(c.Select),
        "EXAMINE": _select(c.Examine),
        "CREATE": _create,
        "DELETE": _mailbox_only(c.Delete),
        "RENAME": _rename,
        "SUBSCRIBE": _mailbox_only(c.Subscribe),
        "UNSUBSCRIBE": _mailbox_only(c.Unsubscribe),
        "LIST": _list,
        "LSUB": _lsub,
        "NAMESPACE": _no_arguments(c.Namespace),
        "STATUS": _status,
        "APPEND": _append,
        "CHECK": _no_arguments(c.Check),
        "CLOSE": _no_arguments(c.Close),
        "UNSELECT": _no_arguments(c.Unselect),
        "EXPUNGE": _expunge,
        "SEARCH": search_command,
        "SORT": sort_command,
        "THREAD": thread_command,
        "FETCH": fetch_command,
        "STORE": store_command,
        "COPY": _copy_or_move(c.Copy),
        "MOVE": _copy_or_move(c.Move),
        "IDLE": _no_arguments(c.Idle),
        "GETQUOTA": _getquota,
        "GETQUOTAROOT": _mailbox_only(c.GetQuotaRoot),
        "SETQUOTA": _setquota,
    }
)

__all__ = ["UID_COMMANDS", "ImapSyntaxError", "command_head", "parse_command"]
