# SPDX-License-Identifier: GPL-3.0-or-later
"""Plain DB-API statements for the hot listings and the item write of the DAV store.

SQLAlchemy Core costs about 2 ms to expand an ``IN`` list of a hundred hrefs and
builds a ``Row`` per result; a Depth-1 listing of 10,000 items or a multiget of a
hundred spends more there than in SQLite. These reads are fixed ``SELECT``s whose
only variable parts are bound parameters, written ``?`` and turned into the
engine's driver parameter style (``?`` for sqlite3, ``%s`` for psycopg), so the same
text runs on SQLite and PostgreSQL; results are the driver's tuples. The statements
hold no other ``?`` (no literals).

An item's write (``writes.upload``, six statements) runs the same way on its
transaction's connection: SQLAlchemy's own bookkeeping around each statement cost
more than SQLite's work for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import Connection, Engine

#: The placeholder of each DB-API parameter style this product's drivers use.
PLACEHOLDERS: Final = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def placeholder(engine: Engine) -> str:
    """The engine's driver placeholder for one positional parameter."""
    style = engine.dialect.paramstyle
    if style not in PLACEHOLDERS:
        raise ValueError(f"unsupported DB-API parameter style: {style}")
    return PLACEHOLDERS[style]


def in_list(count: int) -> str:
    """``(?, ?, ...)``: the bound parameters of an ``IN`` list of ``count`` values."""
    return "(" + ", ".join(["?"] * count) + ")"


def fetch_all(engine: Engine, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """The rows of one ``SELECT`` written with ``?`` parameters, as the driver's tuples."""
    mark = placeholder(engine)
    if mark != "?":
        sql = sql.replace("?", mark)
    with engine.connect() as conn:
        cursor = conn.connection.cursor()
        try:
            cursor.execute(sql, tuple(params))
            return list(cursor.fetchall())
        finally:
            cursor.close()


class RawCursor:
    """A DB-API cursor on a SQLAlchemy connection (inside its transaction), taking ``?``."""

    def __init__(self, conn: Connection) -> None:
        self._mark = placeholder(conn.engine)
        self._cursor = conn.connection.cursor()

    def execute(self, sql: str, params: Sequence[Any]) -> RawCursor:
        """Run one statement written with ``?`` parameters."""
        self._cursor.execute(sql if self._mark == "?" else sql.replace("?", self._mark), params)
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement once per row of parameters."""
        self._cursor.executemany(sql if self._mark == "?" else sql.replace("?", self._mark), rows)

    def fetchone(self) -> tuple[Any, ...] | None:
        """The next row of the last statement, as the driver's tuple."""
        row = self._cursor.fetchone()
        return None if row is None else tuple(row)

    def close(self) -> None:
        """Release the driver's cursor."""
        self._cursor.close()
