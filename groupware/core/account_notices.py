# SPDX-License-Identifier: GPL-3.0-or-later
"""The notices an account is mailed when its password changes without it.

A reset the person did not make themselves is what phishing and account theft look
like from the outside, so the account's address hears of every one: a self-service
reset (``/recover``) and a temporary password issued by an administrator (admin
pages, ``groupware users reset``). The texts are French then English, like the
rest of the system's mail: a notice reaches someone who is not signed in, whose
language the portal cannot ask.

Every mail the system itself sends ends with :data:`NEVER_ASKS_FOR_PASSWORD`
(``mail.notices`` adds it to each notice; delivery reports carry it too), which is
what the institution tells its staff: a mail asking for a password is phishing.
"""

from __future__ import annotations

from datetime import date
from typing import Final

from groupware.core.directory import Person

#: The anti-phishing reminder at the end of every mail the system sends.
NEVER_ASKS_FOR_PASSWORD: Final = (
    "Le service informatique ne vous demande jamais votre mot de passe par courriel.\n"  # noqa: S105
    "The IT department never asks for your password by mail."
)

_WHO_FR: Final = {
    "self": "depuis le portail, avec le NUMEN et la date de naissance",
    "admin": "par un administrateur, qui vous a remis un mot de passe temporaire à\n"
    "changer à la première connexion au portail",
}
_WHO_EN: Final = {
    "self": "from the portal, with the NUMEN and birth date",
    "admin": "by an administrator, who gave you a temporary password to change at\n"
    "your first sign-in on the portal",
}


def password_reset_notice(
    person: Person, institution: str, *, by_admin: bool, on: date | None = None
) -> tuple[str, str]:
    """The ``(subject, body)`` telling ``person`` that their password was reset.

    Args:
        person: the account whose password was reset.
        institution: the institution's name, first in the subject.
        by_admin: an administrator issued a temporary password (else the person
            used the self-service reset).
        on: the day of the reset (today by default).
    """
    who = "admin" if by_admin else "self"
    when = (on or date.today()).strftime("%d/%m/%Y")
    subject = f"{institution} : mot de passe réinitialisé / password reset"
    body = (
        f"Bonjour {person.first_name},\n\n"
        f"Le mot de passe du compte {person.email} a été réinitialisé le {when}\n"
        f"{_WHO_FR[who]}. Si vous n’en avez pas fait la demande, prévenez\n"
        "immédiatement l’assistance informatique de votre établissement.\n\n"
        "--\n\n"
        f"The password of {person.email} was reset on {when}\n"
        f"{_WHO_EN[who]}. If you did not ask for it, tell your school's IT support at once.\n"
    )
    return subject, body


def with_reminder(body: str) -> str:
    """``body`` ending with the anti-phishing reminder (added once)."""
    if NEVER_ASKS_FOR_PASSWORD in body:
        return body
    return f"{body.rstrip()}\n\n{NEVER_ASKS_FOR_PASSWORD}\n"
