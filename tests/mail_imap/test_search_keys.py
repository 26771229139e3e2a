"""Every search key of RFC 3501 §6.4.4 (and MODSEQ, RFC 7162) as its tree node."""

from __future__ import annotations

import datetime

import pytest

from groupware.mail.imap import commands as c
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
from groupware.mail.imap.sequences import SequenceSet
from tests.mail_imap.support import parse

DAY = datetime.date(1994, 2, 1)


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        (b"ALL", AllKey()),
        (b"ANSWERED", FlagKey("\\Answered")),
        (b"BCC boss", HeaderKey("Bcc", "boss")),
        (b"BEFORE 1-Feb-1994", DateKey(DateField.INTERNAL, DateRelation.BEFORE, DAY)),
        (b'BODY "hello world"', BodyKey("hello world")),
        (b"CC {4+}\r\nanne", HeaderKey("Cc", "anne")),
        (b"DELETED", FlagKey("\\Deleted")),
        (b"DRAFT", FlagKey("\\Draft")),
        (b"FLAGGED", FlagKey("\\Flagged")),
        (b"FROM smith", HeaderKey("From", "smith")),
        (b'HEADER Message-ID "<x@y>"', HeaderKey("Message-ID", "<x@y>")),
        (b'HEADER X-Spam ""', HeaderKey("X-Spam", "")),
        (b"KEYWORD $Forwarded", FlagKey("$Forwarded")),
        (b"LARGER 1024", SizeKey(SizeRelation.LARGER, 1024)),
        (b"NEW", AndKey((FlagKey("\\Recent"), FlagKey("\\Seen", is_set=False)))),
        (b"OLD", FlagKey("\\Recent", is_set=False)),
        (b'ON "1-Feb-1994"', DateKey(DateField.INTERNAL, DateRelation.ON, DAY)),
        (b"RECENT", FlagKey("\\Recent")),
        (b"SEEN", FlagKey("\\Seen")),
        (b"SENTBEFORE 01-Feb-1994", DateKey(DateField.SENT, DateRelation.BEFORE, DAY)),
        (b"SENTON 1-feb-1994", DateKey(DateField.SENT, DateRelation.ON, DAY)),
        (b"SENTSINCE 1-FEB-1994", DateKey(DateField.SENT, DateRelation.SINCE, DAY)),
        (b"SINCE 1-Feb-1994", DateKey(DateField.INTERNAL, DateRelation.SINCE, DAY)),
        (b"SMALLER 10", SizeKey(SizeRelation.SMALLER, 10)),
        (b'SUBJECT "r\xc3\xa9union"', HeaderKey("Subject", "réunion")),
        (b"TEXT meeting", TextKey("meeting")),
        (b"TO mooch@owatagu.siam.edu", HeaderKey("To", "mooch@owatagu.siam.edu")),
        (b"UID 1:5,9", UidKey(SequenceSet.parse("1:5,9"))),
        (b"UNANSWERED", FlagKey("\\Answered", is_set=False)),
        (b"UNDELETED", FlagKey("\\Deleted", is_set=False)),
        (b"UNDRAFT", FlagKey("\\Draft", is_set=False)),
        (b"UNFLAGGED", FlagKey("\\Flagged", is_set=False)),
        (b"UNKEYWORD $Junk", FlagKey("$Junk", is_set=False)),
        (b"UNSEEN", FlagKey("\\Seen", is_set=False)),
        (b"2:4,*", SequenceKey(SequenceSet.parse("2:4,*"))),
        (b"NOT SEEN", NotKey(FlagKey("\\Seen"))),
        (b"OR SEEN FLAGGED", OrKey(FlagKey("\\Seen"), FlagKey("\\Flagged"))),
        (
            b"OR (SEEN DELETED) NOT (FLAGGED)",
            OrKey(AndKey((FlagKey("\\Seen"), FlagKey("\\Deleted"))), NotKey(FlagKey("\\Flagged"))),
        ),
        (b"MODSEQ 0", ModSeqKey(0)),
        (
            b'MODSEQ "/flags/\\\\draft" all 620162338',
            ModSeqKey(620162338, "/flags/\\draft", "all"),
        ),
        (b'modseq "/flags/$Junk" PRIV 5', ModSeqKey(5, "/flags/$Junk", "priv")),
        (b"seen unseen", AndKey((FlagKey("\\Seen"), FlagKey("\\Seen", is_set=False)))),
    ],
)
def test_search_key(criteria: bytes, expected: SearchKey) -> None:
    command = parse(b"a SEARCH " + criteria)
    assert isinstance(command, c.Search)
    assert command.key == expected
