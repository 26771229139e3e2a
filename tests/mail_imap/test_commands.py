"""Every command parsed from what RFC examples and real clients send."""

from __future__ import annotations

import datetime

import pytest

from groupware.mail.imap import commands as c
from groupware.mail.imap.fetch_attributes import (
    BinarySection,
    BinarySize,
    BodySection,
    FetchItem,
    Partial,
    Section,
    SectionText,
)
from groupware.mail.imap.search_keys import (
    AllKey,
    AndKey,
    DateField,
    DateKey,
    DateRelation,
    FlagKey,
    HeaderKey,
    NotKey,
    OrKey,
    SequenceKey,
    TextKey,
    UidKey,
)
from groupware.mail.imap.sequences import SequenceSet
from tests.mail_imap.support import commands_of, parse

S = SequenceSet.parse
UTC = datetime.UTC


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"abcd CAPABILITY", c.Capability("abcd")),
        (b"1 capability", c.Capability("1")),
        (b"a002 NOOP", c.Noop("a002")),
        (b"A023 LOGOUT", c.Logout("A023")),
        (b"a001 STARTTLS", c.Starttls("a001")),
        (b"FXXZ CHECK", c.Check("FXXZ")),
        (b"A341 CLOSE", c.Close("A341")),
        (b"A342 UNSELECT", c.Unselect("A342")),
        (b"A001 NAMESPACE", c.Namespace("A001")),
        (b"A002 IDLE", c.Idle("A002")),
        (b"A202 EXPUNGE", c.Expunge("A202")),
        (b"A003 UID EXPUNGE 3000:3002", c.Expunge("A003", S("3000:3002"))),
        (b"t2 ENABLE CONDSTORE X-GOOD-IDEA", c.Enable("t2", ("CONDSTORE", "X-GOOD-IDEA"))),
        (b"a enable utf8=accept", c.Enable("a", ("UTF8=ACCEPT",))),
    ],
)
def test_simple_commands(line: bytes, expected: c.Command) -> None:
    assert parse(line) == expected


def test_command_names_are_case_insensitive_and_tags_kept() -> None:
    assert parse(b"X.1] nOoP") == c.Noop("X.1]")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"a001 LOGIN SMITH SESAME", c.Login("a001", "SMITH", "SESAME")),
        (
            b'AGHB2 LOGIN "user@example.org" "p@ss w\\"rd\\\\"',
            c.Login("AGHB2", "user@example.org", 'p@ss w"rd\\'),
        ),
        (b'3 login "jos\xc3\xa9" {5+}\r\nx y\xc3\xa9', c.Login("3", "jos\u00e9", "x y\u00e9")),
        (b"4 LOGIN {5}\r\nsmith {6}\r\nsesame", c.Login("4", "smith", "sesame")),
    ],
)
def test_login(line: bytes, expected: c.Command) -> None:
    assert parse(line) == expected


def test_login_password_is_not_in_repr() -> None:
    assert "SESAME" not in repr(parse(b"a LOGIN smith SESAME"))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"A001 AUTHENTICATE GSSAPI", c.Authenticate("A001", "GSSAPI", None)),
        (b"2 authenticate plain", c.Authenticate("2", "PLAIN", None)),
        (
            b"a01 AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q=",
            c.Authenticate("a01", "PLAIN", b"test\x00test\x00test"),
        ),
        (b"a AUTHENTICATE EXTERNAL =", c.Authenticate("a", "EXTERNAL", b"")),
    ],
)
def test_authenticate_with_and_without_initial_response(line: bytes, expected: c.Command) -> None:
    assert parse(line) == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"a ID NIL", c.Id("a", None)),
        (b"a ID ()", c.Id("a", {})),
        (
            b'a023 ID ("name" "sodr" "version" "19.34" "vendor" "Pink Floyd Music Limited")',
            c.Id(
                "a023", {"name": "sodr", "version": "19.34", "vendor": "Pink Floyd Music Limited"}
            ),
        ),
        (
            b'2 ID ("name" "iPhone Mail" "version" "19H12" "os" "iOS" "os-version" "15.7 (19H12)")',
            c.Id(
                "2",
                {
                    "name": "iPhone Mail",
                    "version": "19H12",
                    "os": "iOS",
                    "os-version": "15.7 (19H12)",
                },
            ),
        ),
        (
            b'3 ID ("name" "Thunderbird" "support-url" NIL)',
            c.Id("3", {"name": "Thunderbird", "support-url": None}),
        ),
    ],
)
def test_id(line: bytes, expected: c.Command) -> None:
    assert parse(line) == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"A142 SELECT INBOX", c.Select("A142", "INBOX")),
        (b'4 select "inbox"', c.Select("4", "INBOX")),
        (b"A932 EXAMINE blurdybloop", c.Examine("A932", "blurdybloop")),
        (b"A160 SELECT INBOX (CONDSTORE)", c.Select("A160", "INBOX", condstore=True)),
        (
            b"a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))",
            c.Select(
                "a",
                "INBOX",
                qresync=c.QresyncParams(67890007, 20050715194045000, S("41,43:211,214:541")),
            ),
        ),
        (
            b"A02 SELECT INBOX (QRESYNC (67890007 90060115194045000))",
            c.Select("A02", "INBOX", qresync=c.QresyncParams(67890007, 90060115194045000)),
        ),
        (
            b"B02 SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 "
            b"(5000,7500,9000,9990:9999 15000,22500,27000,29970,29973:29997)))",
            c.Select(
                "B02",
                "INBOX",
                qresync=c.QresyncParams(
                    67890007,
                    90060115194045000,
                    S("1:29997"),
                    (S("5000,7500,9000,9990:9999"), S("15000,22500,27000,29970,29973:29997")),
                ),
            ),
        ),
        (
            b"B03 EXAMINE Drafts (CONDSTORE QRESYNC (1 2 (1:3 4:6)))",
            c.Examine(
                "B03",
                "Drafts",
                condstore=True,
                qresync=c.QresyncParams(1, 2, None, (S("1:3"), S("4:6"))),
            ),
        ),
    ],
)
def test_select_and_examine(line: bytes, expected: c.Command) -> None:
    assert parse(line) == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"A003 CREATE owatagusiam/", c.Create("A003", "owatagusiam/")),
        (
            b"t1 CREATE MySpecial (USE (\\drafts \\Sent))",
            c.Create("t1", "MySpecial", ("\\Drafts", "\\Sent")),
        ),
        (b"A683 DELETE blurdybloop", c.Delete("A683", "blurdybloop")),
        (b"A682 RENAME blurdybloop sarasoop", c.Rename("A682", "blurdybloop", "sarasoop")),
        (b'A684 RENAME "Old Stuff" INBOX', c.Rename("A684", "Old Stuff", "INBOX")),
        (b"A002 SUBSCRIBE #news.comp.mail.mime", c.Subscribe("A002", "#news.comp.mail.mime")),
        (b"A002 UNSUBSCRIBE #news.comp.mail.mime", c.Unsubscribe("A002", "#news.comp.mail.mime")),
        (b'A002 LSUB "#news." "comp.mail.*"', c.Lsub("A002", "#news.", "comp.mail.*")),
        (b'17 lsub "" "*"', c.Lsub("17", "", "*")),
        (b'G0001 GETQUOTA "!partition/sda4"', c.GetQuota("G0001", "!partition/sda4")),
        (b'15 getquotaroot "INBOX"', c.GetQuotaRoot("15", "INBOX")),
        (
            b'S0000 SETQUOTA "#user/alice" (STORAGE 510 message 1000)',
            c.SetQuota("S0000", "#user/alice", (("STORAGE", 510), ("MESSAGE", 1000))),
        ),
        (b'S0001 SETQUOTA "" ()', c.SetQuota("S0001", "", ())),
    ],
)
def test_mailbox_commands(line: bytes, expected: c.Command) -> None:
    assert parse(line) == expected


def test_mailbox_names_are_decoded_from_modified_utf7() -> None:
    assert parse(b"a CREATE ~peter/mail/&U,BTFw-/&ZeVnLIqe-") == c.Create(
        "a", "~peter/mail/台北/日本語"
    )
    assert parse(b'a SELECT "Entw&APw-rfe"') == c.Select("a", "Entwürfe")
    assert parse(b'a SELECT "R&AOk-sum&AOk- &- notes"') == c.Select("a", "Résumé & notes")


def test_only_the_name_inbox_is_normalised() -> None:
    assert parse(b"a SELECT iNbOx") == c.Select("a", "INBOX")
    assert parse(b"a SELECT inbox/sub") == c.Select("a", "inbox/sub")


def test_utf8_accept_takes_names_as_utf8_and_ampersand_literally() -> None:
    command = parse('a SELECT "Entwürfe & Co"'.encode(), utf8_accept=True)
    assert command == c.Select("a", "Entwürfe & Co")
    assert parse(b"a SELECT &AOk-", utf8_accept=True) == c.Select("a", "&AOk-")


LIST_DEFAULT = c.ListSelectOptions()


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b'A101 LIST "" ""', c.List("A101", "", ("",))),
        (b"A202 LIST ~/Mail/ %", c.List("A202", "~/Mail/", ("%",))),
        (b'A102 LIST #news.comp.mail.misc ""', c.List("A102", "#news.comp.mail.misc", ("",))),
        (
            b'A01 LIST "" % RETURN (CHILDREN)',
            c.List("A01", "", ("%",), return_options=c.ListReturnOptions(children=True)),
        ),
        (
            b'A02 LIST (SUBSCRIBED) "" "*"',
            c.List("A02", "", ("*",), c.ListSelectOptions(subscribed=True)),
        ),
        (
            b'A04 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)',
            c.List(
                "A04",
                "",
                ("%",),
                c.ListSelectOptions(subscribed=True, recursive_match=True),
                c.ListReturnOptions(children=True),
            ),
        ),
        (
            b'A05 LIST "" ("INBOX" "Drafts" "Sent/%")',
            c.List("A05", "", ("INBOX", "Drafts", "Sent/%")),
        ),
        (b'C06 LIST (REMOTE) "" "*"', c.List("C06", "", ("*",), c.ListSelectOptions(remote=True))),
        (
            b't LIST "" "*" RETURN (SPECIAL-USE STATUS (MESSAGES UNSEEN))',
            c.List(
                "t",
                "",
                ("*",),
                return_options=c.ListReturnOptions(
                    special_use=True, status=(c.StatusItem.MESSAGES, c.StatusItem.UNSEEN)
                ),
            ),
        ),
        (
            b'8 list (SUBSCRIBED) "" "*" RETURN (SPECIAL-USE)',
            c.List(
                "8",
                "",
                ("*",),
                c.ListSelectOptions(subscribed=True),
                c.ListReturnOptions(special_use=True),
            ),
        ),
        (
            b't1 LIST (SPECIAL-USE) "" "*"',
            c.List("t1", "", ("*",), c.ListSelectOptions(special_use=True)),
        ),
        (b'a LIST "" "&ZeVnLIqe-/*"', c.List("a", "", ("日本語/*",))),
    ],
)
def test_list(line: bytes, expected: c.Command) -> None:
    assert parse(line) == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            b"A042 STATUS blurdybloop (UIDNEXT MESSAGES)",
            c.Status("A042", "blurdybloop", (c.StatusItem.UIDNEXT, c.StatusItem.MESSAGES)),
        ),
        (
            b'14 STATUS "Sent" (UIDNEXT MESSAGES UNSEEN RECENT HIGHESTMODSEQ size)',
            c.Status(
                "14",
                "Sent",
                (
                    c.StatusItem.UIDNEXT,
                    c.StatusItem.MESSAGES,
                    c.StatusItem.UNSEEN,
                    c.StatusItem.RECENT,
                    c.StatusItem.HIGHESTMODSEQ,
                    c.StatusItem.SIZE,
                ),
            ),
        ),
    ],
)
def test_status(line: bytes, expected: c.Command) -> None:
    assert parse(line) == expected


MESSAGE = (
    b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n"
    b"From: Fred Foobar <foobar@Blurdybloop.COM>\r\n"
    b"Subject: afternoon meeting\r\n"
    b"To: mooch@owatagu.siam.edu\r\n"
    b"Message-Id: <B27397-0100000@Blurdybloop.COM>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
    b"\r\n"
    b"Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n"
)


def test_append_with_synchronizing_literal_from_rfc3501() -> None:
    data = b"A003 APPEND saved-messages (\\Seen) {%d}\r\n" % len(MESSAGE) + MESSAGE + b"\r\n"
    assert commands_of(data) == [
        c.Append("A003", "saved-messages", (c.AppendMessage(("\\Seen",), None, MESSAGE),))
    ]


def test_append_with_date_time_and_literal_plus() -> None:
    data = (
        b'AGHB3 APPEND "INBOX" (\\Seen $Forwarded) "01-Feb-1994 21:52:25 -0800" {%d+}\r\n'
        % len(MESSAGE)
        + MESSAGE
        + b"\r\n"
    )
    moment = datetime.datetime(
        1994, 2, 1, 21, 52, 25, tzinfo=datetime.timezone(datetime.timedelta(hours=-8))
    )
    assert commands_of(data) == [
        c.Append("AGHB3", "INBOX", (c.AppendMessage(("\\Seen", "$Forwarded"), moment, MESSAGE),))
    ]


@pytest.mark.parametrize("day", [b" 1", b"1", b"01"])
def test_append_date_time_day_forms(day: bytes) -> None:
    data = b'a APPEND x "' + day + b'-Feb-1994 00:00:00 +0000" {1+}\r\nX\r\n'
    (command,) = commands_of(data)
    assert isinstance(command, c.Append)
    assert command.messages[0].internal_date == datetime.datetime(1994, 2, 1, tzinfo=UTC)


def test_multiappend_and_literal8() -> None:
    data = (
        b"A003 APPEND saved-messages (\\Seen) {4}\r\nabcd {3+}\r\nxyz"
        b' (\\Draft) " 9-Mar-2024 10:00:00 +0100" ~{2}\r\n\x00\x01\r\n'
    )
    zone = datetime.timezone(datetime.timedelta(hours=1))
    assert commands_of(data) == [
        c.Append(
            "A003",
            "saved-messages",
            (
                c.AppendMessage(("\\Seen",), None, b"abcd"),
                c.AppendMessage((), None, b"xyz"),
                c.AppendMessage(
                    ("\\Draft",), datetime.datetime(2024, 3, 9, 10, tzinfo=zone), b"\x00\x01", True
                ),
            ),
        )
    ]


def test_append_utf8_data_item_when_utf8_accept_is_on() -> None:
    command = parse(b"a APPEND INBOX UTF8 (~{3+}\r\nabc)", utf8_accept=True)
    assert command == c.Append("a", "INBOX", (c.AppendMessage((), None, b"abc", True),))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            b'A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"',
            c.Search(
                "A282",
                False,
                None,
                AndKey(
                    (
                        FlagKey("\\Flagged"),
                        DateKey(DateField.INTERNAL, DateRelation.SINCE, datetime.date(1994, 2, 1)),
                        NotKey(HeaderKey("From", "Smith")),
                    )
                ),
            ),
        ),
        (
            b'A283 SEARCH TEXT "string not in mailbox"',
            c.Search("A283", False, None, TextKey("string not in mailbox")),
        ),
        (
            b"A284 SEARCH CHARSET UTF-8 TEXT {6}\r\n\xd0\xbc\xd0\xb8\xd1\x80",
            c.Search("A284", False, "UTF-8", TextKey("мир")),
        ),
        (
            b"A285 SEARCH CHARSET ISO-8859-1 SUBJECT {4+}\r\ncaf\xe9",
            c.Search("A285", False, "ISO-8859-1", HeaderKey("Subject", "café")),
        ),
        (
            b"6 UID SEARCH 1:* NOT DELETED",
            c.Search(
                "6", True, None, AndKey((SequenceKey(S("1:*")), NotKey(FlagKey("\\Deleted"))))
            ),
        ),
        (
            b"A282 SEARCH RETURN (MIN COUNT) FLAGGED",
            c.Search(
                "A282",
                False,
                None,
                FlagKey("\\Flagged"),
                frozenset({c.SearchReturn.MIN, c.SearchReturn.COUNT}),
            ),
        ),
        (
            b"A283 SEARCH RETURN () FLAGGED",
            c.Search("A283", False, None, FlagKey("\\Flagged"), frozenset({c.SearchReturn.ALL})),
        ),
        (
            b"A301 UID SEARCH RETURN (SAVE) SINCE 19-Mar-2007 NOT SEEN",
            c.Search(
                "A301",
                True,
                None,
                AndKey(
                    (
                        DateKey(DateField.INTERNAL, DateRelation.SINCE, datetime.date(2007, 3, 19)),
                        NotKey(FlagKey("\\Seen")),
                    )
                ),
                frozenset({c.SearchReturn.SAVE}),
            ),
        ),
        (
            b"A302 UID SEARCH UID $ OR $ 1:10",
            c.Search(
                "A302",
                True,
                None,
                AndKey(
                    (
                        UidKey(SequenceSet(is_saved=True)),
                        OrKey(SequenceKey(SequenceSet(is_saved=True)), SequenceKey(S("1:10"))),
                    )
                ),
            ),
        ),
    ],
)
def test_search(line: bytes, expected: c.Command) -> None:
    assert parse(line) == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            b"A282 SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994",
            c.Sort(
                "A282",
                False,
                (c.SortCriterion(c.SortKey.SUBJECT),),
                "UTF-8",
                DateKey(DateField.INTERNAL, DateRelation.SINCE, datetime.date(1994, 2, 1)),
            ),
        ),
        (
            b"A283 UID SORT (SUBJECT REVERSE DATE) utf-8 ALL",
            c.Sort(
                "A283",
                True,
                (c.SortCriterion(c.SortKey.SUBJECT), c.SortCriterion(c.SortKey.DATE, True)),
                "UTF-8",
                AllKey(),
            ),
        ),
        (
            b'A284 SORT RETURN (MIN MAX) (ARRIVAL) US-ASCII TEXT "not in mailbox"',
            c.Sort(
                "A284",
                False,
                (c.SortCriterion(c.SortKey.ARRIVAL),),
                "US-ASCII",
                TextKey("not in mailbox"),
                frozenset({c.SearchReturn.MIN, c.SearchReturn.MAX}),
            ),
        ),
    ],
)
def test_sort(line: bytes, expected: c.Command) -> None:
    assert parse(line) == expected


THUNDERBIRD_HEADERS = (
    "From",
    "To",
    "Cc",
    "Bcc",
    "Subject",
    "Date",
    "Message-ID",
    "Priority",
    "X-Priority",
    "References",
    "Newsgroups",
    "In-Reply-To",
    "Content-Type",
    "Reply-To",
)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            b"a1 UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc "
            b"Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To "
            b"Content-Type Reply-To)])",
            c.Fetch(
                "a1",
                True,
                S("1:*"),
                (
                    FetchItem.UID,
                    FetchItem.RFC822_SIZE,
                    FetchItem.FLAGS,
                    BodySection(
                        Section((), SectionText.HEADER_FIELDS, THUNDERBIRD_HEADERS), peek=True
                    ),
                ),
            ),
        ),
        (
            b"A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])",
            c.Fetch(
                "A654",
                False,
                S("2:4"),
                (
                    FetchItem.FLAGS,
                    BodySection(Section((), SectionText.HEADER_FIELDS, ("DATE", "FROM"))),
                ),
            ),
        ),
        (
            b"A999 UID FETCH 4827313:4828442 FLAGS",
            c.Fetch("A999", True, S("4827313:4828442"), (FetchItem.FLAGS,)),
        ),
        (
            b"a FETCH 1 ALL",
            c.Fetch(
                "a",
                False,
                S("1"),
                (
                    FetchItem.FLAGS,
                    FetchItem.INTERNALDATE,
                    FetchItem.RFC822_SIZE,
                    FetchItem.ENVELOPE,
                ),
            ),
        ),
        (
            b"a FETCH 1:2 fast",
            c.Fetch(
                "a",
                False,
                S("1:2"),
                (FetchItem.FLAGS, FetchItem.INTERNALDATE, FetchItem.RFC822_SIZE),
            ),
        ),
        (
            b"a FETCH * FULL",
            c.Fetch(
                "a",
                False,
                S("*"),
                (
                    FetchItem.FLAGS,
                    FetchItem.INTERNALDATE,
                    FetchItem.RFC822_SIZE,
                    FetchItem.ENVELOPE,
                    FetchItem.BODY,
                ),
            ),
        ),
        (
            b"A283 FETCH $ (UID INTERNALDATE FLAGS RFC822.SIZE)",
            c.Fetch(
                "A283",
                False,
                SequenceSet(is_saved=True),
                (
                    FetchItem.UID,
                    FetchItem.INTERNALDATE,
                    FetchItem.FLAGS,
                    FetchItem.RFC822_SIZE,
                ),
            ),
        ),
        (
            b"20 UID fetch 7 (UID RFC822.SIZE BODY.PEEK[]<0.10240>)",
            c.Fetch(
                "20",
                True,
                S("7"),
                (
                    FetchItem.UID,
                    FetchItem.RFC822_SIZE,
                    BodySection(Section(), peek=True, partial=Partial(0, 10240)),
                ),
            ),
        ),
        (
            b"a FETCH 3 (RFC822 RFC822.HEADER RFC822.TEXT BODY BODYSTRUCTURE ENVELOPE MODSEQ)",
            c.Fetch(
                "a",
                False,
                S("3"),
                (
                    FetchItem.RFC822,
                    FetchItem.RFC822_HEADER,
                    FetchItem.RFC822_TEXT,
                    FetchItem.BODY,
                    FetchItem.BODYSTRUCTURE,
                    FetchItem.ENVELOPE,
                    FetchItem.MODSEQ,
                ),
            ),
        ),
        (
            b"a FETCH 1 (BODY[1.2.3] BODY[1.2.MIME] BODY[2.HEADER] BODY[TEXT]"
            b" body.peek[1.HEADER.FIELDS.NOT (Received)]<10.20>)",
            c.Fetch(
                "a",
                False,
                S("1"),
                (
                    BodySection(Section((1, 2, 3))),
                    BodySection(Section((1, 2), SectionText.MIME)),
                    BodySection(Section((2,), SectionText.HEADER)),
                    BodySection(Section((), SectionText.TEXT)),
                    BodySection(
                        Section((1,), SectionText.HEADER_FIELDS_NOT, ("Received",)),
                        peek=True,
                        partial=Partial(10, 20),
                    ),
                ),
            ),
        ),
        (
            b"t FETCH 1 (BINARY.PEEK[1]<0.100> BINARY[] BINARY.SIZE[1.2])",
            c.Fetch(
                "t",
                False,
                S("1"),
                (
                    BinarySection((1,), peek=True, partial=Partial(0, 100)),
                    BinarySection(()),
                    BinarySize((1, 2)),
                ),
            ),
        ),
        (
            b"s100 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)",
            c.Fetch("s100", True, S("1:*"), (FetchItem.FLAGS,), changed_since=12345),
        ),
        (
            b"A03 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)",
            c.Fetch("A03", True, S("1:*"), (FetchItem.FLAGS,), changed_since=12345, vanished=True),
        ),
    ],
)
def test_fetch(line: bytes, expected: c.Command) -> None:
    assert parse(line) == expected


def test_fetch_response_names() -> None:
    section = BodySection(
        Section((1,), SectionText.HEADER_FIELDS, ("From", "X Y")), peek=True, partial=Partial(5, 9)
    )
    assert section.response_name() == 'BODY[1.HEADER.FIELDS (From "X Y")]<5>'
    assert BinarySize((1, 2)).response_name() == "BINARY.SIZE[1.2]"
    assert BinarySection((), partial=Partial(0, 1)).response_name() == "BINARY[]<0>"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            b"A003 STORE 2:4 +FLAGS (\\Deleted)",
            c.Store("A003", False, S("2:4"), c.StoreMode.ADD, False, ("\\Deleted",)),
        ),
        (
            b"10 uid store 12 +Flags (\\seen)",
            c.Store("10", True, S("12"), c.StoreMode.ADD, False, ("\\Seen",)),
        ),
        (
            b"13 UID STORE 5 -FLAGS.SILENT \\Deleted $Junk",
            c.Store("13", True, S("5"), c.StoreMode.REMOVE, True, ("\\Deleted", "$Junk")),
        ),
        (
            b"a STORE 1 FLAGS ()",
            c.Store("a", False, S("1"), c.StoreMode.REPLACE, False, ()),
        ),
        (
            b"a103 UID STORE 6,4,8 (UNCHANGEDSINCE 12121230045) +FLAGS.SILENT (\\Deleted)",
            c.Store(
                "a103",
                True,
                S("6,4,8"),
                c.StoreMode.ADD,
                True,
                ("\\Deleted",),
                unchanged_since=12121230045,
            ),
        ),
    ],
)
def test_store(line: bytes, expected: c.Command) -> None:
    assert parse(line) == expected
    assert expected.mode in ("replace", "add", "remove")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"A003 COPY 2:4 MEETING", c.Copy("A003", False, S("2:4"), "MEETING")),
        (b'a UID COPY 1:3 "Sent Items"', c.Copy("a", True, S("1:3"), "Sent Items")),
        (b"a UID MOVE 42:69 foo", c.Move("a", True, S("42:69"), "foo")),
        (b'11 UID MOVE 5 "Trash"', c.Move("11", True, S("5"), "Trash")),
        (b"a MOVE 1:2 &ZeVnLIqe-", c.Move("a", False, S("1:2"), "日本語")),
    ],
)
def test_copy_and_move(line: bytes, expected: c.Command) -> None:
    assert parse(line) == expected


def test_pipelined_session_from_thunderbird() -> None:
    data = (
        b"1 capability\r\n"
        b'2 ID ("name" "Thunderbird" "version" "115.3.1")\r\n'
        b'3 login "marie.dupont" "secret"\r\n'
        b'4 select "INBOX" (CONDSTORE)\r\n'
        b"5 UID fetch 1:* (FLAGS) (CHANGEDSINCE 456)\r\n"
        b"6 UID fetch 9 (UID RFC822.SIZE BODY.PEEK[])\r\n"
        b"7 noop\r\n"
    )
    names = [command.name for command in commands_of(data)]
    assert names == ["CAPABILITY", "ID", "LOGIN", "SELECT", "FETCH", "FETCH", "NOOP"]
