"""The directory, HR import, auth, sharing and the audit trail on a real PostgreSQL.

The first tests are the SQLite suite's own (``tests/core/test_hr_import.py``,
``tests/test_auth.py``), collected here a second time: this module's ``config`` fixture
gives the data folder a fresh PostgreSQL database (``tests/support/postgres.py``) and
``core`` (``tests/conftest.py``) opens it, so the same assertions hold on both engines.
The tests after them check what only PostgreSQL shows: column lengths, the session's
time zone, concurrent writers.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from groupware.config import Config
from groupware.core.audit import Audit, AuditEntry
from groupware.core.auth import Authenticator, Outcome
from groupware.core.db import login_failures
from groupware.core.directory import Directory, NewPerson
from groupware.core.directory_log import DirectoryLog, record_changes
from groupware.core.services import Core
from groupware.errors import ConflictError, GroupwareError, NotFoundError
from tests import test_auth as auth_suite
from tests.core import test_hr_import as hr_suite
from tests.core import test_sharing as sharing_suite
from tests.core.test_hr_import import MARIE, PAUL, SOPHIE, csv_bytes, run_import
from tests.support.servers import add_user, make_config


@pytest.fixture
def config(tmp_path: Path, postgres_url: str) -> Config:
    """The test's data folder, with its directory in a fresh PostgreSQL database."""
    return make_config(tmp_path, database={"url": postgres_url})


# --- the SQLite suite, on PostgreSQL -----------------------------------------------

# HR import: accents, namesakes, bad lines, idempotence, updates, disable_missing, groups.
test_bad_lines_are_rejected = (
    hr_suite.test_bad_lines_are_rejected_with_line_number_and_reason_and_good_lines_imported
)
test_accents_make_the_address = hr_suite.test_accents_particles_and_apostrophes_make_the_address
test_namesakes_in_one_file = (
    hr_suite.test_namesakes_in_one_file_get_numbered_addresses_in_file_order
)
test_namesake_in_a_later_file = hr_suite.test_a_namesake_in_a_later_file_gets_the_next_number
test_reimport_changes_nothing = hr_suite.test_second_import_of_the_same_file_changes_nothing
test_changed_row_updates_the_person = (
    hr_suite.test_changed_row_updates_the_person_and_moves_import_groups_but_keeps_the_address
)
test_manual_membership_survives_reimport = hr_suite.test_manual_membership_survives_reimport
test_disabled_address_is_never_reused = hr_suite.test_a_disabled_persons_address_is_never_reused
test_disable_missing = hr_suite.test_disable_missing_disables_people_absent_from_the_file
test_disable_missing_spares_rejected_lines = (
    hr_suite.test_disable_missing_spares_a_person_whose_line_is_there_but_rejected
)
test_import_groups = (
    hr_suite.test_groups_are_made_per_school_per_department_within_a_school_and_per_role
)
test_role_named_like_a_school = hr_suite.test_a_role_named_like_a_school_gets_a_group_of_its_own
test_add_person_by_hand = hr_suite.test_add_person_by_hand_joins_the_import_groups_once
# 1,200 lines: several batches of multi-row INSERT ... RETURNING.
test_progress_over_batches = hr_suite.test_progress_is_reported_up_to_the_total
test_import_is_audited = hr_suite.test_import_is_audited_with_its_counts

# Authentication: NUMEN, argon2 (cheap parameters), throttling, lockout, audit.
clock = auth_suite.clock
sleeps = auth_suite.sleeps
auth = auth_suite.auth
test_first_login_with_numen = auth_suite.test_first_login_with_numen_is_accepted_by_portal_only
test_numen_stops_working = auth_suite.test_numen_stops_working_once_a_password_is_chosen
test_failed_logins_are_audited = (
    auth_suite.test_wrong_password_and_unknown_account_look_the_same_and_are_audited
)
test_disabled_account_is_refused = (
    auth_suite.test_disabled_account_is_refused_even_with_right_password
)
test_throttling_and_lockout = auth_suite.test_failures_delay_then_throttle_the_pair_and_expire
test_old_failures_are_forgotten = auth_suite.test_old_failures_outside_the_window_are_forgotten
test_success_clears_failures = auth_suite.test_success_clears_the_failure_count
test_reset_password = auth_suite.test_reset_issues_a_temporary_password_that_must_be_changed
test_password_policy = auth_suite.test_set_password_enforces_the_policy_and_keeps_the_old_one

# Sharing: the ACL rules and the directory change log.
staffed = sharing_suite.staffed
test_sharing_owner_and_school = (
    sharing_suite.test_owner_has_everything_and_others_nothing_but_school_free_busy
)
test_sharing_highest_grant = sharing_suite.test_the_highest_of_a_personal_and_a_group_grant_wins
test_sharing_group_members = (
    sharing_suite.test_group_members_read_the_group_collections_and_grants_raise_it
)
test_sharing_audited = sharing_suite.test_a_grant_is_updated_in_place_and_audited
test_sharing_refusals = sharing_suite.test_bad_grants_are_refused_with_a_reason
test_sharing_forget = sharing_suite.test_a_deleted_collection_takes_its_grants_and_views_along
test_directory_log = sharing_suite.test_the_change_log_records_who_changed_in_which_school


# --- what only PostgreSQL shows ----------------------------------------------------


def test_the_directory_is_in_postgresql_whose_zone_is_not_utc(core: Core) -> None:
    with core.engine.connect() as conn:
        assert conn.dialect.name == "postgresql"
        # The engine's sessions: UTC, whatever the server's own zone.
        assert conn.execute(text("SHOW TimeZone")).scalar_one() == "UTC"
        default_zone = conn.execute(
            text("SELECT reset_val FROM pg_settings WHERE name = 'TimeZone'")
        )
        assert default_zone.scalar_one() == "Europe/Paris"


def test_find_by_address_or_local_part_in_any_case_and_nothing_else(core: Core) -> None:
    run_import(core, csv_bytes(MARIE, PAUL))
    marie = core.directory.get("marie.dupont")

    for identifier in (
        "marie.dupont",
        "MARIE.Dupont",
        " marie.dupont ",
        "marie.dupont@example.org",
        "Marie.Dupont@Example.ORG",
    ):
        assert core.directory.find(identifier) == marie, identifier
    for identifier in ("marie.dupont@example.com", "marie", "marie.d", "%", "marie_dupont", ""):
        assert core.directory.find(identifier) is None, identifier
    assert core.directory.find("x" * 300 + "@example.org") is None


def test_stored_instants_read_back_in_utc_whatever_the_servers_zone(core: Core) -> None:
    # 23:30 UTC is already tomorrow in Paris: the day and the offset both show the zone.
    moment = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)
    audit = Audit(core.engine, clock=lambda: moment)
    directory = Directory(
        core.engine,
        core.config,
        core.directory.numen_key,
        core.directory.hasher,
        audit,
        clock=lambda: moment,
    )

    person = directory.add_person(
        NewPerson("1000000001AAA", "Marie", "Dupont", None, "Enseignant", "Lycée Joffre"),
        actor="test",
    )

    for value in (person.created_at, person.updated_at, audit.recent(1)[0].at):
        assert value == moment
        assert value.utcoffset() == timedelta(0)
        assert value.date() == moment.date()


def test_audit_keeps_every_outcome_and_cuts_client_values_to_their_columns(core: Core) -> None:
    # A sender address or an MX host name comes from outside and can be long;
    # PostgreSQL refuses a string longer than its column, SQLite stores it.
    core.audit.record(
        "mail.failed",
        actor="a" * 300 + "@outside.example",
        subject="b" * 300,
        protocol="submission",
        client="mx." + "c" * 100 + ".example",
        outcome="must_change_password",
        detail="d" * 5000,
    )

    [record] = core.audit.recent(1)
    assert (len(record.actor), len(record.subject), len(record.client)) == (255, 255, 64)
    assert record.actor.startswith("aaa")
    assert record.client.startswith("mx.ccc")
    assert (record.protocol, record.outcome) == ("submission", "must_change_password")
    assert record.detail == "d" * 5000


def test_a_batch_of_audit_records_is_written_whole_and_in_order(core: Core) -> None:
    entries = [
        AuditEntry("mail.delivered", actor="<>", subject=f"rcpt{n}@example.org", detail=f"q{n}")
        for n in range(3)
    ] + [AuditEntry("mail.failed", actor="x" * 400, outcome="failed", subject="gone@example.org")]

    core.audit.record_many(entries)
    core.audit.record_many([])

    records = list(reversed(core.audit.recent(4)))
    assert [(r.event, r.subject, r.detail) for r in records[:3]] == [
        ("mail.delivered", f"rcpt{n}@example.org", f"q{n}") for n in range(3)
    ]
    assert (records[3].outcome, len(records[3].actor)) == ("failed", 255)


def test_values_too_long_for_their_columns_are_refused_not_failed_on(core: Core) -> None:
    # The school's slug fits (236 characters), not with its department's (250).
    school = "Lycée" + " Joffre" * 33
    long_line = f"1000000005AAA,Martin,Luc,01/01/1980,Enseignant,{school},Mathématiques,"

    report = run_import(core, csv_bytes(MARIE, long_line, SOPHIE))

    assert report.created == ["marie.dupont", "sophie.girard"]
    [(line, reason)] = report.rejected
    assert line == 3
    assert re.fullmatch(
        r"the department group name lycee-joffre-.*\.\.\. is longer than 244 characters", reason
    )
    with pytest.raises(GroupwareError, match="first_name longer than 128"):
        core.directory.add_person(
            NewPerson("1000000006AAA", "L" * 129, "Martin", None, "Enseignant", "Lycée Joffre"),
            actor="test",
        )
    with pytest.raises(GroupwareError, match="group name"):
        core.directory.add_group("g" * 300, "Long", actor="test")
    assert core.directory.count_persons() == 2


def test_hand_made_groups_and_memberships(core: Core) -> None:
    run_import(core, csv_bytes(MARIE, PAUL))
    directory = core.directory

    group = directory.add_group("conseil-pedagogique", "Conseil pédagogique", actor="admin")
    directory.add_member("conseil-pedagogique", "marie.dupont", actor="admin")
    directory.add_member("Conseil-Pedagogique", "paul.rousseau@example.org", actor="admin")

    assert (group.kind, group.display_name) == ("custom", "Conseil pédagogique")
    with pytest.raises(ConflictError):
        directory.add_group("conseil-pedagogique", "Again", actor="admin")
    with pytest.raises(ConflictError):
        directory.add_member("conseil-pedagogique", "marie.dupont", actor="admin")
    counts = {group.name: count for group, count in directory.list_groups()}
    assert counts["conseil-pedagogique"] == 2
    assert counts["lycee-joffre"] == 2
    directory.remove_member("conseil-pedagogique", "paul.rousseau", actor="admin")
    assert [p.login for p in directory.members("conseil-pedagogique")] == ["marie.dupont"]
    with pytest.raises(NotFoundError):
        directory.remove_member("conseil-pedagogique", "paul.rousseau", actor="admin")
    marie = directory.get("marie.dupont")
    assert "conseil-pedagogique" in {g.name for g in directory.groups_of(marie.id)}
    # A reimport keeps the manual membership (the source column, not a guess).
    again = run_import(core, csv_bytes(MARIE, PAUL))
    assert (again.created, again.updated, again.unchanged) == ([], [], 2)
    assert [p.login for p in directory.members("conseil-pedagogique")] == ["marie.dupont"]
    events = [record.event for record in core.audit.recent(20, subject="conseil-pedagogique")]
    assert events == [
        "group.member_removed",
        "group.member_added",
        "group.member_added",
        "group.created",
    ]


def test_concurrent_failures_of_one_pair_are_each_counted(core: Core) -> None:
    add_user(core, "Marie", "Dupont", password="lune-vélo-ardoise-42")
    authenticator = Authenticator(
        core.directory,
        core.engine,
        core.config.auth,
        core.audit,
        core.config.read_secret(),
        sleep=lambda _seconds: None,
    )
    attempts_count = core.config.auth.max_failures_count - 1
    start = threading.Barrier(attempts_count)
    outcomes: list[Outcome] = []

    def attempt() -> None:
        start.wait(timeout=5)
        result = authenticator.authenticate("marie.dupont", "wrong", protocol="imap", client="c")
        outcomes.append(result.outcome)

    threads = [threading.Thread(target=attempt) for _ in range(attempts_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert outcomes == [Outcome.BAD_CREDENTIALS] * attempts_count
    with core.engine.connect() as conn:
        counted = conn.execute(select(login_failures.c.failures_count)).scalar_one()
    assert counted == attempts_count
    # One more failure reaches the limit: the pair is then refused.
    authenticator.authenticate("marie.dupont", "wrong", protocol="imap", client="c")
    refused = authenticator.authenticate(
        "marie.dupont", "lune-vélo-ardoise-42", protocol="imap", client="c"
    )
    assert refused.outcome is Outcome.THROTTLED


def test_concurrent_directory_changes_get_revisions_in_commit_order(core: Core) -> None:
    run_import(core, csv_bytes(MARIE, PAUL, SOPHIE))
    log = DirectoryLog(core.engine)
    start = log.revision()
    person_id = core.directory.get("marie.dupont").id
    barrier = threading.Barrier(8)

    def write() -> None:
        barrier.wait()
        with core.engine.begin() as conn:
            record_changes(conn, [(person_id, "Lycée Joffre")])

    threads = [threading.Thread(target=write) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert log.revision() == start + 8
    assert log.changed_since(start).revision == start + 8
