"""The DAV suite's storage-facing tests again, with the SQL store on a real PostgreSQL.

This module's ``dav_server`` gives the server a fresh PostgreSQL database
(``tests/support/postgres.py``); the tests and fixtures below are the SQLite suite's
own, collected here a second time, so the same assertions hold on both engines:
the index against Radicale's file store (``test_sql_store``), the ``caldav`` library
and ``vdirsyncer`` scenarios, racing ``If-Match`` writers and per-collection locks
(advisory locks on PostgreSQL). The whole set runs in about a minute.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.dav import test_caldav_client as caldav_suite
from tests.dav import test_sql_store as index_suite
from tests.dav import test_store_safety as safety_suite
from tests.dav import test_vdirsyncer as vdirsyncer_suite
from tests.support.postgres import PostgresCluster
from tests.support.servers import RunningServer, make_config, running_server


@pytest.fixture(scope="module")
def dav_server(
    tmp_path_factory: pytest.TempPathFactory, postgres_cluster: PostgresCluster
) -> Iterator[RunningServer]:
    """``groupware serve --only http`` with its database on PostgreSQL, for this module."""
    name = postgres_cluster.create_database()
    config = make_config(
        tmp_path_factory.mktemp("dav-pg"), database={"url": postgres_cluster.url(name)}
    )
    try:
        with running_server(config) as live:
            assert live.core.engine.dialect.name == "postgresql"
            yield live
    finally:
        postgres_cluster.drop_database(name)


def _collect(suite: object, names: list[str]) -> None:
    for name in names:
        globals()[name] = getattr(suite, name)


# The index answers as the file store does; sync reports each change once.
_collect(index_suite, [n for n in dir(index_suite) if n.startswith("test_")])
_collect(index_suite, ["file_server", "clients", "calendars", "book"])
# The caldav library: discovery, CRUD, date-range search, to-dos, moves in time.
_collect(caldav_suite, [n for n in dir(caldav_suite) if n.startswith("test_")])
_collect(caldav_suite, ["alice", "client", "calendar", "raw"])
# vdirsyncer: two-way sync of a calendar and an address book.
_collect(vdirsyncer_suite, [n for n in dir(vdirsyncer_suite) if n.startswith("test_")])
_collect(vdirsyncer_suite, ["accounts"])
# No lost update; one collection's writes never wait for another's.
_collect(
    safety_suite,
    [
        "lea",
        "test_racing_if_match_writers_one_wins_the_others_get_412",
        "test_put_with_a_stale_etag_gets_412_and_changes_nothing",
        "test_an_href_or_uid_too_long_for_the_store_gets_400_and_changes_nothing",
        "test_a_write_lock_on_one_collection_blocks_that_collection_only",
    ],
)
