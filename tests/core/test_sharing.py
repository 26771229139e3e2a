"""The ACL rules of core.sharing, and the directory change log, on a real database."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from groupware.core.db import audit_log
from groupware.core.directory_log import DirectoryLog
from groupware.core.hr_import import HrImport
from groupware.core.services import Core
from groupware.core.sharing import CollectionRef, Level
from groupware.errors import ConflictError, GroupwareError, NotFoundError

HEADER = "numen,nom,prenom,date_naissance,fonction,etablissement,discipline"
ROWS = (
    "1000000001AAA,Dupont,Marie,14/03/1978,Enseignant,Lycée Joffre,Lettres",
    "1000000002AAA,Rousseau,Paul,1981-07-02,Enseignant,Lycée Joffre,Mathématiques",
    "1000000003AAA,Girard,Sophie,02/11/1985,Secrétaire,Collège Les Garrigues,Lettres",
)
CALENDAR = CollectionRef("marie.dupont", "calendar")
LETTRES = "@lycee-joffre.lettres"


@pytest.fixture
def staffed(core: Core) -> Core:
    HrImport(core.directory).run(("\n".join((HEADER, *ROWS)) + "\n").encode(), actor="test")
    return core


def level(core: Core, login: str, collection: CollectionRef) -> Level | None:
    return core.sharing.view(core.directory.get(login)).level(collection)


def test_owner_has_everything_and_others_nothing_but_school_free_busy(staffed: Core) -> None:
    assert level(staffed, "marie.dupont", CALENDAR) is Level.OWNER
    assert level(staffed, "paul.rousseau", CALENDAR) is Level.FREEBUSY  # same school
    assert level(staffed, "sophie.girard", CALENDAR) is None  # another school


def test_the_highest_of_a_personal_and_a_group_grant_wins(staffed: Core) -> None:
    sharing = staffed.sharing
    sharing.grant(CALENDAR, "paul.rousseau", Level.READ, actor="test")
    sharing.grant(CALENDAR, "@lycee-joffre", Level.WRITE, actor="test")

    assert level(staffed, "paul.rousseau", CALENDAR) is Level.WRITE

    sharing.revoke(CALENDAR, "@lycee-joffre", actor="test")
    assert level(staffed, "paul.rousseau", CALENDAR) is Level.READ


def test_group_members_read_the_group_collections_and_grants_raise_it(staffed: Core) -> None:
    agenda = CollectionRef(LETTRES, "agenda")
    assert level(staffed, "marie.dupont", agenda) is Level.READ
    assert level(staffed, "paul.rousseau", agenda) is None  # Mathématiques, not Lettres
    assert level(staffed, "sophie.girard", agenda) is None  # Lettres of another school

    staffed.sharing.grant(agenda, "sophie.girard", Level.MANAGE, actor="test")
    assert level(staffed, "sophie.girard", agenda) is Level.MANAGE

    staffed.directory.remove_member(LETTRES[1:], "marie.dupont", actor="test")
    assert level(staffed, "marie.dupont", agenda) is None


def test_a_grant_is_updated_in_place_and_audited(staffed: Core) -> None:
    sharing = staffed.sharing
    sharing.grant(CALENDAR, "Sophie.Girard@example.org", Level.READ, actor="cli:admin")
    sharing.grant(CALENDAR, "sophie.girard", Level.MANAGE, actor="cli:admin")

    (only,) = sharing.grants(collection=CALENDAR)
    assert (only.grantee, only.level) == ("sophie.girard", Level.MANAGE)
    with staffed.engine.connect() as conn:
        events = [
            (row.event, row.subject, row.detail)
            for row in conn.execute(select(audit_log).where(audit_log.c.event.like("dav.%")))
        ]
    assert events == [
        ("dav.share_granted", "marie.dupont/calendar", "to=sophie.girard level=read"),
        ("dav.share_granted", "marie.dupont/calendar", "to=sophie.girard level=manage"),
    ]


def test_bad_grants_are_refused_with_a_reason(staffed: Core) -> None:
    sharing = staffed.sharing
    with pytest.raises(ConflictError):
        sharing.grant(CALENDAR, "marie.dupont", Level.READ, actor="test")
    with pytest.raises(NotFoundError):
        sharing.grant(CALENDAR, "personne", Level.READ, actor="test")
    with pytest.raises(NotFoundError):
        sharing.grant(CALENDAR, "@pas-de-groupe", Level.READ, actor="test")
    with pytest.raises(GroupwareError):
        Level.parse("owner")
    with pytest.raises(NotFoundError):
        sharing.revoke(CALENDAR, "paul.rousseau", actor="test")
    assert sharing.grants() == []


def test_free_busy_scope_is_the_owner_choice(staffed: Core) -> None:
    sharing = staffed.sharing
    sharing.set_freebusy_scope("marie.dupont", "everyone", actor="test")
    assert level(staffed, "sophie.girard", CALENDAR) is Level.FREEBUSY
    sharing.set_freebusy_scope("marie.dupont", "nobody", actor="test")
    assert level(staffed, "paul.rousseau", CALENDAR) is None
    with pytest.raises(GroupwareError):
        sharing.set_freebusy_scope("marie.dupont", "friends", actor="test")


def test_a_deleted_collection_takes_its_grants_and_views_along(staffed: Core) -> None:
    sharing = staffed.sharing
    sharing.grant(CALENDAR, "paul.rousseau", Level.READ, actor="test")
    sharing.set_view("paul.rousseau", CALENDAR, props={"D:displayname": "Marie"}, is_hidden=True)
    assert sharing.hidden_collections("paul.rousseau") == {CALENDAR.key}

    assert sharing.forget_collection(CALENDAR, actor="marie.dupont") == 1

    assert sharing.grants() == []
    assert sharing.view_props("paul.rousseau", CALENDAR) == {}
    assert sharing.hidden_collections("paul.rousseau") == frozenset()


def test_the_change_log_records_who_changed_in_which_school(staffed: Core) -> None:
    log = DirectoryLog(staffed.engine)
    start = log.revision()
    assert log.revision("Lycée Joffre") <= start
    directory = staffed.directory

    directory.set_active("paul.rousseau", False, actor="test")
    directory.set_quota("marie.dupont", 10, actor="test")  # not on the card: not logged

    changes = log.changed_since(start)
    assert changes.revision == start + 1
    assert changes.person_ids == {directory.get("paul.rousseau").id}
    assert log.changed_since(start, "Collège Les Garrigues").person_ids == frozenset()
    assert log.changed_since(changes.revision).person_ids == frozenset()
