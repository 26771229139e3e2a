"""Server-side web sessions (core.web_sessions) on a real database, with a set clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from groupware.core.db import web_sessions
from groupware.core.directory import Person
from groupware.core.services import Core
from groupware.core.web_sessions import SessionState, WebSessions, describe_device
from tests.support.servers import add_user

IDLE_SECONDS = 600
FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2025, 3, 10, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sessions(core: Core, clock: Clock) -> WebSessions:
    return WebSessions(core.engine, core.audit, idle_seconds=IDLE_SECONDS, clock=clock)


@pytest.fixture
def person(core: Core) -> Person:
    return add_user(core, "Marie", "Dupont", password="une phrase de passe")


def stored_count(core: Core) -> int:
    with core.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(web_sessions)).scalar_one())


@pytest.mark.parametrize(
    ("user_agent", "expected"),
    [
        (FIREFOX_WINDOWS, ("Firefox", "Windows")),
        (CHROME_ANDROID, ("Chrome", "Android")),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "HeadlessChrome/126.0.0.0 Safari/537.36",
            ("Chrome", "Linux"),
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87",
            ("Edge", "Windows"),
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            ("Safari", "iPhone"),
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.5 Safari/605.1.15",
            ("Safari", "macOS"),
        ),
        ("curl/8.5.0", ("", "")),
        ("", ("", "")),
    ],
)
def test_the_device_is_a_browser_and_a_system_people_recognise(
    user_agent: str, expected: tuple[str, str]
) -> None:
    assert describe_device(user_agent) == expected


def test_the_database_keeps_a_hash_of_the_token_never_the_token(
    core: Core, sessions: WebSessions, person: Person
) -> None:
    token, record = sessions.open(person, client="192.0.2.7", user_agent=FIREFOX_WINDOWS)
    with core.engine.connect() as conn:
        row = conn.execute(select(web_sessions)).one()
    assert len(token) >= 40
    assert token not in row.token_hash
    assert (row.person_id, row.client, row.browser, row.system) == (
        person.id,
        "192.0.2.7",
        "Firefox",
        "Windows",
    )
    assert sessions.check(token, person).record == record
    assert sessions.check(token + "x", person).state is SessionState.ENDED


def test_an_idle_session_ends_and_activity_keeps_it_alive(
    sessions: WebSessions, person: Person, clock: Clock
) -> None:
    token, _record = sessions.open(person, client="", user_agent="")
    for _ in range(5):  # 5 x 500 s of activity: well over the idle timeout in all
        clock.advance(IDLE_SECONDS - 100)
        assert sessions.check(token, person).state is SessionState.ACTIVE
    clock.advance(IDLE_SECONDS + 1)
    assert sessions.check(token, person).state is SessionState.IDLE
    assert sessions.check(token, person).state is SessionState.ENDED  # deleted


def test_last_activity_is_written_at_most_once_a_minute(
    sessions: WebSessions, person: Person, clock: Clock
) -> None:
    token, opened = sessions.open(person, client="", user_agent="")
    clock.advance(30)
    sessions.check(token, person)
    assert sessions.list(person)[0].last_seen_at.replace(tzinfo=UTC) == opened.last_seen_at
    clock.advance(31)
    sessions.check(token, person)
    assert sessions.list(person)[0].last_seen_at.replace(tzinfo=UTC) == clock.now


def test_a_credential_change_or_a_lock_ends_the_session(
    core: Core, sessions: WebSessions, person: Person
) -> None:
    token, _record = sessions.open(person, client="", user_agent="")
    locked = core.directory.set_active(person.login, False, actor="admin")
    assert sessions.check(token, locked).state is SessionState.ENDED
    unlocked = core.directory.set_active(person.login, True, actor="admin")
    assert sessions.check(token, unlocked).state is SessionState.ENDED  # for good
    other = add_user(core, "Paul", "Roux")
    token, _record = sessions.open(unlocked, client="", user_agent="")
    assert sessions.check(token, other).state is SessionState.ENDED  # not theirs


def test_rotation_replaces_the_record_and_the_old_token_opens_nothing(
    core: Core, sessions: WebSessions, person: Person
) -> None:
    old, first = sessions.open(person, client="", user_agent=FIREFOX_WINDOWS)
    new, second = sessions.rotate(old, person, client="", user_agent=FIREFOX_WINDOWS)
    assert new != old
    assert second.id != first.id
    assert sessions.check(old, person).state is SessionState.ENDED
    assert sessions.check(new, person).state is SessionState.ACTIVE
    assert stored_count(core) == 1


def test_list_revoke_and_revoke_others_are_audited(
    core: Core, sessions: WebSessions, person: Person
) -> None:
    here, mine = sessions.open(person, client="", user_agent=FIREFOX_WINDOWS)
    phone, theirs = sessions.open(person, client="", user_agent=CHROME_ANDROID)
    _third, _record = sessions.open(person, client="", user_agent="")
    intruder = add_user(core, "Paul", "Roux")
    assert {s.id for s in sessions.list(person)} == {mine.id, theirs.id, _record.id}
    assert not sessions.revoke(intruder, theirs.id, actor=intruder.login)  # not theirs
    assert sessions.revoke(person, theirs.id, actor=person.login)
    assert sessions.check(phone, person).state is SessionState.ENDED

    assert sessions.revoke_others(person, mine.id, actor=person.login) == 1
    assert [s.id for s in sessions.list(person)] == [mine.id]
    assert sessions.check(here, person).state is SessionState.ACTIVE
    events = [
        (r.event, r.actor) for r in core.audit.recent(subject=person.login, event_prefix="auth.")
    ]
    assert events == [
        ("auth.sessions_revoked", person.login),
        ("auth.session_revoked", person.login),
    ]


def test_carry_over_keeps_the_other_sessions_across_the_persons_password_change(
    core: Core, sessions: WebSessions, person: Person
) -> None:
    token, _record = sessions.open(person, client="", user_agent="")
    changed = core.directory.set_password(person.login, "une autre phrase", actor=person.login)
    assert sessions.carry_over(changed, from_version=person.credential_version) == 1
    assert sessions.check(token, changed).state is SessionState.ACTIVE


def test_end_all_ends_every_session_of_the_person_only(
    core: Core, sessions: WebSessions, person: Person
) -> None:
    other = add_user(core, "Paul", "Roux")
    sessions.open(person, client="", user_agent="")
    sessions.open(person, client="", user_agent="")
    kept, _record = sessions.open(other, client="", user_agent="")
    assert sessions.end_all(person, actor="admin", reason="locked") == 2
    assert sessions.list(person) == []
    assert sessions.check(kept, other).state is SessionState.ACTIVE


def test_purge_at_sign_in_drops_idle_and_outdated_records(
    core: Core, sessions: WebSessions, person: Person, clock: Clock
) -> None:
    other = add_user(core, "Paul", "Roux")
    sessions.open(person, client="", user_agent="")
    sessions.open(other, client="", user_agent="")
    core.directory.set_active(other.login, False, actor="admin")  # outdated now
    clock.advance(IDLE_SECONDS + 1)
    sessions.open(person, client="", user_agent="")  # the sign-in purges
    assert stored_count(core) == 1
