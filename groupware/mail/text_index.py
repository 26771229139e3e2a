# SPDX-License-Identifier: GPL-3.0-or-later
"""Full-text index of message headers and text bodies, one entry per blob.

SQLite: an FTS5 table (``unicode61``, diacritics folded, so "reunion" finds
"réunion"). PostgreSQL: a ``tsvector`` column with a GIN index, same interface.
Words match by prefix, as Dovecot's FTS does: SEARCH BODY "budg" finds "budget".
"""

from __future__ import annotations

import re
from typing import Final, Protocol

from sqlalchemy import Connection, Engine, text

from groupware.core.names import ascii_fold

_WORDS: Final = re.compile(r"\w+", re.UNICODE)
FIELDS: Final = ("subject", "addresses", "body")


def query_words(query: str) -> list[str]:
    """The words of a search string (punctuation is a separator, as in the index)."""
    return [word.lower() for word in _WORDS.findall(query)]


class TextIndex(Protocol):
    """What the store needs from a full-text engine."""

    def create(self, engine: Engine) -> None:
        """Create the index structures if missing."""

    def add(self, conn: Connection, blob_id: int, subject: str, addresses: str, body: str) -> None:
        """Index one blob."""

    def remove(self, conn: Connection, blob_id: int) -> None:
        """Forget one blob."""

    def blob_ids(self, conn: Connection, field: str | None, query: str) -> set[int]:
        """Blobs whose ``field`` (or any field when None) contains every word of ``query``."""


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
        conn.execute(
            text("INSERT INTO mail_text(rowid, subject, addresses, body) VALUES (:i, :s, :a, :b)"),
            {"i": blob_id, "s": subject, "a": addresses, "b": body},
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
    """``mail_text(blob_id, subject, addresses, body)`` tsvectors with GIN indexes."""

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
        conn.execute(
            text(
                "INSERT INTO mail_text (blob_id, subject, addresses, body) VALUES (:i, "
                "to_tsvector('simple', :s), to_tsvector('simple', :a), to_tsvector('simple', :b))"
            ),
            # Diacritics folded here, so that no database extension (unaccent) is needed.
            {
                "i": blob_id,
                "s": ascii_fold(subject),
                "a": ascii_fold(addresses),
                "b": ascii_fold(body),
            },
        )

    def remove(self, conn: Connection, blob_id: int) -> None:
        conn.execute(text("DELETE FROM mail_text WHERE blob_id = :i"), {"i": blob_id})

    def blob_ids(self, conn: Connection, field: str | None, query: str) -> set[int]:
        words = query_words(query)
        if not words:
            return set()
        tsquery = " & ".join(ascii_fold(word).replace("'", "") + ":*" for word in words)
        columns = [field] if field in FIELDS else list(FIELDS)
        condition = " OR ".join(f"{column} @@ to_tsquery('simple', :q)" for column in columns)
        statement = f"SELECT blob_id FROM mail_text WHERE {condition}"  # noqa: S608 - fixed columns
        rows = conn.execute(text(statement), {"q": tsquery})
        return {int(row[0]) for row in rows}


def text_index_for(engine: Engine) -> TextIndex:
    """The engine's full-text implementation."""
    if engine.dialect.name == "postgresql":
        return PostgresTextIndex()
    return SqliteTextIndex()
