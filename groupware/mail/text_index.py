# SPDX-License-Identifier: GPL-3.0-or-later
"""Full-text index of message headers and text bodies, one entry per blob.

SQLite: an FTS5 table (``unicode61``, diacritics folded, so "reunion" finds
"réunion"). PostgreSQL: ``tsvector`` columns with GIN indexes, same interface and
the same words (see :class:`PostgresTextIndex`).
Words match by prefix, as Dovecot's FTS does: SEARCH BODY "budg" finds "budget".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final, Protocol

from sqlalchemy import Connection, Engine, text

from groupware.core.names import ascii_fold

_WORDS: Final = re.compile(r"\w+", re.UNICODE)
_LEXEME: Final = re.compile(r"[^\W_]+")
FIELDS: Final = ("subject", "addresses", "body")
#: One blob's entry: ``(blob id, subject, addresses, body)``.
Entry = tuple[int, str, str, str]
#: PostgreSQL's limits are 2047 bytes per lexeme and 1 MiB per tsvector
#: (``MAXSTRLEN``, ``MAXSTRPOS``); 500 characters are under 2047 bytes in UTF-8.
MAX_LEXEME_CHARS: Final = 500
MAX_LEXEMES_BYTES: Final = 1_000_000


def query_words(query: str) -> list[str]:
    """The words of a search string (punctuation is a separator, as in the index)."""
    return [word.lower() for word in _WORDS.findall(query)]


class TextIndex(Protocol):
    """What the store needs from a full-text engine."""

    def create(self, engine: Engine) -> None:
        """Create the index structures if missing."""

    def add(self, conn: Connection, blob_id: int, subject: str, addresses: str, body: str) -> None:
        """Index one blob."""

    def add_many(self, conn: Connection, entries: Sequence[Entry]) -> None:
        """Index several blobs in one statement: ``(blob id, subject, addresses, body)`` each."""

    def remove(self, conn: Connection, blob_id: int) -> None:
        """Forget one blob."""

    def blob_ids(self, conn: Connection, field: str | None, query: str) -> set[int]:
        """Blobs whose ``field`` (or any field when None) contains every word of ``query``."""


_SQLITE_INSERT: Final = text(
    "INSERT INTO mail_text(rowid, subject, addresses, body) VALUES (:i, :s, :a, :b)"
)
_POSTGRES_INSERT: Final = text(
    "INSERT INTO mail_text (blob_id, subject, addresses, body) VALUES (:i, "
    "array_to_tsvector(CAST(:s AS text[])), array_to_tsvector(CAST(:a AS text[])), "
    "array_to_tsvector(CAST(:b AS text[])))"
)


class SqliteTextIndex:
    """FTS5 virtual table ``mail_text`` with rowid = blob id."""

    def create(self, engine: Engine) -> None:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "CREATE VIRTUAL TABLE IF NOT EXISTS mail_text USING fts5("
                    "subject, addresses, body, tokenize = 'unicode61 remove_diacritics 2')"
                )
            )

    def add(self, conn: Connection, blob_id: int, subject: str, addresses: str, body: str) -> None:
        self.add_many(conn, [(blob_id, subject, addresses, body)])

    def add_many(self, conn: Connection, entries: Sequence[Entry]) -> None:
        if entries:
            conn.execute(
                _SQLITE_INSERT,
                [{"i": i, "s": s, "a": a, "b": b} for i, s, a, b in entries],
            )

    def remove(self, conn: Connection, blob_id: int) -> None:
        conn.execute(text("DELETE FROM mail_text WHERE rowid = :i"), {"i": blob_id})

    def blob_ids(self, conn: Connection, field: str | None, query: str) -> set[int]:
        words = query_words(query)
        if not words:
            return set()
        terms = " ".join('"' + word.replace('"', '""') + '"*' for word in words)
        match = f"{{{field}}} : ({terms})" if field in FIELDS else terms
        rows = conn.execute(
            text("SELECT rowid FROM mail_text WHERE mail_text MATCH :m"), {"m": match}
        )
        return {int(row[0]) for row in rows}


class PostgresTextIndex:
    """``mail_text(blob_id, subject, addresses, body)`` tsvectors with GIN indexes.

    The words are cut out here, not by PostgreSQL's parser, so that both engines see
    the same words: that parser keeps ``marie.dupont@example.org`` or a URL as one
    token, where FTS5 (and a reader) sees ``marie``, ``dupont``, ``example``, ``org``.
    Each field becomes the set of its distinct folded words (``array_to_tsvector``,
    no positions: searches are by word prefix, never by phrase), cut to what one
    tsvector can hold; queries are built as ``tsquery`` values directly, without the
    parser, so that query words and indexed words are folded and split alike.
    """

    def create(self, engine: Engine) -> None:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "CREATE TABLE IF NOT EXISTS mail_text (blob_id integer PRIMARY KEY, "
                    "subject tsvector, addresses tsvector, body tsvector)"
                )
            )
            for field in FIELDS:
                conn.execute(
                    text(
                        f"CREATE INDEX IF NOT EXISTS ix_mail_text_{field} "
                        f"ON mail_text USING gin ({field})"
                    )
                )

    def add(self, conn: Connection, blob_id: int, subject: str, addresses: str, body: str) -> None:
        self.add_many(conn, [(blob_id, subject, addresses, body)])

    def add_many(self, conn: Connection, entries: Sequence[Entry]) -> None:
        if entries:
            conn.execute(
                _POSTGRES_INSERT,
                [
                    {"i": i, "s": lexemes(s), "a": lexemes(a), "b": lexemes(b)}
                    for i, s, a, b in entries
                ],
            )

    def remove(self, conn: Connection, blob_id: int) -> None:
        conn.execute(text("DELETE FROM mail_text WHERE blob_id = :i"), {"i": blob_id})

    def blob_ids(self, conn: Connection, field: str | None, query: str) -> set[int]:
        parts = [
            part[:MAX_LEXEME_CHARS]
            for word in query_words(query)
            for part in _LEXEME.findall(ascii_fold(word))
        ]
        if not parts:
            return set()
        columns = [field] if field in FIELDS else list(FIELDS)
        # Each word in some field, as FTS5 matches a query without a column filter
        # (not all words in one field); each test can use its column's GIN index.
        condition = " AND ".join(
            "(" + " OR ".join(f"{column} @@ CAST(:q{i} AS tsquery)" for column in columns) + ")"
            for i in range(len(parts))
        )
        statement = f"SELECT blob_id FROM mail_text WHERE {condition}"  # noqa: S608 - fixed columns
        # Parts are letters and digits only: nothing to escape inside the quotes.
        rows = conn.execute(
            text(statement), {f"q{i}": f"'{part}':*" for i, part in enumerate(parts)}
        )
        return {int(row[0]) for row in rows}


def lexemes(value: str) -> list[str]:
    """The distinct words of ``value``, accents folded, as PostgreSQL indexes them.

    Letters and digits make words (as FTS5's ``unicode61``: ``_`` separates too).
    A word is cut to :data:`MAX_LEXEME_CHARS`, and words stop being added once
    :data:`MAX_LEXEMES_BYTES` are reached: a tsvector holds at most 1 MiB, and
    PostgreSQL refuses a longer one ("string is too long for tsvector") and with it
    the whole message.
    """
    found: dict[str, None] = {}
    total_bytes = 0
    # Lower case first, as query_words does, so that both sides fold alike (ẞ, İ).
    for word in _LEXEME.findall(ascii_fold(value.lower())):
        word = word[:MAX_LEXEME_CHARS]
        if word in found:
            continue
        total_bytes += len(word.encode())
        if total_bytes > MAX_LEXEMES_BYTES:
            break
        found[word] = None
    return list(found)


def text_index_for(engine: Engine) -> TextIndex:
    """The engine's full-text implementation."""
    if engine.dialect.name == "postgresql":
        return PostgresTextIndex()
    return SqliteTextIndex()
