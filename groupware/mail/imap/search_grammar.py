# SPDX-License-Identifier: GPL-3.0-or-later
"""Grammar of SEARCH, SORT and THREAD (RFC 3501 §6.4.4, RFC 4731, RFC 5256 §3, RFC 7162).

Turns the keys of SEARCH and SORT into the tree of :mod:`search_keys`. Strings are
decoded with the command's CHARSET: US-ASCII (read as UTF-8, since clients send UTF-8
without saying so), UTF-8 and ISO-8859-1 are supported; anything else is refused with
``NO [BADCHARSET (...)]`` as RFC 3501 asks. With UTF8=ACCEPT a CHARSET on SEARCH is
refused with BAD (RFC 6855 §3).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

from groupware.mail.imap import commands as c
from groupware.mail.imap.reader import ImapSyntaxError, Reader
from groupware.mail.imap.search_keys import (
    AllKey,
    AndKey,
    BodyKey,
    DateField,
    DateKey,
    DateRelation,
    FlagKey,
    HeaderKey,
    ModSeqKey,
    NotKey,
    OrKey,
    SearchKey,
    SequenceKey,
    SizeKey,
    SizeRelation,
    TextKey,
    UidKey,
)
from groupware.mail.imap.threads import ThreadAlgorithm

SEARCH_CHARSETS: Final = ("US-ASCII", "UTF-8", "ISO-8859-1")
_CODECS: Final = MappingProxyType({"US-ASCII": "utf-8", "UTF-8": "utf-8", "ISO-8859-1": "latin-1"})
MAX_DEPTH: Final = 32
_MAX_NUMBER64: Final = 9_223_372_036_854_775_807
_ENTRY_TYPES: Final = ("PRIV", "SHARED", "ALL")

_FLAG_KEYS: Final = MappingProxyType(
    {
        "ANSWERED": ("\\Answered", True),
        "DELETED": ("\\Deleted", True),
        "DRAFT": ("\\Draft", True),
        "FLAGGED": ("\\Flagged", True),
        "RECENT": ("\\Recent", True),
        "SEEN": ("\\Seen", True),
        "UNANSWERED": ("\\Answered", False),
        "UNDELETED": ("\\Deleted", False),
        "UNDRAFT": ("\\Draft", False),
        "UNFLAGGED": ("\\Flagged", False),
        "UNSEEN": ("\\Seen", False),
        "OLD": ("\\Recent", False),
    }
)
_HEADER_KEYS: Final = MappingProxyType(
    {"BCC": "Bcc", "CC": "Cc", "FROM": "From", "SUBJECT": "Subject", "TO": "To"}
)
_DATE_KEYS: Final = MappingProxyType(
    {
        "BEFORE": (DateField.INTERNAL, DateRelation.BEFORE),
        "ON": (DateField.INTERNAL, DateRelation.ON),
        "SINCE": (DateField.INTERNAL, DateRelation.SINCE),
        "SENTBEFORE": (DateField.SENT, DateRelation.BEFORE),
        "SENTON": (DateField.SENT, DateRelation.ON),
        "SENTSINCE": (DateField.SENT, DateRelation.SINCE),
    }
)


def check_charset(charset: str) -> str:
    """Upper-case ``charset`` and make sure we can decode it.

    Raises:
        ImapSyntaxError: ``NO [BADCHARSET ...]`` for a charset we do not support.
    """
    upper = charset.upper()
    if upper not in _CODECS:
        raise ImapSyntaxError(
            "unsupported charset",
            status="NO",
            code="BADCHARSET (" + " ".join(SEARCH_CHARSETS) + ")",
        )
    return upper


class _KeyReader:
    """Search keys over a :class:`Reader`, with strings decoded from one charset."""

    def __init__(self, reader: Reader, charset: str | None) -> None:
        self.reader = reader
        self.codec = _CODECS[charset or "US-ASCII"]

    def string(self, what: str) -> str:
        raw = self.reader.astring(what)
        try:
            return raw.decode(self.codec)
        except UnicodeDecodeError:
            self.reader.fail(f"{what} is not valid in the charset")

    def program(self) -> SearchKey:
        keys = [self.key(0)]
        while not self.reader.at_end():
            self.reader.sp()
            keys.append(self.key(0))
        return keys[0] if len(keys) == 1 else AndKey(tuple(keys))

    def key(self, depth: int) -> SearchKey:
        reader = self.reader
        if depth > MAX_DEPTH:
            reader.fail("search criteria nested too deeply")
        if reader.peek_char(b"("):
            keys = reader.paren_list(lambda: self.key(depth + 1))
            return keys[0] if len(keys) == 1 else AndKey(tuple(keys))
        if reader.peek_char(b"0123456789*$"):
            return SequenceKey(reader.sequence_set())
        name = reader.keyword("search key")
        if name in _FLAG_KEYS:
            flag, is_set = _FLAG_KEYS[name]
            return FlagKey(flag, is_set)
        if name == "ALL":
            return AllKey()
        if name == "NEW":
            return AndKey((FlagKey("\\Recent"), FlagKey("\\Seen", is_set=False)))
        handler = _KEY_HANDLERS.get(name)
        if handler is None:
            reader.fail(f"unknown search key {name[:32]}")
        reader.sp()
        return handler(self, depth)

    def header(self, _depth: int) -> SearchKey:
        name = self.reader.text(self.reader.astring("header name"), "header name")
        self.reader.sp()
        return HeaderKey(name, self.string("header value"))

    def keyword(self, is_set: bool) -> SearchKey:
        return FlagKey(self.reader.atom("keyword"), is_set)

    def size(self, relation: SizeRelation) -> SearchKey:
        return SizeKey(relation, self.reader.number("size", maximum=_MAX_NUMBER64))

    def modseq(self, _depth: int) -> SearchKey:
        reader = self.reader
        entry_name = entry_type = None
        if reader.peek_char(b'"'):
            entry_name = reader.text(reader.string("entry name"), "entry name")
            reader.sp()
            entry_type = reader.keyword("entry type").lower()
            if entry_type.upper() not in _ENTRY_TYPES:
                reader.fail("entry type must be priv, shared or all")
            reader.sp()
        return ModSeqKey(
            reader.number("mod-sequence", maximum=_MAX_NUMBER64), entry_name, entry_type
        )

    def negation(self, depth: int) -> SearchKey:
        return NotKey(self.key(depth + 1))

    def disjunction(self, depth: int) -> SearchKey:
        left = self.key(depth + 1)
        self.reader.sp()
        return OrKey(left, self.key(depth + 1))


def _header_key(field: str) -> Callable[[_KeyReader, int], SearchKey]:
    return lambda keys, _depth: HeaderKey(field, keys.string("search string"))


def _date_key(field: DateField, relation: DateRelation) -> Callable[[_KeyReader, int], SearchKey]:
    return lambda keys, _depth: DateKey(field, relation, keys.reader.date())


_KEY_HANDLERS: Final[Mapping[str, Callable[[_KeyReader, int], SearchKey]]] = MappingProxyType(
    {
        **{name: _header_key(field) for name, field in _HEADER_KEYS.items()},
        **{name: _date_key(*spec) for name, spec in _DATE_KEYS.items()},
        "BODY": lambda keys, _depth: BodyKey(keys.string("search string")),
        "TEXT": lambda keys, _depth: TextKey(keys.string("search string")),
        "HEADER": _KeyReader.header,
        "KEYWORD": lambda keys, _depth: keys.keyword(True),
        "UNKEYWORD": lambda keys, _depth: keys.keyword(False),
        "LARGER": lambda keys, _depth: keys.size(SizeRelation.LARGER),
        "SMALLER": lambda keys, _depth: keys.size(SizeRelation.SMALLER),
        "UID": lambda keys, _depth: UidKey(keys.reader.sequence_set()),
        "MODSEQ": _KeyReader.modseq,
        "NOT": _KeyReader.negation,
        "OR": _KeyReader.disjunction,
    }
)


def search_program(reader: Reader, charset: str | None) -> SearchKey:
    """Read ``search-key *(SP search-key)`` to the end of the command.

    Args:
        reader: positioned at the first key.
        charset: an upper-cased charset from :func:`check_charset`, or None.
    """
    return _KeyReader(reader, charset).program()


def _search_return(reader: Reader) -> frozenset[c.SearchReturn] | None:
    if reader.lookahead_keyword() != "RETURN":
        return None
    reader.keyword("RETURN")
    reader.sp()

    def option() -> c.SearchReturn:
        name = reader.keyword("return option")
        try:
            return c.SearchReturn(name)
        except ValueError:
            reader.fail(f"unknown search return option {name[:32]}")

    options = frozenset(reader.paren_list(option, empty=True))
    reader.sp()
    return options or frozenset({c.SearchReturn.ALL})


def search_command(reader: Reader, tag: str, uid: bool) -> c.Command:
    """``SEARCH [RETURN (...)] [CHARSET c] keys`` after the command name."""
    reader.sp()
    returns = _search_return(reader)
    charset = None
    if reader.lookahead_keyword() == "CHARSET":
        if reader.utf8_accept:
            reader.fail("CHARSET is not allowed after ENABLE UTF8=ACCEPT")
        reader.keyword("CHARSET")
        reader.sp()
        charset = check_charset(reader.text(reader.astring("charset"), "charset"))
        reader.sp()
    return c.Search(tag, uid, charset, search_program(reader, charset), returns)


def sort_command(reader: Reader, tag: str, uid: bool) -> c.Command:
    """``SORT [RETURN (...)] (criteria) charset keys`` after the command name."""
    reader.sp()
    returns = _search_return(reader)

    def criterion() -> c.SortCriterion:
        name = reader.keyword("sort key")
        reverse = name == "REVERSE"
        if reverse:
            reader.sp()
            name = reader.keyword("sort key")
        try:
            return c.SortCriterion(c.SortKey(name), reverse)
        except ValueError:
            reader.fail(f"unknown sort key {name[:32]}")

    criteria = tuple(reader.paren_list(criterion))
    reader.sp()
    charset = check_charset(reader.text(reader.astring("charset"), "charset"))
    reader.sp()
    return c.Sort(tag, uid, criteria, charset, search_program(reader, charset), returns)


def thread_command(reader: Reader, tag: str, uid: bool) -> c.Command:
    """``THREAD algorithm charset keys`` after the command name (RFC 5256 §3)."""
    reader.sp()
    name = reader.keyword("threading algorithm")
    try:
        algorithm = ThreadAlgorithm(name)
    except ValueError:
        reader.fail(f"unknown threading algorithm {name[:32]}")
    reader.sp()
    charset = check_charset(reader.text(reader.astring("charset"), "charset"))
    reader.sp()
    return c.Thread(tag, uid, algorithm, charset, search_program(reader, charset))
