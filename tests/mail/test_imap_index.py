"""What the index keeps for speed answers exactly as the slow way did.

ENVELOPE, BODY and BODYSTRUCTURE are rendered at delivery; SEARCH is narrowed in SQL
before the exact test; STORE rewrites messages by distinct flag set; the text of a body
is read through ``compat32``. Each is checked here against the way it replaces, and an
index made before the new columns existed is upgraded and keeps answering alike.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from groupware.config import Config
from groupware.core.events import EventBus
from groupware.core.services import Core
from groupware.mail import text as mail_text
from groupware.mail.imap import search_keys as sk
from groupware.mail.imap.search import Searcher
from groupware.mail.mime import to_crlf
from groupware.mail.schema import LATE_BLOB_COLUMNS, mail_blobs
from groupware.mail.store import INBOX, MailStore
from tests.mail.imap_support import RawImap, imap_server, new_user, simple_message
from tests.mail.test_imap_fetch import MIXED
from tests.support.servers import RunningServer, add_user, make_config

RAW_UTF8 = (
    "From: Zoé Petit <zoe@z.example>\r\n"
    "To: Équipe <equipe@example.org>, bob@b.example\r\n"
    "Subject: Réunion du conseil\r\n"
    "Date: Thu, 1 Sep 2022 00:30:00 +0200\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "Le conseil de classe aura lieu mardi.\r\n"
).encode()
MESSAGES = [MIXED, RAW_UTF8, simple_message("Sortie au musée"), b"Subject: nu\r\n\r\nx\r\n"]


BOTH_ENGINES = pytest.mark.parametrize("config", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def config(request: pytest.FixtureRequest, tmp_path: Path) -> Config:
    """The test's data folder on SQLite, or on PostgreSQL when parametrised so."""
    if getattr(request, "param", "sqlite") == "postgresql":
        return make_config(tmp_path, database={"url": request.getfixturevalue("postgres_url")})
    return make_config(tmp_path)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with imap_server(tmp_path_factory, "imap-index") as server:
        yield server


def _append_all(raw: RawImap) -> None:
    for message in MESSAGES:
        _untagged, tagged = raw.command(b"APPEND INBOX {%d+}\r\n" % len(message) + message)
        assert b" OK " in tagged


def _listing(raw: RawImap) -> list[bytes]:
    untagged, tagged = raw.command(b"FETCH 1:* (ENVELOPE BODY BODYSTRUCTURE)")
    assert b" OK " in tagged
    return untagged


def test_pre_rendered_items_are_the_bytes_rendered_from_the_json(live: RunningServer) -> None:
    person = new_user(live)
    with RawImap(live) as raw:
        raw.login(person)
        _append_all(raw)
        raw.command(b"EXAMINE INBOX")
        stored = _listing(raw)
        raw.command(b"ENABLE UTF8=ACCEPT")
        raw.command(b"EXAMINE INBOX")
        stored_utf8 = _listing(raw)
    assert b"{%d}\r\n" % len("Réunion du conseil".encode()) in stored[1]  # 8-bit: literal
    assert '"Réunion du conseil"'.encode() in stored_utf8[1]  # quoted with UTF8=ACCEPT
    with live.core.engine.begin() as conn:
        conn.execute(
            update(mail_blobs).values(envelope_imap=None, body_imap=None, bodystructure_imap=None)
        )
    with RawImap(live) as raw:
        raw.login(person)
        raw.command(b"EXAMINE INBOX")
        assert _listing(raw) == stored
        raw.command(b"ENABLE UTF8=ACCEPT")
        raw.command(b"EXAMINE INBOX")
        assert _listing(raw) == stored_utf8


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        (b"TEXT nion", b"1 2"),  # a substring of the subjects: not a word prefix
        (b"TEXT conseil", b"2"),
        (b"TEXT zygomorphique", b""),
        (b"TEXT example.org", b"1 2 3"),
        (b"BODY conseil", b"2"),
        (b"FROM zo", b"2"),
        (b"FROM zo UNSEEN", b"2"),
        (b"OR TEXT musee SUBJECT nu", b"3 4"),
        (b"NOT TEXT nion", b"3 4"),
        (b"TEXT nion OR SEEN BODY mardi", b"2"),
    ],
)
def test_narrowed_search_answers_as_the_full_scan(
    live: RunningServer, criteria: bytes, expected: bytes
) -> None:
    person = new_user(live)
    with RawImap(live) as raw:
        raw.login(person)
        _append_all(raw)
        raw.command(b"EXAMINE INBOX")
        narrowed, _tagged = raw.command(b"SEARCH " + criteria)
        # Blobs indexed before header_text existed are tested one by one.
        with live.core.engine.begin() as conn:
            conn.execute(update(mail_blobs).values(header_text=None))
        scanned, _tagged = raw.command(b"SEARCH " + criteria)
    assert narrowed == scanned == [(b"* SEARCH " + expected).strip() + b"\r\n"]


@BOTH_ENGINES
def test_an_index_made_before_the_new_columns_is_upgraded(core: Core) -> None:
    root = core.config.data_dir / "mail"
    store = MailStore(core.engine, root, EventBus())
    person = add_user(core, "Marie", "Dupont")
    store.ensure_mailboxes(person)
    store.append(person, INBOX, RAW_UTF8)
    with core.engine.begin() as conn:
        for name in LATE_BLOB_COLUMNS:
            conn.execute(text(f"ALTER TABLE mail_blobs DROP COLUMN {name}"))
    upgraded = MailStore(core.engine, root, EventBus())
    MailStore(core.engine, root, EventBus())  # a second opening changes nothing
    inbox = upgraded.get_mailbox(person.id, INBOX).id
    late = select(*(mail_blobs.c[name] for name in LATE_BLOB_COLUMNS)).order_by(mail_blobs.c.id)
    with core.engine.connect() as conn:
        assert [tuple(row) for row in conn.execute(late)] == [(None,) * len(LATE_BLOB_COLUMNS)]
    found = Searcher(upgraded, inbox, [1]).run(sk.TextKey("nion"))
    assert [candidate.info.uid for candidate in found] == [1]
    upgraded.append(person, INBOX, RAW_UTF8)
    with core.engine.connect() as conn:
        _old, new = conn.execute(late).all()
    assert None not in tuple(new)


@BOTH_ENGINES
def test_store_rewrites_each_flag_set_once_under_one_modseq(core: Core) -> None:
    store = MailStore(core.engine, core.config.data_dir / "mail", EventBus())
    person = add_user(core, "Marie", "Dupont")
    store.ensure_mailboxes(person)
    initial = [[], ["\\Seen"], ["$Work"], ["\\Seen", "$Work"], [], ["$work"]]
    for flags in initial:
        store.append(person, INBOX, simple_message("s"), flags=flags)
    inbox = store.get_mailbox(person.id, INBOX).id
    changed, failed = store.store_flags(inbox, range(1, 7), "add", ["$Work"])
    modseqs = {modseq for _uid, _flags, modseq in changed}
    assert [(uid, sorted(flags)) for uid, flags, _m in changed] == [
        (1, ["$Work"]),
        (2, ["$Work", "\\Seen"]),
        (5, ["$Work"]),
        (6, ["$Work", "$work"]),  # keywords are compared as written
    ]
    assert failed == []
    assert len(modseqs) == 1
    assert modseqs == {store.get_mailbox(person.id, INBOX).highest_modseq}
    assert store.store_flags(inbox, range(1, 7), "add", ["$Work"]) == ([], [])
    [modseq] = modseqs
    store.store_flags(inbox, [3], "remove", ["$Work"])
    changed, failed = store.store_flags(
        inbox, [1, 2, 3, 4], "replace", ["\\Flagged"], unchanged_since=modseq
    )
    assert [uid for uid, _flags, _m in changed] == [1, 2, 4]
    assert failed == [3]
    assert [sorted(m.flags) for m in store.messages(inbox)] == [
        ["\\Flagged"],
        ["\\Flagged"],
        [],
        ["\\Flagged"],
        ["$Work"],
        ["$Work", "$work"],
    ]


@BOTH_ENGINES
def test_narrowed_search_and_view_in_the_store(core: Core) -> None:
    store = MailStore(core.engine, core.config.data_dir / "mail", EventBus())
    person = add_user(core, "Marie", "Dupont")
    store.ensure_mailboxes(person)
    for message, flags in zip(MESSAGES, ([], ["\\Seen", "50%_off"], ["$Work"], []), strict=True):
        store.append(person, INBOX, message, flags=flags)
    inbox = store.get_mailbox(person.id, INBOX).id
    searcher = Searcher(store, inbox, [1, 2, 3, 4])
    keys = {
        sk.TextKey("nion"): [1, 2],
        sk.TextKey("50%"): [],  # LIKE's wildcards are plain characters
        sk.HeaderKey("to", "équipe"): [1, 2],
        sk.BodyKey("conseil"): [2],
        sk.AndKey((sk.TextKey("conseil"), sk.FlagKey("\\Seen"))): [2],
        sk.OrKey(sk.TextKey("musee"), sk.HeaderKey("subject", "nu")): [3, 4],
    }
    for key, uids in keys.items():
        assert searcher.prefilter(key) is not None
        assert [candidate.info.uid for candidate in searcher.run(key)] == uids, key
    view = store.view(inbox, take_recent=True)
    assert view is not None
    assert (view.uids, view.first_unseen, sorted(view.recent)) == ([1, 2, 3, 4], 1, [1, 2, 3, 4])
    assert view.keywords == {"50%_off", "$Work"}
    again = store.view(inbox, take_recent=True)
    assert again is not None
    assert again.recent == frozenset()


_BODY = b"\r\nh\xc3\xa9llo <b>x</b> caf=C3=A9 w6k=\r\n"
_TYPES = [
    b"text/plain",
    b"text/plain; charset=utf-8",
    b'text/html; charset="utf-8"',
    b"text/plain; charset=iso-8859-1",
    b"text/plain; charset=x-unknown",
    b"text/plain; charset='utf-8'",
    b"text/plain; charset=us-ascii (comment)",
    b"text/plain; charset*=utf-8''utf-8",
    b"=?utf-8?q?text/plain?=",
    b"text",
    b"application/pdf",
    b"text/plain; charset=idna",
]
_ENCODINGS = [None, b"quoted-printable", b"base64", b"8bit", b"x-unknown"]
_DISPOSITIONS = [None, b"attachment", b"inline; filename=a.txt"]


def _bodies() -> Iterator[bytes]:
    for kind, encoding, disposition in itertools.product(_TYPES, _ENCODINGS, _DISPOSITIONS):
        head = b"Content-Type: " + kind + b"\r\n"
        if encoding:
            head += b"Content-Transfer-Encoding: " + encoding + b"\r\n"
        if disposition:
            head += b"Content-Disposition: " + disposition + b"\r\n"
        yield head + _BODY
        yield (
            b"Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n"
            + head
            + _BODY
            + b"--z\r\nContent-Type: text/plain\r\n\r\nsecond\r\n--z--\r\n"
        )
    yield MIXED
    yield RAW_UTF8


def test_body_text_through_compat32_is_the_default_policys() -> None:
    for message in _bodies():
        data = to_crlf(message)
        assert mail_text.body_text(data) == mail_text._body_text_default(data), message


def test_fetch_in_batches_answers_every_message_once_in_order(live: RunningServer) -> None:
    person = new_user(live)
    count = 230  # more than one batch of bodies (100), fewer than one of index data
    bodies = [simple_message(f"lot {number}", f"corps {number}\r\n") for number in range(count)]
    with RawImap(live) as raw:
        raw.login(person)
        literals = b" ".join(b"{%d+}\r\n" % len(body) + body for body in bodies)
        _untagged, tagged = raw.command(b"APPEND INBOX " + literals)
        assert b" OK " in tagged
        raw.command(b"SELECT INBOX")
        raw.command(b"STORE 5,150,229 +FLAGS.SILENT (\\Flagged)")
        untagged, _tagged = raw.command(b"FETCH 1:* (UID BODY.PEEK[])")
        assert untagged == [
            b"* %d FETCH (UID %d BODY[] {%d}\r\n" % (seq, seq, len(body)) + body + b")\r\n"
            for seq, body in enumerate(bodies, 1)
        ]
        untagged, _tagged = raw.command(b"FETCH 1:* (FLAGS) (CHANGEDSINCE 1)")
        changed = [line.split(b" ")[1] for line in untagged if b"\\Flagged" in line]
        assert changed == [b"5", b"150", b"229"]
        assert len(untagged) == count  # every message changed since MODSEQ 1 (APPEND)
        # Each appended message took one MODSEQ (2 to 231), the STORE the next one.
        untagged, _tagged = raw.command(b"UID FETCH 1:* (BODY.PEEK[]) (CHANGEDSINCE 231)")
    assert [line.split(b" ")[1] for line in untagged] == [b"5", b"150", b"229"]
