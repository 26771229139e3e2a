# SPDX-License-Identifier: GPL-3.0-or-later
"""Import of the HR export: people, their addresses and their groups.

The file is UTF-8 CSV (BOM optional), comma or semicolon separated, with a header
row holding at least ``numen,nom,prenom,date_naissance,fonction,etablissement``
and optionally ``discipline,service``. Dates are ``DD/MM/YYYY`` or ``YYYY-MM-DD``.
Each line is one record (HR exports put no line breaks inside fields), so line
numbers in the report are the ones an editor shows.

The import is keyed by NUMEN (through its keyed hash) and idempotent: running the
same file twice changes nothing the second time. A bad line is rejected alone,
with its line number and reason; the rest of the file is imported. Everything is
written in one transaction, so an interrupted import leaves the directory as it
was. Names changed in HR update the person but never their address.

The directory is read into memory once and changes are written in batches (one
``executemany`` per kind of change), so 50,000 lines take seconds, not minutes
(``bench/import_50k.py``).
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Final

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from groupware.core.db import addresses, group_members, groups, persons
from groupware.core.directory import (
    Directory,
    NewPerson,
    group_names_problem,
    import_group_specs,
)
from groupware.core.directory_log import record_changes
from groupware.core.names import base_local_part, unique_local_part
from groupware.core.passwords import is_valid_numen
from groupware.errors import GroupwareError

REQUIRED_COLUMNS: Final = ("numen", "nom", "prenom", "date_naissance", "fonction", "etablissement")
OPTIONAL_COLUMNS: Final = ("discipline", "service")
MAX_FIELD_CHARS: Final = 255
#: The longest value of each field: the length of the column it is stored in.
_MAX_CHARS: Final[dict[str, int]] = {
    name: getattr(column.type, "length", None) or MAX_FIELD_CHARS
    for name, column in (
        ("nom", persons.c.last_name),
        ("prenom", persons.c.first_name),
        ("fonction", persons.c.role),
        ("etablissement", persons.c.school),
        ("discipline", persons.c.discipline),
        ("service", persons.c.service),
    )
}
_DAY_FIRST: Final = re.compile(r"(?P<day>[0-9]{2})/(?P<month>[0-9]{2})/(?P<year>[0-9]{4})")
_ISO_DATE: Final = re.compile(r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})")
#: Rows written per batch (one executemany each), and progress reported as often.
BATCH_ROWS: Final = 1000
_COMPARED: Final = (
    "first_name",
    "last_name",
    "birth_date",
    "role",
    "school",
    "discipline",
    "service",
)


class ImportFileError(GroupwareError):
    """The file as a whole cannot be read (encoding, header)."""


@dataclass(slots=True)
class ImportReport:
    """What an import did."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    disabled: list[str] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    lines_count: int = 0


@dataclass(frozen=True, slots=True)
class _Row:
    line: int
    person: NewPerson
    base: str  # the address before collision handling


@dataclass(frozen=True, slots=True)
class _Rejected:
    line: int
    reason: str
    numen: str = ""  # when readable: the person is in the file, only this line is bad


def parse_date(text: str) -> date:
    """``DD/MM/YYYY`` or ``YYYY-MM-DD``.

    Raises:
        ValueError: any other form, or an impossible date.
    """
    text = text.strip()
    # Fast path for the two usual shapes; anything else goes through strptime.
    match = _DAY_FIRST.fullmatch(text) or _ISO_DATE.fullmatch(text)
    if match is not None:
        try:
            return date(int(match["year"]), int(match["month"]), int(match["day"]))
        except ValueError:
            pass
    for form in ("%d/%m/%Y", "%Y-%m-%d"):
        try:
            parsed = datetime.strptime(text, form).date()  # noqa: DTZ007 - a calendar date
        except ValueError:
            continue
        if form == "%d/%m/%Y" and len(text) != 10:
            break
        return parsed
    raise ValueError(f"invalid date {text!r} (expected DD/MM/YYYY or YYYY-MM-DD)")


def _split(line: str, delimiter: str) -> list[str]:
    """The fields of one physical line (raises :class:`csv.Error` on bad quoting)."""
    return next(csv.reader((line,), delimiter=delimiter, strict=True))


def read_rows(data: bytes) -> Iterator[_Row | _Rejected]:
    """Parse the file: a :class:`_Row` per good line, a :class:`_Rejected` per bad one.

    Each physical line is one record: a quoted field cannot span lines, so a
    broken quote rejects its own line and not the rest of the file.

    Raises:
        ImportFileError: not UTF-8, empty, or a header without the required columns.
    """
    # The BOM is removed before decoding so that error offsets count file lines.
    body = data.removeprefix(codecs.BOM_UTF8)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body[: exc.start].count(b"\n") + 1
        raise ImportFileError(
            f"line {line}: the file is not UTF-8 text (export it as CSV UTF-8)"
        ) from exc
    lines = text.split("\n")
    first_line = lines[0].removesuffix("\r")
    if not first_line.strip():
        raise ImportFileError("line 1: the file is empty or has no header row")
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    try:
        header = [name.strip().lower() for name in _split(first_line, delimiter)]
    except csv.Error as exc:
        raise ImportFileError(f"line 1: unreadable header: {exc}") from exc
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise ImportFileError(
            f"line 1: missing column(s) {', '.join(missing)} "
            f"(the header must name {', '.join(REQUIRED_COLUMNS)})"
        )
    index = {
        name: header.index(name)
        for name in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
        if name in header
    }
    for line, raw in enumerate(lines[1:], start=2):
        raw = raw.removesuffix("\r")
        if not raw.strip():
            continue
        try:
            values = _split(raw, delimiter)
        except csv.Error as exc:
            yield _Rejected(line, f"unreadable CSV: {exc}")
            continue
        if not any(value.strip() for value in values):
            continue
        if len(values) != len(header):
            numen = values[index["numen"]].strip() if index["numen"] < len(values) else ""
            yield _Rejected(
                line,
                f"expected {len(header)} fields, found {len(values)}",
                numen if is_valid_numen(numen) else "",
            )
            continue
        yield _parse_line(line, {name: values[i].strip() for name, i in index.items()})


def _parse_line(line: int, fields: dict[str, str]) -> _Row | _Rejected:
    numen = fields["numen"]
    if not is_valid_numen(numen):
        return _Rejected(line, f"invalid NUMEN {numen!r}: 13 digits or uppercase letters expected")
    for name in ("nom", "prenom", "fonction", "etablissement"):
        if not fields[name]:
            return _Rejected(line, f"empty {name}", numen)
    for name, value in fields.items():
        max_chars = _MAX_CHARS.get(name, MAX_FIELD_CHARS)
        if len(value) > max_chars:
            return _Rejected(line, f"{name} longer than {max_chars} characters", numen)
    base = base_local_part(fields["prenom"], fields["nom"])
    if not base:
        return _Rejected(line, "nom and prenom must contain letters", numen)
    try:
        birth = parse_date(fields["date_naissance"])
    except ValueError as exc:
        return _Rejected(line, str(exc), numen)
    return _Row(
        line,
        NewPerson(
            numen=numen,
            first_name=fields["prenom"],
            last_name=fields["nom"],
            birth_date=birth,
            role=fields["fonction"],
            school=fields["etablissement"],
            discipline=fields.get("discipline", ""),
            service=fields.get("service", ""),
        ),
        base,
    )


class HrImport:
    """Applies an HR file to the directory."""

    def __init__(self, directory: Directory) -> None:
        self._directory = directory

    def run(
        self,
        data: bytes,
        *,
        actor: str,
        disable_missing: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> ImportReport:
        """Import ``data`` (the file's bytes).

        Args:
            data: the CSV file's content.
            actor: who runs the import (audit).
            disable_missing: disable active people absent from the file. A person
                whose line is there but rejected is not absent.
            progress: called with ``(done, total)`` lines as the import advances.

        Raises:
            ImportFileError: the file as a whole is unusable; nothing was changed.
        """
        directory = self._directory
        report = ImportReport()
        rows: list[tuple[_Row, str]] = []
        seen: dict[str, int] = {}
        present: set[str] = set()
        # Per combination of school, role and departments: few of them repeat a lot.
        group_problems: dict[tuple[str, str, str, str], str | None] = {}
        key = directory.numen_key
        for item in read_rows(data):
            report.lines_count += 1
            if isinstance(item, _Rejected):
                report.rejected.append((item.line, item.reason))
                if item.numen:
                    present.add(key.digest(item.numen))
                continue
            digest = key.digest(item.person.numen)
            if digest in seen:
                report.rejected.append((item.line, f"NUMEN already on line {seen[digest]}"))
                continue
            new = item.person
            combination = (new.school, new.role, new.discipline, new.service)
            if combination not in group_problems:
                group_problems[combination] = group_names_problem(
                    new.school, new.role, (new.discipline, new.service)
                )
            problem = group_problems[combination]
            if problem is not None:
                report.rejected.append((item.line, problem))
                present.add(digest)
                continue
            seen[digest] = item.line
            rows.append((item, digest))
        present.update(seen)
        total = len(rows)
        with directory.engine.begin() as conn:
            state = _State.load(conn, directory.domain)
            batch = _Batch(conn, directory)
            for done, (row, digest) in enumerate(rows, start=1):
                self._apply(state, batch, row, digest, report)
                if done % BATCH_ROWS == 0 or done == total:
                    batch.flush()
                    if progress is not None:
                        progress(done, total)
            if disable_missing:
                leaving = sorted(
                    (known.login, known.id, str(known.values["school"]))
                    for digest, known in state.people.items()
                    if known.is_active and digest not in present and known.id is not None
                )
                gone = [login for login, _id, _school in leaving]
                if gone:
                    # One row per parameter set: an IN list of every login could
                    # pass SQLite's limit on bound parameters.
                    conn.execute(
                        update(persons)
                        .where(persons.c.login == bindparam("b_login"))
                        .values(
                            is_active=False,
                            updated_at=directory.clock(),
                            credential_version=persons.c.credential_version + 1,
                        ),
                        [{"b_login": login} for login in gone],
                    )
                    record_changes(conn, [(pid, school) for _l, pid, school in leaving])
                report.disabled = gone
        directory.audit.record(
            "directory.import",
            actor=actor,
            detail=(
                f"created={len(report.created)} updated={len(report.updated)} "
                f"unchanged={report.unchanged} disabled={len(report.disabled)} "
                f"rejected={len(report.rejected)}"
            ),
        )
        return report

    def _apply(
        self, state: _State, batch: _Batch, row: _Row, digest: str, report: ImportReport
    ) -> None:
        new = row.person
        now = self._directory.clock()
        wanted = state.group_ids(batch.conn, new, now)
        known = state.people.get(digest)
        if known is None:
            local = unique_local_part(row.base, state.is_taken)
            state.take(local)
            state.people[digest] = _Known(None, local, True, _values(new), set(), set())
            batch.create(new, digest, local, now, wanted)
            report.created.append(local)
            return
        assert known.id is not None  # only people made by this run lack an id
        values = _values(new)
        changed = known.values != values
        if changed:
            batch.update(known.id, values, now, str(known.values["school"]))
            known.values = values
        to_add = wanted - known.import_groups - known.manual_groups
        to_remove = known.import_groups - wanted
        batch.move(known.id, to_add, to_remove)
        known.import_groups = (known.import_groups | to_add) - to_remove
        if changed or to_add or to_remove:
            report.updated.append(known.login)
        else:
            report.unchanged += 1


def _values(new: NewPerson) -> dict[str, object]:
    return {
        "first_name": new.first_name,
        "last_name": new.last_name,
        "birth_date": new.birth_date,
        "role": new.role,
        "school": new.school,
        "discipline": new.discipline,
        "service": new.service,
    }


@dataclass(slots=True)
class _Known:
    """A person of the directory, as the import sees them."""

    id: int | None  # None until the batch that creates them is written
    login: str
    is_active: bool
    values: dict[str, object]
    import_groups: set[int]
    manual_groups: set[int]


@dataclass(slots=True)
class _State:
    """The directory in memory for the length of one import (50,000 rows fit easily)."""

    domain: str
    people: dict[str, _Known]  # by NUMEN digest
    addresses: set[str]
    groups: dict[str, tuple[int, str]]
    groups_for: dict[tuple[str, str, str, str], frozenset[int]] = field(default_factory=dict)

    @classmethod
    def load(cls, conn: Connection, domain: str) -> _State:
        memberships: dict[int, tuple[set[int], set[int]]] = {}
        for row in conn.execute(select(group_members)):
            imported, manual = memberships.setdefault(row.person_id, (set(), set()))
            (imported if row.source == "import" else manual).add(row.group_id)
        people: dict[str, _Known] = {}
        for row in conn.execute(select(persons)):
            imported, manual = memberships.get(row.id, (set(), set()))
            people[row.numen_hmac] = _Known(
                row.id,
                row.login,
                row.is_active,
                {name: getattr(row, name) for name in _COMPARED},
                imported,
                manual,
            )
        return cls(
            domain=domain,
            people=people,
            addresses={row.address for row in conn.execute(select(addresses.c.address))},
            groups={row.name: (row.id, row.kind) for row in conn.execute(select(groups))},
        )

    def is_taken(self, local: str) -> bool:
        """Whether the address with this local part was ever given."""
        return f"{local}@{self.domain}" in self.addresses

    def take(self, local: str) -> None:
        """Remember that this address is now given."""
        self.addresses.add(f"{local}@{self.domain}")

    def group_ids(self, conn: Connection, new: NewPerson, now: datetime) -> frozenset[int]:
        """The import groups of a person, made as needed (few combinations repeat a lot)."""
        combination = (new.school, new.role, new.discipline, new.service)
        found = self.groups_for.get(combination)
        if found is None:
            specs = import_group_specs(new.school, new.role, (new.discipline, new.service))
            found = frozenset(self.group_id(conn, spec, now) for spec in specs)
            self.groups_for[combination] = found
        return found

    def group_id(self, conn: Connection, spec: tuple[str, str, str, str], now: datetime) -> int:
        name, display_name, kind, school = spec
        found = self.groups.get(name)
        if found is not None and found[1] != kind:
            return self.group_id(conn, (f"{name}.{kind}", display_name, kind, school), now)
        if found is not None:
            return found[0]
        values = {
            "name": name,
            "display_name": display_name,
            "kind": kind,
            "school": school,
            "created_at": now,
        }
        group_id = int(conn.execute(insert(groups).returning(groups.c.id), values).scalar_one())
        self.groups[name] = (group_id, kind)
        return group_id


class _Batch:
    """Changes waiting to be written, each kind with one executemany."""

    def __init__(self, conn: Connection, directory: Directory) -> None:
        self.conn = conn
        self._directory = directory
        self._new_persons: list[dict[str, object]] = []
        self._new_groups: list[frozenset[int]] = []
        self._updates: list[dict[str, object]] = []
        self._added: list[dict[str, object]] = []
        self._removed: list[dict[str, object]] = []
        self._cards: list[tuple[int, str]] = []  # (person, school) for the change log

    def create(
        self, new: NewPerson, digest: str, local: str, now: datetime, group_ids: frozenset[int]
    ) -> None:
        self._new_persons.append(self._directory.person_values(new, digest, local, now))
        self._new_groups.append(group_ids)

    def update(
        self, person_id: int, values: dict[str, object], now: datetime, old_school: str
    ) -> None:
        self._updates.append({"b_id": person_id, **values, "updated_at": now})
        # The card changes in the book of the school the person leaves too.
        self._cards += [(person_id, old_school), (person_id, str(values["school"]))]

    def move(self, person_id: int, to_add: AbstractSet[int], to_remove: AbstractSet[int]) -> None:
        self._added += (
            {"group_id": g, "person_id": person_id, "source": "import"} for g in sorted(to_add)
        )
        self._removed += ({"b_person": person_id, "b_group": g} for g in sorted(to_remove))

    def flush(self) -> None:
        conn = self.conn
        if self._new_persons:
            # Matched by login rather than by position: SQLite can only keep the
            # parameters' order by inserting one row per statement.
            returned = conn.execute(
                insert(persons).returning(persons.c.id, persons.c.login), self._new_persons
            )
            id_of = {row.login: row.id for row in returned}
            new_addresses = []
            for values, group_ids in zip(self._new_persons, self._new_groups, strict=True):
                person_id = id_of[values["login"]]
                new_addresses.append(
                    {
                        "address": values["email"],
                        "person_id": person_id,
                        "kind": "primary",
                        "created_at": values["created_at"],
                    }
                )
                self._added += (
                    {"group_id": g, "person_id": person_id, "source": "import"}
                    for g in sorted(group_ids)
                )
                self._cards.append((person_id, str(values["school"])))
            conn.execute(insert(addresses), new_addresses)
        if self._updates:
            conn.execute(update(persons).where(persons.c.id == bindparam("b_id")), self._updates)
        if self._removed:
            conn.execute(
                delete(group_members).where(
                    group_members.c.person_id == bindparam("b_person"),
                    group_members.c.group_id == bindparam("b_group"),
                    group_members.c.source == "import",
                ),
                self._removed,
            )
        if self._added:
            conn.execute(insert(group_members), self._added)
        record_changes(conn, self._cards)
        for pending in (
            self._new_persons,
            self._new_groups,
            self._updates,
            self._added,
            self._removed,
            self._cards,
        ):
            pending.clear()
