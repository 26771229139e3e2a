# SPDX-License-Identifier: GPL-3.0-or-later
"""Plain DB-API reads for the hot listings of the DAV fast paths.

SQLAlchemy Core costs about 2 ms to expand an ``IN`` list of a hundred hrefs and
builds a ``Row`` per result; a Depth-1 listing of 10,000 items or a multiget of a
hundred spends more there than in SQLite. These reads are fixed ``SELECT``s whose
only variable parts are bound parameters, written ``?`` and turned into the
engine's driver parameter style (``?`` for sqlite3, ``%s`` for psycopg), so the same
text runs on SQLite and PostgreSQL; results are the driver's tuples. The statements
hold no other ``?`` (no literals).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import Engine

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
