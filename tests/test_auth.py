"""The common authentication path: NUMEN first login, argon2, throttling, cache, audit."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import pytest

from groupware.core.auth import Authenticator, Outcome
from groupware.core.passwords import (
    CONTAINS_BIRTH_DATE,
    CONTAINS_NAME,
    CONTAINS_NUMEN,
    TOO_SHORT,
    policy_problems,
)
from groupware.core.services import Core
from groupware.errors import PasswordPolicyError
from tests.support.servers import add_user

NUMEN = "18E0452211BCD"
GOOD = "lune-vélo-ardoise-42"


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def auth(core: Core, clock: FakeClock, sleeps: list[float]) -> Authenticator:
    return Authenticator(
        core.directory,
        core.engine,
        core.config.auth,
        core.audit,
        core.config.read_secret(),
        clock=clock,
        sleep=sleeps.append,
    )


def _events(core: Core, event: str) -> int:
    return sum(1 for record in core.audit.recent(1000) if record.event == event)


def test_first_login_with_numen_is_accepted_by_portal_only(core: Core, auth: Authenticator) -> None:
    add_user(core, "Marie", "Dupont", numen=NUMEN)
    web = auth.authenticate("marie.dupont", NUMEN, protocol="web", client="10.0.0.1")
    assert web.outcome is Outcome.OK
    assert web.person is not None
    assert web.person.must_change_password
    for protocol in ("dav", "imap", "smtp"):
        result = auth.authenticate("marie.dupont", NUMEN, protocol=protocol, client="10.0.0.1")
        assert result.outcome is Outcome.MUST_CHANGE_PASSWORD


def test_numen_stops_working_once_a_password_is_chosen(core: Core, auth: Authenticator) -> None:
    add_user(core, "Marie", "Dupont", numen=NUMEN)
    core.directory.set_password("marie.dupont", GOOD, actor="marie.dupont")
    assert auth.authenticate("marie.dupont", NUMEN, protocol="web", client="c").outcome is (
        Outcome.BAD_CREDENTIALS
    )
    assert auth.authenticate("marie.dupont", GOOD, protocol="dav", client="c").is_ok


def test_password_is_stored_as_argon2id(core: Core) -> None:
    person = add_user(core, "Marie", "Dupont", password=GOOD)
    assert person.password_hash is not None
    assert person.password_hash.startswith("$argon2id$")
    assert GOOD not in person.password_hash


@pytest.mark.parametrize("identifier", ["marie.dupont", "MARIE.Dupont", "Marie.Dupont@Example.org"])
def test_identifier_is_local_part_or_address_in_any_case(
    core: Core, auth: Authenticator, identifier: str
) -> None:
    add_user(core, "Marie", "Dupont", password=GOOD)
    assert auth.authenticate(identifier, GOOD, protocol="imap", client="c").is_ok


def test_address_of_another_domain_is_unknown(core: Core, auth: Authenticator) -> None:
    add_user(core, "Marie", "Dupont", password=GOOD)
    result = auth.authenticate("marie.dupont@elsewhere.org", GOOD, protocol="imap", client="c")
    assert result.outcome is Outcome.BAD_CREDENTIALS


def test_wrong_password_and_unknown_account_look_the_same_and_are_audited(
    core: Core, auth: Authenticator
) -> None:
    add_user(core, "Marie", "Dupont", password=GOOD)
    wrong = auth.authenticate("marie.dupont", "nope", protocol="dav", client="c")
    unknown = auth.authenticate("nobody.here", "nope", protocol="dav", client="c")
    assert wrong.outcome is unknown.outcome is Outcome.BAD_CREDENTIALS
    assert wrong.person is None
    assert unknown.person is None
    assert _events(core, "login.failed") == 2


def test_disabled_account_is_refused_even_with_right_password(
    core: Core, auth: Authenticator
) -> None:
    add_user(core, "Marie", "Dupont", password=GOOD)
    core.directory.set_active("marie.dupont", False, actor="admin")
    assert auth.authenticate("marie.dupont", GOOD, protocol="web", client="c").outcome is (
        Outcome.DISABLED
    )


def test_failures_delay_then_throttle_the_pair_and_expire(
    core: Core, auth: Authenticator, clock: FakeClock, sleeps: list[float]
) -> None:
    add_user(core, "Marie", "Dupont", password=GOOD)
    limits = core.config.auth
    for _ in range(limits.max_failures_count):
        auth.authenticate("marie.dupont", "wrong", protocol="imap", client="10.0.0.9")
    expected_delays = limits.max_failures_count - limits.delay_after_failures_count
    assert len(sleeps) == expected_delays
    throttled = auth.authenticate("marie.dupont", GOOD, protocol="imap", client="10.0.0.9")
    assert throttled.outcome is Outcome.THROTTLED
    assert _events(core, "login.throttled") == 1
    # The same account from another client, and another account, are not affected.
    assert auth.authenticate("marie.dupont", GOOD, protocol="imap", client="10.0.0.10").is_ok
    clock.now += timedelta(seconds=limits.lockout_seconds + 1)
    assert auth.authenticate("marie.dupont", GOOD, protocol="imap", client="10.0.0.9").is_ok


def test_old_failures_outside_the_window_are_forgotten(
    core: Core, auth: Authenticator, clock: FakeClock, sleeps: list[float]
) -> None:
    add_user(core, "Marie", "Dupont", password=GOOD)
    for _ in range(core.config.auth.delay_after_failures_count):
        auth.authenticate("marie.dupont", "wrong", protocol="web", client="c")
    clock.now += timedelta(seconds=core.config.auth.failure_window_seconds + 1)
    auth.authenticate("marie.dupont", "wrong", protocol="web", client="c")
    assert sleeps == []


def test_success_clears_the_failure_count(
    core: Core, auth: Authenticator, sleeps: list[float]
) -> None:
    add_user(core, "Marie", "Dupont", password=GOOD)
    for _ in range(core.config.auth.max_failures_count - 1):
        auth.authenticate("marie.dupont", "wrong", protocol="web", client="c")
    assert auth.authenticate("marie.dupont", GOOD, protocol="web", client="c").is_ok
    sleeps.clear()
    auth.authenticate("marie.dupont", "wrong", protocol="web", client="c")
    assert sleeps == []


def test_cached_verification_ends_when_the_password_changes(
    core: Core, auth: Authenticator
) -> None:
    add_user(core, "Marie", "Dupont", password=GOOD)
    assert auth.authenticate("marie.dupont", GOOD, protocol="imap", client="c").is_ok
    assert auth.authenticate("marie.dupont", GOOD, protocol="imap", client="c").is_ok  # cached
    core.directory.set_password("marie.dupont", "autre-phrase-secrete-7", actor="marie.dupont")
    stale = auth.authenticate("marie.dupont", GOOD, protocol="imap", client="c")
    assert stale.outcome is Outcome.BAD_CREDENTIALS


def test_cached_verification_ends_when_the_account_is_disabled(
    core: Core, auth: Authenticator
) -> None:
    add_user(core, "Marie", "Dupont", password=GOOD)
    assert auth.authenticate("marie.dupont", GOOD, protocol="imap", client="c").is_ok
    core.directory.set_active("marie.dupont", False, actor="admin")
    assert auth.authenticate("marie.dupont", GOOD, protocol="imap", client="c").outcome is (
        Outcome.DISABLED
    )


def test_reset_issues_a_temporary_password_that_must_be_changed(
    core: Core, auth: Authenticator
) -> None:
    add_user(core, "Marie", "Dupont", password=GOOD)
    temporary = core.directory.reset_password("marie.dupont", actor="admin")
    assert auth.authenticate("marie.dupont", GOOD, protocol="web", client="c").outcome is (
        Outcome.BAD_CREDENTIALS
    )
    assert auth.authenticate("marie.dupont", temporary, protocol="dav", client="c").outcome is (
        Outcome.MUST_CHANGE_PASSWORD
    )
    web = auth.authenticate("marie.dupont", temporary, protocol="web", client="c")
    assert web.is_ok
    assert web.person is not None
    assert web.person.must_change_password


def test_policy_rejects_short_numen_names_and_birth_date(core: Core) -> None:
    person = add_user(core, "Marie-Hélène", "Dupont", numen=NUMEN, birth_date=date(1985, 11, 2))
    key = core.directory.numen_key

    def problems(password: str) -> list[str]:
        return policy_problems(
            password,
            min_length=12,
            numen_digest=person.numen_hmac,
            numen_key=key,
            names=(person.first_name, person.last_name),
            birth_date=person.birth_date,
        )

    assert problems("court") == [TOO_SHORT]
    assert problems("xx" + NUMEN.lower() + "yy") == [CONTAINS_NUMEN]
    assert problems("jaime-helene-beaucoup") == [CONTAINS_NAME]
    assert problems("DUPONT-pour-toujours") == [CONTAINS_NAME]
    assert problems("ne-le-02111985-dit") == [CONTAINS_BIRTH_DATE]
    assert problems("ne-le-1985-11-02-dit") == [CONTAINS_BIRTH_DATE]
    assert problems(GOOD) == []


def test_set_password_enforces_the_policy_and_keeps_the_old_one(
    core: Core, auth: Authenticator
) -> None:
    add_user(core, "Marie", "Dupont", password=GOOD)
    with pytest.raises(PasswordPolicyError) as info:
        core.directory.set_password("marie.dupont", "dupont", actor="marie.dupont")
    assert set(info.value.problems) == {TOO_SHORT, CONTAINS_NAME}
    assert auth.authenticate("marie.dupont", GOOD, protocol="web", client="c").is_ok


def _oks(core: Core) -> list[tuple[str, str]]:
    return [(r.protocol, r.client) for r in core.audit.recent(1000) if r.event == "login.ok"]


def test_dav_success_is_audited_once_per_client_and_secret_while_cached(
    core: Core, auth: Authenticator
) -> None:
    # A phone sends its password with each of dozens of requests per sync: one record.
    add_user(core, "Marie", "Dupont", password=GOOD)
    for _ in range(5):
        assert auth.authenticate("marie.dupont", GOOD, protocol="dav", client="10.0.0.1").is_ok
    assert _oks(core) == [("dav", "10.0.0.1")]
    # Another device, another protocol: each its own record, every time for the others.
    assert auth.authenticate("marie.dupont", GOOD, protocol="dav", client="10.0.0.2").is_ok
    for _ in range(2):
        assert auth.authenticate("marie.dupont", GOOD, protocol="imap", client="10.0.0.1").is_ok
        assert auth.authenticate("marie.dupont", GOOD, protocol="web", client="10.0.0.1").is_ok
    assert sorted(_oks(core)) == sorted(
        [("dav", "10.0.0.1"), ("dav", "10.0.0.2")] + [("imap", "10.0.0.1"), ("web", "10.0.0.1")] * 2
    )


def test_dav_success_is_audited_again_after_a_failure_or_credential_change(
    core: Core, auth: Authenticator
) -> None:
    add_user(core, "Marie", "Dupont", password=GOOD)
    assert auth.authenticate("marie.dupont", GOOD, protocol="dav", client="c").is_ok
    assert not auth.authenticate("marie.dupont", "nope", protocol="dav", client="c").is_ok
    assert auth.authenticate("marie.dupont", GOOD, protocol="dav", client="c").is_ok
    assert _events(core, "login.failed") == 1
    assert _events(core, "login.ok") == 1  # the failure is its own record; no new window
    newer = GOOD + "-2027"
    core.directory.set_password("marie.dupont", newer, actor="marie.dupont")
    assert auth.authenticate("marie.dupont", newer, protocol="dav", client="c").is_ok
    assert _events(core, "login.ok") == 2
    core.directory.set_password("marie.dupont", GOOD, actor="marie.dupont")
    assert auth.authenticate("marie.dupont", GOOD, protocol="dav", client="c").is_ok
    assert _events(core, "login.ok") == 3  # same secret as before, new credentials


def test_dav_success_is_audited_every_time_without_the_cache(core: Core, clock: FakeClock) -> None:
    config = dataclasses.replace(core.config.auth, cache_seconds=0)
    auth = Authenticator(
        core.directory, core.engine, config, core.audit, core.config.read_secret(), clock=clock
    )
    add_user(core, "Marie", "Dupont", password=GOOD)
    for _ in range(3):
        assert auth.authenticate("marie.dupont", GOOD, protocol="dav", client="c").is_ok
    assert _events(core, "login.ok") == 3
