"""The HR import against a real SQLite directory: parsing, idempotence, addresses, groups."""

from __future__ import annotations

import re
import sqlite3
from datetime import date

import pytest
from sqlalchemy import event, select

from groupware.core.db import addresses, audit_log, group_members, groups, persons
from groupware.core.directory import NewPerson
from groupware.core.hr_import import HrImport, ImportFileError, ImportReport
from groupware.core.services import Core

HEADER = "numen,nom,prenom,date_naissance,fonction,etablissement,discipline,service"
MARIE = "1000000001AAA,Dupont,Marie,14/03/1978,Enseignant,Lycée Joffre,Lettres,"
PAUL = "1000000002AAA,Rousseau,Paul,1981-07-02,Enseignant,Lycée Joffre,Mathématiques,"
SOPHIE = "1000000003AAA,Girard,Sophie,02/11/1985,Secrétaire,Collège Les Garrigues,,Direction"


def csv_bytes(*lines: str, header: str = HEADER, delimiter: str = ",", bom: bool = False) -> bytes:
    """A file with ``header`` and ``lines`` (written with commas, re-joined by ``delimiter``)."""
    text = "\n".join(line.replace(",", delimiter) for line in (header, *lines)) + "\n"
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")


def run_import(core: Core, data: bytes, **options: bool) -> ImportReport:
    return HrImport(core.directory).run(data, actor="test", **options)


def snapshot(core: Core) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the directory tables, in a stable order."""
    with core.engine.connect() as conn:
        return {
            table.name: [
                tuple(row)
                for row in conn.execute(select(table).order_by(*table.primary_key.columns))
            ]
            for table in (persons, addresses, groups, group_members)
        }


def group_names(core: Core, login: str) -> set[str]:
    directory = core.directory
    return {group.name for group in directory.groups_of(directory.get(login).id)}


# --- reading the file ---------------------------------------------------------------


@pytest.mark.parametrize("bom", [True, False], ids=["bom", "no-bom"])
@pytest.mark.parametrize("delimiter", [",", ";"], ids=["comma", "semicolon"])
def test_file_with_or_without_bom_and_either_separator_is_imported(
    core: Core, bom: bool, delimiter: str
) -> None:
    report = run_import(core, csv_bytes(MARIE, PAUL, delimiter=delimiter, bom=bom))

    assert report.created == ["marie.dupont", "paul.rousseau"]
    assert report.rejected == []
    marie = core.directory.get("marie.dupont")
    assert (marie.first_name, marie.last_name) == ("Marie", "Dupont")
    assert marie.email == "marie.dupont@example.org"
    assert marie.birth_date == date(1978, 3, 14)
    assert (marie.role, marie.school, marie.discipline) == ("Enseignant", "Lycée Joffre", "Lettres")
    assert marie.is_active
    assert marie.must_change_password
    assert core.directory.by_numen("1000000001AAA") == marie


def test_header_names_are_case_insensitive_and_columns_may_come_in_any_order(core: Core) -> None:
    data = csv_bytes(
        "Lycée Joffre;Dupont;Marie;1000000001AAA;Enseignant;14/03/1978",
        header="ETABLISSEMENT;Nom;Prenom;NUMEN;Fonction;Date_Naissance",
        delimiter=";",
    )
    report = run_import(core, data)

    assert report.created == ["marie.dupont"]
    assert core.directory.get("marie.dupont").discipline == ""


def test_crlf_line_endings_are_read(core: Core) -> None:
    data = csv_bytes(MARIE, PAUL).replace(b"\n", b"\r\n")

    assert run_import(core, data).created == ["marie.dupont", "paul.rousseau"]
    assert core.directory.get("paul.rousseau").discipline == "Mathématiques"


def test_both_date_formats_are_read(core: Core) -> None:
    run_import(core, csv_bytes(MARIE, PAUL))

    assert core.directory.get("marie.dupont").birth_date == date(1978, 3, 14)
    assert core.directory.get("paul.rousseau").birth_date == date(1981, 7, 2)


def test_blank_lines_are_skipped_and_line_numbers_still_count_them(core: Core) -> None:
    data = csv_bytes(MARIE, "", " ", ",,,,,,,", "1000000009AAA,X,Y,bad,E,S,,")
    report = run_import(core, data)

    assert report.created == ["marie.dupont"]
    assert [line for line, _reason in report.rejected] == [6]


def test_bad_lines_are_rejected_with_line_number_and_reason_and_good_lines_imported(
    core: Core,
) -> None:
    data = csv_bytes(
        MARIE,  # 2
        "1000000004aaa,Martin,Luc,01/01/1980,Enseignant,Lycée Joffre,,",  # 3
        "100000000AAA,Martin,Luc,01/01/1980,Enseignant,Lycée Joffre,,",  # 4: 12 chars
        "10000000004AAA,Martin,Luc,01/01/1980,Enseignant,Lycée Joffre,,",  # 5: 14 chars
        "1000000005AAA,Martin,Luc,31/02/1980,Enseignant,Lycée Joffre,,",  # 6
        "1000000006AAA,,Luc,01/01/1980,Enseignant,Lycée Joffre,,",  # 7
        "1000000007AAA,Martin,Luc,01/01/1980,Enseignant,Lycée Joffre",  # 8: 6 fields
        "1000000001AAA,Dupont,Marie,14/03/1978,Enseignant,Lycée Joffre,Lettres,",  # 9
        '1000000008AAA,"Mar"tin,Luc,01/01/1980,Enseignant,Lycée Joffre,,',  # 10
        PAUL,  # 11
        '1000000010AAA,"Martin,Luc,01/01/1980,Enseignant,Lycée Joffre,,',  # 12
        SOPHIE,  # 13
        "1000000011AAA,李,Luc,01/01/1980,Enseignant,Lycée Joffre,,",  # 14
        "1000000012AAA,Martin," + "L" * 129 + ",01/01/1980,Enseignant,Lycée Joffre,,",  # 15
        "1000000013AAA,Martin,Luc,1980/01/02,Enseignant,Lycée Joffre,,",  # 16
        "1000000014AAA,Martin,Luc,1/2/1980,Enseignant,Lycée Joffre,,",  # 17
        "1000000015AAA,Martin,Luc,01/01/1980,,Lycée Joffre,,",  # 18
        "1000000016AAA,Martin,Luc,01/01/1980,Enseignant,,,",  # 19
    )
    report = run_import(core, data)

    assert report.created == ["marie.dupont", "paul.rousseau", "sophie.girard"]
    expected = {
        3: r"invalid NUMEN '1000000004aaa'",
        4: r"invalid NUMEN '100000000AAA'",
        5: r"invalid NUMEN '10000000004AAA'",
        6: r"invalid date '31/02/1980'",
        7: r"empty nom",
        8: r"expected 8 fields, found 6",
        9: r"NUMEN already on line 2",
        10: r"unreadable CSV",
        12: r"unreadable CSV",
        14: r"nom and prenom must contain letters",
        15: r"prenom longer than 128 characters",
        16: r"invalid date '1980/01/02'",
        17: r"invalid date '1/2/1980'",
        18: r"empty fonction",
        19: r"empty etablissement",
    }
    assert [line for line, _reason in report.rejected] == sorted(expected)
    for line, reason in report.rejected:
        assert re.search(expected[line], reason), (line, reason)
    assert report.lines_count == 18
    assert core.directory.count_persons() == 3


def test_a_broken_quote_rejects_its_own_line_only(core: Core) -> None:
    data = csv_bytes('1000000010AAA,"Martin,Luc,01/01/1980,E,S,,', MARIE, PAUL)
    report = run_import(core, data)

    assert report.rejected[0][0] == 2
    assert report.created == ["marie.dupont", "paul.rousseau"]


def test_quoted_fields_with_the_separator_inside_are_read(core: Core) -> None:
    data = csv_bytes('1000000001AAA,Dupont,Marie,14/03/1978,Enseignant,"Lycée Joffre, annexe",,')
    run_import(core, data)

    assert core.directory.get("marie.dupont").school == "Lycée Joffre, annexe"


@pytest.mark.parametrize("missing", ["numen", "fonction", "etablissement", "date_naissance"])
def test_missing_header_column_refuses_the_file_and_changes_nothing(
    core: Core, missing: str
) -> None:
    run_import(core, csv_bytes(MARIE))
    before = snapshot(core)
    columns = HEADER.split(",")
    position = columns.index(missing)
    header = ",".join(c for c in columns if c != missing)
    line = ",".join(v for i, v in enumerate(PAUL.split(",")) if i != position)

    with pytest.raises(ImportFileError, match=rf"line 1: missing column\(s\) {missing}"):
        run_import(core, csv_bytes(line, header=header), disable_missing=True)
    assert snapshot(core) == before


@pytest.mark.parametrize("bom", [True, False], ids=["bom", "no-bom"])
def test_non_utf8_file_is_refused_naming_the_line(core: Core, bom: bool) -> None:
    good = csv_bytes(MARIE, bom=bom)
    # Right at the start of the line, so that an offset counted from the wrong
    # place (before or after the BOM) names the wrong line.
    data = good + "Élodie,1000000002AAA,Paul,01/01/1980,E,S,,\n".encode("latin-1")

    with pytest.raises(ImportFileError, match=r"^line 3: the file is not UTF-8"):
        run_import(core, data)
    assert core.directory.count_persons() == 0


@pytest.mark.parametrize("data", [b"", b"\n\n", b"\xef\xbb\xbf"], ids=["empty", "blank", "bom"])
def test_empty_file_is_refused(core: Core, data: bytes) -> None:
    with pytest.raises(ImportFileError, match="empty"):
        run_import(core, data)


def test_unreadable_header_is_refused(core: Core) -> None:
    with pytest.raises(ImportFileError, match="line 1: unreadable header"):
        run_import(core, csv_bytes(MARIE, header='numen,"nom,prenom'))


# --- idempotence and updates ----------------------------------------------------------


def test_second_import_of_the_same_file_changes_nothing(core: Core) -> None:
    data = csv_bytes(MARIE, PAUL, SOPHIE, MARIE.replace("1000000001AAA", "1000000004AAA"))
    first = run_import(core, data)
    before = snapshot(core)

    second = run_import(core, data)

    assert len(first.created) == 4
    assert (second.created, second.updated, second.unchanged) == ([], [], 4)
    assert second.rejected == []
    assert snapshot(core) == before


def test_changed_row_updates_the_person_and_moves_import_groups_but_keeps_the_address(
    core: Core,
) -> None:
    run_import(core, csv_bytes(MARIE, PAUL))
    marie = core.directory.get("marie.dupont")
    assert group_names(core, "marie.dupont") == {
        "lycee-joffre",
        "lycee-joffre.lettres",
        "enseignant",
    }

    moved = "1000000001AAA,Dupont-Martin,Marie,14/03/1978,CPE,Collège Les Garrigues,,Vie scolaire"
    report = run_import(core, csv_bytes(moved, PAUL))

    assert report.updated == ["marie.dupont"]
    assert report.unchanged == 1
    after = core.directory.get("marie.dupont")
    assert after.id == marie.id
    assert after.email == "marie.dupont@example.org"
    assert (after.last_name, after.role, after.school, after.discipline, after.service) == (
        "Dupont-Martin",
        "CPE",
        "Collège Les Garrigues",
        "",
        "Vie scolaire",
    )
    assert after.updated_at > marie.updated_at
    assert group_names(core, "marie.dupont") == {
        "college-les-garrigues",
        "college-les-garrigues.vie-scolaire",
        "cpe",
    }
    assert core.directory.addresses_of(marie.id) == ["marie.dupont@example.org"]
    # The groups stay (Paul is still in them); Marie is only moved out.
    assert [p.login for p in core.directory.members("lycee-joffre")] == ["paul.rousseau"]
    assert core.directory.members("lycee-joffre.lettres") == []


def test_new_discipline_in_the_same_school_moves_only_the_department(core: Core) -> None:
    run_import(core, csv_bytes(MARIE))
    changed = MARIE.replace("Lettres", "Histoire-Géographie")

    report = run_import(core, csv_bytes(changed))

    assert report.updated == ["marie.dupont"]
    assert group_names(core, "marie.dupont") == {
        "lycee-joffre",
        "lycee-joffre.histoire-geographie",
        "enseignant",
    }


def test_manual_membership_survives_reimport(core: Core) -> None:
    run_import(core, csv_bytes(MARIE, SOPHIE))
    core.directory.add_member("college-les-garrigues", "marie.dupont", actor="test")
    core.directory.add_member("secretaire", "marie.dupont", actor="test")
    before = snapshot(core)

    again = run_import(core, csv_bytes(MARIE, SOPHIE))

    assert (again.created, again.updated, again.unchanged) == ([], [], 2)
    assert snapshot(core) == before

    moved = run_import(core, csv_bytes(MARIE.replace("Lycée Joffre", "Lycée Arago"), SOPHIE))

    assert moved.updated == ["marie.dupont"]
    assert group_names(core, "marie.dupont") == {
        "college-les-garrigues",
        "secretaire",
        "lycee-arago",
        "lycee-arago.lettres",
        "enseignant",
    }


def test_manual_membership_in_a_group_the_import_would_give_stays_manual(core: Core) -> None:
    run_import(core, csv_bytes(SOPHIE, MARIE))
    core.directory.add_member("lycee-joffre", "sophie.girard", actor="test")
    moved_to_joffre = SOPHIE.replace("Collège Les Garrigues", "Lycée Joffre")
    run_import(core, csv_bytes(moved_to_joffre, MARIE))
    back = run_import(core, csv_bytes(SOPHIE, MARIE))

    assert back.updated == ["sophie.girard"]
    assert "lycee-joffre" in group_names(core, "sophie.girard")


# --- addresses ---------------------------------------------------------------------


def test_namesakes_in_one_file_get_numbered_addresses_in_file_order(core: Core) -> None:
    other = MARIE.replace("1000000001AAA", "1000000004AAA").replace("Lycée Joffre", "Lycée Arago")
    report = run_import(core, csv_bytes(MARIE, other))

    assert report.created == ["marie.dupont", "marie.dupont2"]
    assert core.directory.by_numen("1000000004AAA").school == "Lycée Arago"


def test_a_namesake_in_a_later_file_gets_the_next_number(core: Core) -> None:
    second = MARIE.replace("1000000001AAA", "1000000004AAA")
    third = MARIE.replace("1000000001AAA", "1000000005AAA")
    run_import(core, csv_bytes(MARIE, second))

    report = run_import(core, csv_bytes(MARIE, second, third))

    assert report.created == ["marie.dupont3"]
    assert report.unchanged == 2
    assert core.directory.by_numen("1000000005AAA").email == "marie.dupont3@example.org"


def test_accents_particles_and_apostrophes_make_the_address(core: Core) -> None:
    data = csv_bytes(
        "1000000001AAA,N'Diaye,Aïssatou,09/01/1990,Enseignant,Lycée Joffre,Lettres,",
        "1000000002AAA,de La Fontaine,Hélène,09/01/1990,Enseignant,Lycée Joffre,Lettres,",
        "1000000003AAA,Martin,Jean Pierre,09/01/1990,Enseignant,Lycée Joffre,Lettres,",
        "1000000004AAA,Œuvray,Gaëlle,09/01/1990,Enseignant,Lycée Joffre,Lettres,",
        "1000000005AAA,O’Connor,François,09/01/1990,Enseignant,Lycée Joffre,Lettres,",
    )

    assert run_import(core, data).created == [
        "aissatou.ndiaye",
        "helene.de-la-fontaine",
        "jean-pierre.martin",
        "gaelle.oeuvray",
        "francois.oconnor",
    ]


def test_a_disabled_persons_address_is_never_reused(core: Core) -> None:
    run_import(core, csv_bytes(MARIE))
    core.directory.set_active("marie.dupont", False, actor="test")
    newcomer = MARIE.replace("1000000001AAA", "1000000004AAA")

    report = run_import(core, csv_bytes(newcomer))

    assert report.created == ["marie.dupont2"]
    old = core.directory.by_numen("1000000001AAA")
    assert (old.login, old.is_active) == ("marie.dupont", False)
    assert core.directory.find("marie.dupont@example.org") == old


def test_an_address_left_by_a_name_change_is_not_given_to_a_namesake(core: Core) -> None:
    run_import(core, csv_bytes(MARIE))
    renamed = MARIE.replace("Dupont", "Martin")
    newcomer = MARIE.replace("1000000001AAA", "1000000004AAA")

    report = run_import(core, csv_bytes(renamed, newcomer))

    assert report.updated == ["marie.dupont"]
    assert report.created == ["marie.dupont2"]
    assert core.directory.get("marie.dupont").last_name == "Martin"


def test_disable_missing_disables_people_absent_from_the_file(core: Core) -> None:
    run_import(core, csv_bytes(MARIE, PAUL, SOPHIE))
    paul = core.directory.get("paul.rousseau")

    kept = run_import(core, csv_bytes(MARIE, SOPHIE))
    assert kept.disabled == []
    assert core.directory.get("paul.rousseau").is_active

    report = run_import(core, csv_bytes(MARIE, SOPHIE), disable_missing=True)

    assert report.disabled == ["paul.rousseau"]
    after = core.directory.get("paul.rousseau")
    assert not after.is_active
    assert after.credential_version == paul.credential_version + 1
    assert core.directory.get("marie.dupont").is_active
    assert core.directory.get("sophie.girard").is_active
    again = run_import(core, csv_bytes(MARIE, SOPHIE), disable_missing=True)
    assert again.disabled == []


def test_disable_missing_copes_with_more_people_than_sqlite_binds_parameters(
    core: Core,
) -> None:
    lines = [
        f"{n:010d}AAA,Nom{n},Prenom,01/01/1980,Enseignant,Lycée Joffre,," for n in range(1, 152)
    ]
    run_import(core, csv_bytes(*lines))
    # From now on, each SQLite connection takes at most 100 bound parameters.
    core.engine.dispose()
    event.listen(
        core.engine,
        "connect",
        lambda dbapi_connection, _record: dbapi_connection.setlimit(
            sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 100
        ),
    )

    report = run_import(core, csv_bytes(lines[0]), disable_missing=True)

    assert len(report.disabled) == 150
    assert [p.login for p in core.directory.list_persons(active_only=True)] == ["prenom.nom1"]


@pytest.mark.parametrize(
    "broken_paul",
    [
        PAUL.replace("1981-07-02", "1981-02-30"),
        PAUL.replace("Rousseau", ""),
        PAUL + ",extra",
    ],
    ids=["bad-date", "empty-nom", "field-count"],
)
def test_disable_missing_spares_a_person_whose_line_is_there_but_rejected(
    core: Core, broken_paul: str
) -> None:
    run_import(core, csv_bytes(MARIE, PAUL, SOPHIE))

    report = run_import(core, csv_bytes(MARIE, broken_paul), disable_missing=True)

    assert [line for line, _reason in report.rejected] == [3]
    assert report.disabled == ["sophie.girard"]
    assert core.directory.get("paul.rousseau").is_active


# --- groups -------------------------------------------------------------------------


def test_groups_are_made_per_school_per_department_within_a_school_and_per_role(
    core: Core,
) -> None:
    data = csv_bytes(
        MARIE,
        PAUL,
        SOPHIE,
        "1000000004AAA,Roux,Léa,21/06/1969,Enseignant,Collège Les Garrigues,Lettres,",
    )
    run_import(core, data)

    found = {group.name: group for group, _count in core.directory.list_groups()}
    counts = {group.name: count for group, count in core.directory.list_groups()}
    assert set(found) == {
        "lycee-joffre",
        "college-les-garrigues",
        "lycee-joffre.lettres",
        "lycee-joffre.mathematiques",
        "college-les-garrigues.lettres",
        "college-les-garrigues.direction",
        "enseignant",
        "secretaire",
    }
    assert (found["lycee-joffre"].kind, found["lycee-joffre"].display_name) == (
        "school",
        "Lycée Joffre",
    )
    lettres = found["lycee-joffre.lettres"]
    assert (lettres.kind, lettres.display_name, lettres.school) == (
        "department",
        "Lettres — Lycée Joffre",
        "Lycée Joffre",
    )
    assert found["college-les-garrigues.lettres"].display_name == "Lettres — Collège Les Garrigues"
    assert (found["enseignant"].kind, found["enseignant"].school) == ("role", "")
    assert counts["lycee-joffre"] == 2
    assert counts["enseignant"] == 3
    assert [p.login for p in core.directory.members("college-les-garrigues.direction")] == [
        "sophie.girard"
    ]


def test_a_role_named_like_a_school_gets_a_group_of_its_own(core: Core) -> None:
    data = csv_bytes(
        "1000000001AAA,Dupont,Marie,14/03/1978,Documentation,Documentation,,",
    )
    run_import(core, data)

    kinds = {group.name: group.kind for group, _count in core.directory.list_groups()}
    assert kinds == {"documentation": "school", "documentation.role": "role"}
    assert group_names(core, "marie.dupont") == {"documentation", "documentation.role"}
    assert run_import(core, data).unchanged == 1


def test_discipline_and_service_naming_the_same_department_give_one_membership(
    core: Core,
) -> None:
    line = "1000000001AAA,Dupont,Marie,14/03/1978,Enseignant,Lycée Joffre,Direction,Direction"
    run_import(core, csv_bytes(line))

    assert group_names(core, "marie.dupont") == {
        "lycee-joffre",
        "lycee-joffre.direction",
        "enseignant",
    }


def test_add_person_by_hand_joins_the_import_groups_once(core: Core) -> None:
    person = core.directory.add_person(
        NewPerson(
            numen="1000000001AAA",
            first_name="Marie",
            last_name="Dupont",
            birth_date=None,
            role="Enseignant",
            school="Lycée Joffre",
            discipline="Direction",
            service="Direction",
        ),
        actor="test",
    )

    assert person.login == "marie.dupont"
    assert group_names(core, "marie.dupont") == {
        "lycee-joffre",
        "lycee-joffre.direction",
        "enseignant",
    }
    # The HR file then finds the same person and groups: nothing to change but the date.
    report = run_import(core, csv_bytes(MARIE.replace("Lettres", "Direction")))
    assert report.updated == ["marie.dupont"]
    assert group_names(core, "marie.dupont") == {
        "lycee-joffre",
        "lycee-joffre.direction",
        "enseignant",
    }


# --- report, progress, audit ---------------------------------------------------------


def test_progress_is_reported_up_to_the_total(core: Core) -> None:
    calls: list[tuple[int, int]] = []
    lines = [
        f"{n:010d}AAA,Nom{chr(65 + n % 26)},Prenom,01/01/1980,Enseignant,Lycée Joffre,,"
        for n in range(1, 1201)
    ]

    HrImport(core.directory).run(
        csv_bytes(*lines), actor="test", progress=lambda done, total: calls.append((done, total))
    )

    assert calls[-1] == (1200, 1200)
    assert [done for done, _total in calls] == sorted(done for done, _total in calls)
    assert all(total == 1200 for _done, total in calls)


def test_import_is_audited_with_its_counts(core: Core) -> None:
    run_import(core, csv_bytes(MARIE, PAUL, "bad,line,,,,,,"))

    with core.engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.actor, audit_log.c.detail).where(
                audit_log.c.event == "directory.import"
            )
        ).all()
    assert [tuple(row) for row in rows] == [
        ("test", "created=2 updated=0 unchanged=0 disabled=0 rejected=1")
    ]


# --- finding people ---------------------------------------------------------------


@pytest.mark.parametrize(
    "identifier",
    [
        "marie.dupont",
        "Marie.Dupont",
        "MARIE.DUPONT",
        " marie.dupont ",
        "marie.dupont@example.org",
        "Marie.Dupont@Example.ORG",
    ],
)
def test_find_accepts_local_part_or_full_address_in_any_case(core: Core, identifier: str) -> None:
    run_import(core, csv_bytes(MARIE, PAUL))

    found = core.directory.find(identifier)

    assert found is not None
    assert found.login == "marie.dupont"


@pytest.mark.parametrize(
    "identifier",
    ["marie.dupont@example.com", "marie.dupont@", "@example.org", "marie", "", "   ", "marie.d"],
)
def test_find_does_not_match_other_domains_or_partial_names(core: Core, identifier: str) -> None:
    run_import(core, csv_bytes(MARIE))

    assert core.directory.find(identifier) is None
