"""RCPT acceptances remembered for a moment: only acceptances, and only that long."""

from __future__ import annotations

from groupware.mail.acceptances import ACCEPTANCE_SECONDS, RecentAcceptances


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_acceptance_answers_until_the_delay_and_no_longer() -> None:
    clock = Clock()
    acceptances = RecentAcceptances(clock)
    assert not acceptances.is_accepted("marie.dupont@example.org", is_authenticated=False)
    acceptances.remember("Marie.Dupont@example.org", is_authenticated=False)
    assert acceptances.is_accepted("marie.dupont@example.org", is_authenticated=False)
    clock.now += ACCEPTANCE_SECONDS - 0.01
    assert acceptances.is_accepted("marie.dupont@example.org", is_authenticated=False)
    clock.now += 0.01
    assert not acceptances.is_accepted("marie.dupont@example.org", is_authenticated=False)


def test_an_acceptance_for_one_kind_of_sender_says_nothing_for_the_other() -> None:
    # A group list open to authenticated senders only is not open to the outside.
    acceptances = RecentAcceptances(Clock())
    acceptances.remember("lettres@example.org", is_authenticated=True)
    assert not acceptances.is_accepted("lettres@example.org", is_authenticated=False)
