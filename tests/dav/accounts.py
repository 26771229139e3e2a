"""Accounts for the DAV tests, made the way real ones are: by the HR import."""

from __future__ import annotations

from dataclasses import dataclass

from groupware.core.hr_import import HrImport
from groupware.core.services import Core
from tests.support.servers import next_numen

CSV_HEADER = "numen;nom;prenom;date_naissance;fonction;etablissement;discipline"


@dataclass(frozen=True)
class Account:
    """An imported person and the credentials a DAV client uses."""

    login: str
    email: str
    password: str
    numen: str

    @property
    def credentials(self) -> tuple[str, str]:
        return (self.login, self.password)


def import_accounts(
    core: Core,
    *people: tuple[str, str],
    password_prefix: str | None = "dav-pw-",
    school: str = "Lycée Joffre",
    discipline: str = "Lettres",
) -> list[Account]:
    """Import ``(first name, last name)`` people from a small HR file.

    With ``password_prefix``, each gets the password ``<prefix><login>`` (which
    clears "must change password"); with ``None`` they stay freshly imported, on
    their NUMEN and obliged to visit the portal first.
    """
    numens = [next_numen() for _ in people]
    lines = [CSV_HEADER]
    lines += [
        f"{numen};{last};{first};17/05/1980;Enseignant;{school};{discipline}"
        for numen, (first, last) in zip(numens, people, strict=True)
    ]
    report = HrImport(core.directory).run(("\n".join(lines) + "\n").encode(), actor="test")
    assert not report.rejected, report.rejected
    assert len(report.created) == len(people), report
    accounts = []
    for login, numen in zip(report.created, numens, strict=True):
        person = core.directory.get(login)
        password = numen
        if password_prefix is not None:
            password = password_prefix + login
            core.directory.set_password(login, password, actor="test", enforce_policy=False)
        accounts.append(Account(login=login, email=person.email, password=password, numen=numen))
    return accounts
